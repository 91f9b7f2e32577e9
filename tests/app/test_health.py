"""The liveness endpoint."""


def test_healthz_answers_ok_without_a_token(client):
    """A load balancer may probe /healthz anonymously and gets a small JSON answer."""
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
