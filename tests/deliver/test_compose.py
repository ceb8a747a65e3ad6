"""compose(): the message the worker sends, parsed back the way a receiving
mail server and client see it; thread_index(): Outlook's conversation index."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.deliver.compose import (
    MAX_REFERENCES,
    OutgoingMail,
    compose,
    compose_bytes,
    thread_index,
)
from maildesk.deliver.render import Rendered

RENDERED = Rendered(
    subject="[#10001] Störung am Drucker – Größe",
    text="## Bitte oberhalb dieser Zeile antworten ##\n\nGrüße aus Köln\n[ref:10001.abc]\n",
    html='<!DOCTYPE html>\n<html lang="de"><body><p>Grüße aus Köln</p></body></html>\n',
)
CREATED = datetime(2026, 11, 2, 9, 15, tzinfo=UTC)
ROOT = "md.10001.root.sig@support.example"


def arguments(**changes: Any) -> dict[str, Any]:
    """compose()'s keyword arguments for a typical agent reply, changed."""
    values: dict[str, Any] = {
        "rendered": RENDERED,
        "from_address": "support@example.com",
        "from_name": "Müller Support",
        "to": ["Jürgen Größe <juergen@example.de>"],
        "cc": ["kollegin@example.de", "JUERGEN@example.de"],
        "reply_to": "support+10001-abcdefghijklm@example.com",
        "message_id": "md.10001.ff00.sig@support.example",
        "in_reply_to": "<customer-2@mail.example.de>",
        "references": [ROOT, "customer-1@mail.example.de", "customer-2@mail.example.de"],
        "thread_topic": "Störung am Drucker – Größe",
        "thread_index": thread_index(ROOT, CREATED, [CREATED + timedelta(hours=1)]),
        "auto_submitted": "auto-replied",
        "date": CREATED + timedelta(hours=1),
        "extra_headers": {"X-Maildesk-Ticket": "10001"},
    }
    values.update(changes)
    return values


def build(**changes: Any) -> EmailMessage:
    return compose(OutgoingMail(**arguments(**changes)))


def parsed(msg: EmailMessage) -> EmailMessage:
    raw = msg.as_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def raw_headers(msg: EmailMessage) -> str:
    return msg.as_bytes().split(b"\r\n\r\n", 1)[0].decode("ascii")


def test_headers_survive_a_round_trip() -> None:
    message = parsed(build())
    assert str(message["From"]) == "Müller Support <support@example.com>"
    assert message["From"].addresses[0].display_name == "Müller Support"
    assert str(message["To"]) == "Jürgen Größe <juergen@example.de>"
    assert str(message["Cc"]) == "kollegin@example.de"  # the To address is not repeated
    assert str(message["Reply-To"]) == "support+10001-abcdefghijklm@example.com"
    assert str(message["Subject"]) == RENDERED.subject
    assert parsedate_to_datetime(str(message["Date"])) == CREATED + timedelta(hours=1)
    assert message["Message-ID"] == "<md.10001.ff00.sig@support.example>"
    assert message["In-Reply-To"] == "<customer-2@mail.example.de>"
    assert str(message["References"]).split() == [
        f"<{ROOT}>", "<customer-1@mail.example.de>", "<customer-2@mail.example.de>"]
    assert str(message["Thread-Topic"]) == "Störung am Drucker – Größe"
    assert message["Thread-Index"] == thread_index(ROOT, CREATED, [CREATED + timedelta(hours=1)])
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-Maildesk-Ticket"] == "10001"
    assert message["MIME-Version"] == "1.0"
    assert "Bcc" not in message


def test_non_ascii_headers_are_rfc2047_encoded() -> None:
    head = raw_headers(build())
    assert "=?utf-8?" in head
    assert all(len(line) <= 78 for line in head.split("\r\n")), head


def test_headers_come_in_a_sensible_order() -> None:
    keys = list(parsed(build()).keys())
    expected = ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
                "References", "Thread-Topic", "Thread-Index", "Auto-Submitted",
                "X-Auto-Response-Suppress", "X-Maildesk-Ticket", "MIME-Version",
                "Content-Type"]  # fmt: skip
    assert keys == expected


def test_body_is_text_then_html_in_utf8() -> None:
    raw = build().as_bytes()
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends only (SMTP)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert all(byte < 128 for byte in raw)  # 7-bit clean: no relay needs 8BITMIME

    message = email.message_from_bytes(raw)  # the compat32 parser, like most servers
    assert message.get_content_type() == "multipart/alternative"
    parts = message.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part, expected in zip(parts, (RENDERED.text, RENDERED.html), strict=True):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
        body = part.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n")
        assert body == expected
        assert "MIME-Version" not in part


def test_ascii_only_bodies_stay_7bit_and_readable() -> None:
    plain = Rendered(subject="Hello", text="Hello\n", html="<p>Hello</p>\n")
    message = email.message_from_bytes(build(rendered=plain).as_bytes())
    assert [p["Content-Transfer-Encoding"] for p in message.get_payload()] == ["7bit", "7bit"]


def test_optional_headers_are_left_out() -> None:
    message = parsed(build(cc=(), reply_to=None, in_reply_to=None, references=[],
                           thread_index=None, auto_submitted=None, extra_headers=None))  # fmt: skip
    for name in ("Cc", "Reply-To", "In-Reply-To", "References", "Thread-Index",
                 "Auto-Submitted"):  # fmt: skip
        assert name not in message
    assert message["X-Auto-Response-Suppress"] == "All"  # always


def test_references_keep_the_ticket_reference_and_the_newest() -> None:
    refs = [f"<m{i}@example.org>" for i in range(30)]
    message = parsed(build(references=[ROOT, *refs], in_reply_to="m29@example.org"))
    ids = str(message["References"]).split()
    assert len(ids) == MAX_REFERENCES
    assert ids[0] == f"<{ROOT}>"
    assert ids[1:] == [f"<m{i}@example.org>" for i in range(11, 30)]


def test_references_end_with_the_parent_and_skip_junk() -> None:
    message = parsed(build(references=[ROOT, "a@x", ROOT, "no id here", "<>", "b@x"],
                           in_reply_to="<a@x>"))  # fmt: skip
    assert str(message["References"]).split() == [f"<{ROOT}>", "<b@x>", "<a@x>"]
    broken_parent = parsed(build(in_reply_to="not an id", references=[ROOT]))
    assert "In-Reply-To" not in broken_parent
    assert str(broken_parent["References"]) == f"<{ROOT}>"


def test_naive_date_counts_as_utc() -> None:
    naive = parsed(build(date=datetime(2026, 11, 2, 9, 15)))
    plus_one = timezone(timedelta(hours=1))
    other_zone = parsed(build(date=datetime(2026, 11, 2, 10, 15, tzinfo=plus_one)))
    assert parsedate_to_datetime(str(naive["Date"])) == CREATED
    assert parsedate_to_datetime(str(other_zone["Date"])) == CREATED


INJECTION = "x\r\nBcc: victim@evil.example\r\n\r\n<h1>body</h1>"


@pytest.mark.parametrize("field", ["subject", "from_name", "thread_topic", "auto_submitted",
                                   "extra", "to_name"])  # fmt: skip
def test_header_injection_in_free_text_is_flattened(field: str) -> None:
    changes: dict[str, Any] = {
        "subject": {"rendered": Rendered(INJECTION, RENDERED.text, RENDERED.html)},
        "from_name": {"from_name": INJECTION},
        "thread_topic": {"thread_topic": INJECTION},
        "auto_submitted": {"auto_submitted": INJECTION},
        "extra": {"extra_headers": {"X-Test": INJECTION}},
        "to_name": {"to": [f'"{INJECTION}" <juergen@example.de>']},
    }[field]
    raw = build(**changes).as_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Bcc" not in message
    assert b"\r\nBcc:" not in raw
    assert not message.defects
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    header = {"subject": "Subject", "from_name": "From", "thread_topic": "Thread-Topic",
              "auto_submitted": "Auto-Submitted", "extra": "X-Test", "to_name": "To"}[field]
    assert "Bcc: victim@evil.example" in str(message[header])  # kept as harmless text
    assert [a.addr_spec for a in message["To"].addresses] == ["juergen@example.de"]


@pytest.mark.parametrize("changes", [
    {"message_id": "abc@example.com\r\nBcc: victim@evil.example"},
    {"message_id": "abc@example.com\n"},
    {"to": ["juergen@example.de\r\nBcc: victim@evil.example"]},
    {"cc": ["juergen@example.de\nvictim@evil.example"]},
    {"reply_to": "support@example.com\nBcc: victim@evil.example"},
    {"from_address": "support@example.com\r\nBcc: victim@evil.example"},
    {"thread_index": INJECTION},
    {"extra_headers": {"X-Test\r\nBcc": "victim@evil.example"}},
    {"extra_headers": {"Bcc": "victim@evil.example"}},
    {"extra_headers": {"Subject": "second subject"}},
    {"to": ["juergen@example.de, victim@evil.example"]},
])  # fmt: skip
def test_line_breaks_in_structured_values_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build(**changes)


def test_broken_ids_from_other_mails_are_skipped() -> None:
    message = parsed(build(in_reply_to="x@y\r\nBcc: v@e", references=[ROOT, "a@b\nBcc: v@e"]))
    assert "In-Reply-To" not in message and str(message["References"]) == f"<{ROOT}>"


def test_unusable_input_is_refused() -> None:
    with pytest.raises(ValueError, match="recipient"):
        build(to=[], cc=[])
    with pytest.raises(ValueError, match="address"):
        build(to=["not an address"])
    with pytest.raises(ValueError, match="Message-ID"):
        build(message_id="no-at-sign")
    with pytest.raises(ValueError, match="header name"):
        build(extra_headers={"Bad Name": "x"})


def test_cc_only_mail_is_allowed() -> None:
    message = parsed(build(to=[], cc=["a@example.de", "b@example.de"]))
    assert "To" not in message and str(message["Cc"]) == "a@example.de, b@example.de"


# -- Thread-Index -----------------------------------------------------------

# FILETIME of 1970-01-01 00:00 UTC, the documented Windows/Unix epoch offset.
UNIX_EPOCH_FILETIME = 0x019DB1DED53E8000


def decoded(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def test_thread_index_header_is_22_bytes_plus_5_per_child() -> None:
    for n in range(4):
        children = [CREATED + timedelta(minutes=10 * (i + 1)) for i in range(n)]
        assert len(decoded(thread_index(ROOT, CREATED, children))) == 22 + 5 * n


def test_thread_index_time_is_the_top_48_bits_of_filetime() -> None:
    raw = decoded(thread_index(ROOT, datetime(1970, 1, 1, tzinfo=UTC)))
    assert raw[:6] == (UNIX_EPOCH_FILETIME >> 16).to_bytes(6, "big")
    modern = decoded(thread_index(ROOT, CREATED))
    assert modern[0] == 0x01  # the "reserved" byte of [MS-OXOMSG]
    assert thread_index(ROOT, CREATED).startswith("Ad")  # as Outlook's headers look


def test_all_mails_of_a_ticket_share_the_header_block() -> None:
    first = decoded(thread_index(ROOT, CREATED))
    later = [decoded(thread_index(ROOT, CREATED, [CREATED + timedelta(days=d)]))
             for d in (1, 2, 30)]  # fmt: skip
    assert all(value[:22] == first for value in later)
    assert len({value[22:] for value in later}) == 3
    other = decoded(thread_index("md.10002.root.sig@support.example", CREATED))
    assert other[:6] == first[:6] and other[6:22] != first[6:22]  # its own GUID
    naive = decoded(thread_index(ROOT, CREATED.replace(tzinfo=None)))
    assert naive == first
    assert thread_index(ROOT, CREATED, [CREATED]) == thread_index(ROOT, CREATED, [CREATED])


def _child(block: bytes) -> tuple[int, int]:
    word = int.from_bytes(block[:4], "big")
    return word >> 31, word & 0x7FFFFFFF


@pytest.mark.parametrize("gap", [timedelta(seconds=5), timedelta(hours=3), timedelta(days=400)])
def test_child_block_holds_the_time_since_the_start(gap: timedelta) -> None:
    raw = decoded(thread_index(ROOT, CREATED, [CREATED + gap]))
    code, value = _child(raw[22:27])
    assert code == 0
    ticks = value << 18
    assert abs(ticks - gap.total_seconds() * 10_000_000) < (1 << 18) + (1 << 16)


def test_child_block_switches_to_coarse_units_after_about_two_years() -> None:
    gap = timedelta(days=3 * 365)
    code, value = _child(decoded(thread_index(ROOT, CREATED, [CREATED + gap]))[22:27])
    assert code == 1
    assert abs((value << 23) - gap.total_seconds() * 10_000_000) < (1 << 23) + (1 << 16)


def test_child_before_the_start_counts_as_zero() -> None:
    code, value = _child(decoded(thread_index(ROOT, CREATED, [CREATED - timedelta(days=1)]))[22:])
    assert (code, value) == (0, 0)


# -- compose_bytes: the same mail, written directly ------------------------------

BOUNDARY = "===============1234567890123456789=="


def both(**changes: Any) -> tuple[bytes, bytes]:
    """compose(...).as_bytes() and compose_bytes(...) for the same input,
    with the same boundary."""
    message = build(**changes)
    message.set_boundary(BOUNDARY)
    written = compose_bytes(OutgoingMail(**arguments(**changes)), boundary=BOUNDARY)
    return message.as_bytes(), written


@pytest.mark.parametrize("changes", [
    {},
    {"from_name": "Demo Support", "to": ["kunde@firma.de"], "cc": [],
     "rendered": Rendered("Hello", "Hello\n", "<p>Hello</p>\n")},
    {"rendered": Rendered("[#10001] " + "x" * 70, "a" * 200 + "\n",
                          "<p>Grüße aus Köln</p>\n" * 40)},
    {"references": [ROOT, *(f"m{i}@example.org" for i in range(25))]},
    {"to": ['"Müller, Hans" <h@example.de>', "Dr. Who <who@example.de>"],
     "from_name": "Support (Team)"},
    {"cc": (), "reply_to": None, "in_reply_to": None, "references": [], "thread_index": None,
     "auto_submitted": None, "extra_headers": None, "thread_topic": ""},
    {"rendered": Rendered("", "\n", "\n"), "from_name": ""},
    {"rendered": Rendered("=?utf-8?q?x?= Betreff", "€" * 300 + "\n", "\x00\x01\n")},
    {"extra_headers": {"X-Test": "a " * 60, "X-Other": "ünïcödé " * 12}},
    {"message_id": "<" + "x" * 80 + "@example.com>"},
])  # fmt: skip
def test_compose_bytes_writes_what_the_email_package_writes(changes: dict[str, Any]) -> None:
    expected, written = both(**changes)
    assert written == expected


_HEADER_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=120)
_LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s)
_ADDRESS = st.builds(lambda local, name: f"{name} <{local}@example.de>" if name.strip()
                     and not set(name) & set('"\\<>,;:@()[]') else f"{local}@example.de",
                     _LOCAL, st.text(alphabet=st.characters(codec="utf-8",
                                                            categories=("L", "Zs", "N")),
                                     max_size=30))
_BODY = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=600)


@settings(max_examples=300, deadline=None)
@given(subject=_HEADER_TEXT, topic=_HEADER_TEXT, from_name=_HEADER_TEXT,
       to=st.lists(_ADDRESS, min_size=1, max_size=4), cc=st.lists(_ADDRESS, max_size=3),
       refs=st.lists(st.from_regex(r"[a-z0-9.]{1,60}@[a-z]{1,20}\.de", fullmatch=True),
                     max_size=25),
       text=_BODY, html=_BODY, extra=_HEADER_TEXT)
def test_compose_bytes_matches_for_any_input(subject: str, topic: str, from_name: str,
                                             to: list[str], cc: list[str], refs: list[str],
                                             text: str, html: str, extra: str) -> None:
    changes = {"rendered": Rendered(subject, text, html), "thread_topic": topic,
               "from_name": from_name, "to": to, "cc": cc, "references": refs,
               "extra_headers": {"X-Maildesk-Ticket": extra}}
    try:
        expected, written = both(**changes)
    except ValueError:
        with pytest.raises(ValueError):
            compose_bytes(OutgoingMail(**{**_defaults(), **changes}))
        return
    assert written == expected


def _defaults() -> dict[str, Any]:
    return {"rendered": RENDERED, "from_address": "support@example.com", "from_name": "x",
            "to": ["a@example.de"], "reply_to": None, "message_id": "a@b", "in_reply_to": None,
            "references": [], "thread_topic": "", "thread_index": None, "auto_submitted": None,
            "date": CREATED}


def test_compose_bytes_boundary_never_occurs_in_a_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("maildesk.deliver.encode.random.randrange", lambda _n: 42)
    taken = "=" * 15 + f"{42:019d}" + "=="
    plain = Rendered("Hello", f"--{taken}\nHello\n", "<p>Hello</p>\n")
    raw = compose_bytes(OutgoingMail(**{**_defaults(), "rendered": plain}))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_boundary() == taken + ".0"
    contents = [p.get_content().replace("\r\n", "\n") for p in message.iter_parts()]
    assert contents == [plain.text, plain.html]
    assert not message.defects


@settings(max_examples=500, deadline=None)
@given(text=st.lists(st.sampled_from([*"aäß€ \t=.x\r\n\x0b\x85Z", "y" * 70]),
                    max_size=300).map("".join))
def test_body_encoding_is_the_email_packages(text: str) -> None:
    """compose_bytes' transfer encoding (7bit, quoted-printable or base64,
    and the encoded text) is what email.contentmanager chooses and writes."""
    from email.contentmanager import _encode_text as email_encode_text  # the reference

    from maildesk.deliver.encode import POLICY as _POLICY
    from maildesk.deliver.encode import _encode_text

    assert _encode_text(text) == email_encode_text(text, "utf-8", None, _POLICY)


# -- files ------------------------------------------------------------------------------------

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x01\x02" * 50


def test_files_go_with_the_mail_byte_for_byte_and_inline_images_stay_inline() -> None:
    from maildesk.deliver.compose import OutgoingFile
    from maildesk.mail.parse import parse_mail

    files = [OutgoingFile("Angebot Größe.pdf", "application/pdf", PDF),
             OutgoingFile("image001.png", "image/png", PNG, content_id="<image001.png@01DA>",
                          inline=True)]
    raw = compose_bytes(OutgoingMail(**arguments(attachments=files)))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/mixed"
    assert message["MIME-Version"] == "1.0" and raw.count(b"MIME-Version") == 1
    html = message.get_body(("html",)).get_content()
    assert 'src="cid:image001.png@01DA"' in html
    parsed = parse_mail(raw)
    by_name = {a.filename: a for a in parsed.attachments}
    assert by_name["Angebot Größe.pdf"].payload == PDF
    assert by_name["Angebot Größe.pdf"].content_type == "application/pdf"
    assert not by_name["Angebot Größe.pdf"].inline
    assert by_name["image001.png"].payload == PNG and by_name["image001.png"].inline
    assert "Grüße aus Köln" in parsed.text  # the body is still the body


def test_a_file_with_a_broken_type_goes_as_octet_stream() -> None:
    from maildesk.deliver.compose import OutgoingFile

    message = build(attachments=[OutgoingFile("x.bin", "not a type\r\nBcc: x@y", b"abc")])
    part = next(message.iter_attachments())
    assert part.get_content_type() == "application/octet-stream"
    assert "Bcc" not in message
