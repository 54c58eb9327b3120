#!/usr/bin/env bash
# scripts/bench-session-cache.sh [BINARY]: the session-check cache of issue 11
# (CARELOG_SESSION_CACHE_SECS), off (0) against on (the default, 2 s), side by
# side in one run: `GET /auth/me` (the cheapest authenticated request: the
# session check is most of its work) and `GET /families?limit=20`, 32 clients,
# on PostgreSQL + MySQL and embedded. Off and on alternate twice per backend
# (off, on, off, on) so a drift of this noisy machine hits both alike.
#
#   scripts/bench-session-cache.sh                   # builds the release binary
#   BENCH_SECS=10 scripts/bench-session-cache.sh target/release/carelog
#
# Needs wrk, curl, python3, psql and the mariadb client; databases as for
# scripts/bench.sh (CARELOG_BENCH_PG_URL, CARELOG_BENCH_MYSQL_URL). Numbers only.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${BENCH_SECS:-8}
PG_URL=${CARELOG_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
MY_URL=${CARELOG_BENCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
PORT=${BENCH_PORT:-18580}
WORK=$(mktemp -d)
SERVER=''
log() { printf 'bench-session-cache.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
MYCLI=$(command -v mariadb || command -v mysql || true)
[[ -n $MYCLI ]] || die "the mariadb or mysql client is needed"

if (($# > 0)); then
  BIN=$1
else
  log "building the release binary"
  (cd "$REPO_ROOT" && cargo build --release --quiet)
  BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/carelog"
fi

psql -X -q -A -t "$PG_URL" -c 'select 1' >/dev/null 2>&1 || PG_URL=${PG_URL/postgres@/root@}
with_db() { printf '%s/%s' "${1%/*}" "$2"; }
my_host_port=${MY_URL#*@}
my_host=${my_host_port%%:*}
my_port=${my_host_port#*:}
my_port=${my_port%%/*}
DBS=()
cleanup() {
  [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null || true
  for db in "${DBS[@]}"; do
    psql -X -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    "$MYCLI" --no-defaults --protocol=tcp -h"$my_host" -P"$my_port" -uroot -e "DROP DATABASE IF EXISTS $db" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/get.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.2f %.2f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
LUA

# One fresh store per backend, seeded with 200 families; each server run uses it.
setup() { # $1 backend -> exports the store settings
  export CARELOG_BIND=127.0.0.1:$PORT CARELOG_RATE_LIMIT_PER_MINUTE=0 RUST_LOG=warn
  export CARELOG_DATA_DIR=$WORK/$1
  unset CARELOG_EVENT_STORE_URL CARELOG_READ_STORE_URL CARELOG_JWT_SECRET
  if [[ $1 == servers ]]; then
    local name="carelog_sc_$(date +%s)"
    DBS+=("$name")
    psql -X -q "$PG_URL" -c "CREATE DATABASE $name" >/dev/null
    "$MYCLI" --no-defaults --protocol=tcp -h"$my_host" -P"$my_port" -uroot \
      -e "CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    export CARELOG_EVENT_STORE_URL=$(with_db "$PG_URL" "$name")
    export CARELOG_READ_STORE_URL=$(with_db "$MY_URL" "$name")
    export CARELOG_JWT_SECRET=bench-secret-bench-secret-bench-secret-00
  fi
  "$BIN" create-admin --username bench --password bench-pass-1 --name 压测 --phone 13800000000 >/dev/null
}
start() { # $1 cache secs
  CARELOG_SESSION_CACHE_SECS=$1 "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || die "server did not start: $(tail -5 "$WORK/server.log")"
  TOKEN=$(curl -s -X POST -H 'content-type: application/json' -d '{"username":"bench","password":"bench-pass-1"}' \
    "http://127.0.0.1:$PORT/api/v1/auth/login" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["access_token"])')
  export TOKEN
}
stop() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=''; }
load() { # $1 path
  wrk -t2 -c32 -d"${SECS}s" -s "$WORK/get.lua" "http://127.0.0.1:$PORT/api/v1$1" 2>/dev/null | awk '/^RESULT/ {print $2, $3, $4, $5}'
}

echo "| backend | cache | GET /auth/me req/s, p50, p99 ms | GET /families?limit=20 req/s, p50, p99 ms |"
echo "|---|---|---|---|"
for backend in servers embedded; do
  setup "$backend"
  start 0
  for i in $(seq 1 200); do
    curl -s -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
      -d "{\"family_name\":\"压测家$i\",\"primary_address\":\"上海市徐汇区压测路$i号\",\"contact_phone\":\"13912345678\"}" \
      "http://127.0.0.1:$PORT/api/v1/families"
  done
  stop
  for cache in 0 2 0 2; do
    log "$backend, CARELOG_SESSION_CACHE_SECS=$cache"
    start "$cache"
    load /auth/me >/dev/null # warm-up
    me=$(load /auth/me)
    families=$(load '/families?limit=20')
    stop
    echo "| $backend | $([[ $cache == 0 ]] && echo off || echo "on (${cache} s)") | $me | $families |"
  done
done
