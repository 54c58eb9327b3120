#!/usr/bin/env bash
# scripts/bench.sh: carelog against the raw database, side by side, in one run.
#
#   scripts/bench.sh              # full run (about 6 minutes)
#   BENCH_SECS=5 scripts/bench.sh # shorter load phases
#
# 1. Raw baseline: pgbench, 32 clients, single-row INSERTs of an event-sized
#    JSON row into a scratch table (the ceiling one append can approach).
# 2. carelog on PostgreSQL + MySQL, then on the embedded default (SQLite), each
#    on fresh databases with the release binary, rate limit off:
#    - POST /families at 1 and 32 clients (wrk), GET /families?limit=20 at 32,
#    - projection lag p99 under the 32-client load (from /metrics: the time
#      from an event's append until every read model shows it),
#    - peak RSS of the server,
#    - `carelog rebuild` of every read model from the events written: events/s.
# 3. With BENCH_PATIENTS=N (e.g. 1000000), the scale run: on fresh databases
#    (BENCH_SCALE_MODES, default "embedded servers"), `carelog bench seed
#    --patients N` writes the history, `carelog rebuild` replays it (events/s at
#    scale), then the queries a day of work needs run at 32 clients: the family
#    list (admin, admin searching a name and a house number, recorder), a
#    family, a recorder's visits today and a patient's records.
# 4. A table with the command/raw ratio.
#
# Needs PostgreSQL and MariaDB/MySQL as for the tests (CARELOG_BENCH_PG_URL,
# CARELOG_BENCH_MYSQL_URL, defaults as scripts/test.sh), pgbench, wrk (installed
# with apt-get when missing and root), curl, python3. No assertion: numbers only
# (the machine is shared and noisy; compare within one run). Results and how to
# read them: docs/performance.md.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO_ROOT
SECS=${BENCH_SECS:-15}
# Both the raw baseline and carelog connect to PostgreSQL without TLS by
# default (the server and the databases share one machine, as on loopback in
# a single-host deployment; Debian's PostgreSQL offers TLS, which libpq and
# sqlx would otherwise take). A URL of your own is used as given.
PG_URL=${CARELOG_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
MY_URL=${CARELOG_BENCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
PORT=${BENCH_PORT:-18480}
WORK=$(mktemp -d)
SERVER=''
SAMPLER=''

log() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}
cleanup() {
  [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null || true
  [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
have() { command -v "$1" >/dev/null 2>&1; }

# --- tools --------------------------------------------------------------------
if ! have wrk; then
  if [[ $(id -u) == 0 ]] && have apt-get; then
    log "installing wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || apt-get update -qq >/dev/null
    have wrk || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  have wrk || die "wrk is needed (apt-get install wrk)"
fi
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n1 || true)
[[ -n $PGBENCH ]] || die "pgbench is needed (it comes with the PostgreSQL server package)"
have psql || die "psql is needed"
MYCLI=$(command -v mariadb || command -v mysql || true)
[[ -n $MYCLI ]] || die "the mariadb or mysql client is needed"

# --- databases ------------------------------------------------------------------
psql -X -q -A -t "$PG_URL" -c 'select 1' >/dev/null 2>&1 || PG_URL=${PG_URL/postgres@/root@}
psql -X -q -A -t "$PG_URL" -c 'select 1' >/dev/null 2>&1 || die "PostgreSQL not reachable at $PG_URL"
with_db() { # $1 URL, $2 database: the URL naming that database, its query kept
  local base=${1%%\?*} query=''
  [[ $1 == *\?* ]] && query="?${1#*\?}"
  printf '%s/%s%s' "${base%/*}" "$2" "$query"
}
NAME="carelog_bench_$(date +%s)"
psql -X -q "$PG_URL" -c "CREATE DATABASE $NAME" >/dev/null
my_host_port=${MY_URL#*@}
my_host=${my_host_port%%:*}
my_port=${my_host_port#*:}
my_port=${my_port%%/*}
"$MYCLI" --no-defaults --protocol=tcp -h"$my_host" -P"$my_port" -uroot \
  -e "CREATE DATABASE $NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" ||
  die "MariaDB not reachable at $MY_URL"
drop_dbs() {
  psql -X -q "$PG_URL" -c "DROP DATABASE IF EXISTS $NAME" >/dev/null 2>&1 || true
  psql -X -q "$PG_URL" -c "DROP DATABASE IF EXISTS ${NAME}_scale" >/dev/null 2>&1 || true
  "$MYCLI" --no-defaults --protocol=tcp -h"$my_host" -P"$my_port" -uroot -e "DROP DATABASE IF EXISTS ${NAME}_scale" 2>/dev/null || true
  "$MYCLI" --no-defaults --protocol=tcp -h"$my_host" -P"$my_port" -uroot -e "DROP DATABASE IF EXISTS $NAME" 2>/dev/null || true
}
trap 'cleanup; drop_dbs' EXIT

# --- the binary -------------------------------------------------------------------
log "building the release binary"
(cd "$REPO_ROOT" && cargo build --release --quiet)
BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/carelog"

# --- 1. raw baseline ------------------------------------------------------------------
RAW_DB=$(with_db "$PG_URL" "$NAME")
psql -X -q "$RAW_DB" -c "CREATE TABLE raw_events (id bigserial PRIMARY KEY, aggregate_type text NOT NULL,
  aggregate_id text NOT NULL, sequence bigint NOT NULL, event_type text NOT NULL, payload json NOT NULL,
  metadata json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())" >/dev/null
cat >"$WORK/raw.sql" <<'SQL'
\set n random(1, 2000000000)
INSERT INTO raw_events (aggregate_type, aggregate_id, sequence, event_type, payload, metadata)
VALUES ('family', 'fam-' || :n, 1, 'FamilyCreated',
  '{"FamilyCreated":{"family_name":"enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","primary_address":"enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","contact_phone":"enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","secondary_address":null,"emergency_contact":null,"emergency_phone":null,"home_lat":null,"home_lng":null}}',
  '{"actor_id":"9b0a4a52-9c52-4b0b-9d43-2a1c2d3e4f50","actor_role":"admin","ip":"127.0.0.1","user_agent":"wrk","request_id":"0e6b3c1e-5b7a-4c9e-8f1d-2a3b4c5d6e7f","correlation_id":"0e6b3c1e-5b7a-4c9e-8f1d-2a3b4c5d6e7f","command":"CreateFamily","time":"2026-12-03T08:00:00.000Z"}');
SQL
log "raw INSERT baseline (pgbench, 32 clients, ${SECS}s)"
RAW_TPS=$("$PGBENCH" -n -c 32 -j 2 -T "$SECS" -f "$WORK/raw.sql" "$RAW_DB" 2>/dev/null |
  awk '/^tps/ {print int($3)}')
psql -X -q "$RAW_DB" -c "DROP TABLE raw_events" >/dev/null

# --- 2. carelog ------------------------------------------------------------------------------

start_server() { # env in the caller's environment
  "$BIN" create-admin --username bench --password bench-pass-1 --name 压测 --phone 13800000000 >/dev/null
  RUST_LOG=warn "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.2
  done
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || die "server did not start: $(tail -5 "$WORK/server.log")"
  TOKEN=$(curl -s -X POST -H 'content-type: application/json' \
    -d '{"username":"bench","password":"bench-pass-1"}' "http://127.0.0.1:$PORT/api/v1/auth/login" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["access_token"])')
  export TOKEN
  (while kill -0 "$SERVER" 2>/dev/null; do ps -o rss= -p "$SERVER" 2>/dev/null; sleep 0.5; done) >"$WORK/rss" &
  SAMPLER=$!
}
stop_server() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  kill "$SAMPLER" 2>/dev/null || true
  SERVER='' SAMPLER=''
}
load() { # $1 POST or GET, $2 connections, $3 path -> "rps p50 p99 non2xx" (script: scripts/lib/post.lua)
  local threads=2
  (($2 == 1)) && threads=1
  WRK_METHOD=$1 wrk -t"$threads" -c"$2" -d"${SECS}s" -s "$REPO_ROOT/scripts/lib/post.lua" "http://127.0.0.1:$PORT/api/v1$3" 2>/dev/null |
    awk '/^RESULT/ {print $2, $3, $4, $5}'
  settle
}
# Waits until the server has finished the requests a load left in flight
# (wrk stops sending, not the server working): until the health check, which
# reads both stores, answers within 20 ms (at most 30 s). Without it, a slow
# load's leftovers (a search's 32 requests of half a second each at 100,000
# patients) were measured as the next load's p99.
settle() {
  local t
  sleep 0.5
  for _ in $(seq 1 60); do
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/v1/health" || echo 1)
    python3 -c "import sys; sys.exit(0 if float('$t') < 0.02 else 1)" && return 0
    sleep 0.5
  done
}
# p99 of a Prometheus histogram from two scrapes (before, after): the bucket
# bound under which 99% of the new observations fall.
hist_p99() { # $1 metric, $2 before file, $3 after file
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys
name, before, after = sys.argv[1:]
def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(name + r'_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out
b, a = buckets(before), buckets(after)
rows = sorted(((float("inf") if k == "+Inf" else float(k)), a[k] - b.get(k, 0)) for k in a)
total = rows[-1][1] if rows else 0
if total <= 0:
    print("n/a"); sys.exit()
for le, n in rows:
    if n >= 0.99 * total:
        print("≤ %g ms" % (le * 1000) if le != float("inf") else "> 10 s"); break
PY
}
# Waits (at most 60 s) until the server uses under 5 % of a core: after a
# seed, its followers catch up first (the audit sealer hashes the whole
# history, 8-10 s at 100,000 patients), which would otherwise share the CPU
# with the first load measured.
wait_idle() {
  local before after
  for _ in $(seq 1 60); do
    before=$(awk '{print $14 + $15}' "/proc/$SERVER/stat")
    sleep 1
    after=$(awk '{print $14 + $15}' "/proc/$SERVER/stat")
    (((after - before) * 100 < 5 * $(getconf CLK_TCK))) && return 0
  done
}
scrape() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" >"$1"; }

declare -A R
run_mode() { # $1 label
  local label=$1
  log "$label: POST /families, 1 client"
  R[$label.post1]=$(load POST 1 /families)
  scrape "$WORK/m0"
  log "$label: POST /families, 32 clients"
  R[$label.post32]=$(load POST 32 /families)
  scrape "$WORK/m1"
  R[$label.lag]=$(hist_p99 carelog_projection_delay_seconds "$WORK/m0" "$WORK/m1")
  log "$label: GET /families?limit=20, 32 clients"
  R[$label.get32]=$(load GET 32 '/families?limit=20')
  R[$label.families]=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/families?limit=1" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["total"])')
  R[$label.rss]=$(($(sort -n "$WORK/rss" | tail -n1) / 1024))
  stop_server
  log "$label: carelog rebuild"
  local events t0 t1
  t0=$(date +%s.%N)
  RUST_LOG=warn "$BIN" rebuild >"$WORK/rebuild.log" 2>&1
  t1=$(date +%s.%N)
  events=$(grep -oE 'up to position [0-9]+' "$WORK/rebuild.log" | tail -n1 | grep -oE '[0-9]+$' || echo 0)
  R[$label.rebuild]=$(python3 -c "print('%d events in %.1f s = %.0f events/s' % ($events, $t1 - $t0, $events / max($t1 - $t0, 1e-9)))")
}

export CARELOG_BIND=127.0.0.1:$PORT CARELOG_RATE_LIMIT_PER_MINUTE=0 CARELOG_JWT_SECRET=bench-secret-bench-secret-bench-secret-00
export CARELOG_DATA_DIR=$WORK/servers
export CARELOG_EVENT_STORE_URL=$(with_db "$PG_URL" "$NAME")
export CARELOG_READ_STORE_URL=$(with_db "$MY_URL" "$NAME")
start_server
run_mode servers
unset CARELOG_EVENT_STORE_URL CARELOG_READ_STORE_URL CARELOG_JWT_SECRET
export CARELOG_DATA_DIR=$WORK/embedded
start_server
run_mode embedded

# --- 3. at scale (BENCH_PATIENTS) -------------------------------------------------------------
PATIENTS=${BENCH_PATIENTS:-0}
SCALE_MODES=${BENCH_SCALE_MODES:-embedded servers}
get_as() { # token, path -> data JSON
  curl -s -H "Authorization: Bearer $1" "http://127.0.0.1:$PORT/api/v1$2" | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["data"]))'
}
scale_mode() { # $1 label
  local label=$1 t0 t1 recorder rtoken family patient
  log "$label at scale: seeding $PATIENTS patients"
  t0=$(date +%s.%N)
  RUST_LOG=warn "$BIN" bench seed --patients "$PATIENTS" >"$WORK/seed.log" 2>"$WORK/seed.err" ||
    die "seeding failed: $(tail -3 "$WORK/seed.err")"
  t1=$(date +%s.%N)
  R[$label.seed]=$(grep -oE '[0-9]+ events in [0-9.]+ s \([0-9]+ events/s\)' "$WORK/seed.log" || echo '?')
  recorder=$(grep -oE 'sign in as [^ ]+' "$WORK/seed.log" | awk '{print $4}')
  log "$label at scale: carelog rebuild"
  RUST_LOG=warn "$BIN" rebuild >"$WORK/rebuild.log" 2>&1
  R[$label.rebuild]=$(grep -oE '^[0-9]+ events replayed .* events/s\)' "$WORK/rebuild.log" | sed 's/, switched.*//' || echo '?')
  start_server
  wait_idle
  rtoken=$(curl -s -X POST -H 'content-type: application/json' \
    -d "{\"username\":\"$recorder\",\"password\":\"seed-pass-1\"}" "http://127.0.0.1:$PORT/api/v1/auth/login" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["access_token"])')
  family=$(get_as "$TOKEN" '/families?limit=1' | python3 -c 'import json, sys; print(json.load(sys.stdin)["families"][0]["id"])')
  patient=$(get_as "$TOKEN" "/families/$family" | python3 -c 'import json, sys; print(json.load(sys.stdin)["patients"][0]["id"])')
  local admin=$TOKEN
  R[$label.list]=$(load GET 32 '/families?limit=20')
  R[$label.search]=$(load GET 32 "/families?limit=20&search=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("王建国"))')")
  R[$label.house]=$(load GET 32 "/families?limit=20&search=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("幸福路12号"))')")
  R[$label.family]=$(load GET 32 "/families/$family")
  R[$label.records]=$(load GET 32 "/patients/$patient/health-records?limit=20")
  export TOKEN=$rtoken
  R[$label.mine]=$(load GET 32 '/families?limit=20')
  R[$label.today]=$(load GET 32 '/appointments/today')
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
    -d '{"username":"bench-auditor","password":"bench-pass-1","name":"审计","phone":"13800000001","role":"auditor"}' \
    "http://127.0.0.1:$PORT/api/v1/users"
  TOKEN=$(curl -s -X POST -H 'content-type: application/json' \
    -d '{"username":"bench-auditor","password":"bench-pass-1"}' "http://127.0.0.1:$PORT/api/v1/auth/login" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["access_token"])')
  export TOKEN
  R[$label.story]=$(load GET 32 "/audit/events?patient_id=$patient&limit=20")
  export TOKEN=$admin
  R[$label.scale_rss]=$(($(sort -n "$WORK/rss" | tail -n1) / 1024))
  stop_server
}
if ((PATIENTS > 0)); then
  for mode in $SCALE_MODES; do
    case $mode in
      embedded)
        unset CARELOG_EVENT_STORE_URL CARELOG_READ_STORE_URL
        export CARELOG_DATA_DIR=$WORK/scale-embedded
        ;;
      servers)
        psql -X -q "$PG_URL" -c "CREATE DATABASE ${NAME}_scale" >/dev/null
        "$MYCLI" --no-defaults --protocol=tcp -h"$my_host" -P"$my_port" -uroot \
          -e "CREATE DATABASE ${NAME}_scale CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        export CARELOG_DATA_DIR=$WORK/scale-servers
        export CARELOG_EVENT_STORE_URL=$(with_db "$PG_URL" "${NAME}_scale")
        export CARELOG_READ_STORE_URL=$(with_db "$MY_URL" "${NAME}_scale")
        export CARELOG_JWT_SECRET=bench-secret-bench-secret-bench-secret-00
        ;;
      *) die "unknown BENCH_SCALE_MODES entry: $mode" ;;
    esac
    scale_mode "scale-$mode"
  done
fi

# --- 4. the table ----------------------------------------------------------------------------
row() { # label, "rps p50 p99 non2xx"
  read -r rps p50 p99 bad <<<"$2"
  printf '| %s | %s req/s | %s ms | %s ms | %s |\n' "$1" "$rps" "$p50" "$p99" "$bad"
}
ratio() { read -r rps _ <<<"$1"; python3 -c "print('%.2f' % ($rps / max($RAW_TPS, 1)))"; }
echo
echo "carelog $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, ${SECS}s per load, $(date -u +%F)"
echo
echo "| path | throughput | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
printf '| raw INSERT into PostgreSQL (pgbench, 32 clients) | %s rows/s | | | |\n' "$RAW_TPS"
for mode in servers embedded; do
  name=$([[ $mode == servers ]] && echo "PostgreSQL + MySQL" || echo "embedded")
  row "\`POST /families\`, $name, 1 client" "${R[$mode.post1]}"
  row "\`POST /families\`, $name, 32 clients" "${R[$mode.post32]}"
  row "\`GET /families?limit=20\`, $name, 32 clients, ${R[$mode.families]} families" "${R[$mode.get32]}"
done
echo
echo "| measure | PostgreSQL + MySQL | embedded |"
echo "|---|---|---|"
echo "| command/raw ratio (POST /families, 32 clients) | $(ratio "${R[servers.post32]}") | $(ratio "${R[embedded.post32]}") |"
echo "| projection lag p99 (append → every read model), 32 clients | ${R[servers.lag]} | ${R[embedded.lag]} |"
echo "| \`carelog rebuild\` | ${R[servers.rebuild]} | ${R[embedded.rebuild]} |"
echo "| peak server RSS | ${R[servers.rss]} MB | ${R[embedded.rss]} MB |"
if ((PATIENTS > 0)); then
  echo
  echo "At scale: $PATIENTS patients seeded (32 clients, p50/p99)"
  echo
  echo "| measure | $(for m in $SCALE_MODES; do printf '%s | ' "$m"; done)"
  echo "|---|$(for _ in $SCALE_MODES; do printf -- '---|'; done)"
  cell() { read -r rps p50 p99 bad <<<"$1"; printf '%s req/s, %s / %s ms' "$rps" "$p50" "$p99"; }
  for k in list:"family list, admin" search:"family list, admin searching a name" \
    house:"family list, admin searching a house number" mine:"family list, recorder" \
    family:"a family" today:"a recorder's visits today" records:"a patient's records" \
    story:"an auditor's history of a patient"; do
    printf '| %s | ' "${k#*:}"
    for m in $SCALE_MODES; do printf '%s | ' "$(cell "${R[scale-$m.${k%%:*}]}")"; done
    echo
  done
  printf '| `carelog bench seed` | '; for m in $SCALE_MODES; do printf '%s | ' "${R[scale-$m.seed]}"; done; echo
  printf '| `carelog rebuild` | '; for m in $SCALE_MODES; do printf '%s | ' "${R[scale-$m.rebuild]}"; done; echo
  printf '| peak server RSS | '; for m in $SCALE_MODES; do printf '%s MB | ' "${R[scale-$m.scale_rss]}"; done; echo
fi
