"""sanitise_html and html_to_text: mail HTML made harmless, and readable as text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.mail.htmlsafe import html_to_text, sanitise_html

# (input, fragments that must survive, fragments that must be gone)
SANITISE_CASES: list[tuple[str, list[str], list[str]]] = [
    (
        "<p>Hallo <b>fett</b> <i>kursiv</i> <u>u</u></p>",
        ["<p>", "<b>fett</b>", "<i>kursiv</i>"],
        [],
    ),
    ("<h1>T</h1><ul><li>a</li></ul><ol><li>b</li></ol>", ["<h1>T</h1>", "<li>a</li>"], []),
    ("<blockquote>quoted</blockquote><pre>code</pre>", ["<blockquote>", "<pre>code</pre>"], []),
    (
        "<table><tr><th>H</th><td colspan=2>c</td></tr></table>",
        ["<table>", "<th>H</th>", 'colspan="2"'],
        [],
    ),
    ("<script>alert(1)</script>text", ["text"], ["<script", "alert"]),
    ("<SCRIPT SRC=//evil.example/x.js></SCRIPT>ok", ["ok"], ["script", "evil"]),
    ("<style>body{display:none}</style>visible", ["visible"], ["<style", "display"]),
    ("<iframe src='https://evil.example'></iframe>x", ["x"], ["iframe", "evil"]),
    ("<object data=x></object><embed src=y>z", ["z"], ["object", "embed"]),
    ("<form action=/steal><input name=pw><button>Go</button></form>", [], ["form", "input", "Go"]),
    ("<img src=x onerror=alert(1)>", [], ["onerror", "alert", "src"]),
    ("<p onclick='x()' onmouseover=y>p</p>", ["<p>p</p>"], ["onclick", "onmouseover"]),
    ("<body onload=evil()>b</body>", ["b"], ["onload", "evil"]),
    # remote images are trackers, data: images can carry anything
    ('<img src="https://tracker.example/p.gif">', [], ["tracker", "https"]),
    ('<img src="http://tracker.example/p.gif">', [], ["tracker"]),
    ('<img src="data:image/svg+xml;base64,PHN2Zz4=">', [], ["data:", "svg"]),
    ('<img src="//tracker.example/p.gif">', [], ["tracker"]),
    # images from the mail itself stay
    (
        '<img src="cid:logo@example.com" alt="Logo">',
        ['src="cid:logo@example.com"', 'alt="Logo"'],
        [],
    ),
    # links: safe schemes only, always rel=noopener noreferrer
    (
        '<a href="https://example.com/x?a=1&amp;b=2">l</a>',
        ['href="https://example.com/x?a=1&amp;b=2"', 'rel="noopener noreferrer"'],
        [],
    ),
    ('<a href="mailto:a@example.com">m</a>', ['href="mailto:a@example.com"'], []),
    ('<a href="javascript:alert(1)">j</a>', ["j"], ["javascript", "alert"]),
    ('<a href="JaVaScRiPt:alert(1)">j</a>', ["j"], ["alert"]),
    ('<a href="vbscript:x">v</a><a href="data:text/html,x">d</a>', [], ["vbscript", "data:"]),
    ('<a href="cid:part1">c</a>', [], ["cid:"]),
    ('<a href="/relative">r</a>', [], ["relative"]),
    ('<a href="https://x.example" target="_blank" rel="opener">t</a>', ["noopener"], ["_blank"]),
    # styles: harmless properties stay, positioning and url() loads go
    ('<p style="color:red;font-weight:bold">s</p>', ["color:red", "font-weight:bold"], []),
    ('<div style="position:fixed;top:0;z-index:999">o</div>', ["o"], ["position", "z-index"]),
    ('<td style="background-image:url(https://t.example/p)">c</td>', [], ["url(", "t.example"]),
    ('<table background="https://t.example/bg.gif"><tr><td>x</td></tr></table>', [], ["t.example"]),
    ("<!-- secret comment --><p>c</p>", ["<p>c</p>"], ["secret"]),
    ("<meta http-equiv=refresh content='0;url=https://evil.example'>m", ["m"], ["evil", "meta"]),
    ("<base href='https://evil.example/'><a href='x'>b</a>", ["b"], ["evil", "<base"]),
    ("<svg><script>alert(1)</script></svg>s", ["s"], ["svg", "alert"]),
    ("<math><mi xlink:href='javascript:alert(1)'>m</mi></math>", [], ["javascript", "alert"]),
]


@pytest.mark.parametrize(("html", "kept", "removed"), SANITISE_CASES)
def test_sanitise_html(html: str, kept: list[str], removed: list[str]) -> None:
    result = sanitise_html(html)
    for fragment in kept:
        assert fragment in result
    lowered = result.lower()
    for fragment in removed:
        assert fragment.lower() not in lowered


def test_every_link_gets_rel_noopener() -> None:
    result = sanitise_html('<a href="https://a.example">a</a><a href="http://b.example">b</a>')
    assert result.count('rel="noopener noreferrer"') == 2


@pytest.mark.parametrize(
    "garbage",
    ["", "<", "<<<>>>", "</p></div>", "\x00\x00", "\ud800<b>x</b>", "<a href=", "\ufffe", "&#0;"],
)
def test_sanitise_html_never_raises(garbage: str) -> None:
    result = sanitise_html(garbage)
    assert isinstance(result, str)
    result.encode("utf-8")
    assert "\x00" not in result


def test_sanitise_html_non_string_gives_empty() -> None:
    assert sanitise_html(None) == ""  # type: ignore[arg-type]
    assert sanitise_html(b"<b>x</b>") == ""  # type: ignore[arg-type]


def test_sanitise_html_huge_input() -> None:
    html = "<p>Zeile <b>fett</b> <script>x()</script></p>\n" * 50_000  # ~2 MB
    result = sanitise_html(html)
    assert result.count("<b>fett</b>") == 50_000
    assert "script" not in result


def test_sanitise_html_deep_nesting() -> None:
    result = sanitise_html("<div>" * 20_000 + "deep" + "</div>" * 20_000)
    assert "deep" in result


TEXT_CASES: list[tuple[str, list[str], list[str]]] = [
    ("<p>Hallo</p><p>Welt</p>", ["Hallo\n\nWelt"], []),
    ("a<br>b<br/>c", ["a\nb\nc"], []),
    ("<ul><li>eins</li><li>zwei</li></ul>", ["* eins", "* zwei"], []),
    (
        "<table><tr><td>A1</td><td>B1</td></tr><tr><td>A2</td><td>B2</td></tr></table>",
        ["A1", "B2"],
        [],
    ),
    ("<p>&auml;&ouml;&uuml; &amp; &euro; &nbsp;x</p>", ["äöü & €"], ["&auml;", "&amp;"]),
    ("<script>var secret = 1;</script><p>shown</p>", ["shown"], ["secret"]),
    ("<style>p { color: red }</style><p>shown</p>", ["shown"], ["color"]),
    ("<head><title>Titel</title></head><body>Body</body>", ["Body"], []),
    ("  <p>  stripped  </p>  ", ["stripped"], []),
]


@pytest.mark.parametrize(("html", "present", "absent"), TEXT_CASES)
def test_html_to_text(html: str, present: list[str], absent: list[str]) -> None:
    text = html_to_text(html)
    for fragment in present:
        assert fragment in text
    for fragment in absent:
        assert fragment not in text
    assert text == text.strip()
    assert "<" not in text


@pytest.mark.parametrize(
    "garbage",
    ["", "   ", "<", "\x00", "\x00<p>nul</p>\x01\x02", "\ud800", "<!DOCTYPE>", "<![CDATA[", "&#0;"],
)
def test_html_to_text_never_raises(garbage: str) -> None:
    text = html_to_text(garbage)
    assert isinstance(text, str)
    text.encode("utf-8")


def test_html_to_text_with_control_characters_keeps_text() -> None:
    assert html_to_text("\x00<p>nul\x01 here</p>") == "nul here"


def test_html_to_text_huge_input() -> None:
    text = html_to_text("<p>Absatz</p>" * 100_000)
    assert text.count("Absatz") == 100_000


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"<>/=\"' abcdiv&;#x0\x00\n", "<script>", "<img src=", "on", "-->"])
    ).map("".join)
)
def test_arbitrary_markup_never_raises(html: str) -> None:
    sanitised = sanitise_html(html)
    assert "<script" not in sanitised.lower()
    html_to_text(html).encode("utf-8")
