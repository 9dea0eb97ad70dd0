#!/usr/bin/env bash
# Throwaway Redis and Postgres for tests and local scale-out experiments.
#
#   scripts/services.sh install        install redis-server and postgresql (Debian) when missing
#   scripts/services.sh                start both on free 127.0.0.1 ports, print their URLs,
#                                      stop them on Ctrl-C / SIGTERM
#   scripts/services.sh -- CMD ARGS    start both, run CMD with SWITCHYARD_TEST_REDIS_URL and
#                                      SWITCHYARD_TEST_POSTGRES_URL set, stop both, exit as CMD
#
# Everything lives in a temp dir that is removed on exit: no persistence, trust auth on
# loopback only. Postgres refuses to run as root, so under root it runs as the `postgres`
# system user the Debian package creates (through runuser).
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "services: need root to run: $*" >&2; return 1; fi
}

# Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<major>/bin.
pg_bindir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(command -v initdb)"
    return
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

install_missing() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  pg_bindir >/dev/null || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "services: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    # The packages' own service units are not used (and may not start in a container).
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
    # On a host running systemd they did start, on the default ports: stop what was just
    # installed (only that: an operator's own Redis or Postgres is left alone).
    if [ -d /run/systemd/system ]; then
      for unit in "${missing[@]}"; do
        as_root systemctl disable --now "$unit" >/dev/null 2>&1 || true
      done
    fi
  fi
}

# A port nothing listens on now (bash's /dev/tcp connect fails on a free port).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "services: no free port found" >&2
  return 1
}

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

if [ "${1:-}" = install ]; then
  install_missing
  exit 0
fi

install_missing
PG_BIN=$(pg_bindir)
TMP=$(mktemp -d -t switchyard-services.XXXXXX)
chmod 755 "$TMP"   # the postgres user must reach its data dir inside
REDIS_PID=""
PG_DATA="$TMP/pg/data"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_all() {
  local code=$?
  trap - EXIT INT TERM
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
  [ -f "$PG_DATA/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
  exit "$code"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# A port found free may be taken before the server binds it: try a few.
mkdir -p "$TMP/redis"
for attempt in 1 2 3 4 5; do
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$TMP/redis" --logfile "$TMP/redis/redis.log" --daemonize yes --pidfile "$TMP/redis/redis.pid"
  if wait_port "$REDIS_PORT"; then break; fi
  if [ "$attempt" = 5 ]; then echo "services: redis did not start:" >&2; cat "$TMP/redis/redis.log" >&2; exit 1; fi
done
REDIS_PID=$(cat "$TMP/redis/redis.pid")

mkdir -p "$TMP/pg"
[ "$(id -u)" = 0 ] && chown postgres: "$TMP/pg"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U switchyard -A trust -E UTF8 --no-sync >"$TMP/initdb.log" 2>&1 ||
  { echo "services: initdb failed:" >&2; cat "$TMP/initdb.log" >&2; exit 1; }
for attempt in 1 2 3 4 5; do
  PG_PORT=$(free_port)
  if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$TMP/pg/postgres.log" -w -t 30 start \
    -o "-p $PG_PORT -k $TMP/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null; then break; fi
  if [ "$attempt" = 5 ]; then echo "services: postgres did not start:" >&2; cat "$TMP/pg/postgres.log" >&2; exit 1; fi
done

export SWITCHYARD_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export SWITCHYARD_TEST_POSTGRES_URL="postgres://switchyard@127.0.0.1:$PG_PORT/postgres"

if [ "${1:-}" = -- ]; then
  shift
  "$@"
  exit $?
fi

echo "redis:    $SWITCHYARD_TEST_REDIS_URL"
echo "postgres: $SWITCHYARD_TEST_POSTGRES_URL"
echo "export SWITCHYARD_TEST_REDIS_URL=$SWITCHYARD_TEST_REDIS_URL SWITCHYARD_TEST_POSTGRES_URL=$SWITCHYARD_TEST_POSTGRES_URL"
echo "services: running until Ctrl-C (data in $TMP)"
while kill -0 "$REDIS_PID" 2>/dev/null; do sleep 1; done
echo "services: redis exited" >&2
exit 1
