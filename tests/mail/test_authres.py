"""Authentication-Results (RFC 8601): parsing the headers real MTAs write,
and what the topmost trusted one proves about a From domain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildesk.mail.authres import (
    aligned,
    from_domain_of,
    judge_sender,
    parse_all,
    parse_authentication_results,
    trusted_header,
)

GMAIL = ("mx.google.com;\r\n       dkim=pass header.i=@firma.de header.s=s1 header.b=Ab+c/9=;"
         "\r\n       spf=pass (google.com: domain of anna@firma.de designates 203.0.113.5 as "
         "permitted sender) smtp.mailfrom=anna@firma.de;\r\n       dmarc=pass (p=REJECT "
         "sp=REJECT dis=NONE) header.from=firma.de")
M365 = ("spf=pass (sender IP is 40.107.1.2) smtp.mailfrom=firma.de; dkim=pass (signature was "
        "verified) header.d=firma.de;dmarc=pass action=none header.from=firma.de;"
        "compauth=pass reason=100")
OPENDMARC = "mail.firma.de; dmarc=fail (p=reject dis=none) header.from=kunde.de"
OPENDKIM = ("mail.firma.de; dkim=pass (2048-bit key; unprotected) header.d=kunde.de "
            "header.i=@kunde.de header.a=rsa-sha256 header.s=mail header.b=xYz12345")
RSPAMD = ("mx.firma.de;\n\tdkim=pass header.d=kunde.de header.s=dkim header.b=\"AbC/+=\";\n\t"
          "spf=pass (mx.firma.de: domain of bob@kunde.de designates 198.51.100.7 as permitted "
          "sender) smtp.mailfrom=bob@kunde.de;\n\tdmarc=pass (policy=reject) header.from=kunde.de")
RFC_EXAMPLE = ('example.com; spf=pass smtp.mailfrom=example.net; dkim=pass '
               'reason="good signature" header.i=@mail-router.example.net; '
               'dkim=fail reason="bad signature" header.i=@newyork.example.com')


# -- parsing ------------------------------------------------------------------

@pytest.mark.parametrize(("value", "authserv_id", "methods"), [
    (GMAIL, "mx.google.com", ["dkim", "spf", "dmarc"]),
    (M365, "", ["spf", "dkim", "dmarc", "compauth"]),
    (OPENDMARC, "mail.firma.de", ["dmarc"]),
    (OPENDKIM, "mail.firma.de", ["dkim"]),
    (RSPAMD, "mx.firma.de", ["dkim", "spf", "dmarc"]),
    (RFC_EXAMPLE, "example.com", ["spf", "dkim", "dkim"]),
    ("example.org 1; none", "example.org", []),
    ("MX.Firma.DE.; dmarc=pass header.from=x.de", "mx.firma.de", ["dmarc"]),
    ("example.com; dkim/1=pass header.d=a.de", "example.com", ["dkim"]),
    ("example.com (comment; with semicolon) ; spf=pass smtp.mailfrom=a.de",
     "example.com", ["spf"]),
    ("example.com; spf=pass (nested (comment) here) smtp.mailfrom=a.de", "example.com", ["spf"]),
    ("example.com;", "example.com", []),
    ("example.com; ; ; dmarc=pass header.from=a.de", "example.com", ["dmarc"]),
])
def test_parses_the_headers_real_mtas_write(value: str, authserv_id: str,
                                             methods: list[str]) -> None:
    parsed = parse_authentication_results(value)
    assert parsed is not None
    assert parsed.authserv_id == authserv_id
    assert [r.method for r in parsed.results] == methods


def test_properties_results_and_reasons() -> None:
    gmail = parse_authentication_results(GMAIL)
    assert gmail is not None
    dkim, spf, dmarc = gmail.results
    assert dkim.result == "pass" and dkim.prop("header.i") == "@firma.de"
    assert dkim.prop("header.b") == "Ab+c/9=", "base64 with = and / stays one value"
    assert spf.prop("smtp.mailfrom") == "anna@firma.de"
    assert dmarc.prop("header.from") == "firma.de"
    rfc = parse_authentication_results(RFC_EXAMPLE)
    assert rfc is not None
    assert [(r.result, r.reason) for r in rfc.of("dkim")] == [
        ("pass", "good signature"), ("fail", "bad signature")]
    quoted = parse_authentication_results(RSPAMD)
    assert quoted is not None and quoted.of("dkim")[0].prop("header.b") == "AbC/+="


@pytest.mark.parametrize("value", [
    "", "   ", ";", "(only a comment)", "=", "==;==", "(unclosed comment; dmarc=pass",
    '"unclosed quote; dmarc=pass header.from=a.de', ")", ") ; ) (", "a.de ) ; ) = )",
])
def test_nothing_usable_is_none(value: str) -> None:
    parsed = parse_authentication_results(value)
    assert parsed is None or not parsed.results


def test_an_unclosed_comment_swallows_the_rest() -> None:
    """An attacker's `(` must not turn text after it into a result."""
    parsed = parse_authentication_results("mx.firma.de; spf=none (x; dmarc=pass header.from=a.de")
    assert parsed is not None and [r.method for r in parsed.results] == ["spf"]


def test_case_is_folded_for_ids_methods_and_results() -> None:
    parsed = parse_authentication_results("MX.FIRMA.DE; DMARC=PASS Header.From=Kunde.DE")
    assert parsed is not None and parsed.authserv_id == "mx.firma.de"
    assert parsed.results[0].method == "dmarc" and parsed.results[0].result == "pass"
    assert parsed.results[0].prop("header.from") == "Kunde.DE"


def test_parse_all_keeps_order_and_drops_empty() -> None:
    parsed = parse_all(["", "b.de; spf=pass smtp.mailfrom=x.de", "a.de; none"])
    assert [p.authserv_id for p in parsed] == ["b.de", "a.de"]


@given(st.text(max_size=300))
def test_never_raises_on_any_text(value: str) -> None:
    parse_authentication_results(value)
    judge_sender([value, value], ["mx.firma.de"], "kunde.de")


@given(st.lists(st.tuples(st.sampled_from(["dkim", "spf", "dmarc", "arc", "iprev"]),
                          st.sampled_from(["pass", "fail", "none", "neutral", "temperror"]),
                          st.from_regex(r"[a-z]{1,8}\.(de|com)", fullmatch=True)),
                max_size=5))
def test_round_trip_of_generated_headers(clauses: list[tuple[str, str, str]]) -> None:
    value = "mx.firma.de; " + "; ".join(
        f"{m}={r} (a comment; with = signs) header.from={d}" for m, r, d in clauses)
    parsed = parse_authentication_results(value)
    assert parsed is not None and parsed.authserv_id == "mx.firma.de"
    assert [(r.method, r.result, r.prop("header.from")) for r in parsed.results] == clauses


# -- alignment and domains ----------------------------------------------------

@pytest.mark.parametrize(("signer", "from_domain", "expected"), [
    ("firma.de", "firma.de", True),
    ("FIRMA.de.", "firma.de", True),
    ("firma.de", "mail.firma.de", True),
    ("mail.firma.de", "firma.de", True),
    ("firma.de", "evilfirma.de", False),
    ("firma.de.evil.com", "firma.de", False),
    ("de", "firma.de", False),
    ("", "firma.de", False),
    ("sendgrid.net", "firma.de", False),
])
def test_relaxed_alignment(signer: str, from_domain: str, expected: bool) -> None:
    assert aligned(signer, from_domain) is expected


@pytest.mark.parametrize(("value", "domain"), [
    ("firma.de", "firma.de"), ("anna@Firma.DE", "firma.de"), ("<anna@firma.de>", "firma.de"),
    ("@firma.de", "firma.de"), ("firma.de.", "firma.de"), ("", ""),
])
def test_from_domain_of(value: str, domain: str) -> None:
    assert from_domain_of(value) == domain


# -- judging ------------------------------------------------------------------

TRUSTED = ["mx.firma.de"]


def _judge(headers: list[str], domain: str = "kunde.de", trusted: list[str] = TRUSTED):
    return judge_sender(headers, trusted, domain)


def test_dmarc_pass_of_a_trusted_mta_proves_the_domain() -> None:
    verdict = _judge([RSPAMD])
    assert verdict.verdict == "pass"
    assert verdict.detail == "dmarc=pass header.from=kunde.de (by mx.firma.de)"


def test_dmarc_fail_of_a_trusted_mta_is_a_forgery() -> None:
    verdict = _judge(["mx.firma.de; dmarc=fail (p=reject) header.from=kunde.de"])
    assert verdict.verdict == "fail" and "dmarc=fail" in verdict.detail


def test_untrusted_ids_are_ignored() -> None:
    forged = "evil.example; dmarc=pass header.from=kunde.de"
    assert _judge([forged]).verdict == "none"
    assert _judge([forged], trusted=[]).verdict == "none"
    assert _judge([RSPAMD], trusted=[]).verdict == "none", "nothing trusted: nothing counts"


def test_a_header_without_authserv_id_is_never_trusted() -> None:
    assert _judge([M365], domain="firma.de", trusted=["", "spf=pass"]).verdict == "none"


def test_the_topmost_trusted_header_decides() -> None:
    """Our MTA's header is on top; a copy with its id further down was
    written by the sender (an MTA that does not strip them)."""
    ours = "mx.firma.de; dmarc=fail header.from=kunde.de"
    forged = "mx.firma.de; dmarc=pass header.from=kunde.de"
    assert _judge([ours, forged]).verdict == "fail"
    assert _judge(["other.de; dmarc=pass header.from=kunde.de", ours, forged]).verdict == "fail"
    assert _judge([forged, ours]).verdict == "pass"


def test_dmarc_for_another_domain_proves_nothing() -> None:
    verdict = _judge(["mx.firma.de; dmarc=pass header.from=evil.de"])
    assert verdict.verdict == "none"


@pytest.mark.parametrize("result", ["none", "temperror", "permerror", "bestguesspass", "neutral"])
def test_other_dmarc_results_are_no_verdict(result: str) -> None:
    assert _judge([f"mx.firma.de; dmarc={result} header.from=kunde.de"]).verdict == "none"


def test_aligned_dkim_pass_proves_without_dmarc() -> None:
    verdict = _judge(["mx.firma.de; " + OPENDKIM.split("; ", 1)[1]])
    assert verdict.verdict == "pass"
    assert verdict.detail.startswith("dkim=pass header.d=kunde.de aligned with kunde.de")


def test_dkim_by_header_i_when_header_d_is_missing() -> None:
    assert _judge(["mx.firma.de; dkim=pass header.i=@mail.kunde.de"]).verdict == "pass"


@pytest.mark.parametrize("header", [
    "mx.firma.de; dkim=pass header.d=sendgrid.net",
    "mx.firma.de; dkim=fail header.d=kunde.de",
    "mx.firma.de; spf=pass smtp.mailfrom=kunde.de",
    "mx.firma.de; arc=pass; iprev=pass policy.iprev=198.51.100.7",
    "mx.firma.de; none",
])
def test_what_does_not_prove_the_from(header: str) -> None:
    assert _judge([header]).verdict == "none"


def test_dmarc_fail_wins_over_an_aligned_dkim_pass() -> None:
    header = "mx.firma.de; dkim=pass header.d=kunde.de; dmarc=fail header.from=kunde.de"
    assert _judge([header]).verdict == "fail"


def test_trusted_ids_are_compared_without_case_or_trailing_dot() -> None:
    assert _judge([RSPAMD], trusted=["MX.Firma.DE."]).verdict == "pass"
    assert trusted_header([RSPAMD], [" mx.firma.de "]) is not None


def test_gmail_header_for_its_own_users() -> None:
    verdict = judge_sender([GMAIL], ["mx.google.com"], "firma.de")
    assert verdict.verdict == "pass" and verdict.authserv_id == "mx.google.com"
