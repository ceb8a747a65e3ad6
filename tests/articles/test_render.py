"""An article's Markdown as the customer's browser gets it: formatting
kept, nothing that could run or restyle the page."""

from __future__ import annotations

import pytest

from maildesk.articles.render import FILES_PREFIX, image_path, render, sanitise


def test_headings_lists_code_tables_and_emphasis_are_kept() -> None:
    page = render("# Drucker\n\n## Schritt eins\n\n- erstens\n- zweitens\n\n1. a\n2. b\n\n"
                  "Ein *wichtiger* und **fetter** ~~alter~~ Satz mit `code`.\n\n"
                  "```\nlpstat -p\n```\n\n| Fehler | Bedeutung |\n|---|---:|\n| 42 | Papier |\n\n"
                  "> Zitat\n")
    html = page.html
    for markup in ("<h2>Schritt eins</h2>", "<li>erstens</li>", "<ol>", "<em>wichtiger</em>",
                   "<strong>fetter</strong>", "<s>alter</s>", "<code>code</code>",
                   "<pre><code>lpstat -p\n</code></pre>", "<table>", "<th>Fehler</th>",
                   "<td>42</td>", "<blockquote>"):
        assert markup in html
    assert "style=" not in html  # the table's alignment would be a style attribute


def test_the_first_heading_is_the_title_and_not_repeated_in_the_body() -> None:
    page = render("# Drucker *zeigt* Fehler 42\n\nText.\n\n## Ursache\n\nPapier.\n")
    assert page.title == "Drucker zeigt Fehler 42"
    assert "<h1>" not in page.html
    assert page.headings == ("Ursache",)
    assert page.text == "Text. Papier."


def test_an_article_without_a_level_one_heading_has_no_title() -> None:
    page = render("## Nur Zwischentitel\n\nText\n")
    assert page.title is None
    assert "<h2>Nur Zwischentitel</h2>" in page.html


def test_raw_html_and_scripts_are_shown_as_text_not_run() -> None:
    page = render("# T\n\n<script>alert(1)</script>\n\nHallo <img src=x onerror=alert(2)> "
                  "<b onclick=\"x()\">fett</b> <iframe src=//evil></iframe>\n\n"
                  "<div style=\"position:fixed\">overlay</div>\n")
    html = page.html
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert "<b " not in html and "<div" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # visible as text, harmless


@pytest.mark.parametrize("link", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)",
    "vbscript:msgbox(1)", "data:text/html;base64,PHNjcmlwdD4=", "file:///etc/passwd",
])
def test_dangerous_link_schemes_are_not_links(link: str) -> None:
    html = render(f"[klick]({link}) <{link}>").html
    assert "href" not in html  # left as text: visible, but nothing to click
    assert "klick" in html


def test_safe_links_keep_their_target_and_get_noopener() -> None:
    html = render("[web](https://example.org/a) [mail](mailto:it@example.org) "
                  "[nebenan](fehler-43.md#ursache) [oben](/portal/help)").html
    assert '<a href="https://example.org/a" rel="noopener noreferrer">web</a>' in html
    assert 'href="mailto:it@example.org"' in html
    assert 'href="fehler-43#ursache"' in html  # the article's page, not the file
    assert 'href="/portal/help"' in html
    assert html.count('rel="noopener noreferrer"') == 4


def test_the_sanitiser_alone_drops_handlers_styles_and_scripts() -> None:
    html = sanitise('<p style="color:red" onclick="x()">a</p><script>alert(1)</script>'
                    '<a href="javascript:alert(1)">b</a><img src="https://evil/x.png">'
                    f'<img src="{FILES_PREFIX}a.png" onerror="x()">')
    assert html == (f'<p>a</p><a rel="noopener noreferrer">b</a><img>'
                    f'<img src="{FILES_PREFIX}a.png">')


def test_relative_images_are_served_from_the_help_files_route() -> None:
    html = render("![Anschluss](bilder/kabel%20neu.png)", folder="drucker").html
    assert f'<img src="{FILES_PREFIX}drucker/bilder/kabel%20neu.png" alt="Anschluss">' in html


@pytest.mark.parametrize("src", [
    "https://tracker.example/pixel.png", "//evil.example/x.png", "/etc/x.png",
    "../../../etc/x.png", "..%2f..%2fx.png", "bild.svg", "bild.png?x=1", ".geheim/x.png",
    "a\\..\\x.png", "x%00.png", "data:image/png;base64,iVBORw0KGgo=",
])
def test_other_images_are_dropped_with_their_alt_text_kept(src: str) -> None:
    html = render(f"Vorher ![Beschreibung]({src}) nachher", folder="drucker").html
    assert "<img" not in html
    assert "Beschreibung" in html


def test_image_paths_stay_inside_the_directory() -> None:
    assert image_path("../logo.png", "drucker") == "logo.png"
    assert image_path("../../logo.png", "drucker") is None
    assert image_path("x.JPG", "") == "x.JPG"
    assert image_path("x.gif", "a/b") == "a/b/x.gif"
