#!/usr/bin/env bash
# scripts/test.sh: the project's one test command.
#
# 1. Finds the PostgreSQL and MySQL/MariaDB servers the tests talk to and
#    starts them if they are down (local server if installed, else
#    `docker compose up -d postgres mysql`).
# 2. Makes sure the test database in each URL is usable (creates it if
#    missing; for PostgreSQL falls back from user postgres to root).
# 3. Creates target/fhir-venv (scripts/fhir-venv.sh: the pinned FHIR R4
#    validator the FHIR export tests run), then runs
#    `cargo test --workspace --all-targets "$@"`.
# 4. Runs scripts/schemathesis.sh: the OpenAPI document checked by schemathesis
#    against a real embedded server (a few minutes).
# Exits 0 only when both passed.
#
# Environment:
#   CARELOG_TEST_PG_URL      PostgreSQL URL for the tests
#                            (default postgres://postgres@127.0.0.1:5432/test)
#   CARELOG_TEST_MYSQL_URL   MySQL/MariaDB URL for the tests
#                            (default mysql://root@127.0.0.1:3306/test)
#   CARELOG_TEST_SKIP_CARGO  if 1: do everything up to, but not including,
#                            `cargo test`, print the URLs and exit 0 (for
#                            checking server detection without a build)
#   CARELOG_TEST_SKIP_SCHEMATHESIS  if 1: skip step 4 (quick local runs; CI
#                            runs it)
#   CI                       if true: on a local MariaDB whose root cannot log
#                            in over TCP, a passwordless root@127.0.0.1 is
#                            created through the socket (test machines only)
#
# Extra arguments are passed to `cargo test`, e.g.
#   scripts/test.sh -p domain -- --nocapture
set -euo pipefail

readonly DEFAULT_PG_URL='postgres://postgres@127.0.0.1:5432/test'
readonly DEFAULT_MYSQL_URL='mysql://root@127.0.0.1:3306/test'
readonly START_WAIT_SECS=60
readonly COMPOSE_WAIT_SECS=180

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO_ROOT

CARELOG_TEST_PG_URL=${CARELOG_TEST_PG_URL:-$DEFAULT_PG_URL}
CARELOG_TEST_MYSQL_URL=${CARELOG_TEST_MYSQL_URL:-$DEFAULT_MYSQL_URL}

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------
# URL handling: scheme://[user[:password]@]host[:port][/db][?query]
# parse_url sets U_SCHEME U_USERINFO U_USER U_PASS U_HOST U_HOSTRAW U_PORT
# U_DB U_QUERY (U_USERINFO, U_HOSTRAW and U_QUERY are kept raw for rebuilding).
# ---------------------------------------------------------------------------
urldecode() { printf '%b' "${1//%/\\x}"; }

parse_url() {
  local re='^([A-Za-z][A-Za-z0-9+.-]*)://(([^:@/]*)(:([^@/]*))?@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]+))?(/([^?]*))?(\?.*)?$'
  [[ $1 =~ $re ]] || return 1
  U_SCHEME=${BASH_REMATCH[1]}
  U_USERINFO=${BASH_REMATCH[2]}
  U_USER=$(urldecode "${BASH_REMATCH[3]}")
  U_PASS=$(urldecode "${BASH_REMATCH[5]}")
  U_HOSTRAW=${BASH_REMATCH[6]}
  U_HOST=${U_HOSTRAW#[}
  U_HOST=${U_HOST%]}
  U_PORT=${BASH_REMATCH[8]}
  U_DB=$(urldecode "${BASH_REMATCH[10]}")
  U_QUERY=${BASH_REMATCH[11]}
}

# URL with any password replaced by ***, for messages.
redact() {
  local re='^([^:/]+://[^:@/]*):[^@/]*@(.*)$'
  if [[ $1 =~ $re ]]; then
    printf '%s:***@%s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  else
    printf '%s' "$1"
  fi
}

is_local_host() {
  case $1 in
    '' | 127.0.0.1 | localhost | ::1) return 0 ;;
    *) return 1 ;;
  esac
}

tcp_open() {
  # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" >/dev/null 2>&1
}

parse_url "$CARELOG_TEST_PG_URL" ||
  die "CARELOG_TEST_PG_URL is not a URL like $DEFAULT_PG_URL: $(redact "$CARELOG_TEST_PG_URL")"
PG_SCHEME=$U_SCHEME PG_USER=${U_USER:-postgres}
PG_HOST=${U_HOST:-127.0.0.1} PG_HOSTRAW=${U_HOSTRAW:-127.0.0.1}
PG_PORT=${U_PORT:-5432} PG_DB=${U_DB:-$PG_USER} PG_QUERY=$U_QUERY

parse_url "$CARELOG_TEST_MYSQL_URL" ||
  die "CARELOG_TEST_MYSQL_URL is not a URL like $DEFAULT_MYSQL_URL: $(redact "$CARELOG_TEST_MYSQL_URL")"
MY_USER=${U_USER:-root} MY_PASS=$U_PASS
MY_HOST=${U_HOST:-127.0.0.1} MY_PORT=${U_PORT:-3306} MY_DB=$U_DB

# PostgreSQL URL with another user (no password) or another database.
pg_url_with_user() {
  printf '%s://%s@%s%s/%s%s' "$PG_SCHEME" "$1" "$PG_HOSTRAW" "${PG_PORT:+:$PG_PORT}" "$PG_DB" "$PG_QUERY"
}
pg_url_with_db() { # $1 url (already parsed into U_*), $2 db
  parse_url "$1"
  printf '%s://%s%s%s/%s%s' "$U_SCHEME" "$U_USERINFO" "${U_HOSTRAW:-127.0.0.1}" "${U_PORT:+:$U_PORT}" "$2" "$U_QUERY"
}

# ---------------------------------------------------------------------------
# Reachability
# ---------------------------------------------------------------------------
MYADMIN=''
if have mariadb-admin; then MYADMIN=mariadb-admin; elif have mysqladmin; then MYADMIN=mysqladmin; fi
MYCLI=''
if have mariadb; then MYCLI=mariadb; elif have mysql; then MYCLI=mysql; fi

pg_up() {
  if have pg_isready; then
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3
  else
    tcp_open "$PG_HOST" "$PG_PORT"
  fi
}

# `mysqladmin ping` exits 0 whenever the server answers, even "access denied".
my_up() {
  if [[ -n $MYADMIN ]]; then
    MYSQL_PWD=$MY_PASS "$MYADMIN" --no-defaults --protocol=tcp -h"$MY_HOST" -P"$MY_PORT" \
      -u"$MY_USER" --connect-timeout=3 ping >/dev/null 2>&1
  else
    tcp_open "$MY_HOST" "$MY_PORT"
  fi
}

wait_for() { # $1 check function, $2 seconds
  local i
  for ((i = 0; i < $2; i++)); do
    if "$1"; then return 0; fi
    sleep 1
  done
  "$1"
}

have_local_pg() { [[ -d /etc/postgresql ]] && have pg_ctlcluster; }
have_local_my() { [[ -x /usr/sbin/mariadbd ]] && have start-stop-daemon; }

DOCKER_PROBLEM=''
docker_compose_usable() {
  if ! have docker; then
    DOCKER_PROBLEM='no docker command'
  elif ! timeout 20 docker info >/dev/null 2>&1; then
    DOCKER_PROBLEM='no running Docker engine (docker info fails)'
  elif ! docker compose version >/dev/null 2>&1; then
    DOCKER_PROBLEM='no docker compose plugin'
  else
    DOCKER_PROBLEM=''
    return 0
  fi
  return 1
}

# The compose file requires CARELOG_JWT_SECRET for the app service; give it a
# throwaway value so that starting only the databases works without one.
compose() {
  CARELOG_JWT_SECRET=${CARELOG_JWT_SECRET:-test-only-not-a-secret} \
    docker compose -f "$REPO_ROOT/docker-compose.yml" "$@"
}

compose_wait_healthy() { # $1 service
  local i id status=''
  for ((i = 0; i < COMPOSE_WAIT_SECS; i++)); do
    id=$(compose ps -q "$1" 2>/dev/null || true)
    if [[ -n $id ]]; then
      status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || true)
      [[ $status == healthy ]] && return 0
    fi
    sleep 1
  done
  log "docker compose service $1 not healthy after ${COMPOSE_WAIT_SECS}s (status: ${status:-none})"
  return 1
}

NEED_COMPOSE=()

ensure_pg_running() {
  if pg_up; then
    log "PostgreSQL is up at $PG_HOST:$PG_PORT"
    return 0
  fi
  if ! is_local_host "$PG_HOST"; then
    die "PostgreSQL is not reachable at $PG_HOST:$PG_PORT (from CARELOG_TEST_PG_URL); start it or point CARELOG_TEST_PG_URL at a reachable server."
  fi
  if have_local_pg; then
    log "PostgreSQL is down at $PG_HOST:$PG_PORT; starting the local cluster"
    # shellcheck disable=SC2046 # the version directory name is meant to be split in
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start ||
      log "pg_ctlcluster failed; waiting anyway"
    wait_for pg_up "$START_WAIT_SECS" ||
      die "PostgreSQL still not accepting connections at $PG_HOST:$PG_PORT ${START_WAIT_SECS}s after starting it; see /var/log/postgresql/."
    log "PostgreSQL is up at $PG_HOST:$PG_PORT"
  elif docker_compose_usable; then
    NEED_COMPOSE+=(postgres)
  else
    die "PostgreSQL is not reachable at $PG_HOST:$PG_PORT and cannot be started: no local server (/etc/postgresql, pg_ctlcluster) and $DOCKER_PROBLEM. Install it (apt-get install postgresql), start Docker, or set CARELOG_TEST_PG_URL to a reachable server."
  fi
}

ensure_my_running() {
  if my_up; then
    log "MariaDB/MySQL is up at $MY_HOST:$MY_PORT"
    return 0
  fi
  if ! is_local_host "$MY_HOST"; then
    die "MariaDB/MySQL is not reachable at $MY_HOST:$MY_PORT (from CARELOG_TEST_MYSQL_URL); start it or point CARELOG_TEST_MYSQL_URL at a reachable server."
  fi
  if have_local_my; then
    log "MariaDB is down at $MY_HOST:$MY_PORT; starting the local server"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd ||
      log "start-stop-daemon failed; waiting anyway"
    wait_for my_up "$START_WAIT_SECS" ||
      die "MariaDB still not answering at $MY_HOST:$MY_PORT ${START_WAIT_SECS}s after starting it; see /var/log/mysql/ or journal."
    log "MariaDB is up at $MY_HOST:$MY_PORT"
  elif docker_compose_usable; then
    NEED_COMPOSE+=(mysql)
  else
    die "MariaDB/MySQL is not reachable at $MY_HOST:$MY_PORT and cannot be started: no local server (/usr/sbin/mariadbd) and $DOCKER_PROBLEM. Install it (apt-get install mariadb-server), start Docker, or set CARELOG_TEST_MYSQL_URL to a reachable server."
  fi
}

ensure_pg_running
ensure_my_running

if ((${#NEED_COMPOSE[@]} > 0)); then
  log "starting ${NEED_COMPOSE[*]} with docker compose"
  compose up -d postgres mysql || die "docker compose up -d postgres mysql failed (see above)."
  for svc in "${NEED_COMPOSE[@]}"; do
    compose_wait_healthy "$svc" || die "docker compose service $svc did not become healthy; see: docker compose logs $svc"
  done
  wait_for pg_up 10 || die "PostgreSQL not reachable at $PG_HOST:$PG_PORT even after docker compose started it (port taken or mapped elsewhere?)."
  wait_for my_up 10 || die "MariaDB not reachable at $MY_HOST:$MY_PORT even after docker compose started it (port taken or mapped elsewhere?)."
fi

# ---------------------------------------------------------------------------
# Usable databases
# ---------------------------------------------------------------------------
LAST_ERR=''
pg_try() { # $1 url
  if LAST_ERR=$(PGCONNECT_TIMEOUT=5 psql -X -q -A -t -v ON_ERROR_STOP=1 "$1" -c 'select 1' 2>&1 >/dev/null); then
    return 0
  fi
  LAST_ERR=${LAST_ERR%%$'\n'*}
  return 1
}

# Reads the database name from psql variable :db and creates it if missing.
readonly PG_CREATE_DB_SQL="SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\\gexec"

ensure_pg_usable() {
  if ! have psql; then
    log "psql not found; not checking $(redact "$CARELOG_TEST_PG_URL") (apt-get install postgresql-client to check it)"
    return 0
  fi
  local url first_err=''
  local -a candidates=("$CARELOG_TEST_PG_URL")
  if [[ $PG_USER == postgres ]]; then
    candidates+=("$(pg_url_with_user root)")
  fi

  for url in "${candidates[@]}"; do
    if pg_try "$url"; then
      if [[ $url != "$CARELOG_TEST_PG_URL" ]]; then
        log "PostgreSQL user $PG_USER failed ($first_err); using root instead"
      fi
      CARELOG_TEST_PG_URL=$url
      return 0
    fi
    [[ -n $first_err ]] || first_err=$LAST_ERR
  done

  # The server is up but the database may be missing: create it through the
  # maintenance database, as whichever user can log in.
  for url in "${candidates[@]}"; do
    [[ $PG_DB != postgres ]] || break
    if pg_try "$(pg_url_with_db "$url" postgres)"; then
      log "creating PostgreSQL database $PG_DB"
      printf '%s\n' "$PG_CREATE_DB_SQL" |
        PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -v db="$PG_DB" "$(pg_url_with_db "$url" postgres)" >/dev/null || true
      if pg_try "$url"; then
        CARELOG_TEST_PG_URL=$url
        return 0
      fi
    fi
  done

  # Local cluster: create the database over the socket as the postgres OS user.
  if is_local_host "$PG_HOST" && have_local_pg && [[ $(id -u) == 0 ]] && have runuser; then
    log "creating PostgreSQL database $PG_DB (if missing) through the local socket"
    printf '%s\n' "$PG_CREATE_DB_SQL" |
      runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -v db="$PG_DB" -d postgres >/dev/null || true
    for url in "${candidates[@]}"; do
      if pg_try "$url"; then
        CARELOG_TEST_PG_URL=$url
        return 0
      fi
    done
  fi

  die "PostgreSQL at $PG_HOST:$PG_PORT is up but $(redact "$CARELOG_TEST_PG_URL") does not work (${first_err:-$LAST_ERR}); allow trust auth for 127.0.0.1 in pg_hba.conf, create database $PG_DB, or set CARELOG_TEST_PG_URL."
}

my_try() { # $1: database ('' for none)
  local -a db=()
  if [[ -n $1 ]]; then db=("$1"); fi
  if LAST_ERR=$(MYSQL_PWD=$MY_PASS "$MYCLI" --no-defaults --protocol=tcp -h"$MY_HOST" -P"$MY_PORT" \
    -u"$MY_USER" --connect-timeout=5 -N -B -e 'select 1' "${db[@]}" 2>&1 >/dev/null); then
    return 0
  fi
  LAST_ERR=${LAST_ERR%%$'\n'*}
  return 1
}

my_exec() { # $1: SQL, as the URL's user over TCP, no database
  MYSQL_PWD=$MY_PASS "$MYCLI" --no-defaults --protocol=tcp -h"$MY_HOST" -P"$MY_PORT" \
    -u"$MY_USER" --connect-timeout=5 -e "$1"
}

ensure_my_usable() {
  if [[ -z $MYCLI ]]; then
    log "mariadb/mysql client not found; not checking $(redact "$CARELOG_TEST_MYSQL_URL") (apt-get install mariadb-client to check it)"
    return 0
  fi
  local first_err qdb
  if my_try "$MY_DB"; then return 0; fi
  first_err=$LAST_ERR
  [[ -z $MY_DB ]] && die "MariaDB at $MY_HOST:$MY_PORT refuses $MY_USER: $first_err. Fix CARELOG_TEST_MYSQL_URL."
  qdb="\`${MY_DB//\`/\`\`}\`"

  if my_try ''; then
    log "creating MariaDB database $MY_DB"
    my_exec "CREATE DATABASE IF NOT EXISTS $qdb" >/dev/null || true
    if my_try "$MY_DB"; then return 0; fi
  fi

  # Local server: fix it through the socket as the OS root user.
  if is_local_host "$MY_HOST" && have_local_my && [[ $(id -u) == 0 ]] &&
    "$MYCLI" -uroot -e 'select 1' >/dev/null 2>&1; then
    log "creating MariaDB database $MY_DB (if missing) through the local socket"
    "$MYCLI" -uroot -e "CREATE DATABASE IF NOT EXISTS $qdb" || true
    if [[ ${CI:-} == true && $MY_USER == root && -z $MY_PASS ]] && ! my_try ''; then
      log "CI: letting root log in from 127.0.0.1 with an empty password"
      "$MYCLI" -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" || true
    fi
    if my_try "$MY_DB"; then return 0; fi
  fi

  local pw_sql="''"
  [[ -z $MY_PASS ]] || pw_sql="'<password>'"
  die "MariaDB at $MY_HOST:$MY_PORT is up but $(redact "$CARELOG_TEST_MYSQL_URL") does not work ($first_err); e.g. as admin: CREATE DATABASE IF NOT EXISTS $qdb; CREATE USER IF NOT EXISTS '$MY_USER'@'127.0.0.1' IDENTIFIED BY $pw_sql; GRANT ALL ON *.* TO '$MY_USER'@'127.0.0.1'; or set CARELOG_TEST_MYSQL_URL."
}

ensure_pg_usable
ensure_my_usable

export CARELOG_TEST_PG_URL CARELOG_TEST_MYSQL_URL
log "CARELOG_TEST_PG_URL=$(redact "$CARELOG_TEST_PG_URL")"
log "CARELOG_TEST_MYSQL_URL=$(redact "$CARELOG_TEST_MYSQL_URL")"

# Each integration test creates its own databases (carelog_t_<uuid>); drop
# those left by earlier runs so they do not pile up. Best effort.
drop_old_test_databases() {
  local db
  if have psql; then
    while read -r db; do
      [[ -n $db ]] && PGCONNECT_TIMEOUT=5 psql -X -q "$CARELOG_TEST_PG_URL" -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    done < <(PGCONNECT_TIMEOUT=5 psql -X -q -A -t "$CARELOG_TEST_PG_URL" \
      -c "SELECT datname FROM pg_database WHERE datname LIKE 'carelog\\_t\\_%'" 2>/dev/null || true)
  fi
  while read -r db; do
    [[ -n $db ]] && my_exec "DROP DATABASE IF EXISTS \`$db\`" >/dev/null 2>&1 || true
  done < <(my_exec "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'carelog\\_t\\_%'" 2>/dev/null || true)
  return 0
}
drop_old_test_databases

# Kafka broker: the relay tests publish to a Kafka-protocol broker
# (CARELOG_TEST_KAFKA_BROKERS, default 127.0.0.1:9092). If none answers there,
# start tansu (an Apache-2.0 Kafka-compatible broker; `.ci/run` installs it with
# `cargo install tansu --locked --features dynostore`), else the compose Kafka.
: "${CARELOG_TEST_KAFKA_BROKERS:=127.0.0.1:9092}"
KAFKA_HOST=${CARELOG_TEST_KAFKA_BROKERS%%:*}
KAFKA_PORT=${CARELOG_TEST_KAFKA_BROKERS##*:}
KAFKA_PID=
start_tansu() {
  log "starting tansu on $CARELOG_TEST_KAFKA_BROKERS (log: target/tansu.log)"
  mkdir -p "$REPO_ROOT/target"
  tansu broker --listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" \
    --advertised-listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" \
    --storage-engine memory://tansu/ >"$REPO_ROOT/target/tansu.log" 2>&1 &
  KAFKA_PID=$!
}
if ! tcp_open "$KAFKA_HOST" "$KAFKA_PORT"; then
  if ! have tansu && is_local_host "$KAFKA_HOST" && ! docker_compose_usable && have cargo; then
    # A fresh machine: install the broker rather than stop (cached in ~/.cargo/bin).
    log "no Kafka broker and no tansu: installing tansu (cargo install, several minutes the first time)"
    cargo install tansu --locked --features dynostore --quiet ||
      die "installing tansu failed; install it (cargo install tansu --locked --features dynostore) or set CARELOG_TEST_KAFKA_BROKERS"
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  fi
  if have tansu && is_local_host "$KAFKA_HOST"; then
    start_tansu
    # A tansu installed without the in-memory store (a plain `cargo install
    # tansu`) stops at once saying so: install the one the tests need, start again.
    for _ in $(seq 1 20); do
      tcp_open "$KAFKA_HOST" "$KAFKA_PORT" || ! kill -0 "$KAFKA_PID" 2>/dev/null || { sleep 0.5; continue; }
      break
    done
    if ! kill -0 "$KAFKA_PID" 2>/dev/null && grep -q 'FeatureNotEnabled.*dynostore' "$REPO_ROOT/target/tansu.log"; then
      log "this tansu was built without its in-memory store: reinstalling it with --features dynostore"
      cargo install tansu --locked --features dynostore --force --quiet ||
        die "reinstalling tansu failed; run: cargo install tansu --locked --features dynostore --force"
      start_tansu
    fi
  elif docker_compose_usable; then
    log "starting Kafka with docker compose"
    compose up -d kafka
  else
    die "No Kafka broker at $CARELOG_TEST_KAFKA_BROKERS and no way to start one: install tansu (cargo install tansu --locked --features dynostore), run Docker, or set CARELOG_TEST_KAFKA_BROKERS."
  fi
  for _ in $(seq 1 60); do
    tcp_open "$KAFKA_HOST" "$KAFKA_PORT" && break
    sleep 1
  done
  tcp_open "$KAFKA_HOST" "$KAFKA_PORT" || die "Kafka broker did not come up on $CARELOG_TEST_KAFKA_BROKERS"
fi
export CARELOG_TEST_KAFKA_BROKERS
log "CARELOG_TEST_KAFKA_BROKERS=$CARELOG_TEST_KAFKA_BROKERS"

if [[ ${CARELOG_TEST_SKIP_CARGO:-} == 1 ]]; then
  log "CARELOG_TEST_SKIP_CARGO=1: servers ready, not running cargo test"
  exit 0
fi

if ! have cargo && [[ -f ${HOME:-/root}/.cargo/env ]]; then
  # shellcheck disable=SC1091
  . "${HOME:-/root}/.cargo/env"
fi
have cargo || die "cargo not found; install the Rust toolchain (rustup) or add ~/.cargo/bin to PATH."

cd -- "$REPO_ROOT"
# The FHIR tests would create it themselves; done here so a missing python3 or
# PyPI fails once, clearly, before the build.
bash scripts/fhir-venv.sh >/dev/null || die "scripts/fhir-venv.sh failed (see above)."
status=0
cargo test --workspace --all-targets "$@" || status=$?
if [[ -n $KAFKA_PID ]]; then
  kill "$KAFKA_PID" 2>/dev/null || true
fi

# The OpenAPI document against the real server (embedded: needs none of the
# servers above). Run even when cargo test failed, so one run tells both.
if [[ ${CARELOG_TEST_SKIP_SCHEMATHESIS:-} == 1 ]]; then
  log "CARELOG_TEST_SKIP_SCHEMATHESIS=1: not running scripts/schemathesis.sh"
else
  log "running scripts/schemathesis.sh"
  st_status=0
  bash "$REPO_ROOT/scripts/schemathesis.sh" || st_status=$?
  if ((st_status != 0)); then
    log "scripts/schemathesis.sh failed (exit $st_status)"
    ((status != 0)) || status=$st_status
  fi
fi
exit "$status"
