"""Stored files are served as what their bytes are, never as what a sender
claims when the two disagree; only real raster images are shown inline."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maildesk.mail import filetypes

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize("declared, name, data, expected, inline", [
    ("application/pdf", "offer.pdf", PDF, "application/pdf", False),
    ("image/png", "shot.png", PNG, "image/png", True),
    # The name and the declaration lie; the bytes win.
    ("image/png", "cute.png", HTML, "text/html", False),
    ("text/plain", "notes.txt", HTML, "text/html", False),
    ("application/pdf", "invoice.pdf", b"MZ\x90\x00" + b"\x00" * 60,
     "application/vnd.microsoft.portable-executable", False),
    # A script-carrying image is never inline.
    ("image/svg+xml", "logo.svg", SVG, "image/svg+xml", False),
    # Declared as an image, the bytes show nothing: claim nothing.
    ("image/jpeg", "x.jpg", b"just some words", "application/octet-stream", False),
    ("text/html", "page.html", b"just some words", "application/octet-stream", False),
    # Text has no signature: the declaration stands.
    ("text/plain", "log.txt", b"2026-12-06 started\n", "text/plain", False),
    ("text/csv; charset=utf-8", "a.csv", b"a;b\n1;2\n", "text/csv", False),
    # Nothing declared: the name helps where the bytes agree.
    ("application/octet-stream", "report.pdf", PDF, "application/pdf", False),
    ("", "data.bin", b"\x00\x01\x02", "application/octet-stream", False),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "a.docx",
     _docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", False),
])
def test_the_bytes_decide_where_they_disagree(declared: str, name: str, data: bytes,
                                               expected: str, inline: bool) -> None:
    served = filetypes.serving(declared, name, data)
    assert served == filetypes.Serving(expected, inline)


@given(st.binary(max_size=300), st.text(max_size=40), st.text(max_size=60))
def test_any_file_gets_an_answer_and_only_images_are_inline(data: bytes, declared: str,
                                                            name: str) -> None:
    served = filetypes.serving(declared, name, data)
    assert "/" in served.content_type
    if served.inline:
        assert served.content_type in filetypes.INLINE_IMAGES


@pytest.mark.parametrize("name, inline, expected", [
    ("offer.pdf", False, 'attachment; filename="offer.pdf"'),
    ("Bild.png", True, 'inline; filename="Bild.png"'),
    ('Angebot "Müller".pdf', False,
     "attachment; filename=\"Angebot _M_ller_.pdf\"; "
     "filename*=UTF-8''Angebot%20%22M%C3%BCller%22.pdf"),
])
def test_the_disposition_header_is_safe_and_keeps_the_name(name: str, inline: bool,
                                                           expected: str) -> None:
    assert filetypes.content_disposition(name, inline) == expected
