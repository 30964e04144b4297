#!/usr/bin/env bash
# Runs the Windows tests (listed at `args` below) under Wine: builds for
# x86_64-pc-windows-gnu and lets cargo start each test binary through the Wine loader. Runs setup.sh first (well under a second when all is ready).
# Extra arguments go to the test binaries, e.g. `.ci/wine/test.sh --nocapture`.
# The test run (not the build before it) is bounded by WINE_TEST_TIMEOUT seconds
# (default 600; the test run takes about 2 to 3 minutes, most of it the actor
# tests, where each stop waits out a stop timeout): a test binary that hangs under Wine
# fails the run with a message instead of blocking it forever.
set -euo pipefail
# shellcheck source=env.sh
source "$(dirname "$0")/env.sh"
"$WINE_DIR/setup.sh" >/dev/null
cd "$REPO_ROOT"

# One wineserver for the whole run (started now, so the first test binary does not
# pay for it), stopped at the end so no Wine process outlives the run.
"$WINE_LOADER" cmd /C exit 0 >/dev/null 2>&1 || true
trap '"$WINESERVER" -k 2>/dev/null || true' EXIT

# sysinfo is built without debug assertions: its user list calls
# slice::from_raw_parts_mut on what LsaEnumerateLogonSessions returns, which under
# Wine 8 is an empty, null list; the debug precondition check turns that
# into an abort of the whole test binary (real Windows always has a session).
# What runs: the OS layer's unit tests and tests/windows_*.rs; the library's unit
# tests and configuration tests; the CLI's unit tests and tests/windows_*.rs (the
# real ringmaster.exe: up -d, status, logs, down); and the actor tests of
# ringmaster-tests listed below (orchestrators driving fake-service.exe through
# `cmd /C`). The other integration tests are Unix-only.
args=(--config "profile.dev.package.sysinfo.debug-assertions=false"
    -p ringmaster-os -p ringmaster -p ringmaster-cli -p ringmaster-tests
    --target x86_64-pc-windows-gnu
    --lib --bins --test 'windows_*' --test config_validation
    # Gating, the shutdown cascade's order (checked with the process table), and a
    # `cmd /C` chain three deep stopped as one.
    --test actors_gating
    # A restart with backoff; a dependent's pending restart cancelled by its
    # dependency's restart.
    --test actors_restart_backoff_cascade
    # A service ignoring the graceful step (CTRL_BREAK, `taskkill` without /F) killed after its
    # stop timeout, within the deadline; status and requests during the shutdown.
    --test actors_shutdown_status
    # A service that never started shows `stopped` after the shutdown.
    --test actors_shutdown_never_started
    # Readiness: HTTP probe by GET, the failing probe's detail while starting, an
    # exec probe (`cmd /C`) going unhealthy and healthy again.
    --test actors_probe_get --test actors_probe_visibility --test actors_healthy_again
    # In-process plugin services gated and stopped in the cascade with a process.
    --test actors_plugin
)
cargo test "${args[@]}" --no-run
# insta finds the workspace through `cargo metadata`, which a Windows test binary
# cannot run under Wine; without this its snapshot paths come out doubled.
export INSTA_WORKSPACE_ROOT="$REPO_ROOT"
limit="${WINE_TEST_TIMEOUT:-600}"
# timeout signals the whole process group (cargo, the Wine loader and the test
# binary); the EXIT trap then stops what is left of Wine.
status=0
timeout --kill-after=15 "$limit" cargo test "${args[@]}" -- "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "error: the Windows tests did not finish within ${limit} s under Wine and were stopped;" \
        "the last 'Running' line above names the test binary that hung" >&2
fi
exit "$status"
