"""The contract (``/api/v1/openapi.json``) says everything: every API route of the URL map is
an operation of it and nothing else is; each operation states every status code it can
answer, by its kind (app.openapi.standard_errors), and every integer it takes is bounded.
Generic over the URL map and the document: a new route or parameter is checked as it comes."""

import re

import pytest

from app.openapi import standard_errors
from app.web import MAX_ID

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def contract(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


def served(app) -> dict[tuple[str, str], object]:
    """Every (path, method) the app serves under /api/v1, as the contract writes paths."""
    found = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule == "/api/v1/openapi.json":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods & METHODS:
            found[(path, method.lower())] = rule
    return found


def operations(contract: dict):
    for path, item in contract["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_every_route_is_in_the_contract_and_nothing_else(app, contract):
    routes = set(served(app))
    documented = {(path, method) for path, method, _ in operations(contract)}
    assert routes - documented == set(), "served but not in app/openapi/"
    assert documented - routes == set(), "in the contract but not served"


def test_every_operation_states_the_answers_of_its_kind(app, contract):
    """401 and 403 where a token is needed, 400/413/415/422 for a body, 404 for a path
    parameter, 422 for a query or header parameter, 503; a success; an error body of the
    one shape for every error."""
    missing = {}
    for path, method, op in operations(contract):
        params = op.get("parameters", [])
        auth = "token" if op.get("security") else "public"
        wanted = standard_errors(auth, body="requestBody" in op, parameters=params)
        statuses = {int(s) for s in op["responses"]}
        if wanted - statuses or not any(200 <= s < 300 for s in statuses):
            missing[f"{method.upper()} {path}"] = sorted(wanted - statuses)
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
    assert not missing


def test_every_path_parameter_is_declared_as_the_route_reads_it(app, contract):
    """The names in the route are the parameters; an ``<id:...>`` is an integer from 1 to
    2**31 - 1, as its converter takes."""
    for (path, method), rule in served(app).items():
        params = {
            p["name"]: p
            for p in contract["paths"][path][method].get("parameters", [])
            if p["in"] == "path"
        }
        assert set(params) == set(rule.arguments), (path, method)
        for name, converter in rule._converters.items():
            if type(converter).__name__ == "IdConverter":
                assert params[name]["schema"] == {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_ID,
                }, (path, name)


def _integers(schema: dict, components: dict, where: str, seen=()):
    """(where, schema) of every integer in ``schema``, following $refs."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name not in seen:
            yield from _integers(components[name], components, f"{where}>{name}", (*seen, name))
        return
    if schema.get("type") == "integer":
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf"):
        for i, part in enumerate(schema.get(key, [])):
            yield from _integers(part, components, f"{where}.{key}[{i}]", seen)
    for name, part in schema.get("properties", {}).items():
        yield from _integers(part, components, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        yield from _integers(schema["items"], components, f"{where}[]", seen)


def test_every_integer_is_bounded(contract):
    """Every integer in a path, query, header or body has a minimum and a maximum no larger
    than the databases' integer key (what was unbounded answered 500s)."""
    components = contract["components"]["schemas"]
    found = []
    for path, method, op in operations(contract):
        for p in op.get("parameters", []):
            found += _integers(p["schema"], components, f"{method} {path} {p['name']}")
        for media in op.get("requestBody", {}).get("content", {}).values():
            found += _integers(media.get("schema", {}), components, f"{method} {path} body")
    assert found
    unbounded = [w for w, s in found if "minimum" not in s or s.get("maximum", MAX_ID + 1) > MAX_ID]
    assert not unbounded


def test_the_contract_states_this_services_maxima(app, contract):
    cfg = app.extensions["trace"].config
    codes = contract["paths"]["/batches/{batch_id}/codes"]["post"]
    count = codes["requestBody"]["content"]["application/json"]["schema"]["properties"]["count"]
    assert count["maximum"] == cfg.MAX_CODES_PER_REQUEST
    sheet = contract["paths"]["/batches/{batch_id}/labels.pdf"]["get"]["parameters"]
    limit = next(p for p in sheet if p["name"] == "limit")
    assert limit["schema"]["maximum"] == cfg.MAX_LABELS_PER_SHEET


def test_every_operation_over_a_rate_limit_declares_429(database_url):
    """With a public limit of one request, each operation is asked twice: any 429 it
    answers is in its contract."""
    from app import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "PUBLIC_RATE_LIMIT": "1 per hour",
        }
    )
    try:
        client = app.test_client()
        contract = client.get("/api/v1/openapi.json").get_json()
        undeclared, limited = [], 0
        for path, method, op in operations(contract):
            url = "/api/v1" + re.sub(r"\{\w+\}", "1", path).replace("{party_type}", "merchant")
            url = url.replace("/credit/1/", "/credit/merchant/").replace("/lists/1", "/lists/red")
            for _ in range(2):
                resp = client.open(url, method=method.upper(), json={})
            if resp.status_code == 429:
                limited += 1
                if "429" not in op["responses"]:
                    undeclared.append(f"{method.upper()} {path}")
        assert limited, "no operation is limited: the test no longer reaches the limit"
        assert not undeclared
    finally:
        app.extensions["trace"].engine.dispose()
