#!/usr/bin/env bash
# Runs the service for a newcomer: embedded SpatiaLite database, migrations, demo data, and the
# device side beside the web app: an MQTT broker (a private mosquitto on a free loopback port,
# unless MQTT_URL names a broker), the ingest worker, and the device simulator driving the demo
# devices. Ctrl-C (or a SIGTERM) stops them all, and so does the web app's exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${MQTT_URL:-}" ]; then
    ./scripts/bootstrap.sh mosquitto  # the Debian package of the private broker
else
    ./scripts/bootstrap.sh
fi

port="${PORT:-5000}"
# The demo resolves its own Digital Link URIs; production uses https and a real host.
export RESOLVER_HOST="${RESOLVER_HOST:-127.0.0.1:$port}"
export RESOLVER_SCHEME="${RESOLVER_SCHEME:-http}"
# Rate-limit counters: the machine's Redis when it answers (as production uses it), else this
# process's memory, which holds here: `flask run` below is one process.
if [ -z "${RATE_LIMIT_STORAGE:-}" ]; then
    if .venv/bin/python -c 'import redis; redis.Redis(socket_timeout=1).ping()' 2>/dev/null; then
        export RATE_LIMIT_STORAGE=redis://127.0.0.1:6379/0
    else
        export RATE_LIMIT_STORAGE=memory://
    fi
fi
flask=".venv/bin/flask --app wsgi"
logs=instance/logs
mkdir -p "$logs"

children=()
stop_children() {
    trap - EXIT INT TERM
    if ((${#children[@]})); then
        kill "${children[@]}" 2>/dev/null || true
        wait "${children[@]}" 2>/dev/null || true
    fi
}
trap stop_children EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

$flask db upgrade
$flask trace demo
serial=$(.venv/bin/python - <<'PY'
from wsgi import app
import sqlalchemy as sa
with app.extensions["trace"].engine.connect() as c:
    print(c.execute(sa.text("SELECT serial FROM trace_codes ORDER BY serial LIMIT 1")).scalar() or "")
PY
)
# The simulated fleet (the demo's shops and couriers) is registered before the broker's users
# are written: each device logs in with its id and secret.
$flask devices simulate --setup-only
# Once: a few days of dishonest cases, five days back, on shops and couriers of their own
# (the live simulator below leaves them alone), so the regulators' queue has findings to
# decide, each with the evidence of real signed events (app/demo_cases.py).
$flask trace demo-cases

if [ -z "${MQTT_URL:-}" ]; then
    mqtt_port="${MQTT_PORT:-$(.venv/bin/python -c 'from devices.broker import free_port; print(free_port())')}"
    auth=instance/mqtt
    mkdir -p "$auth"
    worker_password=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
    $flask devices mqtt-auth --passwd "$auth/passwd" --acl "$auth/acl" \
        --worker-user trace-ingest --worker-password "$worker_password"
    .venv/bin/python -m devices.broker --port "$mqtt_port" \
        --password-file "$auth/passwd" --acl-file "$auth/acl" >>"$logs/broker.log" 2>&1 &
    children+=($!)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null && break
        sleep 0.1
    done
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$mqtt_port") 2>/dev/null; then
        echo "run: the MQTT broker did not start; see $logs/broker.log" >&2
        exit 1
    fi
    export MQTT_URL="mqtt://trace-ingest:$worker_password@127.0.0.1:$mqtt_port"
    broker="private mosquitto on mqtt://127.0.0.1:$mqtt_port (log $logs/broker.log)"
else
    broker="${MQTT_URL##*@} (from MQTT_URL)"
fi

$flask devices ingest >>"$logs/ingest.log" 2>&1 &
children+=($!)
# Webhooks: the deliverer beside the worker (one process: SQLite; docs/webhooks.md).
$flask hooks deliver >>"$logs/hooks.log" 2>&1 &
children+=($!)
# A moment for the worker to subscribe; anything sent before is resent by the devices anyway.
# Four orders an hour per shop at the busiest hours: what the demo's four couriers carry
# (about 60 parcels a day each). At 12 the Zhaoqing courier fell a day behind and the late
# deliveries were real in the simulated world: the demo must show honest traffic only.
(sleep 3 && exec $flask devices simulate --rate "${SIM_RATE:-20}" --orders-per-hour 4) \
    >>"$logs/simulator.log" 2>&1 &
children+=($!)

cat <<EOT

Trace service on http://127.0.0.1:$port
  check a code     http://127.0.0.1:$port/ (the public's entry page: type or scan a code)
  API contract     http://127.0.0.1:$port/api/v1/openapi.json
  a trace code     http://127.0.0.1:$port/api/v1/codes/$serial
  its QR label     http://127.0.0.1:$port/api/v1/codes/$serial/label.png
  its barcode      http://127.0.0.1:$port/api/v1/codes/$serial/barcode.png
  workspace        http://127.0.0.1:$port/workspace/ (demo users and passwords: printed above
                   on the first run; more with $flask trace user create)
  scan page (QR)   $($flask trace code "$serial" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["uri"])')
  new API token    $flask trace token create --role admin
  rate limits      counted in $RATE_LIMIT_STORAGE

Devices
  MQTT broker      $broker
  ingest worker    $flask devices ingest (log $logs/ingest.log)
  webhooks         $flask hooks deliver (log $logs/hooks.log; docs/webhooks.md)
  simulator        the demo's shop scanners and couriers' handhelds, ${SIM_RATE:-20} events/s at
                   most, starting 3 days back (log $logs/simulator.log)
  a unit's trace   curl -H "Authorization: Bearer <admin token>" \\
                     http://127.0.0.1:$port/api/v1/codes/$serial/history

EOT
# In the background with `wait`, not in the foreground: a signal to this script (Ctrl-C,
# kill) interrupts `wait` at once, and the EXIT trap stops the web app with the rest.
$flask run --host 127.0.0.1 --port "$port" &
children+=($!)
wait "$!"
