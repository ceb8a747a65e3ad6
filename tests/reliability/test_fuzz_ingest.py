"""Malformed MIME through `maildesk ingest`'s code path: never an exception,
always an outcome, the raw bytes always kept.

1,000 examples per run and database (the suite must stay under 10 minutes
on 2 cores); MAILDESK_FUZZ_EXAMPLES changes it (e.g. 20000 for a longer run).
Hypothesis draws new examples on every run, so CI keeps exploring."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from maildesk.accept.spool import Incoming
from maildesk.models import InboundRaw
from maildesk.process.service import MailProcessor

EXAMPLES = int(os.environ.get("MAILDESK_FUZZ_EXAMPLES", "1000"))
OUTCOMES = {"created", "appended", "reopened", "followup", "duplicate", "ignored", "rejected"}

header_names = st.sampled_from([
    "From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Date",
    "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version",
    "Auto-Submitted", "Return-Path", "X-Weird", "Reply-To",
])
junk = st.binary(min_size=0, max_size=300)
charsets = st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "x-unknown", "", "utf-7",
                            "us-ascii", "koi8-r", "\x00bad"])
encodings = st.sampled_from(["base64", "quoted-printable", "7bit", "8bit", "binary", "x-uue",
                             ""])


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        name = draw(header_names).encode()
        value = draw(st.one_of(junk, st.text(max_size=200).map(str.encode),
                               st.just(b"=?utf-8?B?" + b"A" * 50 + b"?="),
                               st.just(b"x" * 5000),  # an enormous header
                               st.just(b"folded\r\n\tcontinuation\r\n continued")))
        lines.append(name + b": " + value.replace(b"\r\n\r\n", b" "))
    return b"\r\n".join(lines)


@st.composite
def part(draw: st.DrawFn, depth: int = 0) -> bytes:
    boundary = draw(st.sampled_from([b"b1", b"", b"--", b"x" * 80, b'"q"']))
    ctype = draw(st.sampled_from([b"text/plain", b"text/html", b"multipart/mixed",
                                  b"multipart/alternative", b"message/rfc822",
                                  b"application/octet-stream", b"multipart/report"]))
    head = (b"Content-Type: " + ctype + b"; charset=" + draw(charsets).encode()
            + b"; boundary=" + boundary + b"\r\nContent-Transfer-Encoding: "
            + draw(encodings).encode() + b"\r\n")
    if ctype.startswith(b"multipart") and depth < 4:
        children = [draw(part(depth + 1)) for _ in range(draw(st.integers(0, 3)))]
        close = draw(st.sampled_from([b"--" + boundary + b"--", b"", b"--wrong--"]))
        body = b"".join(b"--" + boundary + b"\r\n" + c + b"\r\n" for c in children) + close
    else:
        body = draw(st.one_of(junk, st.just(b"\x00" * 50), st.just(b"A" * 20000),
                              st.just(b"=ZZ=\r\n=" * 10), st.just(b"!!!!not base64")))
    return head + b"\r\n" + body


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    return (b"From: fuzz@kunde.de\r\nTo: support@example.com\r\n" + draw(headers())
            + b"\r\n" + draw(part()))


@given(raw=st.one_of(mails(), junk))
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
def test_any_input_gets_an_outcome_and_keeps_its_bytes(fuzz_ingestor: MailProcessor,
                                                       raw: bytes) -> None:
    ingestor = fuzz_ingestor
    outcome = ingestor.ingest(Incoming(raw, "pipe"))
    assert outcome.action in OUTCOMES, outcome
    with Session(ingestor.engine) as session:
        stored = session.get(InboundRaw, outcome.inbound_id)
    assert stored is not None  # a duplicate points at the first delivery's bytes
    if outcome.action != "duplicate":
        assert bytes(stored.data) == raw
