#!/usr/bin/env bash
# Installs the peer tools the benches compare against into an ignored folder,
# .bench-tools/, from the npm registry, and prints how to point the benches at
# them. Run by hand; nothing in CI needs it.
#   scripts/bench-tools.sh
#   WAIT_ON=.bench-tools/node_modules/.bin/wait-on cargo bench -p ringmaster --bench gating
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bench-tools
npm install --prefix .bench-tools --no-audit --no-fund --silent wait-on@9
echo "WAIT_ON=$PWD/.bench-tools/node_modules/.bin/wait-on"
