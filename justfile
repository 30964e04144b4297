# Everyday commands. Each one is also a plain cargo command in README.

# Run the demo stack (API + frontend) in the foreground; Ctrl-C stops it.
demo:
    cargo run -p ringmaster-cli -- up -f examples/dashboard/ringmaster.toml

# Run every test.
test:
    cargo test --workspace

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks (figures go to docs/benchmarks.md).
bench:
    cargo bench -p ringmaster-os
    cargo bench -p ringmaster

# Gating at start-ups of 0.1-30 s beside wait-on (installs wait-on from npm first).
bench-gating:
    scripts/bench-tools.sh
    cargo build --release -p ringmaster-tests --bin fake-service
    WAIT_ON=$PWD/.bench-tools/node_modules/.bin/wait-on cargo bench -p ringmaster --bench gating

# ringmaster beside supervisord, honcho, circus, PM2 and concurrently + wait-on on
# examples/fastapi-nextjs (installs them into .bench-tools/ first; Linux).
# PEERS_ROUNDS=N and PEERS_TOOLS=a,b narrow it; raw results in docs/benchmarks/peers.json.
bench-peers:
    scripts/bench-tools.sh
    cargo build --release -p ringmaster-cli
    cargo bench -p ringmaster-tests --bench peers

# ringmaster at N services (fake HTTP services, fan-out dependencies, 1 s checks): time
# to ready, memory, CPU, `status` latency, the cascade. N: a comma-separated list.
bench-scale N="10,100,500":
    cargo build --release -p ringmaster-cli -p ringmaster-tests --bins
    BENCH_SCALE={{N}} cargo bench -p ringmaster-tests --bench scale

# The resident memory of a running `ringmaster up` of two services.
bench-rss:
    cargo build --release -p ringmaster-cli -p ringmaster-tests --bins
    cargo bench -p ringmaster-tests --bench up_rss

# Windows and macOS cross-checks.
cross:
    rustup target add x86_64-pc-windows-gnu x86_64-apple-darwin
    cargo clippy --workspace --all-targets --target x86_64-pc-windows-gnu -- -D warnings
    cargo clippy --workspace --all-targets --target x86_64-apple-darwin -- -D warnings

# The bounded soak (docs/reliability.md): 20 services under chaos for SECONDS.
soak SECONDS="60":
    RINGMASTER_SOAK_SECS={{SECONDS}} cargo test -p ringmaster-tests --test fault_soak -- --nocapture
