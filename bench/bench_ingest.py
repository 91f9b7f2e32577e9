"""How fast the ingest worker drains a backlog of device events from MQTT into PostgreSQL.

A private Mosquitto and a scratch PostgreSQL + PostGIS database, created and dropped here.
Setup (untimed): a merchant, one batch with a code per unit, shelf and POS scanners; every
unit is shelved by one scanner, then sold by another: ``--events`` signed events (times in
the last hours, so they pass validation), ``--per-message`` events per MQTT message.

Both consumers are measured on the same backlog, the same way: the consumer's persistent
session (clean start off, the shared subscription ``$share/trace-ingest/...``) is opened and
closed, the whole backlog is published while it is offline (the broker queues it), then the
consumer is started and timed from its CONNACK until the backlog is drained:

- bare: a paho subscriber that does nothing but PUBACK each message (QoS 1, manual acks,
  Receive Maximum 2000 like the worker): the floor set by the broker and paho;
- worker: ``flask --app wsgi devices ingest``: drained when every event is a committed row
  (its acks are published before the messages are PUBACKed).

    python bench/bench_ingest.py [--events 200000] [--per-message 1] [--devices 40]
                                 [--workers 1] [--rules both|on|off]
                                 [--pg postgresql://postgres@127.0.0.1:5432] [--profile]

With ``--rules both`` (the default) the whole measurement runs twice, anomaly rules on then
off, each on its own backlog, database and broker. Prints ``RESULT name=value`` lines: both
rates in events/s, their ratio, peak RSS (VmHWM), CPU seconds of workers, PostgreSQL
backends and Mosquitto.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from bench.catalog import bench_batch
from bench.machine import describe, reference_ms
from bench.scratch import scratch_database

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "bench-master-key"
CST = timezone(timedelta(hours=8))


# -- the bare subscriber (run as a child process of this script) -----------------------------


def bare_subscriber(port: int, client_id: str, expect: int, establish: bool) -> None:
    """PUBACK every message of the shared subscription; print when connected and done."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from devices.protocol import SHARED_SUBSCRIPTION

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    state = {"n": 0}
    done, subscribed = threading.Event(), threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        print(f"connected {time.time():.6f}", flush=True)
        client.subscribe(SHARED_SUBSCRIPTION, qos=1)

    def on_message(client, userdata, message):
        client.ack(message.mid, message.qos)
        state["n"] += 1
        if state["n"] == expect:
            print(f"done {time.time():.6f} {state['n']}", flush=True)
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 2000
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    subscribed.wait(30)
    if not establish:
        done.wait()
    print(f"rss {_vmhwm(os.getpid())}", flush=True)
    bye = Properties(PacketTypes.DISCONNECT)
    bye.SessionExpiryInterval = 3600 if establish else 0  # drained: end the session
    client.disconnect(properties=bye)
    client.loop_stop()


# -- setup -----------------------------------------------------------------------------------


def setup(url: str, events: int, devices: int, per_message: int) -> list[tuple[str, bytes]]:
    """Register the data and return the backlog: (topic, payload) per message."""
    from app import migrate
    from app.codes.operations import issue_codes
    from app.db import create_engine, make_sessionmaker
    from app.events.models import DeviceKind
    from app.events.registry import register_device
    from devices.protocol import sign, topic_events
    from tracecore.access import OPERATOR

    migrate.upgrade(url)
    engine = create_engine(url)
    units = (events + 1) // 2
    with make_sessionmaker(engine)() as s:
        merchant, _, batch = bench_batch(s, units)
        serials = issue_codes(s, OPERATOR, batch.id, units, max_count=units).serials
        shelves, tills = [], []
        for n in range(devices):
            kind = DeviceKind.SHELF_SCANNER if n % 2 == 0 else DeviceKind.POS_SCANNER
            device, secret = register_device(
                s, OPERATOR, MASTER_KEY, kind=kind, owner_type="merchant", owner_id=merchant.id
            )
            (shelves if n % 2 == 0 else tills).append([device.id, secret, 0, []])
        s.commit()
    engine.dispose()

    # every unit shelved, then sold 20 minutes later; times spread over the last ~2 hours
    start = datetime.now(UTC) - timedelta(hours=2)
    step = timedelta(hours=1.5) / units
    timeline = []
    for i, serial in enumerate(serials):
        at = start + step * i
        timeline.append((at, shelves[i % len(shelves)], "shelved", serial))
        timeline.append((at + timedelta(minutes=20), tills[i % len(tills)], "sold", serial))
    timeline.sort(key=lambda t: t[0])
    for at, device, kind, serial in timeline[:events]:
        device[2] += 1
        body = {
            "event_id": str(uuid.uuid4()),
            "seq": device[2],
            "type": kind,
            "code": serial,
            "time": at.astimezone(CST).isoformat(timespec="milliseconds"),
            "lat": 31.7812,
            "lon": 119.9461,
            "accuracy_m": 8,
        }
        if kind == "sold":
            body["data"] = {"order_id": f"O-{serial}", "price": 39.9, "channel": "store"}
        body["sig"] = sign(body, device[1])
        device[3].append(body)
    # each device's events in messages of per_message, the devices' messages interleaved
    queues = []
    for device_id, _, _, bodies in shelves + tills:
        chunks = [bodies[i : i + per_message] for i in range(0, len(bodies), per_message)]
        queues.append(
            [
                (
                    topic_events(device_id),
                    json.dumps(c[0] if len(c) == 1 else {"events": c}).encode(),
                )
                for c in chunks
            ]
        )
    backlog = []
    for i in range(max(len(q) for q in queues)):
        backlog += [q[i] for q in queues if i < len(q)]
    return backlog


# -- broker and publishing -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(directory: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = directory / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                # the measured backlog lives in memory (persistence only snapshots it)
                "persistence false",
                "max_queued_messages 100000000",
                "max_inflight_messages 100",
                f"user {getpass.getuser()}",
                f"log_dest file {directory / 'mosquitto.log'}",
                "log_type error",
                "log_type warning",
            ]
        )
        + "\n"
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("mosquitto did not start")
        time.sleep(0.05)


def publish(port: int, backlog: list[tuple[str, bytes]], clients: int = 4) -> float:
    """Publish every message QoS 1 from a few clients; return once all are PUBACKed."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    start = time.perf_counter()
    remaining = {"n": len(backlog)}
    lock, done = threading.Lock(), threading.Event()

    def on_publish(client, userdata, mid, reason_code, properties):
        if reason_code.is_failure or reason_code.value == 16:
            raise SystemExit(f"the broker refused a message: {reason_code}")
        with lock:
            remaining["n"] -= 1
            if remaining["n"] == 0:
                done.set()

    publishers = []
    for n in range(clients):
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{n}", protocol=mqtt.MQTTv5
        )
        client.max_inflight_messages_set(100)
        client.on_publish = on_publish
        client.connect("127.0.0.1", port)
        client.loop_start()
        publishers.append(client)
    for i, (topic, payload) in enumerate(backlog):
        publishers[i % clients].publish(topic, payload, qos=1)
    if not done.wait(600):
        raise SystemExit("the backlog was not PUBACKed")
    for client in publishers:
        client.disconnect()
        client.loop_stop()
    return time.perf_counter() - start


# -- the two consumers -----------------------------------------------------------------------


def _vmhwm(pid: int) -> int:
    """Peak resident set size of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _lines(proc: subprocess.Popen, into: list[str]) -> threading.Thread:
    def read():
        for line in proc.stdout:
            into.append(line.rstrip("\n"))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait_line(lines: list[str], prefix: str, proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            if prefix in line:
                return line
        if proc.poll() is not None:
            raise SystemExit("child exited:\n" + "\n".join(lines[-30:]))
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {prefix!r}:\n" + "\n".join(lines[-30:]))


def run_bare(port: int, backlog, expect: int) -> dict:
    def child(establish: bool) -> tuple[subprocess.Popen, list[str]]:
        args = [sys.executable, __file__, "--bare-subscriber", str(port), str(expect)]
        proc = subprocess.Popen(
            [*args, *(["--establish"] if establish else [])],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        lines: list[str] = []
        _lines(proc, lines)
        return proc, lines

    proc, _ = child(establish=True)
    proc.wait(30)
    publish(port, backlog)
    proc, lines = child(establish=False)
    start = float(_wait_line(lines, "connected", proc, 30).split()[1])
    end = float(_wait_line(lines, "done", proc, 1800).split()[1])
    rss = int(_wait_line(lines, "rss", proc, 30).split()[1])
    proc.wait(30)
    return {"seconds": end - start, "rss_kib": rss}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_workers(
    port: int,
    url: str,
    backlog,
    events: int,
    batch_size: int,
    workers: int,
    broker_pid: int,
    profile: bool,
    rules: str = "on",
) -> dict:
    env = os.environ | {
        "ANOMALY_RULES": rules,
        "DATABASE_URL": url,
        "SECRET_KEY": MASTER_KEY,
        "MQTT_URL": f"mqtt://127.0.0.1:{port}",
        "TRACE_ENV": "production",
        # production refuses limits counted per process when several serve it (config.py)
        "RATE_LIMIT_STORAGE": os.environ.get("RATE_LIMIT_STORAGE", "redis://127.0.0.1:6379/0"),
        "PYTHONUNBUFFERED": "1",
    }
    profile_dir = Path(tempfile.mkdtemp())

    def child(n: int) -> tuple[subprocess.Popen, list[str]]:
        command = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "devices"]
        command += ["ingest", "--client-id", f"bench-worker-{n}", "--batch-size", str(batch_size)]
        extra = {"TRACE_INGEST_PROFILE": str(profile_dir / f"{n}.prof")} if profile else {}
        proc = subprocess.Popen(
            [*command, "--log-every", "5"],
            env=env | extra,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        _lines(proc, lines)
        return proc, lines

    # open each worker's persistent session (subscribed), then stop them all
    started = [child(n) for n in range(workers)]
    for proc, lines in started:
        _wait_line(lines, "subscribed to", proc, 60)
    for proc, _ in started:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    publish(port, backlog)

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        broker_cpu = cpu_seconds(broker_pid)
        started = [child(n) for n in range(workers)]
        for proc, lines in started:
            _wait_line(lines, "connected to", proc, 60)
        start = time.time()  # the CONNACKs, seen within a few ms

        def stored(sql: str) -> int:
            for proc, lines in started:
                if proc.poll() is not None:
                    raise SystemExit("a worker exited:\n" + "\n".join(lines[-30:]))
            value = conn.execute(sa.text(sql)).scalar()
            conn.rollback()
            return value

        while stored("SELECT coalesce(max(id), 0) FROM events") < events:  # cheap to ask
            time.sleep(0.05)
        while stored("SELECT count(*) FROM events") < events:
            time.sleep(0.05)
        end = time.time()
        cpu = {
            "workers": sum(cpu_seconds(proc.pid) for proc, _ in started),
            "broker": cpu_seconds(broker_pid) - broker_cpu,
            "postgres": sum(
                cpu_seconds(pid)
                for (pid,) in conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            ),
        }
        rss = max(_vmhwm(proc.pid) for proc, _ in started)
        rejected = conn.execute(sa.text("SELECT count(*) FROM rejected_events")).scalar()
    engine.dispose()
    for proc, _ in started:
        proc.send_signal(signal.SIGTERM)
    for proc, _ in started:
        proc.wait(60)
    if profile:
        stats = pstats.Stats(*[str(p) for p in profile_dir.glob("*.prof")])
        stats.sort_stats("cumulative").print_stats(
            r"ingest\.py|replay\.py|writers\.py|detect\.py|worker\.py", 30
        )
    return {
        "seconds": end - start,
        "rss_kib": rss,
        "rejected": rejected,
        "cpu": cpu,
        # the rate lines, and anything that went wrong (a reconnect shows as duplicates)
        "log": [
            line
            for _, lines in started
            for line in lines
            if "events/s" in line or " WARNING " in line or " ERROR " in line
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--per-message", type=int, default=1, help="events per MQTT message")
    parser.add_argument("--devices", type=int, default=40, help="scanners (half shelf, half POS)")
    parser.add_argument("--batch-size", type=int, default=1000, help="the worker's --batch-size")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL (a scratch database is created there)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the worker's batches")
    parser.add_argument(
        "--rules",
        choices=("on", "off", "both"),
        default="both",
        help="the anomaly rules (ANOMALY_RULES) of the workers; both: one run each, in turn",
    )
    parser.add_argument("--bare-subscriber", nargs=2, metavar=("PORT", "EXPECT"))
    parser.add_argument("--establish", action="store_true")
    args = parser.parse_args()
    if args.bare_subscriber:
        port, expect = map(int, args.bare_subscriber)
        bare_subscriber(port, "bench-bare", expect, args.establish)
        return

    modes = {"on": ["on"], "off": ["off"], "both": ["on", "off"]}[args.rules]
    speed = reference_ms()
    results = [(rules, measure(args, rules)) for rules in modes]
    for rules, result in results:
        report(args, rules, result)
    print(describe(speed, reference_ms()))


def measure(args, rules: str) -> dict:
    """One backlog on a new scratch database and broker: the bare drain, then the workers."""
    print(f"== rules {rules}", flush=True)
    with scratch_database(args.pg) as url:
        tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        broker = None
        try:
            t = time.perf_counter()
            backlog = setup(url, args.events, args.devices, args.per_message)
            print(
                f"setup: {args.events:,} events in {len(backlog):,} messages "
                f"({args.per_message}/message, {args.devices} devices) in "
                f"{time.perf_counter() - t:.1f} s",
                flush=True,
            )
            broker, port = start_broker(tmp)
            bare = run_bare(port, backlog, len(backlog))
            print(f"bare subscriber: drained in {bare['seconds']:.2f} s", flush=True)
            worker = run_workers(
                port,
                url,
                backlog,
                args.events,
                args.batch_size,
                args.workers,
                broker.pid,
                args.profile,
                rules,
            )
            print(f"worker: drained in {worker['seconds']:.2f} s", flush=True)
            for line in worker["log"]:
                print("  " + line.split(": ", 1)[-1])
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)
    if worker["rejected"]:
        raise SystemExit(f"{worker['rejected']} events were rejected")
    return {"bare": bare, "worker": worker, "messages": len(backlog)}


def report(args, rules: str, result: dict) -> None:
    bare, worker = result["bare"], result["worker"]
    bare_rate = args.events / bare["seconds"]
    worker_rate = args.events / worker["seconds"]
    print(
        f"\nDraining {args.events:,} events ({result['messages']:,} messages, "
        f"{args.per_message} per message) from Mosquitto, anomaly rules {rules}"
    )
    print(f"{'consumer':<34} {'seconds':>8} {'events/s':>10} {'peak RSS':>10}")
    print(
        f"{'bare paho subscriber (PUBACK only)':<34} {bare['seconds']:>8.2f} "
        f"{bare_rate:>10,.0f} {bare['rss_kib'] / 1024:>8.0f}MB"
    )
    label = f"ingest worker{'s' if args.workers > 1 else ''} x{args.workers} (commit + acks)"
    print(
        f"{label:<34} {worker['seconds']:>8.2f} "
        f"{worker_rate:>10,.0f} {worker['rss_kib'] / 1024:>8.0f}MB"
    )
    cpu = worker["cpu"]
    per_event = {k: 1e6 * v / args.events for k, v in cpu.items()}
    print(
        f"CPU seconds while the workers drained ({os.cpu_count()} CPUs, "
        f"{worker['seconds']:.1f} s): workers {cpu['workers']:.1f}, "
        f"PostgreSQL {cpu['postgres']:.1f}, Mosquitto {cpu['broker']:.1f}; per event: "
        f"workers {per_event['workers']:.0f} µs, PostgreSQL {per_event['postgres']:.0f} µs, "
        f"Mosquitto {per_event['broker']:.0f} µs, total {sum(per_event.values()):.0f} µs"
    )
    print(
        f"RESULT rules={rules} events={args.events} per_message={args.per_message} "
        f"workers={args.workers} "
        f"bare_events_per_s={bare_rate:.0f} worker_events_per_s={worker_rate:.0f} "
        f"ratio={worker_rate / bare_rate:.2f} worker_peak_rss_mb={worker['rss_kib'] / 1024:.0f} "
        f"bare_peak_rss_mb={bare['rss_kib'] / 1024:.0f} worker_cpu_s={cpu['workers']:.1f} "
        f"postgres_cpu_s={cpu['postgres']:.1f} broker_cpu_s={cpu['broker']:.1f}"
    )


if __name__ == "__main__":
    main()
