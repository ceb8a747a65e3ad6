"""Signed, expiring links (survey, "mark as solved", confirmation): pure, no clock
but the one passed in, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.tickets.links import (
    PURPOSES,
    SIGNATURE_LENGTH,
    BadLink,
    LinkTarget,
    base36,
    expires_in_days,
    make_token,
    make_url,
    verify,
)

SECRET = b"s3cret-for-tests-only"
ISSUED = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
#: make_token(..., ISSUED, 7) is valid through 17 March (UTC), gone from 18 March 00:00.
LAST_DAY_END = datetime(2026, 3, 17, 23, 59, 59, 999_999, tzinfo=UTC)
EXPIRY = datetime(2026, 3, 18, tzinfo=UTC)
ALPHABET_32 = "abcdefghijklmnopqrstuvwxyz234567"


def token(purpose: str = "csat", subject: int = 4711, days: int = 7,
          issued: datetime = ISSUED, secret: bytes = SECRET) -> str:
    return make_token(secret, purpose, subject, issued, days)


def reason(purpose: str, text: str, now: datetime = ISSUED, secret: bytes = SECRET) -> str:
    with pytest.raises(BadLink) as caught:
        verify(secret, purpose, text, now)
    return caught.value.reason


def parts(text: str) -> tuple[str, str, str]:
    subject, expiry, signature = text.split(".")
    return subject, expiry, signature


# --- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
def test_round_trip_for_every_purpose(purpose: str) -> None:
    target = verify(SECRET, purpose, token(purpose, 4711), ISSUED)
    assert target == LinkTarget(purpose, 4711, EXPIRY)


def test_token_has_the_documented_shape() -> None:
    subject, expiry, signature = parts(token(subject=4711))
    assert subject == "4711"
    assert int(expiry, 36) * 86_400 == EXPIRY.timestamp()
    assert len(signature) == SIGNATURE_LENGTH
    assert set(signature) <= set(ALPHABET_32)


@pytest.mark.parametrize(("issuer", "checker"), [
    (issuer, checker) for issuer in sorted(PURPOSES) for checker in sorted(PURPOSES)
    if issuer != checker])
def test_token_for_one_purpose_is_tampered_for_another(issuer: str, checker: str) -> None:
    assert reason(checker, token(issuer)) == "tampered"


def test_unknown_purpose_is_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="unknown link purpose"):
        make_token(SECRET, "reset", 1, ISSUED, 7)
    with pytest.raises(ValueError, match="unknown link purpose"):
        verify(SECRET, "reset", token(), ISSUED)


# --- tampering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("other", [4712, 4710, 0, 47110, 999_999_999_999])
def test_changed_number_is_tampered(other: int) -> None:
    _, expiry, signature = parts(token(subject=4711))
    assert reason("csat", f"{other}.{expiry}.{signature}") == "tampered"


@pytest.mark.parametrize("shift", [1, -1, 30, 3650])
def test_changed_expiry_is_tampered_not_expired(shift: int) -> None:
    subject, expiry, signature = parts(token())
    forged = f"{subject}.{base36(int(expiry, 36) + shift)}.{signature}"
    assert reason("csat", forged) == "tampered"
    # even checked long after both dates: the signature decides first
    assert reason("csat", forged, now=EXPIRY + timedelta(days=5000)) == "tampered"


def test_zero_padded_expiry_is_tampered() -> None:
    subject, expiry, signature = parts(token())
    assert reason("csat", f"{subject}.0{expiry}.{signature}") == "tampered"


@pytest.mark.parametrize("position", [0, 1, 12, SIGNATURE_LENGTH - 1])
def test_one_changed_signature_character_is_tampered(position: int) -> None:
    subject, expiry, signature = parts(token())
    for replacement in ALPHABET_32:
        if replacement == signature[position]:
            continue
        forged = signature[:position] + replacement + signature[position + 1:]
        assert reason("csat", f"{subject}.{expiry}.{forged}") == "tampered"
        assert reason("csat", f"{subject}.{expiry}.{forged}", now=EXPIRY) == "tampered"


def test_other_secret_is_tampered() -> None:
    assert reason("csat", token(secret=b"another secret")) == "tampered"
    assert reason("csat", token(), secret=b"another secret") == "tampered"


def test_expired_token_with_other_secret_is_tampered_not_expired() -> None:
    assert reason("csat", token(secret=b"another secret"), now=EXPIRY) == "tampered"


# --- what mail clients do to URLs ---------------------------------------------------------------


def test_upper_cased_token_still_verifies() -> None:
    assert verify(SECRET, "solve", token("solve").upper(), ISSUED).subject == 4711


def test_mixed_case_token_still_verifies() -> None:
    text = token("confirm")
    mixed = "".join(ch.upper() if i % 2 else ch for i, ch in enumerate(text))
    assert verify(SECRET, "confirm", mixed, ISSUED).subject == 4711


def test_surrounding_whitespace_is_tolerated() -> None:
    assert verify(SECRET, "csat", f"  {token()}\n", ISSUED).subject == 4711


def test_same_inputs_give_the_same_token() -> None:
    assert token() == token()
    # a retry later the same day (the outbox row's creation time stays `issued`, but even a
    # later send on the same UTC day carries the same link)
    assert token(issued=ISSUED.replace(hour=0, minute=0)) == token(
        issued=ISSUED.replace(hour=23, minute=59, second=59))


def test_issue_time_in_another_time_zone_counts_in_utc() -> None:
    berlin_late = datetime(2026, 3, 11, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert token(issued=berlin_late) == token(issued=datetime(2026, 3, 10, 23, 30, tzinfo=UTC))
    assert token(issued=berlin_late) != token(issued=datetime(2026, 3, 11, 0, 30, tzinfo=UTC))


def test_different_subjects_purposes_or_days_give_different_tokens() -> None:
    tokens = {token(purpose, subject, days)
              for purpose in PURPOSES for subject in (1, 2) for days in (7, 8)}
    assert len(tokens) == len(PURPOSES) * 2 * 2


# --- expiry -------------------------------------------------------------------------------------


def test_valid_through_the_last_day() -> None:
    assert verify(SECRET, "csat", token(), LAST_DAY_END).subject == 4711
    assert verify(SECRET, "csat", token(), datetime(2026, 3, 17, 0, 0, tzinfo=UTC)).subject == 4711


@pytest.mark.parametrize("now", [
    EXPIRY,
    EXPIRY + timedelta(microseconds=1),
    EXPIRY + timedelta(days=1),
    EXPIRY + timedelta(days=400),
])
def test_expired_at_and_after_the_boundary(now: datetime) -> None:
    with pytest.raises(BadLink) as caught:
        verify(SECRET, "csat", token(), now)
    assert caught.value.reason == "expired"
    assert "2026-03-18" in str(caught.value)


def test_expiry_is_the_end_of_the_utc_day_days_after_issue() -> None:
    for issued in (datetime(2026, 3, 10, 0, 0, tzinfo=UTC),
                   datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC)):
        assert verify(SECRET, "csat", token(issued=issued), issued).expires == EXPIRY


@pytest.mark.parametrize("days", [0, -5])
def test_zero_or_negative_days_still_last_the_issue_day(days: int) -> None:
    target = verify(SECRET, "csat", token(days=days), ISSUED)
    assert target.expires == datetime(2026, 3, 11, tzinfo=UTC)
    assert reason("csat", token(days=days), now=datetime(2026, 3, 11, tzinfo=UTC)) == "expired"


def test_expired_time_zone_aware_now_in_another_zone() -> None:
    # 18 March 00:30 in UTC+1 is still 17 March in UTC: valid
    now = datetime(2026, 3, 18, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert verify(SECRET, "csat", token(), now).subject == 4711
    # 17 March 20:00 in UTC-5 is 18 March 01:00 UTC: expired
    now = datetime(2026, 3, 17, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert reason("csat", token(), now=now) == "expired"


@pytest.mark.parametrize(("now", "left"), [
    (ISSUED, 7),
    (datetime(2026, 3, 17, 0, 0, tzinfo=UTC), 1),
    (datetime(2026, 3, 17, 0, 0, 1, tzinfo=UTC), 0),
    (EXPIRY, 0),
    (EXPIRY + timedelta(days=3), 0),
])
def test_expires_in_days(now: datetime, left: int) -> None:
    assert expires_in_days(EXPIRY, now) == left


# --- malformed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "",
    " ",
    "abc",
    "1.2",
    "1.2.3",
    "..",
    "4711",
    "x" * 10_000,
    "1" * 10_000 + ".1." + "a" * SIGNATURE_LENGTH,
    "4711.1." + "a" * 10_000,
    "4711.1." + "a" * (SIGNATURE_LENGTH - 1),
    "4711.1." + "a" * (SIGNATURE_LENGTH + 1),
    "4711.1." + "a" * (SIGNATURE_LENGTH - 1) + "1",  # 1 is not base32
    "4711.123456789.a" + "a" * (SIGNATURE_LENGTH - 1),  # expiry longer than 8
    "1234567890123.1." + "a" * SIGNATURE_LENGTH,  # 13 digits
    "-4711.1." + "a" * SIGNATURE_LENGTH,
    "47 11.1." + "a" * SIGNATURE_LENGTH,
    "4711.1.aaaaaaaaaaaaa aaaaaaaaaaaa",
    "4711.1.aaaaaaaaaaaaa\naaaaaaaaaaaa",
    "4711.1\n." + "a" * SIGNATURE_LENGTH,
    "4711..1." + "a" * SIGNATURE_LENGTH,
    "4711.1." + "a" * SIGNATURE_LENGTH + ".x",
    "4711.ä." + "a" * SIGNATURE_LENGTH,
    "4711.1." + "ä" * SIGNATURE_LENGTH,
    "tïcket.1." + "a" * SIGNATURE_LENGTH,
    "🎫",
    "\x00" * 40,
])
def test_junk_is_malformed(text: str) -> None:
    assert reason("csat", text) == "malformed"


@pytest.mark.parametrize("where", ["inside", "after_subject", "after_expiry"])
def test_inner_whitespace_in_a_real_token_is_malformed(where: str) -> None:
    subject, expiry, signature = parts(token())
    text = {
        "inside": f"{subject}.{expiry}.{signature[:10]} {signature[10:]}",
        "after_subject": f"{subject} .{expiry}.{signature}",
        "after_expiry": f"{subject}.{expiry}\n.{signature}",
    }[where]
    assert reason("csat", text) == "malformed"


def test_url_wrapped_in_a_mail_line_break_is_malformed() -> None:
    text = token()
    assert reason("csat", text[:15] + "\r\n" + text[15:]) == "malformed"


@pytest.mark.parametrize("digits", ["\uff14\uff17\uff11\uff11", "\u0664\u0667\u0661\u0661"])
def test_non_ascii_digits_in_the_subject_are_malformed(digits: str) -> None:
    _, expiry, signature = parts(token())
    assert reason("csat", f"{digits}.{expiry}.{signature}") == "malformed"


def test_kelvin_sign_is_not_a_k() -> None:
    subject = 4711
    for days in range(1, 400):  # find a token whose expiry or signature has a 'k'
        text = token(subject=subject, days=days)
        if "k" in text:
            break
    else:
        pytest.fail("no token with a 'k' found")
    assert reason("csat", text.replace("k", "\u212a"), now=ISSUED) == "malformed"


# --- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["https://help.example.com", "https://help.example.com/"])
@pytest.mark.parametrize("purpose", sorted(PURPOSES))
def test_make_url_joins_base_path_and_token(base: str, purpose: str) -> None:
    url = make_url(base, SECRET, purpose, 4711, ISSUED, 7)
    assert url == f"https://help.example.com{PURPOSES[purpose]}{token(purpose)}"
    assert verify(SECRET, purpose, url.rsplit("/", 1)[1], ISSUED).subject == 4711


def test_make_url_keeps_a_base_path() -> None:
    url = make_url("https://example.com/helpdesk/", SECRET, "solve", 12, ISSUED, 7)
    assert url == f"https://example.com/helpdesk/solve/{token('solve', 12)}"


# --- property -----------------------------------------------------------------------------------


@given(subject=st.integers(min_value=0, max_value=10**12 - 1),
       days=st.integers(min_value=1, max_value=400),
       issued=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                           timezones=st.just(UTC)),
       purpose=st.sampled_from(sorted(PURPOSES)))
@settings(max_examples=300, deadline=None)
def test_round_trip_and_expiry_property(subject: int, days: int, issued: datetime,
                                        purpose: str) -> None:
    text = make_token(SECRET, purpose, subject, issued, days)
    target = verify(SECRET, purpose, text, issued)
    assert target.subject == subject
    assert target.purpose == purpose
    midnight = issued.replace(hour=0, minute=0, second=0, microsecond=0)
    assert target.expires == midnight + timedelta(days=days + 1)
    assert verify(SECRET, purpose, text, target.expires - timedelta(microseconds=1))
    with pytest.raises(BadLink) as caught:
        verify(SECRET, purpose, text, target.expires)
    assert caught.value.reason == "expired"
