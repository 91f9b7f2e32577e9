"""Credit exchange latency: one party's items (``GET /api/v1/credit/exchange?uscc=``) next to
the same party's public credit account (``GET /api/v1/credit/merchant/{id}``, the baseline,
which scores the same records) in the same run, and one jurisdiction-wide page (no uscc).

    PYTHONPATH=. python -m bench.bench_exchange [--parties 300] [--records 5] [--requests 300]
        [--pg postgresql://postgres@127.0.0.1:5432]   (SQLite when --pg is "")
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from app import create_app, migrate
from app.auth.operations import create_token
from app.credit.models import CreditRecord
from app.credit.operations import sync_lists
from app.parties import operations as parties
from app.parties.models import MerchantKind
from bench.machine import reference_ms
from bench.scratch import scratch_url
from tracecore.access import OPERATOR, Role
from tracecore.credit import Policy
from tracecore.uscc import uscc_check_char


def setup(app, n_parties: int, n_records: int) -> tuple[list[tuple[int, str]], str]:
    """``n_parties`` merchants in Changzhou, each with ``n_records`` final sanctions."""
    then = datetime.now(UTC) - timedelta(days=60)
    out = []
    with app.extensions["trace"].sessionmaker() as s:
        for n in range(n_parties):
            body = f"91320411MA{n:07d}"
            code = body + uscc_check_char(body)
            m = parties.register_merchant(
                s,
                OPERATOR,
                name=f"商户{n}",
                uscc=code,
                kind=MerchantKind.SHOP,
                region_code="320411",
                lat=31.8,
                lon=119.97,
            )
            s.add_all(
                CreditRecord(
                    party_type="merchant",
                    party_id=m.id,
                    kind="sanction",
                    points=-150,
                    reason="虚假宣传",
                    effective_at=then,
                    created_at=then,
                    public_from=then + timedelta(days=10),
                )
                for _ in range(n_records)
            )
            out.append((m.id, code))
        s.flush()
        sync_lists(s, Policy())
        token, _ = create_token(s, Role.REGULATOR, label="bench", jurisdiction="3204")
        s.commit()
    return out, token


def measure(client, urls: list[str], headers: dict) -> tuple[list[float], float]:
    """Wall milliseconds of each request, and the CPU seconds of them all."""
    times, cpu = [], time.process_time()
    for url in urls:
        t = time.perf_counter()
        resp = client.get(url, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, (url, resp.status_code, resp.get_data()[:200])
    return times, time.process_time() - cpu


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=300)
    parser.add_argument("--records", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    print(f"reference workload: {reference_ms():.0f} ms CPU")
    with scratch_url(args.pg or None) as url:
        migrate.upgrade(url)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench",
                "TRACE_ENV": "testing",
                "PUBLIC_RATE_LIMIT": "1000000 per minute",
            }
        )
        found, token = setup(app, args.parties, args.records)
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        rng = random.Random(7)
        picks = [rng.choice(found) for _ in range(args.requests)]
        account = [f"/api/v1/credit/merchant/{pid}" for pid, _ in picks]
        items = [f"/api/v1/credit/exchange?uscc={code}" for _, code in picks]
        measure(client, account[:30] + items[:30], headers)  # warm-up
        base, base_cpu = measure(client, account, headers)
        ours, ours_cpu = measure(client, items, headers)
        wide, wide_cpu = measure(client, ["/api/v1/credit/exchange?limit=1000"] * 5, headers)
        app.extensions["trace"].engine.dispose()
    print(
        f"{args.parties} merchants x {args.records} final sanctions (+ black-list entries), "
        f"{'PostgreSQL' if args.pg else 'SQLite'}, {args.requests} requests each, in process"
    )
    for name, t, cpu in (
        ("account (baseline)", base, base_cpu),
        ("exchange?uscc=", ours, ours_cpu),
    ):
        print(
            f"  {name:20} p50 {p(t, 50):6.2f} ms  p99 {p(t, 99):6.2f} ms  "
            f"CPU {cpu / len(t) * 1000:5.2f} ms/request"
        )
    print(
        f"  exchange / account: p50 x{p(ours, 50) / p(base, 50):.2f}, "
        f"CPU x{ours_cpu / base_cpu:.2f}"
    )
    print(
        f"  jurisdiction-wide page (no uscc, {args.parties} parties): "
        f"median {statistics.median(wide):.0f} ms, CPU {wide_cpu / len(wide) * 1000:.0f} ms"
    )
    print(f"reference workload: {reference_ms():.0f} ms CPU")


if __name__ == "__main__":
    main()
