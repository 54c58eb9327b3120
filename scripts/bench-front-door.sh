#!/usr/bin/env bash
# scripts/bench-front-door.sh BINARY [BINARY ...]: the two front-door measurements of issue 10, for each
# carelog binary given (e.g. an old build and a new one, side by side in one run):
#  1. /health latency while 6 clients log in continuously (argon2 must not starve the HTTP workers);
#  2. peak server RSS while 4 clients upload a 9000x9000 PNG "bomb" (236 KB) at once.
# Each binary runs embedded in a fresh temp data dir on its own port. Needs curl and python3.
set -euo pipefail
(($# > 0)) || { echo "usage: $0 BINARY [BINARY ...]" >&2; exit 2; }

port=18800
bench() { # $1 binary
  local bin=$1 dir server
  dir=$(mktemp -d)
  port=$((port + 1))
  export CARELOG_DATA_DIR=$dir CARELOG_BIND=127.0.0.1:$port CARELOG_RATE_LIMIT_PER_MINUTE=0 RUST_LOG=warn
  "$bin" create-admin --username admin --password admin-pass-1 --name 管理员 --phone 13800000000 >/dev/null 2>&1
  "$bin" serve >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
  local url="http://127.0.0.1:$port/api/v1"

  # 1. /health under 6 concurrent logins.
  local logins=()
  for _ in 1 2 3 4 5 6; do
    (while true; do
      curl -s -o /dev/null -X POST -H 'content-type: application/json' \
        -d '{"username":"admin","password":"admin-pass-1"}' "$url/auth/login"
    done) &
    logins+=($!)
  done
  sleep 2
  for _ in $(seq 1 60); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/health"
    sleep 0.05
  done | sort -n >"$dir/lat"
  kill "${logins[@]}" 2>/dev/null || true
  wait "${logins[@]}" 2>/dev/null || true
  awk '{a[NR]=$1} END {printf "  /health under 6 concurrent logins: p50 %.0f ms, p90 %.0f ms, max %.0f ms\n",
       a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000, a[NR]*1000}' "$dir/lat"

  # 2. Four PNG bombs at once.
  python3 - "$dir/bomb.png" <<'PY'
import struct, sys, zlib
w = h = 9000
raw = zlib.compress(b"".join(b"\x00" + b"\x00" * (w * 3) for _ in range(h)), 9)
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
PY
  local token base sampler uploads=()
  token=$(curl -s -X POST -H 'content-type: application/json' -d '{"username":"admin","password":"admin-pass-1"}' \
    "$url/auth/login" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["access_token"])')
  base=$(ps -o rss= -p "$server")
  (while kill -0 "$server" 2>/dev/null; do ps -o rss= -p "$server"; sleep 0.05; done) >"$dir/rss" &
  sampler=$!
  printf '  4 concurrent PNG bombs: status'
  for _ in 1 2 3 4; do
    curl -s -o /dev/null -w ' %{http_code}' -H "authorization: Bearer $token" -F type=image \
      -F "file=@$dir/bomb.png" "$url/files/upload" &
    uploads+=($!)
  done
  wait "${uploads[@]}" || true
  sleep 0.5
  kill "$sampler" 2>/dev/null || true
  echo ", RSS $((base / 1024)) MB before, $(($(sort -n "$dir/rss" | tail -1) / 1024)) MB peak"
  kill "$server"
  wait "$server" 2>/dev/null || true
  rm -rf "$dir"
}

for bin in "$@"; do
  echo "$bin"
  bench "$bin"
done
