"""parse_mail and looks_like_mail: raw bytes in, ParsedMail out, never an exception.

Test mails are built here as bytes (not with EmailMessage), because the point
is to feed the parser what broken clients really send.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import timeit
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import maildesk.mail.headers as headers_module
import maildesk.mail.parse as parse_module
from maildesk.mail.parse import looks_like_mail, parse_mail
from maildesk.types import Address, ParsedMail

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

DEFAULT_HEADERS: list[tuple[str, bytes]] = [
    ("From", b"Erika Mustermann <erika@example.com>"),
    ("To", b"support@maildesk.example"),
    ("Subject", b"Test"),
    ("Date", b"Mon, 3 Jun 2024 10:00:00 +0200"),
    ("Message-ID", b"<test@example.com>"),
]


def mail(
    *headers: tuple[str, str | bytes],
    body: bytes = b"Hallo\r\n",
    defaults: bool = True,
    content_type: bytes | None = b"text/plain; charset=utf-8",
) -> bytes:
    """A mail with CRLF line ends; given headers replace defaults of the same name."""
    given_names = {name.lower() for name, _ in headers}
    lines: list[bytes] = []
    if defaults:
        lines += [f"{n}: ".encode() + v for n, v in DEFAULT_HEADERS if n.lower() not in given_names]
    for name, value in headers:
        raw = value.encode("utf-8") if isinstance(value, str) else value
        lines.append(name.encode() + b": " + raw)
    if content_type is not None and "content-type" not in given_names:
        lines.append(b"MIME-Version: 1.0")
        lines.append(b"Content-Type: " + content_type)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def multipart(subtype: str, *parts: bytes, boundary: str = "BOUNDARY") -> bytes:
    """Body of a multipart: each part is its own header block + body."""
    out = b""
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out


def part(*headers: str | bytes, body: bytes = b"") -> bytes:
    lines = [h.encode() if isinstance(h, str) else h for h in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def multipart_mail(subtype: str, *parts: bytes, headers: tuple = ()) -> bytes:
    return mail(
        *headers,
        content_type=f'multipart/{subtype}; boundary="BOUNDARY"'.encode(),
        body=multipart(subtype, *parts),
    )


def all_strings(value: object) -> list[str]:
    """Every str reachable from a ParsedMail (fields, tuples, dicts, Address)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, f.name) for f in fields(item))
    return found


def assert_clean(parsed: ParsedMail) -> None:
    """The invariants every result must meet, whatever the input."""
    assert isinstance(parsed, ParsedMail)
    for text in all_strings(parsed):
        text.encode("utf-8")  # no lone surrogates
        assert "\x00" not in text
    assert parsed.date is None or parsed.date.tzinfo is not None
    for address in (*parsed.to, *parsed.cc, *parsed.reply_to):
        assert "@" in address.email and address.email == address.email.lower()
    for attachment in parsed.attachments:
        assert attachment.filename and isinstance(attachment.payload, bytes)


# --------------------------------------------------------------------------
# subject and header decoding
# --------------------------------------------------------------------------

SUBJECT_CASES: list[tuple[bytes, str]] = [
    (b"Plain subject", "Plain subject"),
    (b"  padded   with   spaces  ", "padded with spaces"),
    (b"=?utf-8?Q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
    (b"=?UTF-8?B?R3LDvMOfZQ==?=", "Grüße"),
    (b"=?iso-8859-1?q?Pr=FCfung?=", "Prüfung"),
    (
        b"=?windows-1252?Q?AW:_Pr=FCfung_der_Nebenkostenabrechnung?=",
        "AW: Prüfung der Nebenkostenabrechnung",
    ),
    # iso-8859-1 label read as windows-1252: 0x80 is the euro sign in practice
    (b"=?iso-8859-1?Q?Preis_5_=80?=", "Preis 5 €"),
    # whitespace between adjacent encoded words disappears, around plain text it stays
    (b"=?utf-8?Q?Gr=C3=BC?= =?utf-8?Q?=C3=9Fe?=", "Grüße"),
    (b"Re: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= aus Berlin", "Re: Grüße aus Berlin"),
    (b"Re:=?utf-8?Q?Gr=C3=BC=C3=9Fe?=", "Re:Grüße"),
    # folding and newlines become single spaces
    (b"first line\r\n second line\r\n\tthird", "first line second line third"),
    (b"=?utf-8?Q?one?=\r\n =?utf-8?Q?_two?=", "one two"),
    # broken encoded words: wrong charset label, unknown label, bad base64 padding
    (b"=?utf-8?Q?Pr=FCfung?=", "Prüfung"),
    (b"=?us-ascii?Q?Pr=FCfung?=", "Prüfung"),
    (b"=?x-unknown?Q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
    (b"=?x-unknown?Q?Gr=FC=DFe?=", "Grüße"),
    (b"=?utf-8?B?R3LDvMOfZQ?=", "Grüße"),
    (b"=?utf-8*de?Q?Hallo?=", "Hallo"),
    (b"=?base64?Q?not_a_text_codec?=", "not a text codec"),
    # raw 8-bit bytes: UTF-8, latin-1, and both in one header
    ("Grüße aus Köln".encode(), "Grüße aus Köln"),
    ("Grüße aus Köln".encode("latin-1"), "Grüße aus Köln"),
    ("Grüße von ".encode("latin-1") + "Zoë".encode(), "Grüße von Zoë"),
    # control characters do not survive
    (b"tab\there\x0bvt", "tab here vt"),
    (b"nul\x00byte", "nulbyte"),
]


@pytest.mark.parametrize(("raw_subject", "expected"), SUBJECT_CASES)
def test_subject_decoding(raw_subject: bytes, expected: str) -> None:
    parsed = parse_mail(mail(("Subject", raw_subject)))
    assert parsed.subject == expected
    assert_clean(parsed)


def test_missing_subject_is_empty() -> None:
    parsed = parse_mail(b"From: a@example.com\r\n\r\nbody\r\n")
    assert parsed.subject == ""
    assert "subject" not in parsed.headers


@pytest.mark.parametrize(
    ("raw_subject", "problem_fragment"),
    [
        ("Grüße".encode("latin-1"), "raw 8-bit bytes decoded as windows-1252"),
        (b"=?x-unknown?Q?Gr=FC=DFe?=", "'x-unknown' unknown, decoded as windows-1252"),
        (b"=?utf-8?Q?Pr=FCfung?=", "do not match charset 'utf-8'"),
    ],
)
def test_repaired_subjects_are_reported(raw_subject: bytes, problem_fragment: str) -> None:
    parsed = parse_mail(mail(("Subject", raw_subject)))
    assert any(p.startswith("header Subject:") and problem_fragment in p for p in parsed.problems)


def test_clean_utf8_headers_are_not_problems() -> None:
    parsed = parse_mail(mail(("Subject", "Grüße".encode()), ("From", "Zoë <z@example.com>")))
    assert parsed.problems == ()


def test_headers_dict_lowercase_first_occurrence_decoded() -> None:
    raw = mail(
        ("X-Custom", b"=?utf-8?Q?first_=C3=A4?="),
        ("x-custom", b"second"),
        ("X-Folded", b"a\r\n b"),
    )
    parsed = parse_mail(raw)
    assert parsed.headers["x-custom"] == "first ä"
    assert parsed.headers["x-folded"] == "a b"
    assert parsed.header("X-CUSTOM") == "first ä"
    assert parsed.header("missing") == ""
    assert all(name == name.lower() for name in parsed.headers)


# --------------------------------------------------------------------------
# addresses
# --------------------------------------------------------------------------

ADDRESS_CASES: list[tuple[bytes, list[Address]]] = [
    (b"a@example.com", [Address("a@example.com")]),
    (b"Alice <Alice@Example.COM>", [Address("alice@example.com", "Alice")]),
    (b'"Meier, Klaus" <k@example.com>', [Address("k@example.com", "Meier, Klaus")]),
    (
        b"=?utf-8?Q?M=C3=BCller=2C_J=C3=BCrgen?= <j@example.de>",
        [Address("j@example.de", "Müller, Jürgen")],
    ),
    (b'"=?utf-8?Q?Zo=C3=AB?=" <z@example.com>', [Address("z@example.com", "Zoë")]),
    ("Jürgen <j@example.de>".encode("latin-1"), [Address("j@example.de", "Jürgen")]),
    ("Jürgen <j@example.de>".encode(), [Address("j@example.de", "Jürgen")]),
    (
        b"a@example.com, B <b@example.com>,\r\n c@example.com",
        [Address("a@example.com"), Address("b@example.com", "B"), Address("c@example.com")],
    ),
    (b"a@example.com, A@EXAMPLE.com", [Address("a@example.com")]),  # deduplicated
    (b"not-an-address, b@example.com", [Address("b@example.com")]),
    (b"undisclosed-recipients:;", []),
    (b"Team: a@example.com, b@example.com;", [Address("a@example.com"), Address("b@example.com")]),
    (b"a@example.com (Alice Comment)", [Address("a@example.com", "Alice Comment")]),
    (b"<>", []),
    (b"@", []),
    (b"x@", []),
    # a whole address in an encoded word (broken, but seen)
    (b"=?utf-8?B?QWxpY2UgPGFsaWNlQGV4YW1wbGUuY29tPg==?=", [Address("alice@example.com", "Alice")]),
]


@pytest.mark.parametrize(("raw_to", "expected"), ADDRESS_CASES)
def test_to_addresses(raw_to: bytes, expected: list[Address]) -> None:
    parsed = parse_mail(mail(("To", raw_to)))
    assert list(parsed.to) == expected


def test_address_headers_are_all_parsed() -> None:
    raw = mail(
        ("From", b"Erika <Erika@Example.com>"),
        ("Sender", b"list-bounces@lists.example.org"),
        ("Reply-To", b"Team <team@example.com>, other@example.com"),
        ("Cc", b"c1@example.com"),
        ("Cc", b"c2@example.com"),
    )
    parsed = parse_mail(raw)
    assert parsed.from_ == Address("erika@example.com", "Erika")
    assert parsed.sender == Address("list-bounces@lists.example.org")
    assert parsed.reply_to == (Address("team@example.com", "Team"), Address("other@example.com"))
    assert parsed.cc == (Address("c1@example.com"), Address("c2@example.com"))
    assert parsed.from_.domain == "example.com"


@pytest.mark.parametrize(
    "raw_from", [None, b"", b"undisclosed-recipients:;", b"no address here", b"<>"]
)
def test_unusable_from_is_none_and_reported(raw_from: bytes | None) -> None:
    headers = [("From", raw_from)] if raw_from is not None else []
    raw = mail(*headers) if headers else mail(defaults=False, content_type=None)
    parsed = parse_mail(raw)
    assert parsed.from_ is None
    assert "no usable From address" in parsed.problems


# --------------------------------------------------------------------------
# message ids, date, return path
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_id", "expected"),
    [
        (b"<abc@example.com>", "abc@example.com"),
        (b"  <abc@example.com>  ", "abc@example.com"),
        (b"abc@example.com", "abc@example.com"),
        (b"<abc@example.com> <second@example.com>", "abc@example.com"),
        (b"<\r\n abc@example.com>", "abc@example.com"),
        (b"<>", ""),
        (b"", ""),
    ],
)
def test_message_id(raw_id: bytes, expected: str) -> None:
    assert parse_mail(mail(("Message-ID", raw_id))).message_id == expected


def test_missing_message_id_is_empty_and_not_a_problem() -> None:
    raw = b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"
    parsed = parse_mail(raw)
    assert parsed.message_id == ""
    assert parsed.problems == ()


@pytest.mark.parametrize(
    ("raw_refs", "expected"),
    [
        (b"<a@x> <b@x>", ("a@x", "b@x")),
        (b"<a@x><b@x>", ("a@x", "b@x")),
        (b"<a@x>\r\n <b@x>\r\n\t<c@x>", ("a@x", "b@x", "c@x")),
        (b"<a@x>, <b@x>", ("a@x", "b@x")),
        (b"a@x b@x", ("a@x", "b@x")),
        (b"<a@x> <a@x> <b@x>", ("a@x", "b@x")),
        (b"<a@x> (comment with <junk@y>) <b@x>", ("a@x", "b@x")),
        (b"", ()),
    ],
)
def test_references(raw_refs: bytes, expected: tuple[str, ...]) -> None:
    assert parse_mail(mail(("References", raw_refs))).references == expected


@pytest.mark.parametrize(
    ("raw_irt", "expected"),
    [
        (b"<parent@example.com>", ("parent@example.com",)),
        (b"<parent@example.com> (Erika's message of Mon, 3 Jun)", ("parent@example.com",)),
        (b"Your message of Mon, 3 Jun 2024 <parent@example.com>", ("parent@example.com",)),
        (b"parent@example.com", ("parent@example.com",)),
    ],
)
def test_in_reply_to(raw_irt: bytes, expected: tuple[str, ...]) -> None:
    assert parse_mail(mail(("In-Reply-To", raw_irt))).in_reply_to == expected


def test_many_references_are_capped() -> None:
    refs = b" ".join(b"<id%d@x>" % i for i in range(2000))
    parsed = parse_mail(mail(("References", refs)))
    assert len(parsed.references) == headers_module.MAX_REFERENCES
    assert parsed.references[0] == "id0@x"


@pytest.mark.parametrize(
    ("raw_date", "expected"),
    [
        (
            b"Mon, 3 Jun 2024 10:00:00 +0200",
            datetime(2024, 6, 3, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        ),
        (b"3 Jun 2024 08:00:00 GMT", datetime(2024, 6, 3, 8, 0, tzinfo=UTC)),
        (b"Mon, 3 Jun 2024 08:00:00 -0000", datetime(2024, 6, 3, 8, 0, tzinfo=UTC)),
        (b"Mon, 03 Jun 2024 10:00:00 +0200 (CEST)", datetime(2024, 6, 3, 8, 0, tzinfo=UTC)),
        (b"yesterday at noon", None),
        (b"Mon, 3 Foo 2024 10:00:00 +0200", None),
        (b"", None),
    ],
)
def test_date(raw_date: bytes, expected: datetime | None) -> None:
    parsed = parse_mail(mail(("Date", raw_date)))
    assert parsed.date == expected
    if parsed.date is not None:
        assert parsed.date.tzinfo is not None
    if raw_date and expected is None:
        assert any(p.startswith("header Date:") for p in parsed.problems)


def test_date_keeps_the_senders_offset() -> None:
    parsed = parse_mail(mail(("Date", b"Mon, 3 Jun 2024 10:00:00 +0200")))
    assert parsed.date is not None
    assert parsed.date.utcoffset() == timedelta(hours=2)


def test_missing_date_is_none_without_problem() -> None:
    parsed = parse_mail(b"From: a@example.com\r\n\r\nx\r\n")
    assert parsed.date is None
    assert parsed.problems == ()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        (b"<>", ""),
        (b"", ""),
        (b"<Bounce+123@Lists.Example.org>", "bounce+123@lists.example.org"),
        (b"bounce@example.org", "bounce@example.org"),
        (b" < bounce@example.org > ", "bounce@example.org"),
    ],
)
def test_return_path(header: bytes | None, expected: str | None) -> None:
    headers = [("Return-Path", header)] if header is not None else []
    assert parse_mail(mail(*headers)).return_path == expected


# --------------------------------------------------------------------------
# body text and charsets
# --------------------------------------------------------------------------

CHARSET_CASES: list[tuple[bytes | None, bytes, str, bool]] = [
    # declared charset, body bytes, expected text, a problem is reported
    (b"utf-8", "Grüße €".encode(), "Grüße €", False),
    (b'"UTF-8"', "Grüße €".encode(), "Grüße €", False),
    (b"iso-8859-1", "Grüße".encode("latin-1"), "Grüße", False),
    (b"iso-8859-1", b"5 \x80 \x93quoted\x94", "5 € “quoted”", False),
    (b"iso-8859-15", "Preis 5 €".encode("iso-8859-15"), "Preis 5 €", False),
    (b"windows-1252", "„Müll“ – 5 €".encode("cp1252"), "„Müll“ – 5 €", False),
    (b"us-ascii", b"plain ascii", "plain ascii", False),
    (None, b"plain ascii", "plain ascii", False),
    (None, "Grüße".encode(), "Grüße", False),  # unlabelled UTF-8 is the norm
    (None, "Grüße".encode("cp1252"), "Grüße", True),
    (b"us-ascii", "Grüße".encode("cp1252"), "Grüße", True),
    (b"us-ascii", "Grüße".encode(), "Grüße", True),
    (b"utf-8", "Größe 5 €".encode("cp1252"), "Größe 5 €", True),
    (b"utf-8", b"undefined in cp1252: \x81\x8d", "undefined in cp1252: \x81\x8d", True),
    (b"x-unknown-foo", "Straße".encode("latin-1"), "Straße", True),
    (b"x-unknown-foo", "Straße".encode(), "Straße", True),
    (b"base64", b"not a text codec", "not a text codec", True),
    (b"utf-7", b"+2AA-", "+2AA-", True),  # would decode to a lone surrogate
    (b"koi8-r", "Привет".encode("koi8-r"), "Привет", False),
    (b"shift_jis", "日本語".encode("shift_jis"), "日本語", False),
    (b"utf-8", b"\xef\xbb\xbfwith BOM", "with BOM", False),
]


@pytest.mark.parametrize(("charset", "body", "expected", "problem"), CHARSET_CASES)
def test_body_charsets(charset: bytes | None, body: bytes, expected: str, problem: bool) -> None:
    content_type = b"text/plain" + (b"; charset=" + charset if charset else b"")
    parsed = parse_mail(mail(content_type=content_type, body=body))
    assert parsed.text == expected
    assert "\ufffd" not in parsed.text
    assert bool(parsed.problems) == problem, parsed.problems
    assert_clean(parsed)


def test_charset_problem_names_the_part() -> None:
    raw = multipart_mail(
        "mixed",
        part("Content-Type: text/plain; charset=utf-8", body=b"ok"),
        part("Content-Type: text/plain; charset=foo", body="Straße".encode("latin-1")),
    )
    parsed = parse_mail(raw)
    assert "part 2: charset 'foo' unknown, decoded as windows-1252" in parsed.problems


@pytest.mark.parametrize(
    ("cte", "body", "expected"),
    [
        (b"quoted-printable", b"Gr=C3=BC=C3=9Fe, soft=\r\nbreak", "Grüße, softbreak"),
        (b"base64", base64.b64encode("Grüße".encode()), "Grüße"),
        (b"BASE64 ", base64.b64encode("Grüße".encode()), "Grüße"),
        (b"8bit", "Grüße".encode(), "Grüße"),
        (b"7bit", b"plain", "plain"),
        (b"binary", "Grüße".encode(), "Grüße"),
    ],
)
def test_transfer_encodings(cte: bytes, body: bytes, expected: str) -> None:
    parsed = parse_mail(mail(("Content-Transfer-Encoding", cte), body=body))
    assert parsed.text == expected
    assert parsed.problems == ()


@pytest.mark.parametrize(
    ("body", "expected_text"),
    [
        # invalid characters inside: skipped
        (b"R3LDvM!!OfZQ==", "Grüße"),
        # missing padding (cut off): decoded as far as it goes
        (b"R3LDvMOfZQ", "Grüße"),
        # a lone trailing character carries no byte
        (b"R3LDvMOfZSBhdXM=X", "Grüße aus"),
        (b"R3LDvMOfZSBhdXMx" + b"Q", "Grüße aus1"),
        # garbage only
        (b"!!!***", ""),
    ],
)
def test_broken_base64_body(body: bytes, expected_text: str) -> None:
    parsed = parse_mail(mail(("Content-Transfer-Encoding", b"base64"), body=body))
    assert parsed.text == expected_text
    assert any("broken base64" in p for p in parsed.problems)


@pytest.mark.parametrize(
    ("body", "expected_text"),
    [
        (b"Gr=FC=DFe =ZZ Ende", "Grüße =ZZ Ende"),
        (b"abc =3", "abc =3"),
        (b"=\xfc raw", "=ü raw"),
    ],
)
def test_broken_quoted_printable(body: bytes, expected_text: str) -> None:
    raw = mail(
        ("Content-Transfer-Encoding", b"quoted-printable"),
        content_type=b"text/plain; charset=iso-8859-1",
        body=body,
    )
    parsed = parse_mail(raw)
    assert parsed.text == expected_text
    assert any("invalid quoted-printable" in p for p in parsed.problems)


def test_unknown_transfer_encoding_is_read_as_is() -> None:
    parsed = parse_mail(mail(("Content-Transfer-Encoding", b"x-magic"), body=b"text"))
    assert parsed.text == "text"
    assert any("unknown transfer encoding 'x-magic'" in p for p in parsed.problems)


def test_line_endings_are_normalised() -> None:
    assert parse_mail(mail(body=b"a\r\nb\rc\nd")).text == "a\nb\nc\nd"


# --------------------------------------------------------------------------
# text / html selection
# --------------------------------------------------------------------------

PLAIN = part("Content-Type: text/plain; charset=utf-8", body="PLAIN Grüße".encode())
HTML = part(
    "Content-Type: text/html; charset=utf-8",
    body="<p>HTML <b>Grüße</b></p><script>evil()</script>".encode(),
)


def test_alternative_uses_plain_for_text_and_html_for_html() -> None:
    parsed = parse_mail(multipart_mail("alternative", PLAIN, HTML))
    assert parsed.text == "PLAIN Grüße"
    assert "<b>Grüße</b>" in parsed.html
    assert "evil" not in parsed.html


def test_html_only_gives_rendered_text() -> None:
    raw = mail(
        content_type=b"text/html; charset=utf-8",
        body=b"<p>Erster Absatz</p><p>Zweiter <b>Absatz</b></p><script>x()</script>",
    )
    parsed = parse_mail(raw)
    assert parsed.text == "Erster Absatz\n\nZweiter Absatz"
    assert parsed.html.startswith("<p>Erster Absatz</p>")
    assert "script" not in parsed.html


def test_empty_plain_alternative_falls_back_to_html_rendering() -> None:
    empty_plain = part("Content-Type: text/plain; charset=utf-8", body=b"\r\n")
    parsed = parse_mail(multipart_mail("alternative", empty_plain, HTML))
    assert parsed.text == "HTML Grüße"


def test_plain_only_has_no_html() -> None:
    parsed = parse_mail(mail(body=b"just text"))
    assert parsed.html == ""
    assert parsed.text == "just text"


def test_several_plain_parts_are_joined_in_order() -> None:
    raw = multipart_mail(
        "mixed",
        part("Content-Type: text/plain", body=b"first"),
        part("Content-Type: image/png", "Content-Transfer-Encoding: base64", body=b"iVBORw=="),
        part("Content-Type: text/plain", body=b"second"),
    )
    parsed = parse_mail(raw)
    assert parsed.text == "first\nsecond"
    assert [a.content_type for a in parsed.attachments] == ["image/png"]


def test_named_text_attachment_is_not_body() -> None:
    raw = multipart_mail(
        "mixed",
        PLAIN,
        part(
            "Content-Type: text/plain; name=log.txt",
            "Content-Disposition: attachment; filename=log.txt",
            body=b"LOGFILE CONTENT",
        ),
        part("Content-Type: text/html", "Content-Disposition: attachment", body=b"<p>ATT</p>"),
    )
    parsed = parse_mail(raw)
    assert "LOGFILE" not in parsed.text
    assert parsed.html == ""
    assert [a.filename for a in parsed.attachments] == ["log.txt", "attachment.html"]
    assert parsed.attachments[0].payload == b"LOGFILE CONTENT"


def test_named_inline_text_is_body_and_attachment() -> None:
    raw = multipart_mail(
        "mixed",
        part(
            "Content-Type: text/plain; charset=utf-8",
            "Content-Disposition: inline; filename=notes.txt",
            body=b"INLINE NOTES",
        ),
    )
    parsed = parse_mail(raw)
    assert parsed.text == "INLINE NOTES"
    assert [a.filename for a in parsed.attachments] == ["notes.txt"]


# --------------------------------------------------------------------------
# attachments
# --------------------------------------------------------------------------

PDF = b"%PDF-1.4\n" + bytes(range(256))


def attachment_part(
    disposition: bytes, *, ctype: bytes = b"application/pdf", data: bytes = PDF
) -> bytes:
    return part(
        b"Content-Type: " + ctype,
        b"Content-Disposition: " + disposition,
        b"Content-Transfer-Encoding: base64",
        body=base64.encodebytes(data),
    )


FILENAME_CASES: list[tuple[bytes, str, str]] = [
    # Content-Disposition, original_filename, filename
    (b'attachment; filename="report.pdf"', "report.pdf", "report.pdf"),
    (b"attachment; filename=report.pdf", "report.pdf", "report.pdf"),
    (
        b"attachment; filename*=utf-8''Pr%C3%BCfbericht_M%C3%A4rz.pdf",
        "Prüfbericht_März.pdf",
        "Prüfbericht_März.pdf",
    ),
    (
        b"attachment; filename*=iso-8859-1'de'Pr%FCfbericht.pdf",
        "Prüfbericht.pdf",
        "Prüfbericht.pdf",
    ),
    (b"attachment; filename*=utf-8''Pr%FCfbericht.pdf", "Prüfbericht.pdf", "Prüfbericht.pdf"),
    (
        b"attachment; filename*0*=utf-8''Pr%C3%BCf; filename*1=bericht.pdf",
        "Prüfbericht.pdf",
        "Prüfbericht.pdf",
    ),
    (
        b'attachment; filename="=?windows-1252?Q?Pr=FCfbericht.pdf?="',
        "Prüfbericht.pdf",
        "Prüfbericht.pdf",
    ),
    (
        b'attachment; filename="=?utf-8?B?UHLDvGZiZXJpY2h0LnBkZg==?="',
        "Prüfbericht.pdf",
        "Prüfbericht.pdf",
    ),
    ('attachment; filename="Prüfbericht.pdf"'.encode(), "Prüfbericht.pdf", "Prüfbericht.pdf"),
    (
        'attachment; filename="Prüfbericht.pdf"'.encode("latin-1"),
        "Prüfbericht.pdf",
        "Prüfbericht.pdf",
    ),
    (b'attachment; filename="../../etc/passwd"', "../../etc/passwd", "passwd"),
    (b'attachment; filename="a\\\\b\\\\c.pdf"', "a\\b\\c.pdf", "c.pdf"),
    (b"attachment; filename*=utf-8''x%00y%1b.pdf", "x\x00y\x1b.pdf".replace("\x00", ""), "xy.pdf"),
    (b'attachment; filename=" spaced  name .pdf "', "spaced  name .pdf", "spaced name .pdf"),
    (b"attachment", "", "attachment.pdf"),
]


@pytest.mark.parametrize(("disposition", "original", "filename"), FILENAME_CASES)
def test_attachment_filenames(disposition: bytes, original: str, filename: str) -> None:
    parsed = parse_mail(multipart_mail("mixed", PLAIN, attachment_part(disposition)))
    assert len(parsed.attachments) == 1
    attachment = parsed.attachments[0]
    assert attachment.original_filename == original
    assert attachment.filename == filename
    assert attachment.payload == PDF
    assert attachment.content_type == "application/pdf"
    assert attachment.inline is False
    assert_clean(parsed)


def test_filename_from_content_type_name() -> None:
    raw = multipart_mail(
        "mixed",
        PLAIN,
        part(
            b'Content-Type: application/pdf; name="=?windows-1252?Q?M=E4rz.pdf?="',
            b"Content-Transfer-Encoding: base64",
            body=base64.encodebytes(PDF),
        ),
    )
    (attachment,) = parse_mail(raw).attachments
    assert attachment.filename == "März.pdf"


def test_long_filename_keeps_extension() -> None:
    name = b"x" * 500 + b".pdf"
    parsed = parse_mail(
        multipart_mail("mixed", attachment_part(b'attachment; filename="' + name + b'"'))
    )
    (attachment,) = parsed.attachments
    assert attachment.filename.endswith(".pdf")
    assert len(attachment.filename.encode()) <= 200
    assert attachment.original_filename == name.decode()


@pytest.mark.parametrize(
    ("ctype", "filename"),
    [
        (b"image/png", "attachment.png"),
        (b"text/calendar; method=REQUEST", "attachment.ics"),
        (b"application/x-whatever", "attachment"),
    ],
)
def test_unnamed_attachments_get_a_stable_name(ctype: bytes, filename: str) -> None:
    raw = multipart_mail(
        "mixed",
        PLAIN,
        part(b"Content-Type: " + ctype, b"Content-Transfer-Encoding: base64", body=b"AAAA"),
    )
    names = [a.filename for a in parse_mail(raw).attachments]
    assert names == [filename]
    assert names == [a.filename for a in parse_mail(raw).attachments]  # deterministic


def test_attachment_payloads_are_decoded_bytes() -> None:
    binary = bytes(range(256)) * 3
    raw = multipart_mail(
        "mixed",
        PLAIN,
        attachment_part(
            b"attachment; filename=a.bin", ctype=b"application/octet-stream", data=binary
        ),
        part(
            b"Content-Type: application/octet-stream; name=q.bin",
            b"Content-Transfer-Encoding: quoted-printable",
            body=b"=00=01=FFabc",
        ),
        part(b"Content-Type: application/octet-stream; name=r.bin", body="raw ä".encode()),
    )
    payloads = {a.filename: a.payload for a in parse_mail(raw).attachments}
    assert payloads == {"a.bin": binary, "q.bin": b"\x00\x01\xffabc", "r.bin": "raw ä".encode()}


def test_broken_base64_attachment_decodes_what_it_can() -> None:
    data = bytes(range(256)) * 4
    truncated = base64.b64encode(data)[:1001]
    raw = multipart_mail(
        "mixed",
        PLAIN,
        part(
            b"Content-Type: application/octet-stream; name=cut.bin",
            b"Content-Transfer-Encoding: base64",
            body=truncated,
        ),
    )
    parsed = parse_mail(raw)
    (attachment,) = parsed.attachments
    assert attachment.payload == data[:750]
    assert "part 2: broken base64, decoded what was readable" in parsed.problems


INLINE_IMAGE = part(
    b"Content-Type: image/png; name=logo.png",
    b"Content-ID: <logo@example.com>",
    b"Content-Disposition: inline; filename=logo.png",
    b"Content-Transfer-Encoding: base64",
    body=b"iVBORw0KGgo=",
)


def test_cid_image_in_related_is_inline() -> None:
    html = part(b"Content-Type: text/html", body=b'<p>Logo:</p><img src="cid:logo@example.com">')
    related = part(
        b'Content-Type: multipart/related; boundary="REL"',
        body=multipart("related", html, INLINE_IMAGE, boundary="REL"),
    )
    parsed = parse_mail(multipart_mail("mixed", related))
    (image,) = parsed.attachments
    assert image.inline is True
    assert image.content_id == "logo@example.com"
    assert image.filename == "logo.png"
    assert image.payload == b"\x89PNG\r\n\x1a\n"
    assert 'src="cid:logo@example.com"' in parsed.html


def test_cid_image_referenced_from_html_outside_related_is_inline() -> None:
    html = part(b"Content-Type: text/html", body=b'<img src="CID:logo@example.com">')
    parsed = parse_mail(multipart_mail("mixed", html, INLINE_IMAGE))
    assert parsed.attachments[0].inline is True


@pytest.mark.parametrize(
    "headers",
    [
        # a normal attachment next to the body
        (b"Content-Type: image/png; name=photo.png", b"Content-Disposition: attachment"),
        # Apple Mail style inline image in multipart/mixed, never referenced by the HTML
        (b"Content-Type: image/png; name=photo.png", b"Content-Disposition: inline"),
        # a Content-ID the HTML does not use, outside multipart/related
        (b"Content-Type: image/png; name=photo.png", b"Content-ID: <unused@x>"),
    ],
)
def test_unreferenced_images_in_mixed_are_not_inline(headers: tuple[bytes, ...]) -> None:
    image = part(*headers, b"Content-Transfer-Encoding: base64", body=b"iVBORw0KGgo=")
    parsed = parse_mail(multipart_mail("mixed", HTML, image))
    assert parsed.attachments[0].inline is False


# --------------------------------------------------------------------------
# embedded messages
# --------------------------------------------------------------------------

INNER = (
    b"From: Kunde <kunde@example.org>\r\n"
    b"Subject: =?utf-8?Q?Re:_Drucker_1/2_kaputt_=E2=80=93_dringend?=\r\n"
    b"Message-ID: <inner@example.org>\r\n"
    b'Content-Type: multipart/mixed; boundary="INNER"\r\n'
    b"\r\n"
    b"--INNER\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"INNER TEXT must not leak\r\n"
    b"--INNER\r\n"
    b"Content-Type: application/pdf; name=inner.pdf\r\n"
    b"Content-Disposition: attachment; filename=inner.pdf\r\n"
    b"\r\n"
    b"%PDF inner\r\n"
    b"--INNER--\r\n"
)


@pytest.mark.parametrize(
    "rfc822_headers",
    [
        (b"Content-Type: message/rfc822",),
        (b"Content-Type: message/rfc822", b"Content-Disposition: inline"),
        (b"Content-Type: message/rfc822", b"Content-Disposition: attachment"),
    ],
)
def test_forwarded_message_is_one_attachment(rfc822_headers: tuple[bytes, ...]) -> None:
    raw = multipart_mail("mixed", PLAIN, part(*rfc822_headers, body=INNER))
    parsed = parse_mail(raw)
    assert parsed.text == "PLAIN Grüße"
    assert "INNER" not in parsed.text
    (forwarded,) = parsed.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.filename == "Re_ Drucker 1_2 kaputt – dringend.eml"
    assert forwarded.original_filename == ""
    assert forwarded.payload == INNER
    assert parse_mail(forwarded.payload).subject == "Re: Drucker 1/2 kaputt – dringend"


def test_forwarded_message_with_own_name_keeps_it() -> None:
    raw = multipart_mail(
        "mixed",
        PLAIN,
        part(
            b"Content-Type: message/rfc822; name=Weiterleitung.eml",
            b"Content-Disposition: attachment",
            body=INNER,
        ),
    )
    (forwarded,) = parse_mail(raw).attachments
    assert forwarded.filename == "Weiterleitung.eml"


def test_forwarded_message_without_subject() -> None:
    inner = b"From: a@example.com\r\n\r\nbody\r\n"
    raw = multipart_mail("mixed", PLAIN, part(b"Content-Type: message/rfc822", body=inner))
    (forwarded,) = parse_mail(raw).attachments
    assert forwarded.filename == "forwarded message.eml"


def test_delivery_status_report_is_an_attachment_not_text() -> None:
    status = part(
        b"Content-Type: message/delivery-status",
        body=(
            b"Reporting-MTA: dns; mx.example.com\r\n\r\n"
            b"Final-Recipient: rfc822; x@example.com\r\nStatus: 5.1.1\r\n"
        ),
    )
    raw = multipart_mail(
        "report", part(b"Content-Type: text/plain", body=b"Delivery failed"), status
    )
    parsed = parse_mail(raw)
    assert parsed.text == "Delivery failed"
    (report,) = parsed.attachments
    assert report.content_type == "message/delivery-status"
    assert report.filename == "attachment.txt"
    assert b"Status: 5.1.1" in report.payload


# --------------------------------------------------------------------------
# robustness
# --------------------------------------------------------------------------


def nested_mail(depth: int) -> bytes:
    body = b""
    for level in range(depth):
        body += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level, level + 1)
    body += b"--b%d\r\nContent-Type: text/plain\r\n\r\ninnermost\r\n" % depth
    for level in range(depth, -1, -1):
        body += b"--b%d--\r\n" % level
    return mail(("Subject", b"deep"), content_type=b"multipart/mixed; boundary=b0", body=body)


def test_moderate_nesting_is_parsed() -> None:
    parsed = parse_mail(nested_mail(50))
    assert parsed.text == "innermost"
    assert parsed.problems == ()


def test_deep_nesting_falls_back_to_headers() -> None:
    parsed = parse_mail(nested_mail(3000))
    assert parsed.subject == "deep"
    assert parsed.from_ == Address("erika@example.com", "Erika Mustermann")
    assert any("nested too deeply" in p for p in parsed.problems)
    assert_clean(parsed)


def test_mailparser_failure_falls_back_to_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(raw: bytes) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(parse_module.mailparser, "parse_from_bytes", explode)
    parsed = parse_mail(mail(("Subject", b"=?utf-8?Q?Gr=C3=BC=C3=9Fe?="), body=b"still here"))
    assert parsed.subject == "Grüße"
    assert parsed.text == "still here"
    assert "mail-parser failed (ValueError); read with the stdlib parser" in parsed.problems


def test_mailparser_recursion_error_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def recurse(raw: bytes) -> None:
        raise RecursionError

    monkeypatch.setattr(parse_module.mailparser, "parse_from_bytes", recurse)
    parsed = parse_mail(mail(body=b"text"))
    assert parsed.text == "text"
    assert "MIME structure nested too deeply for mail-parser" in parsed.problems


def test_body_failure_still_gives_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    real_walk = parse_module._walk
    calls = []

    def fail_once(*args: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("walk failed")
        return real_walk(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(parse_module, "_walk", fail_once)
    parsed = parse_mail(mail(("Subject", b"kept"), body=b"lost"))
    assert parsed.subject == "kept"
    assert parsed.text == ""
    assert any("body could not be read (RuntimeError)" in p for p in parsed.problems)


def test_total_failure_gives_empty_mail(monkeypatch: pytest.MonkeyPatch) -> None:
    def always_fail(*args: object) -> None:
        raise RuntimeError("nothing works")

    monkeypatch.setattr(parse_module, "_build", always_fail)
    parsed = parse_mail(mail())
    assert parsed.subject == "" and parsed.from_ is None and parsed.attachments == ()
    assert any("headers could not be read" in p for p in parsed.problems)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 1000,
        b"\r\n\r\n\r\n",
        bytes(range(256)) * 10,
        b"From: \x00@\x00\r\nSubject: \x00\x00\r\n\r\n\x00body\x00",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all",
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
        b"--x\r\nContent-Type: text/plain\r\n\r\nunclosed",
        b"Content-Type: text/plain; charset=\xff\xfe\r\n\r\nx",
        b"Content-Type: text/plain; charset*=''%FF\r\n\r\nx",
        b'Content-Type: text/plain; charset="utf-16"\r\n\r\n\xff\xfe\x00\xd8',
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nRnJvbTogYQ==",
        b"Content-Disposition: attachment; filename*0*=bogus''%ZZ; filename*5=x\r\n\r\n",
        b"Subject: " + b"=?utf-8?Q?" * 5000 + b"\r\n\r\n",
        b"To: " + b"<" * 10000 + b"\r\n\r\n",
        b"References: " + b"<a@b>" * 50000 + b"\r\n\r\n",
        b"From: " + b"a" * 200_000 + b"@example.com\r\n\r\n",
    ],
)
def test_hostile_inputs_never_raise(raw: bytes) -> None:
    assert_clean(parse_mail(raw))


def test_nul_bytes_are_removed_and_reported() -> None:
    parsed = parse_mail(mail(("Subject", b"a\x00b"), body=b"te\x00xt"))
    assert parsed.subject == "ab"
    assert parsed.text == "text"
    assert "mail body: NUL bytes removed" in parsed.problems


def test_problems_are_capped() -> None:
    parts = [
        part(f"Content-Type: text/plain; charset=bad{i}".encode(), body=b"\xff") for i in range(100)
    ]
    parsed = parse_mail(multipart_mail("mixed", *parts))
    assert len(parsed.problems) == parse_module.MAX_PROBLEMS
    assert parsed.problems[-1].startswith("... and ")


def test_non_bytes_input_is_accepted() -> None:
    assert parse_mail(bytearray(mail(("Subject", b"ba")))).subject == "ba"
    assert parse_mail(memoryview(mail(("Subject", b"mv")))).subject == "mv"
    assert parse_mail(None).problems == ("input is not bytes",)  # type: ignore[arg-type]


def test_mbox_from_line_is_tolerated() -> None:
    raw = b"From erika@example.com Mon Jun  3 10:00:00 2024\r\n" + mail(("Subject", b"mbox"))
    parsed = parse_mail(raw)
    assert parsed.subject == "mbox"
    assert parsed.from_ == Address("erika@example.com", "Erika Mustermann")


def test_lf_only_mail() -> None:
    raw = mail(("Subject", b"lf")).replace(b"\r\n", b"\n")
    parsed = parse_mail(raw)
    assert (parsed.subject, parsed.text) == ("lf", "Hallo\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_clean(parse_mail(raw))


_HEADER_NAMES = st.sampled_from(
    ["From", "To", "Cc", "Subject", "Date", "Message-ID", "References", "In-Reply-To",
     "Return-Path", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "X-Any"]
)  # fmt: skip
_VALUE_PIECES = st.sampled_from(
    [b"a@b.de", b"<x@y>", b"=?utf-8?Q?=C3=BC?=", b"=?x?B?!!?=", b"\xfc", b"\xc3\xa4", b"\x00",
     b"multipart/mixed; boundary=B", b"text/plain; charset=foo", b"base64", b"quoted-printable",
     b"attachment; filename*=utf-8''%FF", b"\r\n ", b'"', b",", b";", b"<", b">", b" "]
)  # fmt: skip
_BODY_PIECES = st.sampled_from(
    [b"--B\r\n", b"--B--\r\n", b"Content-Type: text/html\r\n\r\n", b"<p>x</p>", b"=ZZ",
     b"QUJD", b"!!", b"\xff\xfe", b"\r\n", b"Content-Type: message/rfc822\r\n\r\n", b"text"]
)  # fmt: skip


@st.composite
def mail_shaped(draw: st.DrawFn) -> bytes:
    headers = draw(
        st.lists(
            st.tuples(_HEADER_NAMES, st.lists(_VALUE_PIECES, max_size=6).map(b"".join)),
            max_size=10,
        )
    )
    body = b"".join(draw(st.lists(_BODY_PIECES, max_size=30)))
    return b"".join(n.encode() + b": " + v + b"\r\n" for n, v in headers) + b"\r\n" + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mail_shaped())
def test_mail_shaped_garbage_never_raises(raw: bytes) -> None:
    assert_clean(parse_mail(raw))


# --------------------------------------------------------------------------
# looks_like_mail
# --------------------------------------------------------------------------

LOOKS_LIKE_MAIL: list[tuple[bytes, bool]] = [
    (b"", False),
    (b"   \r\n\t\r\n  ", False),
    (b"\x00" * 64, False),
    (bytes(range(256)), False),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", False),
    (b"\x89PNG\r\n\x1a\n\x00\x00", False),
    (b"Hello, this is just some text.\nNo headers here.", False),
    (b"Dear Sir: please find attached", False),  # colon, but spaces in the "name"
    (b'{"subject": "json", "from": "x"}', False),
    (b"Unknown-Header: value\r\nAnother: one\r\n\r\nbody", False),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n", False),
    (b"From: a@example.com\r\n\r\nbody", True),
    (b"Subject: only a subject\r\n\r\n", True),
    (b"Received: from x by y; Mon, 3 Jun 2024\r\nX: y\r\n\r\n", True),
    (b"\r\n\r\nFrom: leading blank lines@example.com\r\n\r\n", True),
    (b"From erika@example.com Mon Jun  3 10:00:00 2024\nFrom: erika@example.com\n\nx", True),
    (b"\xef\xbb\xbfSubject: with BOM\r\n\r\n", True),
    (b"X-Mailer: foo\r\nX-Other: bar\r\nTo: support@example.com\r\n\r\n", True),
    (b"Subject: Gr\xfc\xdfe\r\nFrom: J\xfcrgen <j@example.de>\r\n\r\n", True),
    (b"DKIM-Signature: v=1;\r\n\ta=rsa-sha256\r\nFrom: x@y\r\n\r\n", True),
    (b"Subject : space before colon\r\n\r\n", True),
    (b"X-Folded: a\r\n  continued\r\nDate: Mon, 3 Jun 2024 10:00:00 +0200\r\n\r\n", True),
    (b"To: a@b\r\nno header body without blank line", True),
]


@pytest.mark.parametrize(("raw", "expected"), LOOKS_LIKE_MAIL)
def test_looks_like_mail(raw: bytes, expected: bool) -> None:
    assert looks_like_mail(raw) is expected


def test_looks_like_mail_accepts_every_builder_mail() -> None:
    assert looks_like_mail(mail())
    assert looks_like_mail(mail(defaults=False, content_type=b"text/plain"))


# --------------------------------------------------------------------------
# performance
# --------------------------------------------------------------------------


def test_parse_is_fast_for_a_plain_5kb_mail() -> None:
    """Budget ~1-2 ms per ordinary mail; assert with a wide margin for slow CI."""
    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 80)[:4500].encode()
    raw = mail(
        ("Received", b"from mx.example.com (mx.example.com [203.0.113.5]) by mail.example.org"),
        body=body,
    )
    assert 4500 < len(raw) < 5500
    parse_mail(raw)  # warm-up
    per_mail = timeit.timeit(lambda: parse_mail(raw), number=50) / 50
    assert per_mail < 0.02, f"{per_mail * 1000:.2f} ms per mail"


def test_attachment_hash_matches_payload() -> None:
    """sha256 of what we decoded equals sha256 of what the sender encoded."""
    raw = multipart_mail("mixed", PLAIN, attachment_part(b"attachment; filename=x.pdf"))
    (attachment,) = parse_mail(raw).attachments
    assert hashlib.sha256(attachment.payload).digest() == hashlib.sha256(PDF).digest()
    assert attachment.size == len(PDF)


def test_a_handled_fallback_is_one_warning_line_and_the_traceback_is_for_debug(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Ops read a traceback at WARNING as a crash (issue 19): the fallback
    says what happened and which mail in one line; DEBUG has the rest."""
    def explode(raw: bytes) -> None:
        raise ValueError("boom in the header walk")

    monkeypatch.setattr(parse_module.mailparser, "parse_from_bytes", explode)
    with caplog.at_level(logging.DEBUG, logger="maildesk.mail"):
        parse_mail(mail(("Message-ID", b"<odd-1@kunde.de>"), body=b"still here"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    (warning,) = warnings
    assert warning.exc_info is None
    line = warning.getMessage()
    assert "mail-parser failed" in line and "ValueError: boom in the header walk" in line
    assert "<odd-1@kunde.de>" in line
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(debug) == 1 and "boom" in str(debug[0].exc_info[1])
