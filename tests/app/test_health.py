"""The liveness endpoint."""


def test_healthz_answers_ok_without_a_token(client):
    """A load balancer may probe /healthz anonymously and gets a small JSON answer."""
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_security_headers_keep_a_views_own_value(database_url):
    """Every response gets the security headers, each unless the view set its own, once."""
    from app import create_app

    app = create_app({"DATABASE_URL": database_url, "TRACE_ENV": "testing", "SECRET_KEY": "t"})

    @app.get("/_test/own-frame-options")
    def own_frame_options():
        return "", 200, {"X-Frame-Options": "SAMEORIGIN", "referrer-policy": "no-referrer"}

    resp = app.test_client().get("/_test/own-frame-options")
    assert resp.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert resp.headers.getlist("Referrer-Policy") == ["no-referrer"]
    assert resp.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    app.extensions["trace"].engine.dispose()


def test_the_production_server_settings_are_the_benchs(monkeypatch):
    """app.serve's settings (the README's production command) are what
    bench/bench_consumer.py serves with unless told otherwise."""
    from app.serve import default_threads, default_workers
    from bench.bench_consumer import served_with

    monkeypatch.delenv("WEB_WORKERS", raising=False)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    assert default_threads() == 2 and default_workers() >= 1
    assert served_with(None, None) == (default_workers(), 2)
    assert served_with(3, 2) == (3, 2)
    monkeypatch.setenv("WEB_THREADS", "4")
    assert served_with(None, None)[1] == 4


def test_templates_read_dicts_as_jinja_does(app):
    """The app's template environment looks a plain dict's key up first; what a template
    shows is Jinja's own: a dict's methods stay methods, a missing key is undefined, and
    other mappings are read as Jinja reads them."""
    from collections import defaultdict

    import jinja2

    source = "{{ d.name }}|{{ d.items is callable }}|{{ d.missing is defined }}|{{ n.x }}"
    values = {"d": {"name": "<b>", "items": "a key"}, "n": defaultdict(int)}
    ours = app.jinja_env.from_string(source).render(values)
    assert ours == "&lt;b&gt;|True|False|0"
    assert ours == jinja2.Environment(autoescape=True).from_string(source).render(values)
