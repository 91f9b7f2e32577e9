"""The consumer's verdict: which facts make which warning, and the overall level."""

from datetime import UTC, date, datetime

from tracecore.verdict import DANGER, GENUINE, WARNING, Facts, assess

TODAY = date(2026, 11, 22)


def kinds(facts):
    return [w.kind for w in assess(facts).warnings]


def test_an_issued_code_with_nothing_against_it_is_genuine():
    verdict = assess(Facts(issued=True, today=TODAY, expires_on=date(2027, 1, 1)))
    assert verdict.level == GENUINE and verdict.genuine and verdict.warnings == ()


def test_a_code_never_issued_is_danger():
    assert assess(Facts(issued=False, today=TODAY)).level == DANGER
    assert kinds(Facts(issued=False, today=TODAY)) == ["unknown_code"]


def test_expiry_counts_from_the_day_after():
    on_the_day = Facts(issued=True, today=TODAY, expires_on=TODAY)
    assert assess(on_the_day).level == GENUINE
    after = Facts(issued=True, today=TODAY, expires_on=date(2026, 11, 21))
    assert assess(after).level == WARNING and kinds(after) == ["expired"]


def test_warnings_come_most_serious_first_and_set_the_level():
    facts = Facts(
        issued=True,
        today=TODAY,
        expires_on=date(2026, 1, 1),
        batch_recalled=True,
        recalled_at=datetime(2026, 11, 1, tzinfo=UTC),
        recall_reason="x",
        merchant_list="black",
        anomalies=(("duplicate_sale", {}), ("copied_code", {"checks": 9}), ("remote_sign", {})),
    )
    assert kinds(facts) == [
        "recalled",
        "copied_code",
        "sold_twice",
        "expired",
        "merchant_black_listed",
    ]
    assert assess(facts).level == DANGER


def test_anomalies_that_say_nothing_about_the_unit_do_not_warn_the_consumer():
    facts = Facts(issued=True, today=TODAY, anomalies=(("late_delivery", {}),))
    assert assess(facts).level == GENUINE


def test_a_red_listed_merchant_is_no_warning():
    assert assess(Facts(issued=True, today=TODAY, merchant_list="red")).level == GENUINE


def test_a_real_serial_under_another_products_link_is_a_forged_link_not_a_fake_code():
    """Does the verdict say the more precise reason when the serial exists but the link lies?"""
    facts = Facts(issued=False, today=TODAY, forged_link=True)
    verdict = assess(facts)
    assert verdict.level == DANGER and kinds(facts) == ["forged_link"]
    assert verdict.look == "forged_link"


def test_each_verdict_looks_like_its_most_serious_warning():
    assert assess(Facts(issued=True, today=TODAY)).look == GENUINE
    assert assess(Facts(issued=False, today=TODAY)).look == "unknown_code"
    both = Facts(
        issued=True,
        today=TODAY,
        expires_on=date(2026, 1, 1),
        batch_recalled=True,
        recalled_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert assess(both).look == "recalled"
    assert assess(Facts(issued=True, today=TODAY, expires_on=date(2026, 1, 1))).look == "expired"
    sold = Facts(issued=True, today=TODAY, anomalies=(("duplicate_sale", {}),))
    assert assess(sold).look == "sold_twice"
    copied = Facts(issued=True, today=TODAY, anomalies=(("copied_code", {}),))
    assert assess(copied).look == "copied_code"
