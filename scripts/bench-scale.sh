#!/usr/bin/env bash
# scripts/bench-scale.sh: the queries of a day of work, at 32 clients, against
# an embedded store already seeded (`carelog bench seed --patients N` then
# `carelog rebuild`, the seed's output kept as DIR/seed.log), one binary at a
# time: the side-by-side comparison at scale (docs/performance.md).
#
#   scripts/bench-scale.sh DIR KEY...
#   BIN=/tmp/carelog.before scripts/bench-scale.sh /work/scale/data today family
#
# KEY: list search house family records mine today story. Per key, a 2 s
# warm-up, then `wrk` for SECS (10) with CONNS (32) connections; prints one
# line "BIN KEY req/s p50_ms p99_ms non2xx cpu_us/req switches/req kB_written/req",
# the last three read from /proc for the server's threads (the bytes it sent to
# storage: its write-ahead logs and their checkpoints); on PostgreSQL + MySQL
# also MariaDB's and PostgreSQL's CPU per request. PERF=1 also records
# `perf record -g` of the server during each load (DIR/../perf.KEY.data);
# PERF_HZ (999) sets its rate and PERF_CG its call-graph option, e.g.
# PERF_HZ=300 PERF_CG='--call-graph dwarf,16384' for SQLite's own frames.
# The store's files are read once first, so that the OS has them cached, and
# the loads start once the server is quiet (its followers' first scan of a
# seeded history done; QUIET_SECS bounds the wait).
# On PostgreSQL + MySQL: EVENTS_URL and READ_URL name the databases seeded
# (with CARELOG_JWT_SECRET, default bench.sh's) and DIR holds seed.log.
set -euo pipefail
DIR=${1:?DIR: the seeded data dir}
shift
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/carelog}
SECS=${SECS:-10}
CONNS=${CONNS:-32}
PORT=${PORT:-18500}
URL=http://127.0.0.1:$PORT/api/v1
export CARELOG_BIND=127.0.0.1:$PORT CARELOG_RATE_LIMIT_PER_MINUTE=0 CARELOG_DATA_DIR=$DIR
if [[ -n ${EVENTS_URL:-} && -n ${READ_URL:-} ]]; then
  # PostgreSQL + MySQL: the seed's databases and the secret it was seeded with.
  export CARELOG_EVENT_STORE_URL=$EVENTS_URL CARELOG_READ_STORE_URL=$READ_URL
  export CARELOG_JWT_SECRET=${CARELOG_JWT_SECRET:-bench-secret-bench-secret-bench-secret-00}
else
  unset CARELOG_EVENT_STORE_URL CARELOG_READ_STORE_URL
  cat "$DIR"/*.db >/dev/null
fi
recorder=$(grep -oE 'sign in as [^ ]+' "$DIR/seed.log" | awk '{print $4}')
"$BIN" create-admin --username scale-admin --password scale-pass-1 --name 压测 --phone 13800000000 >/dev/null 2>&1 || true
RUST_LOG=warn "$BIN" serve >"$DIR/../server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
login() { curl -s -X POST -H 'content-type: application/json' -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$URL/auth/login" |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["data"]["access_token"])'; }
data() { curl -s -H "Authorization: Bearer $1" "$URL$2" | python3 -c "import json,sys;d=json.load(sys.stdin)['data'];print($3)"; }
admin=$(login scale-admin scale-pass-1)
curl -s -o /dev/null -X POST -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
  -d '{"username":"scale-auditor","password":"scale-pass-1","name":"审计","phone":"13800000001","role":"auditor"}' "$URL/users"
auditor=$(login scale-auditor scale-pass-1)
rtoken=$(login "$recorder" seed-pass-1)
family=$(data "$admin" '/families?limit=1' 'd["families"][0]["id"]')
patient=$(data "$admin" "/families/$family" 'd["patients"][0]["id"]')
quote() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
# utime + stime summed over the /proc stat lines on stdin.
cpu_ticks() { awk '{s += $14 + $15} END {printf "%d ", s}'; }
ticks() { cat /proc/$server/task/*/stat | cpu_ticks; }
switches() { cat /proc/$server/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
written() { awk '/^write_bytes/ {print $2}' /proc/$server/io; }
# CPU ticks of the database servers (PostgreSQL + MySQL mode): MariaDB, then PostgreSQL.
dbticks() { for name in mariadbd postgres; do
  for p in $(pgrep -x "$name"); do cat /proc/$p/stat 2>/dev/null; done | cpu_ticks; done; }
# A server's first start after a seed has its followers (the reactors, the
# sealer) read the whole history once; measured meanwhile, that scan counts as
# the queries' cost (at 1,000,000 patients on PostgreSQL + MySQL: the admin's
# list at 2,741 req/s, p99 26.6 ms, against 6,364 and 9.7 ms once quiet). So
# the loads wait until the server and the databases use less than a tenth of
# a core over 2 s (at most QUIET_SECS, 900).
busy_ticks() { { ticks; dbticks; } | tr ' ' '\n' | awk '{s += $1} END {print s}'; }
hz=$(getconf CLK_TCK)
quiet_by=$((SECONDS + ${QUIET_SECS:-900}))
while ((SECONDS < quiet_by)); do
  b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
  (((b1 - b0) * 10 < 2 * hz)) && break
done
for key in "$@"; do
  case $key in
    list) token=$admin path='/families?limit=20' ;;
    search) token=$admin path="/families?limit=20&search=$(quote 王建国)" ;;
    house) token=$admin path="/families?limit=20&search=$(quote 幸福路12号)" ;;
    family) token=$admin path="/families/$family" ;;
    records) token=$admin path="/patients/$patient/health-records?limit=20" ;;
    mine) token=$rtoken path='/families?limit=20' ;;
    today) token=$rtoken path='/appointments/today' ;;
    story) token=$auditor path="/audit/events?patient_id=$patient&limit=20" ;;
    *) echo "unknown key $key" >&2; exit 2 ;;
  esac
  export TOKEN=$token WRK_METHOD=GET
  wrk -t2 -c"$CONNS" -d2s -s "$ROOT/scripts/lib/post.lua" "$URL$path" >/dev/null
  p=''
  if [[ ${PERF:-} == 1 ]]; then
    perf record -F ${PERF_HZ:-999} ${PERF_CG:--g} -p "$server" -o "$DIR/../perf.$key.data" -- sleep "$SECS" >/dev/null 2>&1 &
    p=$!
  fi
  t0=$(ticks) s0=$(switches) w0=$(written) d0=$(dbticks)
  out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$ROOT/scripts/lib/post.lua" "$URL$path" | awk '/^RESULT/ {print $2, $3, $4, $5}')
  t1=$(ticks) s1=$(switches) w1=$(written) d1=$(dbticks)
  [[ -n $p ]] && wait "$p" || true
  read -r rps p50 p99 bad <<<"$out"
  python3 -c "
import sys
rps, secs, ticks, sw, wb = float('$rps'), $SECS, $t1 - $t0, $s1 - $s0, $w1 - $w0
n = max(rps * secs, 1)
hz = $(getconf CLK_TCK)
line = '$(basename "$BIN") $key %s %s %s %s %.0f %.1f %.1f' % ('$rps', '$p50', '$p99', '$bad', ticks / hz * 1e6 / n, sw / n, wb / 1024 / n)
if '${EVENTS_URL:-}':
    d0, d1 = [int(x) for x in '$d0'.split()], [int(x) for x in '$d1'.split()]
    line += ' mariadb_us/req %.0f postgres_us/req %.0f' % ((d1[0] - d0[0]) / hz * 1e6 / n, (d1[1] - d0[1]) / hz * 1e6 / n)
print(line)"
done
