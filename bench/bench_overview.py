"""The workspace's overview (the home page) with 1,000,000 events and 10,000 findings stored,
on PostgreSQL + PostGIS.

Loads the events of bench_history (100,000 units with 10 events each, reported by one
merchant and one courier, in the last weeks), 300 more merchants in six districts of
Changzhou, and 10,000 findings against them over the last 90 days (types, severities and
states mixed: 60 % open, 30 % confirmed, 10 % dismissed; each with its credit record), 300
sanctions, 200 pending appeals, and the recall of the 100,000-unit batch with 5,000 consumer
checks since. Then a regulator of Changzhou (3204) signs in and ``GET /workspace/`` is timed
through the WSGI app (no network):

* warm: the event counts per district kept by the process (``OVERVIEW_EVENT_COUNTS_MAX_AGE_S``,
  600 s), as every request but one in ten minutes finds them;
* cold: counted afresh on every request (the one request in ten minutes that does it).

    PYTHONPATH=. python bench/bench_overview.py [--requests 200] [--pg URL] [--keep NAME]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app import create_app, migrate
from app.auth.operations import create_user
from app.catalog.models import Batch, BatchStatus
from app.consumer.models import Verification
from app.credit.models import Anomaly, Appeal, CreditRecord
from app.parties.models import Merchant, MerchantKind
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


def measure(client, n: int) -> list[float]:
    timings = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.get("/workspace/", headers={"Accept": "text/html"})
        timings.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, resp.status_code
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", metavar="NAME", help="load into database NAME once and keep it")
    args = parser.parse_args()
    units = 1_000_000 // len(["shelved", "sold", *PARCEL_STEPS])

    with bench_database(args.pg, args.keep) as url:
        migrate.upgrade(url)
        results = {}
        for label, max_age in (("warm", 600), ("cold", 0)):
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
            measure(client, 5)  # warm-up: imports, templates, connection pool
            results[label] = measure(client, args.requests)
            app.extensions["trace"].engine.dispose()

    print(
        f"\nGET /workspace/ (the overview) with {stored:,} events and {findings:,} findings "
        f"stored, a regulator of 3204 ({args.requests} requests, in process, no network)"
    )
    print(f"{'event counts':<14} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for label, values in results.items():
        print(
            f"{label:<14} {statistics.median(values):>8.1f} {percentile(values, 95):>8.1f} "
            f"{max(values):>8.1f}"
        )
    for label, values in results.items():
        print(
            f"RESULT overview_{label}_p50_ms={statistics.median(values):.1f} "
            f"overview_{label}_p95_ms={percentile(values, 95):.1f}"
        )


if __name__ == "__main__":
    main()
