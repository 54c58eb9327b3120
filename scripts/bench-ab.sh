#!/usr/bin/env bash
# scripts/bench-ab.sh: `POST /families` at 32 clients against one or more
# carelog binaries, alternating, on fresh databases each run: the side-by-side
# comparison of two builds (docs/performance.md, "Commands: fewer round
# trips per command").
#
#   scripts/bench-ab.sh MODE SECS BIN...      MODE: servers | embedded
#   scripts/bench-ab.sh servers 10 /tmp/carelog.before target/release/carelog /tmp/carelog.before target/release/carelog
#
# Each run: a fresh scratch database pair (servers) or data dir (embedded),
# a 3 s warm-up, then `wrk -c32` for SECS; prints one line per run:
# "MODE BIN rps p50_ms p99_ms non2xx". BENCH_PERF=1 also records
# `perf record -g` of the server during the load (path printed); BENCH_CPU=1
# adds the CPU each process used during the load (carelog, PostgreSQL,
# MariaDB, wrk; % of one core, from /proc: scripts/lib/cpu_by_process.py).
# Needs what scripts/bench.sh needs (PostgreSQL, MariaDB, wrk, curl, python3);
# CARELOG_BENCH_PG_URL / CARELOG_BENCH_MYSQL_URL as there.
set -euo pipefail
MODE=${1:?MODE: servers or embedded}
SECS=${2:?SECS}
shift 2
PG_URL=${CARELOG_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
MY_URL=${CARELOG_BENCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
PORT=${BENCH_PORT:-18490}
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
with_db() {
  local base=${1%%\?*} query=''
  [[ $1 == *\?* ]] && query="?${1#*\?}"
  printf '%s/%s%s' "${base%/*}" "$2" "$query"
}
MYCLI=$(command -v mariadb || command -v mysql)
my() { "$MYCLI" --no-defaults --protocol=tcp -h127.0.0.1 -uroot -e "$1"; }

run() { # $1 binary
  local bin=$1 w name s token p=''
  w=$(mktemp -d)
  name=carelog_ab_$(date +%s%N)
  export CARELOG_BIND=127.0.0.1:$PORT CARELOG_RATE_LIMIT_PER_MINUTE=0 CARELOG_DATA_DIR=$w/data
  export CARELOG_JWT_SECRET=bench-secret-bench-secret-bench-secret-00
  if [[ $MODE == servers ]]; then
    psql -X -q "$PG_URL" -c "CREATE DATABASE $name" >/dev/null
    my "CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    export CARELOG_EVENT_STORE_URL=$(with_db "$PG_URL" "$name") CARELOG_READ_STORE_URL=$(with_db "$MY_URL" "$name")
  else
    unset CARELOG_EVENT_STORE_URL CARELOG_READ_STORE_URL
  fi
  "$bin" create-admin --username bench --password bench-pass-1 --name 压测 --phone 13800000000 >/dev/null
  RUST_LOG=warn "$bin" serve >"$w/server.log" 2>&1 &
  s=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
  token=$(curl -s -X POST -H 'content-type: application/json' -d '{"username":"bench","password":"bench-pass-1"}' \
    "http://127.0.0.1:$PORT/api/v1/auth/login" | python3 -c 'import json,sys;print(json.load(sys.stdin)["data"]["access_token"])')
  export TOKEN=$token
  wrk -t2 -c32 -d3s -s "$ROOT/scripts/lib/post.lua" "http://127.0.0.1:$PORT/api/v1/families" >/dev/null
  if [[ ${BENCH_PERF:-} == 1 ]]; then
    perf record -F 999 -g -p "$s" -o "$w/perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
    p=$!
  fi
  printf '%s %s ' "$MODE" "$bin"
  curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" >"$w/m0"
  local cpu=''
  if [[ ${BENCH_CPU:-} == 1 ]]; then
    python3 -u "$ROOT/scripts/lib/cpu_by_process.py" >"$w/cpu" &
    cpu=$!
  fi
  wrk -t2 -c32 -d"${SECS}s" -s "$ROOT/scripts/lib/post.lua" "http://127.0.0.1:$PORT/api/v1/families" |
    awk '/^RESULT/ {printf "%s %s %s %s", $2, $3, $4, $5}'
  if [[ -n $cpu ]]; then
    kill -INT "$cpu"
    wait "$cpu" 2>/dev/null || true
    printf ' %s' "$(cat "$w/cpu")"
  fi
  # The projection lag under the load (append → every read model), p50 and
  # p99 by bucket, when the binary reports it.
  curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" >"$w/m1"
  python3 - "$w/m0" "$w/m1" <<'PY'
import re, sys
def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(r'carelog_projection_delay_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            out[float(m.group(1))] = float(m.group(2))
    return out
a, b = buckets(sys.argv[1]), buckets(sys.argv[2])
rows = sorted((le, b[le] - a.get(le, 0)) for le in b)
total = rows[-1][1] if rows else 0
def q(f):
    for le, n in rows:
        if n >= f * total:
            return "%gms" % (le * 1000)
print(" lag p50 <= %s p99 <= %s" % (q(0.5), q(0.99)) if total else "")
PY
  if [[ -n $p ]]; then
    wait "$p" || true
    echo "perf: $w/perf.data"
  fi
  kill "$s"
  wait "$s" 2>/dev/null || true
  if [[ $MODE == servers ]]; then
    psql -X -q "$PG_URL" -c "DROP DATABASE $name" >/dev/null
    my "DROP DATABASE $name"
  fi
  [[ -n $p ]] || rm -rf "$w"
}

for bin in "$@"; do
  run "$bin"
done
