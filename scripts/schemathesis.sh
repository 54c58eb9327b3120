#!/usr/bin/env bash
# scripts/schemathesis.sh: checks that the OpenAPI document tells the truth.
#
# Runs schemathesis (pinned in scripts/schemathesis-requirements.txt, installed
# into target/schemathesis-venv and reused while the pins are unchanged) against
# a real `carelog serve`: embedded, in a fresh temp data dir, on a free port,
# without the rate limit. An admin is created with `carelog create-admin`, and
# scripts/schemathesis_seed.py logs in and seeds a little of everything through
# the API so lists answer real rows.
#
# Checks: not_a_server_error, status_code_conformance, content_type_conformance,
# response_schema_conformance. Any 5xx or any answer the document does not
# describe fails the run.
#
# The seed script also writes a schemathesis config binding the seeded ids to
# the parameters that name resources (`{id}`, `patient_id`, ...), with a
# probability, so operations on existing resources get past 404 too.
#
# Runs, in this order:
# 1. recorder, 2. doctor, 3. admin: every operation but those that end sessions
#    or destroy data, each with its own session (the recorder's and doctor's
#    runs test what only they may do and their views of the rest; the admin may
#    suspend them, so it comes after);
# 4. erasure: `POST /patients/{id}/erase` alone (it erases the seeded patients,
#    so after everything that reads them);
# 5. sessions: `POST /auth/logout`, `POST /auth/password` and
#    `POST /users/{id}/password` alone, last, with a session of their own (they
#    revoke the session they run with, or every session of a user).
#
# Bounded: at most CARELOG_SCHEMATHESIS_MAX_EXAMPLES generated cases per
# operation and phase (default 20; the five runs take about 3.5 minutes on 2
# cores), and all runs together get CARELOG_SCHEMATHESIS_TIMEOUT seconds
# (default 420): a run still going at that deadline is killed, which fails it.
# The server is always stopped, whatever happens.
#
# Environment:
#   CARELOG_SCHEMATHESIS_MAX_EXAMPLES  cases per operation (default 20)
#   CARELOG_SCHEMATHESIS_TIMEOUT       seconds for all runs together (default 420)
#   CARELOG_SCHEMATHESIS_SEED          a fixed hypothesis seed to reproduce a run
#   CARELOG_SCHEMATHESIS_WORKERS       concurrent workers (default 2)
#   CARGO_TARGET_DIR                   where the server binary is built (default target/)
#
# Reports (each run's output and JUnit XML, and the server log on failure) go
# to target/schemathesis-report/.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO_ROOT
readonly VENV_DIR="$REPO_ROOT/target/schemathesis-venv"
readonly REQUIREMENTS="$REPO_ROOT/scripts/schemathesis-requirements.txt"
readonly REPORT_DIR="$REPO_ROOT/target/schemathesis-report"
readonly MAX_EXAMPLES=${CARELOG_SCHEMATHESIS_MAX_EXAMPLES:-20}
readonly TIME_BUDGET=${CARELOG_SCHEMATHESIS_TIMEOUT:-420}
readonly WORKERS=${CARELOG_SCHEMATHESIS_WORKERS:-2}
readonly CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

if ! have cargo && [[ -f ${HOME:-/root}/.cargo/env ]]; then
  # shellcheck disable=SC1091
  . "${HOME:-/root}/.cargo/env"
fi
have cargo || die "cargo not found; install the Rust toolchain."
have python3 || die "python3 not found; install it (apt-get install python3 python3-venv)."

# ---------------------------------------------------------------------------
# The pinned schemathesis, in its own venv (rebuilt when the pins change).
# ---------------------------------------------------------------------------
ensure_venv() {
  local stamp="$VENV_DIR/.requirements.sha256" want
  want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [[ -x $VENV_DIR/bin/schemathesis && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  log "installing schemathesis into $VENV_DIR"
  rm -rf -- "$VENV_DIR"
  mkdir -p -- "$(dirname -- "$VENV_DIR")"
  python3 -m venv "$VENV_DIR" ||
    die "python3 -m venv failed; install the venv module (apt-get install python3-venv)."
  "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" ||
    die "pip install -r $REQUIREMENTS failed (see above)."
  printf '%s\n' "$want" >"$stamp"
}
ensure_venv
log "$("$VENV_DIR/bin/schemathesis" --version)"

# ---------------------------------------------------------------------------
# The server binary.
# ---------------------------------------------------------------------------
cd -- "$REPO_ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
log "building carelog"
cargo build --quiet --bin carelog || die "cargo build --bin carelog failed."
readonly BIN="$TARGET_DIR/debug/carelog"
[[ -x $BIN ]] || die "no server binary at $BIN"

# ---------------------------------------------------------------------------
# A fresh embedded server; stopped on every way out.
# ---------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/carelog-schemathesis.XXXXXX")
readonly WORK
SERVER_PID=''

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=''
}

cleanup() {
  local status=$?
  stop_server
  if ((status != 0)) && [[ -f $WORK/server.log ]]; then
    mkdir -p -- "$REPORT_DIR"
    cp -- "$WORK/server.log" "$REPORT_DIR/server.log" 2>/dev/null || true
    log "server log: $REPORT_DIR/server.log; its last lines:"
    tail -n 30 -- "$WORK/server.log" >&2 || true
  fi
  rm -rf -- "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
readonly PORT
readonly BASE="http://127.0.0.1:$PORT"

# Embedded mode only, whatever the caller's environment points at.
server_env=(
  env -u CARELOG_CONFIG -u CARELOG_EVENT_STORE_URL -u CARELOG_READ_STORE_URL -u CARELOG_KAFKA_BROKERS
  -u CARELOG_JWT_SECRET -u CARELOG_MASTER_KEY -u CARELOG_UPLOAD_DIR -u CARELOG_S3_BUCKET
  -u CARELOG_METRICS_BIND -u CARELOG_CORS_ORIGINS -u CARELOG_TRUSTED_PROXIES
  CARELOG_DATA_DIR="$WORK/data" CARELOG_BIND="127.0.0.1:$PORT" CARELOG_RATE_LIMIT_PER_MINUTE=0
  RUST_LOG="${RUST_LOG:-warn}"
)
readonly ADMIN=st_admin
ADMIN_PASSWORD="St-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
readonly ADMIN_PASSWORD

# Before the server starts: embedded mode allows one process per data dir.
"${server_env[@]}" "$BIN" create-admin --username "$ADMIN" --password "$ADMIN_PASSWORD" \
  --name 测试管理员 --phone 13800000000 </dev/null >"$WORK/create-admin.log" 2>&1 ||
  die "carelog create-admin failed: $(cat "$WORK/create-admin.log")"

"${server_env[@]}" "$BIN" serve </dev/null >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
log "server pid $SERVER_PID on $BASE (data in $WORK/data)"

python3 "$REPO_ROOT/scripts/schemathesis_seed.py" "$BASE" "$ADMIN" "$ADMIN_PASSWORD" "$WORK" ||
  die "seeding the server failed (see above)."

# ---------------------------------------------------------------------------
# The runs.
# ---------------------------------------------------------------------------
# Operations that destroy data, and those that end sessions: run last.
readonly ERASURE='^POST /api/v1/patients/\{id\}/erase$'
readonly SESSIONS='^(POST /api/v1/auth/logout|POST /api/v1/auth/password|POST /api/v1/users/\{id\}/password)$'
readonly DESTRUCTIVE="($ERASURE)|($SESSIONS)"

rm -rf -- "$REPORT_DIR"
mkdir -p -- "$REPORT_DIR"
seed_args=()
if [[ -n ${CARELOG_SCHEMATHESIS_SEED:-} ]]; then
  seed_args=(--seed "$CARELOG_SCHEMATHESIS_SEED")
fi

failed=()
summary=()
readonly DEADLINE=$((SECONDS + TIME_BUDGET))
run() { # $1 name, $2 token file, rest: filters
  local name=$1 token left=$((DEADLINE - SECONDS))
  token=$(cat -- "$WORK/token-$2")
  shift 2
  if ((left < 10)); then
    log "run $name: not started, the ${TIME_BUDGET}s budget is spent"
    failed+=("$name (no time left)")
    return 0
  fi
  log "run $name: schemathesis, at most $MAX_EXAMPLES cases per operation, ${left}s left"
  local status
  set +e
  timeout --kill-after=15s "$left" "$VENV_DIR/bin/schemathesis" \
    --config-file "$WORK/schemathesis.toml" \
    run "$BASE/api/openapi.json" \
    --url "$BASE" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --workers "$WORKERS" \
    --request-timeout 30 \
    --generation-database none \
    --no-color \
    --report junit --report-junit-path "$REPORT_DIR/$name.xml" \
    "${seed_args[@]}" "$@" 2>&1 | tee -- "$REPORT_DIR/$name.log"
  status=${PIPESTATUS[0]}
  set -e
  local cases
  cases=$(grep -E '^ +[0-9]+ generated' -- "$REPORT_DIR/$name.log" | tail -n 1 | sed 's/^ *//')
  summary+=("$(printf '%-12s %-8s %s' "$name" "$( ((status == 0)) && echo passed || echo FAILED)" "${cases:-no cases run}")")
  case $status in
    0) log "run $name: passed" ;;
    124 | 137)
      log "run $name: killed at the ${TIME_BUDGET}s deadline"
      failed+=("$name (timed out)")
      ;;
    *)
      log "run $name: FAILED (exit $status)"
      failed+=("$name")
      ;;
  esac
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during run $name."
}

cd -- "$WORK"
run recorder recorder --exclude-name-regex "$DESTRUCTIVE"
run doctor doctor --exclude-name-regex "$DESTRUCTIVE"
run admin admin --exclude-name-regex "$DESTRUCTIVE"
run erasure admin --include-name-regex "$ERASURE"
run sessions admin-destructive --include-name-regex "$SESSIONS"

log "summary (checks: $CHECKS):"
for line in "${summary[@]}"; do
  log "  $line"
done
if ((${#failed[@]} > 0)); then
  die "FAILED: ${failed[*]} (JUnit reports in $REPORT_DIR; rerun one with CARELOG_SCHEMATHESIS_SEED=<the seed printed above>)"
fi
log "all runs passed: no server error, every answer as documented"
