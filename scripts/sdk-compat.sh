#!/usr/bin/env bash
# The lifecycle flow with boto3, the AWS CLI and the AWS SDK for JavaScript v3 against a
# real `lifehook sandbox` (aws-sdk-rust runs it in `cargo test`).
# Installs boto3 and awscli from PyPI into a virtualenv (kept between runs), starts the
# sandbox on a free loopback port with a manual clock, runs scripts/sdk_compat.py, stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LIFEHOOK_VENV:-/var/tmp/lifehook-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'boto3>=1.34.90' 'awscli>=1.32.90'

BIN="${LIFEHOOK_BIN:-${CARGO_TARGET_DIR:-target}/debug/lifehook}"
if [ ! -x "$BIN" ]; then
  cargo build --quiet -p lifehook
fi

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
LOG=$(mktemp)
"$BIN" sandbox --listen "127.0.0.1:$PORT" --clock manual >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -f "$LOG"' EXIT

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export PATH="$VENV/bin:$PATH"

for _ in $(seq 1 100); do
  if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$AWS_ENDPOINT_URL/_sandbox/health', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 $PID 2>/dev/null; then cat "$LOG"; exit 1; fi
  "$VENV/bin/python" -c 'import time; time.sleep(0.05)'
done

"$VENV/bin/python" scripts/sdk_compat.py

# The AWS SDK for JavaScript v3, from npm (the versions in scripts/sdk-js/package-lock.json).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "sdk-compat: node and npm are needed for the JavaScript case (Debian: apt-get install -y nodejs npm)" >&2
  exit 1
fi
(cd scripts/sdk-js && npm ci --no-audit --no-fund --silent)
node scripts/sdk-js/lifecycle.mjs
