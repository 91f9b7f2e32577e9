"""Every API read of personal data writes an access-log line marked as such."""

import pytest
import sqlalchemy as sa

from app.accesslog.models import AccessEntry


@pytest.mark.parametrize(
    "path,target",
    [
        ("/api/v1/couriers/{courier}", ("courier", "{courier}")),
        ("/api/v1/batches/{batch}/trace", ("batch", "{batch}")),
        ("/api/v1/rejected-events", ("rejected_events", "*")),
        ("/api/v1/rejected-events/tallies", ("rejection_tallies", "*")),
        ("/api/v1/codes/{serial}/history", ("code", "{serial}")),
    ],
)
def test_an_authoritys_read_of_personal_data_is_logged(client, make, session, path, target):
    """Is a regulator's read of a courier's full name, a batch's trace, the rejected payloads
    or a unit's history written to the access log, marked as personal data?"""
    company = make.company()
    courier = make.courier(company)
    batch = make.batch(make.product(make.merchant()))
    serial = make.codes(batch, 1)[0]
    names = {"courier": courier, "batch": batch, "serial": serial}
    resp = client.get(path.format(**names), headers=make.auth("regulator"))
    assert resp.status_code == 200, resp.get_json()
    entries = session.execute(
        sa.select(AccessEntry.target_type, AccessEntry.target_id, AccessEntry.personal_data)
    ).all()
    wanted = (target[0], target[1].format(**names), True)
    assert wanted in [tuple(e) for e in entries]
