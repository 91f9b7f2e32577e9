"""Settings from the environment: defaults, overrides, and clear errors."""

import pytest

from config import ConfigError, load_config


def test_rule_thresholds_and_credit_policy_come_from_the_environment():
    """Do ANOMALY_THRESHOLDS and CREDIT_POLICY override just the values they name?"""
    cfg = load_config(
        environ={
            "ANOMALY_THRESHOLDS": '{"remote_sign_km": 3, "stalled_hours": 72}',
            "CREDIT_POLICY": '{"fade_days": 730}',
            "SECRET_KEY": "k",
        }
    )
    assert (cfg.thresholds.remote_sign_km, cfg.thresholds.stalled_hours) == (3, 72)
    assert cfg.thresholds.max_speed_kmh == 900.0
    assert cfg.policy.fade_days == 730 and cfg.policy.grade_a == 900


@pytest.mark.parametrize(
    "name,value,words",
    [
        ("ANOMALY_THRESHOLDS", '{"remote_sign": 3}', "unknown setting 'remote_sign'"),
        ("ANOMALY_THRESHOLDS", '{"remote_sign_km": "far"}', "remote_sign_km must be like 2.0"),
        ("CREDIT_POLICY", "[1, 2]", "must be a JSON object"),
        ("CREDIT_POLICY", "{fade_days: 1}", "must be a JSON object"),
        ("ANOMALY_RULES", "maybe", "on or off"),
        ("MAX_CODES_PER_REQUEST", "-5", "must be positive"),
        ("RESOLVER_SCHEME", "ftp", "https or http"),
        ("PUBLIC_HOLIDAYS", "2027-01-01,2027-02-30", "PUBLIC_HOLIDAYS: '2027-02-30' is not a"),
        ("WORKING_WEEKEND_DAYS", "Saturday", "WORKING_WEEKEND_DAYS: 'Saturday' is not a"),
        ("CREDIT_RESPONSE_WORKING_DAYS", "0", "must be positive"),
        ("ISSUER_URL", "javascript:alert(1)", "ISSUER_URL must be an https://"),
        ("ISSUER_NAME", "   ", "ISSUER_NAME and ISSUER_NAME_EN must not be blank"),
    ],
)
def test_bad_settings_stop_the_start_with_the_variable_named(name, value, words):
    """Does a malformed setting fail at start-up with a message naming it?"""
    with pytest.raises(ConfigError, match=words):
        load_config(environ={name: value, "SECRET_KEY": "k"})


def test_production_needs_a_secret_key_from_the_environment():
    """Does production refuse to start without SECRET_KEY?"""
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(environ={"TRACE_ENV": "production"})


def test_the_response_period_comes_from_the_environment():
    """Do the working days and holidays of the response period come from the settings?"""
    config = load_config(
        environ={
            "CREDIT_RESPONSE_WORKING_DAYS": "3",
            "PUBLIC_HOLIDAYS": "2027-01-01, 2027-01-04",
            "SECRET_KEY": "k",
        }
    )
    period = config.response_period
    assert period.working_days == 3
    assert {str(d) for d in period.calendar.holidays} == {"2027-01-01", "2027-01-04"}


@pytest.mark.parametrize(
    "environ",
    [
        {"WEB_WORKERS": "2"},
        {"WEB_WORKERS": "8", "RATE_LIMIT_STORAGE": "memory://"},
        {},  # app.serve's default: one worker per core (four here)
    ],
    ids=["two workers", "eight workers", "one per core"],
)
def test_production_refuses_in_process_limits_with_several_workers(environ, monkeypatch):
    """Each worker would count the limits apart, multiplying them: does production refuse
    to start, and say which storage to use instead?"""
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    with pytest.raises(ConfigError, match=r"RATE_LIMIT_STORAGE=redis://127\.0\.0\.1:6379/0"):
        load_config(environ={"TRACE_ENV": "production", "SECRET_KEY": "k", **environ})


@pytest.mark.parametrize(
    "environ",
    [
        {"TRACE_ENV": "production", "WEB_WORKERS": "1"},
        {"TRACE_ENV": "production", "RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0"},
        {"TRACE_ENV": "development", "WEB_WORKERS": "4"},
    ],
    ids=["one worker", "shared storage", "development"],
)
def test_one_worker_or_shared_storage_may_start(environ):
    """One process counting in its memory, or shared counters, count what they say."""
    config = load_config(environ={"SECRET_KEY": "k", **environ})
    assert (
        environ["TRACE_ENV"],
        environ.get("RATE_LIMIT_STORAGE", "memory://"),
    ) == (config.TRACE_ENV, config.RATE_LIMIT_STORAGE)


@pytest.mark.parametrize(
    "name", ["PUBLIC_RATE_LIMIT", "SIGN_IN_RATE_LIMIT", "SIGN_IN_ACCOUNT_LIMIT"]
)
def test_a_limit_that_does_not_parse_stops_the_start(name):
    with pytest.raises(ConfigError, match=name):
        load_config(environ={name: "often", "SECRET_KEY": "k"})
