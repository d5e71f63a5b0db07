#!/usr/bin/env bash
# The load tests in one command: builds release binaries, starts `campus demo` (32 demo
# schools) on a fresh database of the local Postgres server, runs `campus-bench load`
# against it — the county's morning at 10×, roll call, the county dashboard, the
# noisy-neighbour test, then 1,000 schools registered (the missing ones onboarded) — and
# writes the figures into loadtest/README.md between the `load:begin` and `load:end`
# markers (the rest of the file is left alone).
#
#   bash loadtest/run-load.sh                 # defaults: 32 schools, 60 s per scenario
#   LOAD_SCHOOLS=8 LOAD_SECONDS=20 bash loadtest/run-load.sh
#   LOAD_ARGS="--parents 40 --noisy-rounds 5" bash loadtest/run-load.sh   # more options: campus-bench load --help
#
# Needs a Postgres server where it may create a database and roles
# (CAMPUS_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
# The sign-in limits are raised for the run only: every simulated person signs in from
# 127.0.0.1. Exits non-zero if the load could not run or missed a target.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
# LOAD_PROFILE=debug uses the debug build (quicker to build, slower to serve: figures are
# then pessimistic and say so).
PROFILE=${LOAD_PROFILE:-release}
BENCH=$TARGET_DIR/$PROFILE/campus-bench
CAMPUS=$TARGET_DIR/$PROFILE/campus
README=$ROOT/loadtest/README.md
SERVER=${CAMPUS_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCHOOLS=${LOAD_SCHOOLS:-32}
SECONDS_EACH=${LOAD_SECONDS:-60}

if [[ -z ${LOAD_NO_BUILD:-} ]]; then
    if [[ $PROFILE == release ]]; then
        echo "==> cargo build --release -p campus -p campus-loadtest" >&2
        cargo build --release -p campus -p campus-loadtest
    else
        echo "==> cargo build -p campus -p campus-loadtest (debug)" >&2
        cargo build -p campus -p campus-loadtest
    fi
fi

DB=campus_load_$$
PREFIX=load$$_
DB_URL=${SERVER%/*}/$DB
WORK=$(mktemp -d)
PID=
cleanup() {
    if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    psql -q "$SERVER" -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    psql -qAt "$SERVER" -c "select 'drop role if exists \"' || rolname || '\";' from pg_roles where rolname like '${PREFIX}%'" 2>/dev/null \
        | psql -q "$SERVER" >/dev/null 2>&1 || true
    rm -rf -- "$WORK"
}
trap cleanup EXIT

psql -q "$SERVER" -c "create database $DB" >/dev/null
PORT=$("$BENCH" free-port)
echo "==> campus demo --schools $SCHOOLS on port $PORT (database $DB)" >&2
DATABASE_URL=$DB_URL \
CAMPUS_ROLE_PREFIX=$PREFIX \
CAMPUS_LOGIN_ATTEMPTS_PER_MINUTE=100000 \
CAMPUS_FORM_REQUESTS_PER_MINUTE=100000 \
    "$CAMPUS" demo --data "$WORK/data" --port "$PORT" --schools "$SCHOOLS" >"$WORK/demo.log" 2>&1 &
PID=$!
for _ in $(seq 1 1800); do
    grep -q "Press Ctrl-C" "$WORK/demo.log" && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/demo.log" >&2; exit 1; }
    sleep 1
done
grep -q "Press Ctrl-C" "$WORK/demo.log" || { echo "campus demo did not get ready in 30 minutes" >&2; exit 1; }
sleep 2
load=$(uptime | sed 's/.*load average: //')

echo "==> campus-bench load" >&2
"$BENCH" --database-url "$DB_URL" load --target "127.0.0.1:$PORT" --pid "$PID" \
    --token-file "$WORK/data/admin-token.txt" --seconds "$SECONDS_EACH" ${LOAD_ARGS:-} >"$WORK/load.md"

{
    printf '<!-- load:begin -->\n## Load tests (run-load.sh)\n\n'
    printf 'Run %s with `bash loadtest/run-load.sh` (LOAD_SCHOOLS=%s, LOAD_SECONDS=%s, %s build). One `campus demo` process serves; `campus-bench load` drives it from the same machine. Load average before the run: %s (other work on the machine shares its %s cores; figures from a busy machine are noisy — rerun on a quiet one).\n\n' \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" "$SCHOOLS" "$SECONDS_EACH" "$PROFILE" "$load" "$(nproc)"
    cat "$WORK/load.md"
    printf '\n<!-- load:end -->\n'
} >"$WORK/section.md"

if grep -q '^<!-- load:begin -->$' "$README"; then
    awk -v section="$WORK/section.md" '
        /^<!-- load:begin -->$/ { while ((getline line < section) > 0) print line; skip = 1; next }
        /^<!-- load:end -->$/ { skip = 0; next }
        !skip { print }' "$README" >"$README.tmp"
else
    { cat "$README"; printf '\n'; cat "$WORK/section.md"; } >"$README.tmp"
fi
mv "$README.tmp" "$README"
echo "==> wrote the load section of $README" >&2
cat "$WORK/load.md" >&2
if grep -q '| FAIL |$' "$WORK/load.md"; then
    exit 1
fi
