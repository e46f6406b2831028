"""The mail templates against the correspondence rules: shipped ones pass, bad overrides are caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.config import Config
from maildesk.respond import lint, render
from tests.conftest import Desk

ENV = render.environment(Config())
VENDORS = ("Vendor Help Desk",)
CUSTOMER = (
    "acknowledgement",
    "agent_reply",
    "request_info",
    "status_update",
    "escalation",
    "resolution",
    "closing",
    "follow_up",
    "answer_billing_update",
    "answer_training",
    "answer_cancellation",
    "scheduling_offer",
)
TEAM = (
    "bounce_notice",
    "urgent_alert",
    "ticket_notice",
    "agent_confirmation",
    "unverified_notice",
    "escalation_notice",
)
SCRIPT = "<script>alert(1)</script>"
COMMANDS = (
    "#internal",
    "#status <open|awaiting-support|awaiting-customer|resolved|closed>",
    "#assign <agent|me|nobody>",
    "#type <type>",
    "#team <team>",
    "#priority <low|normal|high|urgent>",
    "#escalate [reason]",
    "#vendor",
    "#needinfo [items]",
    "#spam",
    "#close",
)

GOOD_RESOLUTION = """\
Hello {{ name or "customer" }},

we are happy to let you know that ticket {{ ref }} ("{{ subject }}") is resolved.

{% if resolution %}
{{ resolution }}
{% elif method == "workaround" %}
We put a workaround in place until the cause is removed.
{% elif method == "user-error" %}
We found no fault: the steps in our earlier message show how to do it.
{% elif method == "duplicate" %}
It was the same problem as another ticket, and was fixed with it.
{% else %}
We fixed the problem: it should not come back.
{% endif %}

Please reply to this message if it is not resolved. If there is anything else, let us know.

Thank you,
{{ desk }}
"""


def render_pair(name: str, context: dict[str, Any]) -> tuple[str, str]:
    """The plain text and the HTML of `name`, rendered with `context`."""
    return (
        ENV.get_template(f"{name}.txt").render(context),
        ENV.get_template(f"{name}.html").render(context),
    )


def shipped(file: str) -> str:
    """The source of a shipped template, to start an override from."""
    assert ENV.loader is not None
    return ENV.loader.get_source(ENV, file)[0]


def hostile(name: str) -> dict[str, Any]:
    sample = dict(lint.SAMPLES[name])
    sample["subject"] = f"{SCRIPT} & Printer"
    sample["name"] = f"{SCRIPT} & Carol"
    if "text" in sample:
        sample["text"] = f"{sample['text']}\n\n{SCRIPT} & more"
    return sample


@pytest.fixture(scope="module")
def shipped_findings() -> list[lint.Finding]:
    return lint.check(ENV, VENDORS)


def override(desk: Desk, files: dict[str, str]) -> None:
    folder = desk.root / "templates"
    folder.mkdir(exist_ok=True)
    for file, text in files.items():
        (folder / file).write_text(text)


# ---------------------------------------------------------------------------- shipped templates


def test_shipped_set_holds_every_template() -> None:
    names = set(lint.template_names(ENV))
    assert set(CUSTOMER) | set(TEAM) <= names
    assert set(lint.CUSTOMER_FACING) == set(CUSTOMER)
    assert set(lint.RESOLUTION) == {"resolution", "closing"}
    assert names <= set(lint.SAMPLES), "every shipped template has sample data"
    for name in CUSTOMER:
        assert ENV.get_template(f"{name}.html") is not None


@pytest.mark.parametrize("name", [*CUSTOMER, *TEAM])
def test_shipped_template_renders_and_passes_every_rule(
    name: str, shipped_findings: list[lint.Finding]
) -> None:
    text = ENV.get_template(f"{name}.txt").render(lint.SAMPLES[name])
    assert lint.SAMPLES[name]["ref"] in text
    assert [f for f in shipped_findings if f.template == name] == []


@pytest.mark.parametrize("name", CUSTOMER)
def test_html_escapes_hostile_subject_name_and_text(name: str) -> None:
    text, html = render_pair(name, hostile(name))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&amp;" in html
    assert SCRIPT in text  # plain text is not HTML: it shows the customer's words as written


@pytest.mark.parametrize("name", CUSTOMER)
def test_no_customer_template_mentions_a_vendor(name: str) -> None:
    contexts = [lint.SAMPLES[name]] + [{**lint.SAMPLES[name], **v} for v in lint.VARIANTS.get(name, ())]
    for context in contexts:
        for output in render_pair(name, context):
            lowered = output.lower()
            assert "vendor" not in lowered
            assert "third party" not in lowered
            assert "outsourc" not in lowered


def test_agent_reply_keeps_the_agents_lines_and_paragraphs_in_html() -> None:
    context = {**lint.SAMPLES["agent_reply"], "text": "Hello Carol,\n\nline one\nline <two> & three"}
    text, html = render_pair("agent_reply", context)
    assert "<p>Hello Carol,</p>" in html
    assert "<p>line one<br>\nline &lt;two&gt; &amp; three</p>" in html
    assert text.startswith("Hello Carol,\n\nline one\nline <two> & three\n")
    assert text.rstrip().endswith("Alice Example\nExample Support")


def test_resolution_says_how_for_every_method() -> None:
    for method, words in (("fix", "fixed"), ("workaround", "workaround"), ("duplicate", "another ticket")):
        text, html = render_pair(
            "resolution", {**lint.SAMPLES["resolution"], "resolution": "", "method": method}
        )
        assert words in text
        assert words in lint.html_text(html)
    text, _ = render_pair("resolution", {**lint.SAMPLES["resolution"], "resolution": "", "method": ""})
    assert "looked into the problem you reported and resolved it" in text


def test_closing_explains_each_reason_and_how_to_reopen() -> None:
    for reason, words in (
        ("confirmed", "thank you for confirming"),
        ("no_answer", "did not hear back from you"),
        ("no_information", "asked twice for information"),
    ):
        text, _ = render_pair("closing", {**lint.SAMPLES["closing"], "reason": reason})
        assert words in text
        assert "reopens the ticket" in text


def test_team_notices_explain_commands_errors_and_unverified_mail() -> None:
    notice = ENV.get_template("ticket_notice.txt").render(lint.SAMPLES["ticket_notice"])
    for command in COMMANDS:
        assert command in notice
    assert "comment+md-1042@helpdesk.example" in notice
    assert "blank-page.jpg, printer-status.pdf" in notice
    confirmation = ENV.get_template("agent_confirmation.txt").render(lint.SAMPLES["agent_confirmation"])
    assert "#assign zed: NOT DONE (no agent is called zed)" in confirmation
    assert "was NOT carried out" in confirmation
    assert "sent to the customer: carol@customer.example" in confirmation
    unverified = ENV.get_template("unverified_notice.txt").render(lint.SAMPLES["unverified_notice"])
    assert "Nothing in it was run and nothing was relayed" in unverified
    assert "customer mail" in unverified


# ---------------------------------------------------------------------------- the linter itself


def test_linter_names_each_broken_rule(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "acknowledgement.txt").write_text("Your mail arrived.\n\nBye.\n")
    (tmp_path / "templates" / "escalation.html").write_text(
        "<p>Dear {{ name }},</p><p>we escalated {{ ref }}: {{ subject|safe }}.</p>"
        "<p>Anything else? Let us know. Thank you.</p>"
    )
    env = render.environment(Config(source=tmp_path / "maildesk.toml"))
    rules = {(f.template, f.rule) for f in lint.check(env, VENDORS)}
    assert {
        ("acknowledgement", "introduction"),
        ("acknowledgement", "information"),
        ("acknowledgement", "closing"),
        ("acknowledgement", "thanks"),
        ("escalation", "escaping"),
    } <= rules
    assert ("escalation", "introduction") not in rules


def test_html_text_shows_what_a_reader_sees() -> None:
    html = "<!DOCTYPE html><p>Dear\n   Carol,</p><!-- hidden --><p>one<br>\ntwo &amp; three</p>"
    assert lint.html_text(html) == "Dear Carol,\n\none\ntwo & three"


# ---------------------------------------------------------------------------- the CLI


def test_cli_passes_the_shipped_templates(desk: Desk) -> None:
    result = desk.run("templates", "check")
    assert result.code == 0, result.out
    assert result.out.strip().endswith(f"{len(lint.template_names(ENV))} templates checked, 0 findings")
    as_json = desk.run("templates", "check", "--json")
    assert as_json.code == 0
    assert as_json.json() == {"checked": sorted(lint.template_names(ENV)), "findings": []}


def test_cli_flags_a_resolution_without_thanks_or_resolution(desk: Desk) -> None:
    override(
        desk,
        {
            "resolution.txt": 'Dear {{ name or "customer" }},\n\nyour ticket {{ ref }} is resolved.\n\n'
            "If there is anything else we can help you with, please let us know.\n\n{{ desk }}\n"
        },
    )
    result = desk.run("templates", "check")
    assert result.code == 1
    assert "resolution: thanks: resolution.txt: the customer is not thanked" in result.out
    assert "resolution: resolution: resolution.txt: does not say how it was resolved" in result.out
    findings = desk.run("templates", "check", "--json").json()["findings"]  # type: ignore[index]
    assert {f["rule"] for f in findings if f["template"] == "resolution"} == {"thanks", "resolution"}


def test_cli_flags_a_vendor_by_word_and_by_configured_name(desk: Desk) -> None:
    desk.config.write_text(desk.config.read_text() + '\n[vendor]\nname = "Mission Control"\n')
    override(
        desk,
        {
            "escalation.txt": shipped("escalation.txt").replace(
                "has\nbeen passed on to {{ level }}", "has\nbeen passed on to our partner Vendor Help Desk"
            ),
            "status_update.html": shipped("status_update.html").replace(
                "</body>", "<p>Mission Control is on it.</p></body>"
            ),
        },
    )
    result = desk.run("templates", "check")
    assert result.code == 1
    assert "escalation: vendor: escalation.txt: names the vendor 'vendor help desk'" in result.out
    assert "status_update: vendor: status_update.html: names the vendor 'mission control'" in result.out
    assert "status_update.txt" not in result.out


def test_cli_reports_broken_templates_as_findings(desk: Desk) -> None:
    override(
        desk,
        {
            "custom_notice.txt": "Hello {% if %}\n",
            "status_update.txt": "Dear {{ name }}, {{ no_such_variable }}\n",
        },
    )
    result = desk.run("templates", "check")
    assert result.code == 1
    assert "Traceback" not in result.out + result.err
    assert "custom_notice: sample: no sample data" in result.out
    assert "custom_notice: render: custom_notice.txt: line 1:" in result.out
    assert "status_update: render: status_update.txt: 'no_such_variable' is undefined" in result.out
    assert "custom_notice" in desk.run("templates", "check", "--json").json()["checked"]  # type: ignore[index]


def test_cli_passes_a_good_override(desk: Desk) -> None:
    override(desk, {"resolution.txt": GOOD_RESOLUTION})
    result = desk.run("templates", "check")
    assert result.code == 0, result.out
    assert result.out.strip().endswith("0 findings")


# ---------------------------------------------------------------------------- property


@settings(max_examples=60, deadline=None)
@given(subject=st.text(), name=st.text(), text=st.text())
def test_customer_input_never_becomes_markup(subject: str, name: str, text: str) -> None:
    for template in CUSTOMER:
        context = {**lint.SAMPLES[template], "subject": subject + "<b>x", "name": name + "<b>x"}
        for key in ("text", "note", "update", "resolution"):
            if key in context:
                context[key] = text + "<b>x"
        plain, html = render_pair(template, context)
        assert "<b>x" not in html
        without = {k: v.replace("<", "") if isinstance(v, str) else v for k, v in context.items()}
        # a "<" the customer typed is escaped, so it adds none to the markup
        assert html.count("<") == render_pair(template, without)[1].count("<")
        assert "<b>x" in plain  # plain text shows it as written
