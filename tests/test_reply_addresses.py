"""Signed reply addresses: round trips, and no way to forge or move a token (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildesk.respond.addresses import ReplyToken, reply_address, sign, verify

SECRET = "s3cret-for-tests"


@given(st.integers(1, 10**9), st.integers(1, 10**6), st.sampled_from(["reply", "comment"]))
def test_a_signed_address_verifies_to_what_was_signed(number: int, agent: int, purpose: str) -> None:
    address = reply_address("support@helpdesk.example", sign(SECRET, "MD", number, agent, purpose))
    assert verify(SECRET, address) == ReplyToken("md", number, agent, purpose)
    assert verify(SECRET, address.upper()) == ReplyToken("md", number, agent, purpose), "MTAs may change case"


@given(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(1, 50))
def test_a_token_never_verifies_for_another_ticket_agent_or_secret(
    number: int, agent: int, shift: int
) -> None:
    token = sign(SECRET, "MD", number, agent)
    body, _, mac = token.rpartition(".")
    moved = [
        token.replace(f"md-{number}.", f"md-{number + shift}.", 1),
        token.replace(f".a{agent}.", f".a{agent + shift}.", 1),
        token.replace(".r.", ".c.", 1),
        f"{body}.{mac[:-1]}{'a' if mac[-1] != 'a' else 'b'}",
    ]
    for forged in moved:
        assert verify(SECRET, f"support+{forged}@helpdesk.example") is None
    assert verify("another-secret", f"support+{token}@helpdesk.example") is None


@given(st.text(max_size=200))
def test_arbitrary_addresses_never_verify_and_never_raise(text: str) -> None:
    assert verify(SECRET, text) is None
    assert verify(SECRET, f"support+{text}@helpdesk.example") is None


def test_plain_desk_address_and_empty_secret() -> None:
    assert verify(SECRET, "support@helpdesk.example") is None
    assert verify("", reply_address("support@helpdesk.example", sign(SECRET, "MD", 1, 1))) is None
    with pytest.raises(ValueError, match="empty secret"):
        sign("", "MD", 1, 1)
    assert (
        reply_address("support+old@helpdesk.example", "md1.a1.r.x") == "support+md1.a1.r.x@helpdesk.example"
    )
