# shellcheck shell=bash
# Sourced by .ci/run before `make test`: a throwaway PostgreSQL server on 127.0.0.1 for the tests that
# run the platform on Postgres (the e2e suite's Postgres variant, the cluster instance config).
# Installs PostgreSQL from Debian's packages when it is absent, starts a private cluster in a
# temporary folder (never the system's), creates a database, and exports
#   ML_PLATFORM_TEST_POSTGRES_URL=postgresql://ml_platform:<random>@127.0.0.1:<port>/ml_platform_test
# The server stops when the sourcing shell exits.

_pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
    fi
  done | sort -V | tail -n 1
}

_pg_setup() {
  local bindir run_as=() owner
  bindir="$(_pg_bindir)"
  if [ -z "$bindir" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "setup-postgres: PostgreSQL is not installed and this is not root: install the Debian package 'postgresql'" >&2
      return 1
    fi
    echo "setup-postgres: installing PostgreSQL from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir="$(_pg_bindir)"
  fi

  # PostgreSQL refuses to run as root: as root, the cluster belongs to the package's 'postgres' user.
  owner="$(id -un)"
  if [ "$(id -u)" -eq 0 ]; then
    owner=postgres
    run_as=(runuser -u postgres --)
  fi

  local base port password
  base="$(mktemp -d /tmp/ml-platform-pg.XXXXXX)"
  chmod 755 "$base"
  chown "$owner" "$base"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s\n' "$password" >"$base/pwfile"
  chown "$owner" "$base/pwfile"
  chmod 600 "$base/pwfile"

  "${run_as[@]}" "$bindir/initdb" --pgdata="$base/data" --username=ml_platform --pwfile="$base/pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 \
    || { cat "$base/initdb.log" >&2; return 1; }
  rm -f "$base/pwfile"
  "${run_as[@]}" "$bindir/pg_ctl" --pgdata="$base/data" --log="$base/server.log" --wait --timeout=60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$base -c max_connections=200 -c fsync=off" \
    start >/dev/null || { cat "$base/server.log" >&2; return 1; }

  PGPASSWORD="$password" "$bindir/psql" -h 127.0.0.1 -p "$port" -U ml_platform -d postgres -qAt \
    -c "CREATE DATABASE ml_platform_test" >/dev/null || return 1

  export ML_PLATFORM_TEST_POSTGRES_URL="postgresql://ml_platform:${password}@127.0.0.1:${port}/ml_platform_test"
  _ML_PLATFORM_PG_STOP=("${run_as[@]}" "$bindir/pg_ctl" --pgdata="$base/data" --mode=fast stop)
  _ML_PLATFORM_PG_BASE="$base"
  echo "setup-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (database ml_platform_test)"
}

_pg_teardown() {
  if [ -n "${_ML_PLATFORM_PG_BASE:-}" ]; then
    "${_ML_PLATFORM_PG_STOP[@]}" >/dev/null 2>&1 || true
    rm -rf "$_ML_PLATFORM_PG_BASE"
  fi
}

_pg_setup
# Chain onto any EXIT trap an earlier setup script installed, rather than replacing it.
_ml_platform_previous_exit_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
# shellcheck disable=SC2064
trap "_pg_teardown; ${_ml_platform_previous_exit_trap:-:}" EXIT
