#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit tests and the black-box suite
# against a real Postgres, a real PgBouncer, the embedded S3 server and the real binary.
#
# Postgres: $CAMPUS_TEST_DATABASE_URL if set; else the server on 127.0.0.1:5432 if one
# answers; else a private cluster started from the machine's Postgres binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

missing=()
have_pg_server || missing+=(postgresql)
command -v pg_dump >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
# WebDriver for the browser tests that click through pages.
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromedriver ] || missing+=(chromium-driver)
# A CJK font, so that screenshots of the Chinese pages are legible.
fc-list 2>/dev/null | grep -qiE "wqy|noto.*cjk|droid.*fallback" || missing+=(fonts-wqy-microhei)
# Previews of PDF (poppler's pdftoppm) and of Word/WPS/Excel/PowerPoint (LibreOffice
# headless); prlimit (util-linux) and timeout (coreutils) sandbox the conversions.
while read -r p; do if [ -n "$p" ]; then missing+=("$p"); fi; done < <(preview_packages)
need_packages "${missing[@]}"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "${CAMPUS_TEST_DATABASE_URL:-}" ]; then
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    export CAMPUS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    # A private cluster for the tests, kept between runs.
    bin="$(pg_bin)"
    [ -n "$bin" ] || bin="$(dirname "$(command -v initdb)")"
    dir="${CAMPUS_TEST_PGDATA:-$HOME/.cache/campus-test-pg}"
    port=54329
    as_pg=()
    if [ "$(id -u)" = 0 ]; then
      # Postgres refuses to run as root.
      id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
      dir=/var/lib/campus-test-pg
      as_pg=(runuser -u postgres --)
      mkdir -p "$dir" && chown postgres "$dir"
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      "${as_pg[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
      printf "listen_addresses = '127.0.0.1'\nport = %s\nmax_connections = 200\nfsync = off\nunix_socket_directories = '%s'\n" "$port" "$dir" >> "$dir/postgresql.conf"
    fi
    pg_isready -q -h 127.0.0.1 -p "$port" || "${as_pg[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    export CAMPUS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  fi
fi
echo "tests use Postgres at $CAMPUS_TEST_DATABASE_URL"

bash scripts/check-infra.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
