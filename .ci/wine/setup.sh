#!/usr/bin/env bash
# Prepares this Linux machine to run the Windows test binaries under Wine:
# installs a MinGW linker and Wine when missing (apt-get), adds the Rust target,
# creates our own Wine prefix, and builds and places bcryptprimitives.dll
# (processprng.c). Idempotent; fresh about 30 s (apt-get ~17 s, prefix ~11 s),
# well under a second when everything is in place.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"

TARGET=x86_64-pc-windows-gnu
CC_WIN=x86_64-w64-mingw32-gcc

say() { printf 'wine setup: %s\n' "$*"; }

# Packages: only the 64-bit MinGW C compiler (the linker for the Rust target) and
# the 64-bit Wine loader, without recommends (fonts, sound, 32-bit toolchain).
if ! command -v "$CC_WIN" >/dev/null || [ ! -x "$WINE_LOADER" ]; then
    say "installing gcc-mingw-w64-x86-64-win32 and wine64"
    SUDO=()
    if [ "$(id -u)" != 0 ]; then SUDO=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        gcc-mingw-w64-x86-64-win32 wine64 >/dev/null
fi
command -v "$CC_WIN" >/dev/null || { say "$CC_WIN is missing after install"; exit 1; }
[ -x "$WINE_LOADER" ] || { say "$WINE_LOADER is missing after install"; exit 1; }

if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

# The prefix: created by the first wine run (wineboot), about 10 s.
SYSTEM32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -f "$WINEPREFIX/system.reg" ] || [ ! -d "$SYSTEM32" ]; then
    say "creating the Wine prefix $WINEPREFIX"
    mkdir -p "$WINEPREFIX"
    "$WINE_LOADER" wineboot --init >/dev/null 2>&1 || true
    "$WINESERVER" -w
    [ -d "$SYSTEM32" ] || { say "wineboot did not create $SYSTEM32"; exit 1; }
fi

# bcryptprimitives.dll: rebuilt when the source changed, copied when missing.
BUILD="$REPO_ROOT/target/wine-dll"
DLL="$BUILD/bcryptprimitives.dll"
mkdir -p "$BUILD"
if [ ! -f "$DLL" ] || [ "$WINE_DIR/processprng.c" -nt "$DLL" ]; then
    say "building bcryptprimitives.dll"
    "$CC_WIN" -shared -O2 -s -Wall -Werror -o "$DLL" "$WINE_DIR/processprng.c" -ladvapi32
fi
if ! cmp -s "$DLL" "$SYSTEM32/bcryptprimitives.dll"; then
    say "placing bcryptprimitives.dll in $SYSTEM32"
    cp "$DLL" "$SYSTEM32/bcryptprimitives.dll"
fi
say "ready (WINEPREFIX=$WINEPREFIX)"
