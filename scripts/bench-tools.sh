#!/usr/bin/env bash
# Installs the peer tools the benches compare against into an ignored folder,
# .bench-tools/, from the package registries, and prepares the FastAPI + Next.js
# example once. Run by hand; nothing in CI needs it.
#
#   npm:  wait-on, concurrently, pm2        -> .bench-tools/node_modules/.bin/
#   PyPI: supervisor, honcho, circus        -> .bench-tools/venv/bin/ (a venv)
#   examples/fastapi-nextjs: api/.venv (its requirements) and web/node_modules,
#   the same two steps as the `install` keys of its ringmaster.toml.
#
#   scripts/bench-tools.sh
#   WAIT_ON=.bench-tools/node_modules/.bin/wait-on cargo bench -p ringmaster --bench gating
#   cargo bench -p ringmaster-tests --bench peers   (finds .bench-tools/ itself)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bench-tools
npm install --prefix .bench-tools --no-audit --no-fund --silent \
    wait-on@9 concurrently@10 pm2@7

python=${PYTHON:-python3}
if [ ! -x .bench-tools/venv/bin/circusd ]; then
    "$python" -m venv .bench-tools/venv
    .bench-tools/venv/bin/python -m pip install --quiet --disable-pip-version-check \
        'supervisor==4.3.*' 'honcho==2.0.*' 'circus==0.19.*'
fi

example=examples/fastapi-nextjs
if [ ! -x $example/api/.venv/bin/uvicorn ]; then
    (cd $example/api && "$python" -m venv .venv &&
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt)
fi
if [ ! -d $example/web/node_modules ]; then
    (cd $example/web && npm install --no-audit --no-fund --silent)
fi

echo "WAIT_ON=$PWD/.bench-tools/node_modules/.bin/wait-on"
