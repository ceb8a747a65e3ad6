"""web/portal/login_rules.py: the pure parts of the portal's login."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from maildesk.deliver import portal_login
from maildesk.web.portal import login_rules as rules

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_tokens_are_random_and_only_their_sha256_is_kept() -> None:
    first, second = rules.new_token(), rules.new_token()
    assert first != second and len(first) >= 43 and rules.well_formed(first)
    assert rules.hash_token(first) == hashlib.sha256(first.encode()).hexdigest()
    assert len(rules.hash_token(first)) == 64 and first not in rules.hash_token(first)


def test_a_token_that_cannot_be_ours_is_refused_without_a_lookup() -> None:
    for bad in ("", None, "short", "a" * 129, "mit leerzeichen " * 3, "ä" * 43, "a.b" * 10):
        assert not rules.well_formed(bad)


def test_the_link_token_is_derived_from_nonce_and_secret() -> None:
    token = portal_login.link_token(b"secret", "nonce")
    assert rules.well_formed(token)
    assert token == portal_login.link_token(b"secret", "nonce")
    assert token != portal_login.link_token(b"other", "nonce")
    assert token != portal_login.link_token(b"secret", "nonce2")
    assert portal_login.login_url("https://s.example/", b"secret", "nonce") == \
        f"https://s.example/portal/login/{token}"


def test_addresses_are_cleaned_and_junk_is_none() -> None:
    assert rules.clean_address("  Erika@Kunde.DE ") == "erika@kunde.de"
    for bad in ("", None, "erika", "erika@", "@kunde.de", "a b@c.de", "a@b@c.de",
                "x" * 320 + "@k.de", "<a@b.de>", "a@b.de, c@d.de"):
        assert rules.clean_address(bad) is None


def test_login_state() -> None:
    later = NOW + timedelta(minutes=15)
    assert rules.login_state(later, None, NOW) == "valid"
    assert rules.login_state(later, NOW, NOW) == "used"
    assert rules.login_state(NOW, None, NOW) == "expired"
    assert rules.login_state(NOW - timedelta(seconds=1), None, NOW) == "expired"
    assert rules.login_state(None, None, NOW) == "unknown"
    assert rules.expires(NOW, minutes=15) == later
    assert rules.expires(NOW, days=14) == NOW + timedelta(days=14)


def test_session_alive() -> None:
    assert rules.session_alive(NOW + timedelta(days=1), None, NOW)
    assert not rules.session_alive(NOW, None, NOW)
    assert not rules.session_alive(NOW + timedelta(days=1), NOW, NOW)


def test_the_limit_counts_the_last_hour_only() -> None:
    recent = [NOW - timedelta(minutes=m) for m in (1, 10, 30, 50)]
    old = [NOW - timedelta(minutes=m) for m in (61, 120)]
    assert not rules.over_limit(recent + old, NOW, 5)
    assert rules.over_limit([*recent, *old, NOW], NOW, 5)
    assert not rules.over_limit([NOW - timedelta(hours=1)] * 9, NOW, 5)  # exactly an hour: out
    assert not rules.over_limit([NOW + timedelta(minutes=1)] * 9, NOW, 5)  # not yet: out
    assert rules.over_limit([], NOW, 0)


def test_may_send_names_the_limit_that_holds() -> None:
    four = [NOW - timedelta(minutes=1)] * 4
    five = [*four, NOW]
    assert rules.may_send(four, four, NOW, per_address=5, per_client=20) is None
    assert rules.may_send(five, four, NOW, per_address=5, per_client=20) == "address"
    assert rules.may_send(four, five, NOW, per_address=9, per_client=5) == "client"
    assert rules.may_send(five, five, NOW, per_address=5, per_client=5) == "client"


def test_the_login_mail_renders_in_both_languages() -> None:
    from maildesk.deliver.render import Renderer

    url = "https://support.example/portal/login/" + "T" * 43
    for language, words in (("de", "Minuten gültig"), ("en", "minutes and works only once")):
        out = Renderer().render("portal_login", language, {
            "customer": {"name": "Jürgen <b>", "email": "j@kunde.de"}, "login_url": url,
            "minutes": 15, "brand": "Support", "signature_name": "Ihr Team"})
        assert "\n" not in out.subject.strip()
        assert url in out.text and f'href="{url}"' in out.html and words in out.text
        assert "Jürgen <b>" in out.text and "Jürgen &lt;b&gt;" in out.html
        assert f'<html lang="{language}">' in out.html and "<script" not in out.html
        assert all(len(line) <= 78 for line in out.text.splitlines() if url not in line)


def test_the_client_is_the_proxys_word_only_for_a_trusted_proxy() -> None:
    trusted = ("127.0.0.1", "10.0.0.2")
    # a stranger's header is ignored: the limit counts the stranger
    assert rules.client_address("203.0.113.9", "198.51.100.1", trusted) == "203.0.113.9"
    assert rules.client_address("203.0.113.9", "198.51.100.1", ()) == "203.0.113.9"
    # behind the proxy: the nearest hop that is no trusted proxy
    assert rules.client_address("127.0.0.1", "198.51.100.1", trusted) == "198.51.100.1"
    assert rules.client_address("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.2",
                                trusted) == "198.51.100.1"
    assert rules.client_address("127.0.0.1", None, trusted) == "127.0.0.1"
    assert rules.client_address(None, None, ()) == "unknown"
