# Sourced by setup.sh and test.sh: where Wine lives and how cargo runs Windows
# test binaries under it. Every value can be overridden from the environment.
WINE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$WINE_DIR/../.." && pwd)"
export WINE_LOADER="${WINE_LOADER:-/usr/lib/wine/wine64}"
export WINESERVER="${WINESERVER:-/usr/lib/wine/wineserver64}"
# A prefix of our own, beside the build output (gone with `cargo clean`).
export WINEPREFIX="${WINEPREFIX:-$REPO_ROOT/target/wine-prefix}"
export WINEARCH=win64
export WINEDEBUG="${WINEDEBUG:--all}"
# No Mono or Gecko install prompts: the tests need neither .NET nor a browser.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER:-$WINE_LOADER}"
# Wine needs no display for console programs; keep it from trying one.
unset DISPLAY WAYLAND_DISPLAY
