#!/usr/bin/env bash
# Lint, then the whole suite three times: on SQLite + SpatiaLite, on PostgreSQL + PostGIS, and
# on SQLite again with SPEEDUPS=off (the libraries' own classes: the behaviour must not depend
# on the speed-ups, docs/speedups.md).
# Exits non-zero if anything fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# poppler-utils: the label PDF tests. chromium, chromium-driver and a CJK font: the browser
# tests (tests/browser) drive Debian's Chromium through Playwright and keep screenshots in
# test-artifacts/screenshots/; without the font every Chinese character renders as a box.
./scripts/bootstrap.sh poppler-utils chromium chromium-driver fonts-wqy-microhei

.venv/bin/ruff check .

echo "== tests on SQLite + SpatiaLite"
SPEEDUPS=on .venv/bin/pytest -q -p no:cacheprovider "$@"

pg="${TEST_PG_SERVER:-postgresql://postgres@127.0.0.1:5432}"
if ! pg_isready -q -d "$pg/postgres"; then
    echo "PostgreSQL is not answering at $pg; it is needed for the PostGIS half of the tests" >&2
    exit 1
fi
db="trace_test_$$"
psql -q "$pg/postgres" -c "CREATE DATABASE $db"
trap 'psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
echo "== tests on PostgreSQL + PostGIS"
SPEEDUPS=on TEST_DATABASE_URL="$pg/$db" .venv/bin/pytest -q -p no:cacheprovider "$@"

echo "== tests on SQLite + SpatiaLite, SPEEDUPS=off"
SPEEDUPS=off .venv/bin/pytest -q -p no:cacheprovider "$@"
