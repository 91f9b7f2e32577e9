"""Schemathesis against the app's own contract (``/api/v1/openapi.json``), as each role and
anonymously: no answer may be a server error, and every answer must keep the contract (a
documented status code and content type, an error body of the one shape, schema-violating
input refused). Issue 18, "Fuzzing in CI".

The run is generic: every operation the contract lists is fuzzed, so a new route is covered
once it is in app/openapi/ (tests/app/test_contract.py fails on a route missing there).
Two kinds of cases, made once for every role (making them costs more than sending them):

- boundaries: schemathesis's coverage phase, deterministic: every parameter and field at
  and just past its bounds, missing, of another type. Sent as ``admin`` (who reaches every
  handler past its authorisation) and anonymously; with FUZZ_EXAMPLES set, as every role.
- random: FUZZ_EXAMPLES cases per operation that the schemas allow and as many that they
  refuse (2 by default, derandomized: the same cases every run), sent as every role. Path
  parameters are half the time a real resource of the test's world (a batch, a code, a
  parcel, an anomaly...), so the handlers' own code runs, not only their 404.

``make test`` runs the bounded run on each database; ``make fuzz`` runs FUZZ_EXAMPLES=200
random cases per operation and mode, boundaries as every role. The figures (cases, server
errors, violations per check) are printed per role (``-rP``).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import checks as common_checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from app.anomalies.findings import record_findings
from app.auth.operations import create_token
from app.catalog.models import Batch
from tests.app.test_events_api import ship
from tracecore.access import Role
from tracecore.anomalies import Finding
from tracecore.credit import Policy

#: The bounded run is the same every time (a failure in CI is one to reproduce); a longer
#: run (FUZZ_EXAMPLES set, ``make fuzz``) explores.
LONG = "FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))
ROLES = ("anonymous", "admin", "regulator", "merchant", "logistics")
#: Who is sent the boundary cases (see the module's text).
BOUNDARIES_AS = ROLES if LONG else ("anonymous", "admin")
CHECKS = [
    common_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


class Tally:
    """What a run sent and what broke: cases and failures per operation and check."""

    def __init__(self) -> None:
        self.cases: Counter[str] = Counter()
        self.server_errors: Counter[str] = Counter()
        self.violations: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.examples: dict[tuple[str, str], str] = {}  # the first of each, to read

    def record(self, label: str, case, response, failures: list) -> None:
        self.cases[label] += 1
        if response.status_code >= 500:
            self.server_errors[label] += 1
        for failure in failures:
            self.violations[label][failure.title] += 1
            self.examples.setdefault(
                (label, failure.title),
                f"{case.method} {case.formatted_path} query={case.query} "
                f"body={str(case.body)[:200]!r} -> {response.status_code}: "
                f"{response.content[:300]!r}\n  {failure.message[:400]}",
            )

    def summary(self, role: str) -> str:
        by_check = Counter()
        for counts in self.violations.values():
            by_check.update(counts)
        return (
            f"{role}: {sum(self.cases.values())} cases on {len(self.cases)} operations, "
            f"{sum(self.server_errors.values())} server errors, "
            f"{sum(by_check.values())} contract violations {dict(by_check)}"
        )

    def report(self) -> str:
        return "\n".join(
            f"{label} / {title}: {text}" for (label, title), text in self.examples.items()
        )


@pytest.fixture
def known(app, make, world) -> dict:
    """Real values for the path parameters, and a token per role: a merchant with a product,
    a batch, codes and devices, a logistics company with a courier, a delivered parcel, an
    anomaly naming the merchant with an appeal."""
    ship(world, waybill="SF1000000001")
    merchant = world["merchant"]
    with app.extensions["trace"].sessionmaker() as s:
        product = s.get(Batch, world["batch"]).product_id
        (anomaly,) = record_findings(
            s,
            [
                Finding(
                    "recalled_sale",
                    "serious",
                    ("merchant", merchant),
                    (("merchant", merchant),),
                    {},
                )
            ],
            Policy(),
            datetime.now(UTC),
        )
        s.commit()
        anomaly_id = anomaly.id
    appeal = make.app.test_client().post(
        f"/api/v1/anomalies/{anomaly_id}/appeal",
        json={"statement": "我们没有销售召回批次"},
        headers=make.auth("merchant", merchant),
    )
    assert appeal.status_code == 201, appeal.get_json()

    def token(role: str) -> str:
        with app.extensions["trace"].sessionmaker() as s:
            party = {"merchant": merchant, "logistics": world["company"]}.get(role)
            made = create_token(
                s, Role(role), party, jurisdiction="3204" if role == "regulator" else ""
            )[0]
            s.commit()
            return made

    party_ids = {
        "merchant": merchant,
        "logistics_company": world["company"],
        "courier": world["courier"],
    }
    return {
        "tokens": {role: token(role) for role in ROLES if role != "anonymous"},
        "values": {
            "merchant_id": [merchant],
            "company_id": [world["company"]],
            "courier_id": [world["courier"]],
            "product_id": [product],
            "batch_id": [world["batch"]],
            "serial": world["serials"],
            "waybill": ["SF1000000001"],
            "device_id": [world["shelf"].device_id, world["handheld"].device_id],
            "anomaly_id": [anomaly_id],
            "appeal_id": [appeal.get_json()["id"]],
            "party_id": list(party_ids.values()),
        },
    }


#: The role's token is sent with every case: schemathesis generates no Authorization header
#: of its own (a case it made "negative" by leaving the header out would not be).
CONFIG = {"generation": {"with-security-parameters": False}}


@pytest.fixture(scope="module")
def cases(app) -> list[tuple]:
    """The cases of every operation of the contract, made once for every role: each as
    (case, boundary?, {path parameter: which real resource to put in})."""
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG)
    )
    made: list[tuple] = []
    for result in schema.get_all_operations():
        for case in _boundaries(schema, result.ok()):
            # The path a real resource's, unless the path is what the case makes invalid.
            path = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
            real = (
                {}
                if path and path.mode.is_negative
                else dict.fromkeys(case.path_parameters or {}, 0)
            )
            made.append((case, True, real))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if EXAMPLES else ():
            # Unsatisfiable: nothing of this operation can be made invalid (no parameters, no
            # body) in the negative mode.
            with contextlib.suppress(Unsatisfiable):
                _generate(result.ok(), mode, made)()
    return made


def _boundaries(schema, operation):
    """Schemathesis's coverage phase for ``operation``: each parameter and field at and just
    past its bounds, missing, of another type (deterministic: the same cases every run).
    schemathesis.generation.drivers is not a public name: schemathesis is pinned."""
    from schemathesis.generation.drivers import CoverageGenerator
    from schemathesis.generation.feedback import FeedbackSources
    from schemathesis.generation.overrides import Override

    return CoverageGenerator(
        operation=operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None,
        override=Override(),
        feedback=FeedbackSources(),
    )


def _generate(operation, mode: GenerationMode, made: list):
    """A hypothesis run that adds EXAMPLES cases of ``operation`` to ``made``."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=not LONG,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def one(case, data):
        real = {}
        if mode is GenerationMode.POSITIVE:  # a real resource, half the time
            for name in case.path_parameters or {}:
                if data.draw(st.booleans()):
                    real[name] = data.draw(st.integers(0, 7))
        made.append((case, False, real))

    return one


def fuzz(cases: list[tuple], role: str, known: dict) -> Tally:
    """Send every case as ``role``, check every answer, and tally."""
    tally = Tally()
    headers = {} if role == "anonymous" else {"Authorization": f"Bearer {known['tokens'][role]}"}
    for case, boundary, real in cases:
        if boundary and role not in BOUNDARIES_AS:
            continue
        generated = dict(case.path_parameters or {})
        for name, pick in real.items():
            choices = known["values"].get(name)
            if choices:
                case.path_parameters[name] = choices[pick % len(choices)]
        try:
            response = case.call(headers=headers)
            failures = []
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except AssertionError as exc:
                failures.append(exc)
            except BaseExceptionGroup as group:
                failures.extend(group.exceptions)
            tally.record(case.operation.label, case, response, failures)
        finally:
            if real:
                case.path_parameters = generated
    return tally


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_keeps_the_contract(cases, known, role):
    """As ``role``, does every operation answer without a server error and as its contract
    says, whatever it is sent?"""
    tally = fuzz(cases, role, known)
    print(tally.summary(role))
    assert tally.cases, "nothing was fuzzed"
    assert not tally.server_errors and not tally.violations, tally.report()
