"""The workspace's overview (the home page) with 1,000,000 events and 10,000 findings stored,
on PostgreSQL + PostGIS.

Loads the events of bench_history (100,000 units with 10 events each, reported by one
merchant and one courier, in the last weeks), 300 more merchants in six districts of
Changzhou, and 10,000 findings against them over the last 90 days (types, severities and
states mixed: 60 % open, 30 % confirmed, 10 % dismissed; each with its credit record), 300
sanctions, 200 pending appeals, and the recall of the 100,000-unit batch with 5,000 consumer
checks since. Then a regulator of Changzhou (3204) signs in and ``GET /workspace/`` is timed
through the WSGI app (no network):

* warm: the event counts per district, the recalls' reach and the lowest scores kept by the
  process (``OVERVIEW_EVENT_COUNTS_MAX_AGE_S``, 600 s), as requests find them;
* refresh: a maximum age of 1 s, so that a background thread of the process is counting
  them again during nearly every request (in production: for a second or so in ten
  minutes): what a request costs beside a refresh;
* cold: counted in every request (maximum age 0): what a process's first request costs.

Warm, each request is taken twice in turn: with the overview's parts as they were before
2026-12-07 (bench/overview_before.py: findings per day bucketed in Python, the backlog in
more queries, the riskiest parties ranked in Python) and as they are, for 30 and 90 days.
Each line gives the wall time and the CPU per request of this process and of the
database's backends (the machine is shared: the ratio of one run is what compares).

    PYTHONPATH=. python -m bench.bench_overview [--requests 200] [--pg URL] [--keep NAME]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app import create_app, migrate
from app.auth.operations import create_user
from app.catalog.models import Batch, BatchStatus
from app.consumer.models import Verification
from app.credit.models import Anomaly, Appeal, CreditRecord
from app.parties.models import Merchant, MerchantKind
from app.workspace import overview
from bench import machine, overview_before
from bench.bench_history import PARCEL_STEPS, bench_database, percentile, setup
from tracecore.access import Role
from tracecore.anomalies import ANOMALY_TYPES
from tracecore.credit import Policy
from tracecore.uscc import uscc_check_char

DISTRICTS = ["320402", "320404", "320411", "320412", "320413", "320481"]
FINDINGS = 10_000


def _uscc(n: int) -> str:
    body = f"91320400{n:09d}"
    return body + uscc_check_char(body)


def add_findings(app, serials: list[str], seed: int = 7) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    policy = Policy()
    with app.extensions["trace"].sessionmaker() as s:
        merchants = [
            Merchant(
                name=f"商户{n}",
                uscc=_uscc(n),
                kind=MerchantKind.SHOP,
                region_code=DISTRICTS[n % len(DISTRICTS)],
            )
            for n in range(300)
        ]
        s.add_all(merchants)
        s.flush()
        anomalies = []
        for n in range(FINDINGS):
            m = rng.choice(merchants)
            at = now - timedelta(seconds=rng.randrange(90 * 86400))
            status = rng.choices(["open", "confirmed", "dismissed"], [6, 3, 1])[0]
            severity = rng.choice(["minor", "minor", "major", "serious"])
            anomalies.append(
                Anomaly(
                    type=rng.choice(ANOMALY_TYPES),
                    severity=severity,
                    status=status,
                    subject_type="code",
                    subject=serials[n],
                    party_type="merchant",
                    party_id=m.id,
                    region_code=m.region_code,
                    evidence={},
                    detected_at=at,
                    decided_at=None if status == "open" else at + timedelta(days=1),
                    final_at=at + timedelta(days=10) if status == "confirmed" else None,
                )
            )
        s.add_all(anomalies)
        s.flush()
        s.add_all(
            CreditRecord(
                party_type="merchant",
                party_id=a.party_id,
                kind="anomaly",
                points=policy.anomaly_points[a.severity],
                severity=a.severity,
                reason=a.type,
                anomaly_id=a.id,
                effective_at=a.detected_at,
                created_at=a.detected_at,
            )
            for a in anomalies
        )
        for m in merchants[:300]:
            at = now - timedelta(days=rng.randrange(60))
            s.add(
                CreditRecord(
                    party_type="merchant",
                    party_id=m.id,
                    kind="sanction",
                    points=policy.sanction_points,
                    reason="bench",
                    effective_at=at,
                    created_at=at,
                    public_from=at + timedelta(days=10),
                )
            )
        confirmed = [a for a in anomalies if a.status == "confirmed"]
        for a in rng.sample(confirmed, 200):
            s.add(Appeal(anomaly_id=a.id, statement="bench", created_at=a.decided_at))
        batch = s.scalar(sa.select(Batch))
        batch.status, batch.recalled_at, batch.recall_reason = (
            BatchStatus.RECALLED,
            now - timedelta(days=3),
            "bench",
        )
        s.add_all(
            Verification(
                serial=serial,
                client_hash=f"{n:064x}",
                verified_at=now - timedelta(days=2),
                new_client=True,
            )
            for n, serial in enumerate(rng.sample(serials, 5000))
        )
        create_user(s, "bench-regulator", "bench password 1", Role.REGULATOR, jurisdiction="3204")
        s.commit()
    with (
        app.extensions["trace"]
        .engine.connect()
        .execution_options(isolation_level="AUTOCOMMIT") as conn
    ):
        conn.execute(sa.text("VACUUM (ANALYZE)"))


def _backends_cpu_s(admin, database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving ``database`` (this
    machine's server: their /proc entries), the bench's own query excluded."""
    ticks = 0
    for (pid,) in admin.execute(
        sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
        {"db": database},
    ):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a backend that has just gone
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Timings:
    wall_ms: list[float] = field(default_factory=list)
    app_cpu_ms: float = 0.0
    db_cpu_ms: float = 0.0


def measure(client, n: int, path: str = "/workspace/", variants=None, admin=None, db="") -> dict:
    """``n`` requests of each variant (name -> the overview's parts to patch in), taken in
    turn, so that the machine's load falls alike on each: wall time per request, and the
    CPU of this process and of the database's backends per variant."""
    variants = variants or {"now": {}}
    found = {name: Timings() for name in variants}
    for _ in range(n):
        for name, parts in variants.items():
            kept = {k: getattr(overview, k) for k in parts}
            for k, f in parts.items():
                setattr(overview, k, f)
            try:
                db0 = _backends_cpu_s(admin, db) if admin is not None else 0.0
                cpu0, t0 = time.process_time(), time.perf_counter()
                resp = client.get(path, headers={"Accept": "text/html"})
                wall = (time.perf_counter() - t0) * 1000
                cpu = (time.process_time() - cpu0) * 1000
                db1 = _backends_cpu_s(admin, db) if admin is not None else 0.0
            finally:
                for k, f in kept.items():
                    setattr(overview, k, f)
            assert resp.status_code == 200, resp.status_code
            t = found[name]
            t.wall_ms.append(wall)
            t.app_cpu_ms += cpu
            t.db_cpu_ms += (db1 - db0) * 1000
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per variant and run")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", metavar="NAME", help="load into database NAME once and keep it")
    args = parser.parse_args()
    units = 1_000_000 // len(["shelved", "sold", *PARCEL_STEPS])
    compare = {"before": overview_before.PARTS, "now": {}}

    speed_before = machine.reference_ms()
    with bench_database(args.pg, args.keep) as url:
        migrate.upgrade(url)
        results = {}
        for label, max_age in (("warm", 600), ("refresh", 1), ("cold", 0)):
            app = create_app(
                {
                    "DATABASE_URL": url,
                    "SECRET_KEY": "bench",
                    "TRACE_ENV": "testing",
                    "MAX_CODES_PER_REQUEST": units,
                    "SIGN_IN_RATE_LIMIT": "1000 per minute",
                    "OVERVIEW_EVENT_COUNTS_MAX_AGE_S": max_age,
                }
            )
            with app.extensions["trace"].engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
            if not stored:
                t0 = time.perf_counter()
                serials, _ = setup(app, units)
                add_findings(app, serials)
                print(f"loaded in {time.perf_counter() - t0:.0f} s")
            with app.extensions["trace"].engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
                findings = conn.execute(sa.text("SELECT count(*) FROM anomalies")).scalar()
            client = app.test_client()
            form = client.get("/workspace/sign-in").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            resp = client.post(
                "/workspace/sign-in",
                data={
                    "username": "bench-regulator",
                    "password": "bench password 1",
                    "csrf_token": token,
                },
            )
            assert resp.status_code == 302, resp.status_code
            database = sa.engine.make_url(url).database
            with app.extensions["trace"].engine.connect() as admin:
                admin.execution_options(isolation_level="AUTOCOMMIT")
                for days in (30, 90):
                    path = "/workspace/" if days == 30 else "/workspace/?days=90"
                    measure(client, 3, path, compare)  # warm-up: imports, templates, pool
                    # refreshing and cold, the counts' cost is the same for both: "now" only
                    variants = compare if label == "warm" else {"now": {}}
                    for name, found in measure(
                        client, args.requests, path, variants, admin, database
                    ).items():
                        results[(label, days, name)] = found
            app.extensions["trace"].engine.dispose()
    speed_after = machine.reference_ms()

    print(
        f"\nGET /workspace/ (the overview) with {stored:,} events and {findings:,} findings "
        f"stored, a regulator of 3204 ({args.requests} requests of each, taken in turn, in "
        "process, no network)"
    )
    print(machine.describe(speed_before, speed_after))
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    header = f"{'counts':<6} {'days':>4} {'code':<7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    print(header + f" {'app CPU ms':>10} {'db CPU ms':>10}")
    for (label, days, name), t in results.items():
        n = len(t.wall_ms)
        print(
            f"{label:<6} {days:>4} {name:<7} {statistics.median(t.wall_ms):>8.1f} "
            f"{percentile(t.wall_ms, 95):>8.1f} {max(t.wall_ms):>8.1f} "
            f"{t.app_cpu_ms / n:>10.1f} {t.db_cpu_ms / n:>10.1f}"
        )
    for (label, days, name), t in results.items():
        if label == "warm" and name == "now":
            before = results[(label, days, "before")].wall_ms
            print(
                f"RESULT overview_warm_{days}d_p95_ms={percentile(t.wall_ms, 95):.1f} "
                f"baseline_p95_ms={percentile(before, 95):.1f} "
                f"ratio_p95={percentile(t.wall_ms, 95) / percentile(before, 95):.2f}"
            )


if __name__ == "__main__":
    main()
