#!/usr/bin/env bash
# Runs the service for a newcomer: embedded SpatiaLite database, migrations, demo data.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./scripts/bootstrap.sh

port="${PORT:-5000}"
# The demo resolves its own Digital Link URIs; production uses https and a real host.
export RESOLVER_HOST="${RESOLVER_HOST:-127.0.0.1:$port}"
export RESOLVER_SCHEME="${RESOLVER_SCHEME:-http}"
flask=".venv/bin/flask --app wsgi"

$flask db upgrade
$flask trace demo
serial=$(.venv/bin/python - <<'PY'
from wsgi import app
import sqlalchemy as sa
with app.extensions["trace"].engine.connect() as c:
    print(c.execute(sa.text("SELECT serial FROM trace_codes ORDER BY serial LIMIT 1")).scalar() or "")
PY
)
cat <<EOT

Trace service on http://127.0.0.1:$port
  API contract     http://127.0.0.1:$port/api/v1/openapi.json
  a trace code     http://127.0.0.1:$port/api/v1/codes/$serial
  its QR label     http://127.0.0.1:$port/api/v1/codes/$serial/label.png
  its barcode      http://127.0.0.1:$port/api/v1/codes/$serial/barcode.png
  scan page (QR)   $($flask trace code "$serial" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["uri"])')
  new API token    $flask trace token create --role admin

EOT
exec $flask run --host 127.0.0.1 --port "$port"
