"""The `flask trace` and `flask db` commands."""

import csv
import io

import sqlalchemy as sa

from app.auth.operations import authenticate


def test_token_create_prints_the_token_last(runner, app, session):
    """Does `trace token create` print a working token as the last line, stored only hashed?"""
    result = runner.invoke(args=["trace", "token", "create", "--role", "regulator"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("trc_")
    assert authenticate(session, token).role.value == "regulator"
    stored = " ".join(session.scalars(sa.text("SELECT token_hash FROM api_tokens")))
    assert token not in stored


def test_merchant_token_needs_an_existing_merchant(runner):
    """Is a merchant token refused when the party does not exist, with a clear message?"""
    result = runner.invoke(
        args=["trace", "token", "create", "--role", "merchant", "--party-id", "999"]
    )
    assert result.exit_code != 0 and "no merchant with id 999" in result.output


def test_an_outside_systems_token_is_bound_to_a_party_and_named(runner, session, make):
    """Does `--outside-system` make a token that carries the system's name, and is it refused
    for an authority (an outside system acts for a merchant or a logistics company)?"""
    merchant = make.merchant()
    args = ["trace", "token", "create", "--role", "merchant", "--party-id", str(merchant)]
    result = runner.invoke(args=[*args, "--outside-system", "某ERP"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert authenticate(session, token).outside_system == "某ERP"
    refused = runner.invoke(
        args=["trace", "token", "create", "--role", "admin", "--outside-system", "某ERP"]
    )
    assert refused.exit_code != 0 and "merchant or a logistics company" in refused.output


def test_register_and_issue_to_csv(runner, tmp_path):
    """Can an operator register a merchant, product and batch and issue codes to a CSV file?"""

    def run(*args):
        result = runner.invoke(args=["trace", *args])
        assert result.exit_code == 0, result.output
        return result.output.strip().splitlines()[-1]

    merchant = run(
        "merchant",
        "--name",
        "茶业",
        "--uscc",
        "91330100799655058B",
        "--kind",
        "producer",
        "--region-code",
        "330100",
    )
    product = run(
        "product",
        "--gtin",
        "4006381333931",
        "--name",
        "白茶",
        "--category",
        "food",
        "--merchant-id",
        merchant,
    )
    batch = run(
        "batch",
        "--product-id",
        product,
        "--lot",
        "A1",
        "--produced-on",
        "2026-10-01",
        "--expires-on",
        "2027-10-01",
        "--origin",
        "溧阳",
        "--lat",
        "31.4",
        "--lon",
        "119.5",
        "--quantity",
        "100",
    )
    out = tmp_path / "codes.csv"
    run("issue", batch, "--count", "40", "--out", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 40 and rows[0]["uri"].endswith("/21/" + rows[0]["serial"])
    shown = runner.invoke(args=["trace", "code", rows[0]["uri"]])
    assert rows[0]["serial"] in shown.output and "白茶" in shown.output


def test_domain_errors_are_clean_cli_errors(runner):
    """Does a bad USCC end the command with the domain's message, not a traceback?"""
    result = runner.invoke(
        args=[
            "trace",
            "merchant",
            "--name",
            "x",
            "--uscc",
            "914403001922038217",
            "--kind",
            "shop",
            "--region-code",
            "440300",
        ]
    )
    assert result.exit_code == 1
    assert "check character" in result.output and "Traceback" not in result.output


def test_labels_command_writes_a_pdf(runner, make, tmp_path):
    """Does `trace labels` write the batch's label sheet?"""
    batch = make.batch()
    make.codes(batch, 3)
    out = tmp_path / "sheet.pdf"
    result = runner.invoke(args=["trace", "labels", str(batch), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF") and "wrote 3 labels" in result.output


def test_demo_seeds_once(runner, session):
    """Does the demo seed create merchants with codes, and leave them alone the second time?"""
    first = runner.invoke(args=["trace", "demo"])
    assert first.exit_code == 0 and "admin token" in first.output
    codes = session.scalar(sa.text("SELECT count(*) FROM trace_codes"))
    assert codes > 0
    second = runner.invoke(args=["trace", "demo"])
    assert "already present" in second.output
    assert session.scalar(sa.text("SELECT count(*) FROM trace_codes")) == codes


def test_a_workspace_user_is_created_with_a_hashed_password(runner, session):
    """Does `trace user create` store a regulator with its jurisdiction and only a hash?"""
    from app.auth.models import User

    result = runner.invoke(
        args=[
            "trace",
            "user",
            "create",
            "Inspector",
            "--role",
            "regulator",
            "--jurisdiction",
            "3204,441202",
        ],
        env={"TRACE_USER_PASSWORD": "a long enough password"},
    )
    assert result.exit_code == 0, result.output
    user = session.scalars(sa.select(User)).one()
    assert (user.username, user.jurisdiction) == ("inspector", "3204,441202")
    assert "a long enough password" not in user.password_hash
    bad = runner.invoke(
        args=["trace", "user", "create", "x", "--role", "regulator", "--jurisdiction", "99"],
        env={"TRACE_USER_PASSWORD": "a long enough password"},
    )
    assert bad.exit_code != 0


def test_the_labels_progress_bar_draws_on_a_terminal_and_is_silent_when_piped(monkeypatch):
    """Does the CLI's progress bar (``trace labels``) draw to the end on a terminal, and
    write nothing when stderr is piped?"""
    import io

    from app import cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(cli.sys, "stderr", terminal)
    with cli.progress_bar(250, "rendering") as report:
        for done in (100, 200, 250):
            report(done)
    drawn = terminal.getvalue()
    assert "rendering" in drawn and "100%" in drawn
    piped = io.StringIO()
    monkeypatch.setattr(cli.sys, "stderr", piped)
    with cli.progress_bar(250, "rendering") as report:
        assert report is None
    assert piped.getvalue() == ""
