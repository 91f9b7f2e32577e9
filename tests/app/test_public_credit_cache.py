"""The public credit a process keeps between requests holds plain values: no request's
commit, rollback or closed session can break a later public answer (issue 14, item 6)."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from app import create_app
from app.consumer.units import forget_public_parts
from app.credit.operations import forget_public_accounts

JSON = {"Accept": "application/json"}


@pytest.mark.committed  # a second app, with its own engine and threads, reads the data
def test_signing_the_commitment_never_breaks_the_merchants_public_scans(database_url, make, world):
    """After the merchant signs its credit commitment, do scans of its units from several
    threads, with the public credit kept per process, all answer 200 with the commitment?"""
    caching = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "PUBLIC_CREDIT_MAX_AGE_S": 600,
            "PUBLIC_RATE_LIMIT": "100000 per minute",
        }
    )
    forget_public_accounts()
    try:
        client = caching.test_client()
        signed = client.post(
            f"/api/v1/credit/merchant/{world['merchant']}/commitment",
            headers=make.auth("merchant", world["merchant"]),
        )
        assert signed.status_code == 201

        def scan(n: int) -> tuple[int, object]:
            serial = world["serials"][n % len(world["serials"])]
            own = caching.test_client()
            resp = (
                own.get(f"/t/{serial}", headers={**JSON, "User-Agent": f"phone {n}"})
                if n % 2
                else own.get(f"/api/v1/codes/{serial}")
            )
            body = resp.get_json(silent=True) or {}
            credit = (body.get("merchant") or {}).get("credit") or body.get("credit")
            return resp.status_code, credit

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(scan, range(60)))
        assert [status for status, _ in results].count(200) == 60, {s for s, _ in results}
        assert all(c and c["commitment_signed_at"] for _, c in results), results[:3]
    finally:
        forget_public_accounts()
        forget_public_parts()
        caching.extensions["trace"].engine.dispose()
