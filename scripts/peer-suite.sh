#!/usr/bin/env bash
# LocalStack's AWS-validated SQS, SNS and EventBridge tests against `lifehook sandbox`
# (issue 14): the shared runner (../shared/peers/run.sh, or $PEERS_RUNNER) with this
# checkout's debug build. Set it up once with the runner's setup.sh (its README says how);
# the last lines printed are `all: N/M passed` and `in-scope: N/M passed (X%)`.
#
#   scripts/peer-suite.sh [pytest selection...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNNER="${PEERS_RUNNER:-../shared/peers/run.sh}"
[ -x "$RUNNER" ] || { echo "peer-suite: no runner at $RUNNER (set PEERS_RUNNER)" >&2; exit 2; }
BIN="${LIFEHOOK_BIN:-${CARGO_TARGET_DIR:-target}/debug/lifehook}"
if [ ! -x "$BIN" ]; then
  cargo build --quiet --workspace --bins
fi
exec "$RUNNER" "$BIN" "$@"
