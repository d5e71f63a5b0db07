#!/usr/bin/env bash
# Runs County Campus Cloud on this machine: a private Postgres in ./data, an embedded S3
# server, 32 demo schools, served on http://localhost:8080. Extra arguments go to
# `campus demo` (e.g. --port 8081 --data /tmp/demo2). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
[ -n "${DATABASE_URL:-}" ] || ensure_postgres_binaries
# Previews of PDF and office files; the demo runs without them if they cannot be installed.
mapfile -t previews < <(preview_packages)
if [ "${#previews[@]}" -gt 0 ] && [ -n "${previews[0]}" ]; then
  (need_packages "${previews[@]}") || echo "note: PDF/office previews stay unavailable without: ${previews[*]}"
fi
cargo build --release -q -p campus
exec "$CARGO_TARGET_DIR/release/campus" demo "$@"
