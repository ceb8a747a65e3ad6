"""The third-party reply address and Message-ID (tickets ask/forward)."""

from __future__ import annotations

from maildesk.mail import tokens

SECRET = b"unit-test-secret"


def test_reply_address_round_trip_and_forgery() -> None:
    address = tokens.third_party_reply_address(SECRET, "support@example.com", 7)
    assert address.startswith("support+tp-7-")
    assert tokens.third_party_of_address(SECRET, address) == 7
    assert tokens.third_party_of_address(SECRET, address.upper()) == 7
    forged = address.replace("tp-7-", "tp-8-")
    assert tokens.looks_like_third_party_address(forged)
    assert tokens.third_party_of_address(SECRET, forged) is None
    assert tokens.third_party_of_address(b"other", address) is None
    # a ticket token is no third-party token, and the other way round
    assert tokens.third_party_of_address(
        SECRET, tokens.reply_address(SECRET, "support@example.com", 7)) is None
    assert tokens.ticket_of_address(SECRET, address) is None


def test_message_id_names_ticket_and_request() -> None:
    mid = tokens.third_party_message_id(SECRET, 10001, 7, "example.com")
    assert tokens.third_party_of_message_id(SECRET, mid) == (10001, 7)
    assert tokens.ticket_of_message_id(SECRET, f"<{mid}>") == 10001  # bounces find the ticket
    assert tokens.third_party_of_message_id(SECRET, mid.replace("tp7z", "tp8z")) is None
    plain = tokens.new_message_id(SECRET, 10001, "example.com")
    assert tokens.third_party_of_message_id(SECRET, plain) is None
