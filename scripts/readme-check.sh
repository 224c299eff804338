#!/usr/bin/env bash
# README.md followed literally, once with the AWS CLI v1 and once with v2 (issue #15: "The
# README, followed literally on a fresh machine, works with both AWS CLI v1 and v2").
#
# The commands come from README.md itself: every ```sh block that follows a line
# `<!-- readme-check: NAME ... -->` ("Try it against the sandbox", then the agent's try-out
# in "Run the agent on instances"), run in order in one shell, as a user pastes them.
# The only rewrites:
# - `cargo run --release --` becomes the lifehook binary ($LIFEHOOK_BIN, default
#   $CARGO_TARGET_DIR/debug/lifehook, built in debug when missing; never a release build);
# - port 4566, which the README names, becomes the free loopback port of this run's own
#   sandbox, everywhere: in the commands' text (`:4566` → `:$PORT`), for the sandbox through
#   LIFEHOOK_SANDBOX_LISTEN=127.0.0.1:0 (it picks the port; its first line says which), and
#   for examples/controller-local.toml's queue_url through LIFEHOOK_QUEUE_URL; the
#   controller's admin port (default 9464) through LIFEHOOK_ADMIN_LISTEN=127.0.0.1:0.
# Long-running commands run in the background: the sandbox and the agent (the README starts
# both with `&`) and the controller (the README runs it until Ctrl-C; here until its work
# is done, then SIGTERM). After each command the outcome the README promises is checked
# against the sandbox, with bounded polling. Only the processes this script starts are
# stopped. A failure names the CLI, the README command and its output.
#
# Installs what a fresh machine lacks: the AWS CLI v1 from PyPI into the virtualenv
# scripts/sdk-compat.sh uses, and Debian's `awscli` (v2) with apt-get when /usr/bin/aws is
# missing. AWS_CLI_V1 / AWS_CLI_V2 name other executables.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "readme-check: FAILED: $*" >&2; exit 1; }

VENV="${LIFEHOOK_VENV:-/var/tmp/lifehook-venv}"
if [ -z "${AWS_CLI_V1:-}" ] && [ ! -x "$VENV/bin/aws" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'awscli>=1.32.90'
fi
CLI_V1="${AWS_CLI_V1:-$VENV/bin/aws}"
CLI_V2="${AWS_CLI_V2:-/usr/bin/aws}"
if [ -z "${AWS_CLI_V2:-}" ] && [ ! -x "$CLI_V2" ]; then
  command -v apt-get >/dev/null || fail "AWS CLI v2: $CLI_V2 is missing and there is no apt-get to install Debian's awscli"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq awscli >/dev/null
fi
for cli in "v1 $CLI_V1" "v2 $CLI_V2"; do
  want="${cli%% *}" path="${cli#* }"
  version=$("$path" --version 2>&1) || fail "AWS CLI $want: $path --version: $version"
  case "$version" in
    "aws-cli/${want#v}."*) ;;
    *) fail "AWS CLI $want: $path is $version" ;;
  esac
done

BIN="${LIFEHOOK_BIN:-${CARGO_TARGET_DIR:-target}/debug/lifehook}"
if [ ! -x "$BIN" ]; then
  cargo build --quiet -p lifehook
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=python3

# Bounded waits: LIFEHOOK_TEST_PATIENCE stretches them, as for the Rust tests.
PATIENCE="${LIFEHOOK_TEST_PATIENCE:-1}"
WAIT_SECS=$((60 * PATIENCE))

# The README's blocks, one complete shell command per NUL-terminated record: lines are
# joined until bash can parse them (backslash continuations, the multi-line JSON argument).
readme_commands() {
  awk '/^<!-- readme-check: / { want = 1; next }
       want && /^```sh$/ { inside = 1; want = 0; next }
       inside && /^```$/ { inside = 0; next }
       inside { print }' README.md |
    {
      buf=""
      while IFS= read -r line || [ -n "$line" ]; do
        buf="${buf:+$buf$'\n'}$line"
        case "$buf" in *\\) continue ;; esac
        bash -n -c "$buf" 2>/dev/null || continue
        # Blank lines and comment lines are not commands.
        if [ -n "$(printf '%s\n' "$buf" | sed -e 's/^[[:space:]]*#.*//' -e '/^[[:space:]]*$/d')" ]; then
          printf '%s\0' "$buf"
        fi
        buf=""
      done
      [ -z "$buf" ] || { echo "readme-check: README block ends inside a command: $buf" >&2; exit 1; }
    }
}

# One JSON query on the sandbox: python reads the document from stdin and evaluates EXPR
# with `d` bound to it; prints the result.
sandbox_json() { # PATH EXPR
  curl -sf "http://127.0.0.1:$PORT$1" | "$PY" -c "import json,sys; d=json.load(sys.stdin); print($2)"
}

# Instances of web-1 in the sandbox, as `id state` lines (terminated ones left out).
web1_instances() {
  sandbox_json /_sandbox/state \
    "'\n'.join(i['instance_id']+' '+i['lifecycle_state'] for i in d['regions'].get('us-east-1',{}).get('ec2',{}).get('instances',[]) if i.get('group')=='web-1' and i['lifecycle_state']!='Terminated')"
}

# Polls CONDITION (a shell command) every 50 ms until it succeeds, WAIT_SECS pass, or the
# process WATCH_PID (when set) exits.
eventually() { # WHAT CONDITION...
  local what="$1" i
  shift
  for ((i = 0; i < WAIT_SECS * 20; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -n "${WATCH_PID:-}" ] && ! kill -0 "$WATCH_PID" 2>/dev/null; then
      what="$what (it exited)"
      break
    fi
    sleep 0.05
  done
  fail "AWS CLI $CLI_NAME: not: $what
--- the output of README command ${n:-?} so far:
$(cat "${out:-/dev/null}" 2>/dev/null)"
}

# The walkthrough with one CLI, in a subshell so that its variables, alias and processes
# stay its own.
walkthrough() { # NAME CLI
  CLI_NAME="$1"

  WORK="$(mktemp -d)"
  PIDS=()
  # shellcheck disable=SC2317 # called by the trap
  cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
  }
  trap cleanup EXIT

  # A fresh machine: no AWS configuration but what the README exports, and `aws` is this CLI.
  while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^AWS_' || true)
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  mkdir -p "$WORK/bin"
  ln -s "$2" "$WORK/bin/aws"
  export PATH="$WORK/bin:$PATH"
  shopt -s expand_aliases
  export LIFEHOOK_SANDBOX_LISTEN=127.0.0.1:0 LIFEHOOK_ADMIN_LISTEN=127.0.0.1:0
  unset LIFEHOOK_CLOCK_URL LIFEHOOK_CONFIG LIFEHOOK_QUEUE_URL
  PORT=4566

  local n=0 cmd run out rc first_waiting="" controller_done=0 agent_started=0 agent_done=0 advanced=0 statuses=0 described=0
  while IFS= read -r -d '' cmd; do
    n=$((n + 1))
    run="${cmd//cargo run --release --/\"\$BIN\"}"
    run="${run//:4566/:$PORT}"
    out="$WORK/out.$n"
    # Says which CLI and which README command broke, with its output.
    broke() { fail "AWS CLI $CLI_NAME, README command $n:
$cmd
(ran: $run)
$*
--- its output:
$(cat "$out" 2>/dev/null)"; }

    case "$cmd" in
      *"-- sandbox"*)
        # The README backgrounds it (`&`).
        eval "$run" </dev/null >"$out" 2>&1
        PIDS+=($!)
        local sandbox_pid=$!
        WATCH_PID=$! eventually "the sandbox prints where it listens" grep -q 'listening on http://127.0.0.1:' "$out"
        kill -0 "$sandbox_pid" 2>/dev/null || broke "the sandbox exited"
        PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$out" | head -1)
        ;;
      *"-- agent"*)
        # The README backgrounds it (`&`).
        eval "$run" </dev/null >"$out" 2>&1
        PIDS+=($!)
        WATCH_PID=$! eventually "the agent starts" grep -q 'agent started' "$out"
        agent_started=1
        ;;
      *"-- controller"*)
        [ -n "$first_waiting" ] || broke "the README runs the controller before anything waits"
        # Until Ctrl-C in the README: here in the background, exec'd so that $! is the
        # controller itself, stopped with SIGTERM once the waiting instance is InService.
        (
          export LIFEHOOK_QUEUE_URL="http://127.0.0.1:$PORT/000000000000/lifehook"
          eval "exec $run"
        ) </dev/null >"$out" 2>&1 &
        local controller_pid=$!
        PIDS+=("$controller_pid")
        # shellcheck disable=SC2317
        in_service() { [ "$(web1_instances | awk '$2 != "InService"' | wc -l)" = 0 ] && [ -n "$(web1_instances)" ]; }
        WATCH_PID=$controller_pid eventually "the controller makes web-1's instance InService" in_service
        # shellcheck disable=SC2317
        completed() { sandbox_json /_sandbox/stats "any(a['how']=='completed' and a['result']=='CONTINUE' for a in d['resolved_actions'])" | grep -qx True; }
        completed || broke "web-1's instance is InService, but no action was completed with CONTINUE"
        WATCH_PID=$controller_pid eventually "the controller logs the CONTINUE" grep -q 'result="CONTINUE"' "$out"
        kill -TERM "$controller_pid"
        rc=0
        wait "$controller_pid" || rc=$?
        [ "$rc" = 0 ] || broke "the controller exited $rc on SIGTERM"
        controller_done=1
        ;;
      *)
        rc=0
        eval "$run" </dev/null >"$out" 2>&1 || rc=$?
        [ "$rc" = 0 ] || broke "exit status $rc"
        ;;
    esac

    case "$cmd" in
      *"sqs create-queue"*)
        grep -q "127.0.0.1:$PORT/000000000000/lifehook" "$out" || broke "the queue URL is not the sandbox's (the endpoint was not used)"
        ;;
      *"-- status"*)
        statuses=$((statuses + 1))
        local waiting
        waiting=$(web1_instances | awk '$2 == "Pending:Wait" { print $1 }')
        if [ "$controller_done" = 1 ]; then
          [ -z "$waiting" ] || broke "after the controller, $waiting still waits"
          grep -q 'no instances are waiting' "$out" || broke "status does not say that nothing waits"
        else
          [ "$(printf '%s\n' "$waiting" | grep -c .)" = 1 ] || broke "expected one instance of web-1 in Pending:Wait, the sandbox has: $(web1_instances)"
          grep -q "web-1 .*$waiting .*Pending:Wait" "$out" || broke "status does not list $waiting in Pending:Wait"
          if [ "$advanced" = 1 ]; then
            [ "$waiting" != "$first_waiting" ] || broke "the first instance still waits after the clock advance"
          fi
          [ -n "$first_waiting" ] || first_waiting="$waiting"
        fi
        ;;
      *"/_sandbox/clock/advance"*)
        advanced=1
        sandbox_json /_sandbox/stats "any(a['instance']=='$first_waiting' and a['how']=='heartbeat-timeout' and a['result']=='ABANDON' for a in d['resolved_actions'])" |
          grep -qx True || broke "the heartbeat timeout did not apply the DefaultResult ABANDON to $first_waiting"
        ;;
      *"set-desired-capacity"*)
        [ "$agent_started" = 1 ] || broke "the README scales in before the agent runs"
        # shellcheck disable=SC2317
        agent_completed() { sandbox_json /_sandbox/stats "any(a['hook']=='terminate' and a['how']=='completed' and a['result']=='CONTINUE' for a in d['resolved_actions'])" | grep -qx True; }
        eventually "the agent completes the termination with CONTINUE" agent_completed
        agent_done=1
        ;;
      *"describe-auto-scaling-instances"*)
        described=1
        [ "$controller_done" = 1 ] || broke "the README describes the instances before the controller ran"
        grep -q 'InService' "$out" || broke "the instance is not InService"
        ;;
    esac
    echo "readme-check: AWS CLI $CLI_NAME: ok: ${cmd%%$'\n'*}"
  done < <(readme_commands)

  # The promises themselves must still be in the README.
  [ -n "$first_waiting" ] || fail "README: no \`status\` showing an instance in Pending:Wait"
  [ "$advanced" = 1 ] || fail "README: no clock advance that applies the DefaultResult"
  [ "$controller_done" = 1 ] || fail "README: no controller run"
  [ "$described" = 1 ] && [ "$statuses" -ge 3 ] || fail "README: no check that the instance is InService and nothing waits"
  [ "$agent_done" = 1 ] || fail "README: no agent that handles a scale-in"
}

COMMANDS=$(readme_commands | tr -cd '\0' | wc -c)
[ "$COMMANDS" -gt 0 ] || fail "README.md has no <!-- readme-check: NAME --> blocks"
(walkthrough v1 "$CLI_V1")
(walkthrough v2 "$CLI_V2")
echo "readme-check: README \"Try it against the sandbox\" and the agent's try-out work with AWS CLI v1 ($("$CLI_V1" --version 2>&1 | cut -d' ' -f1)) and v2 ($("$CLI_V2" --version 2>&1 | cut -d' ' -f1))"
