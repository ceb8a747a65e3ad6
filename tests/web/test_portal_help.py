"""The portal's help articles over real HTTP on both databases: the list
by category, the search, an article, the suggestions for the new-request
form, public or for logged-in customers only, and every way of asking for
a file outside the articles directory answered 404 (issue 16)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from maildesk.articles import library as articles
from tests.conftest import Desk
from tests.web.test_pages import Site, _site, settings_with
from tests.web.test_portal_login import ERIKA, log_in, mail_ticket

pytestmark = pytest.mark.usefixtures("quick_answers")

#: A 1x1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
                       "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
SECRET = "STRENG-GEHEIM-4711"


def write(root: Path, name: str, content: str | bytes) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def shelf(tmp_path: Path) -> Path:
    root = tmp_path / "articles"
    write(root, "willkommen.md", "# Willkommen im Portal\n\nSo nutzen Sie das Kundenportal.")
    write(root, "drucker/fehler-42.md",
          "# Fehler 42 am Drucker\n\nMeldet der Drucker eine Störung, legen Sie Papier "
          "nach.\n\n## Klappe öffnen\n\n![Die Klappe](klappe.png)\n\n- vorne\n- hinten\n")
    write(root, "drucker/klappe.png", PNG)
    write(root, "drucker/getarnt.png", "<svg xmlns='http://www.w3.org/2000/svg' "
                                       "onload='alert(1)'/>")
    write(root, "netz/wlan/einrichten.md", "# WLAN einrichten\n\nDer Drucker im Netz braucht "
                                           "das Passwort.")
    write(root, "boese.md", "# Vorsicht Markup\n\n<script>alert('xss')</script>\n\n"
                            "[klick](javascript:alert(1)) <img src=x onerror=alert(2)>\n")
    write(tmp_path, "geheim.md", f"# Geheimnis\n\n{SECRET}")  # beside, not inside
    write(tmp_path, "geheim.png", PNG)
    return root


def help_settings(desk: Desk, root: Path, public: bool):
    settings = settings_with(desk)
    return settings.model_copy(update={"portal": settings.portal.model_copy(
        update={"articles_dir": str(root), "articles_public": public})})


@pytest.fixture
async def public_site(desk: Desk, shelf: Path) -> AsyncIterator[Site]:
    async for value in _site(desk, help_settings(desk, shelf, public=True)):
        yield value


@pytest.fixture
async def private_site(desk: Desk, shelf: Path) -> AsyncIterator[Site]:
    async for value in _site(desk, help_settings(desk, shelf, public=False)):
        yield value


async def fetch(site: Site, path: str, client: aiohttp.ClientSession | None = None,
                **headers: str) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
    """GET without following redirects; `path` sent as written (encoded=True)."""
    url = URL(f"http://127.0.0.1:{site.port}{path}", encoded=True)
    async with (client or site.client).get(url, allow_redirects=False,
                                           headers=headers) as r:
        return r.status, (await r.read()).decode("utf-8", "replace"), r.headers


async def suggestions(site: Site, query: str,
                      client: aiohttp.ClientSession | None = None) -> tuple[int, dict]:
    status, body, headers = await fetch(site, "/portal/help/suggest?q=" + query, client)
    assert headers["Content-Type"].startswith("application/json")
    return status, json.loads(body)


# -- reading -------------------------------------------------------------------------------


async def test_the_list_shows_the_articles_by_category(public_site: Site) -> None:
    status, page, headers = await fetch(public_site, "/portal/help")
    assert status == 200 and "Hilfe-Artikel" in page
    assert "Allgemein" in page and "drucker" in page and "netz / wlan" in page
    assert '<a href="/portal/help/drucker/fehler-42">Fehler 42 am Drucker</a>' in page
    assert '<a href="/portal/help/willkommen">Willkommen im Portal</a>' in page
    assert "4 Artikel" in page
    assert '<label class="field" for="help-q">' in page and 'name="q"' in page
    assert "<script" not in page and "script-src" not in headers["Content-Security-Policy"]
    assert 'href="/portal/login"' in page  # a visitor is offered the login
    assert 'aria-label="Portal"' not in page  # and no navigation of a customer

    status, page, _ = await fetch(public_site, "/portal/help", **{"Accept-Language": "en"})
    assert status == 200 and "Help articles" in page and "General" in page


async def test_the_search_finds_with_or_without_umlauts_and_says_when_nothing(
        public_site: Site) -> None:
    for query in ("St%C3%B6rung", "stoerung", "STOERUNG+papier"):
        status, page, _ = await fetch(public_site, "/portal/help?q=" + query)
        assert status == 200 and "1 Artikel" in page, query
        assert 'href="/portal/help/drucker/fehler-42"' in page
        assert "Meldet der Drucker eine Störung" in page  # the snippet
    status, page, _ = await fetch(public_site, "/portal/help?q=drucker")
    assert "2 Artikel" in page
    assert (page.index("fehler-42") < page.index("netz/wlan/einrichten"))  # title hit first
    status, page, _ = await fetch(public_site, "/portal/help?q=Rasenm%C3%A4her")
    assert status == 200 and "Kein Artikel passt zu „Rasenmäher“" in page
    status, page, _ = await fetch(public_site, "/portal/help?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert status == 200 and "<script>" not in page and "&lt;script&gt;" in page


async def test_an_article_with_its_breadcrumb_and_image(public_site: Site) -> None:
    status, page, _ = await fetch(public_site, "/portal/help/drucker/fehler-42")
    assert status == 200
    assert "<h1>Fehler 42 am Drucker</h1>" in page and "<h2>Klappe öffnen</h2>" in page
    assert "<li>vorne</li>" in page
    assert '<a href="/portal/help">Hilfe-Artikel</a>' in page
    assert '<a href="/portal/help#category-2">drucker</a>' in page
    assert 'id="category-2"' in (await fetch(public_site, "/portal/help"))[1]
    image = '<img src="/portal/help/files/drucker/klappe.png" alt="Die Klappe">'
    assert image in page
    status, _, headers = await fetch(public_site, "/portal/help/files/drucker/klappe.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]


async def test_an_svg_disguised_as_png_is_not_served(public_site: Site) -> None:
    status, body, _ = await fetch(public_site, "/portal/help/files/drucker/getarnt.png")
    assert status == 404 and "svg" not in body


async def test_an_article_with_markup_shows_no_script(public_site: Site) -> None:
    status, page, _ = await fetch(public_site, "/portal/help/boese")
    assert status == 200 and "<h1>Vorsicht Markup</h1>" in page
    assert "<script" not in page and 'href="javascript' not in page
    assert "<img src=" not in page and "&lt;script&gt;" in page


async def test_an_unknown_article_is_a_404_page_in_the_visitors_language(
        public_site: Site) -> None:
    status, page, _ = await fetch(public_site, "/portal/help/gibt-es-nicht")
    assert status == 404 and "Diesen Hilfe-Artikel gibt es nicht" in page
    status, page, _ = await fetch(public_site, "/portal/help/drucker",
                                  **{"Accept-Language": "en-GB,en;q=0.8"})
    assert status == 404 and "This help article does not exist" in page


@pytest.mark.parametrize("path", [
    "/portal/help/../../geheim", "/portal/help/..%2f..%2fgeheim", "/portal/help/%2e%2e%2fgeheim",
    "/portal/help/%2e%2e/%2e%2e/geheim", "/portal/help/drucker%2f..%2f..%2f..%2fgeheim",
    "/portal/help/..%5cgeheim", "/portal/help/willkommen%00", "/portal/help/%00",
    "/portal/help//etc/passwd", "/portal/help/%2fetc%2fpasswd", "/portal/help/geheim.md",
    "/portal/help/files/../geheim.png", "/portal/help/files/..%2fgeheim.png",
    "/portal/help/files/%2e%2e%2fgeheim.png", "/portal/help/files/%2fetc%2fpasswd",
    "/portal/help/files/drucker%5c..%5c..%5cgeheim.png", "/portal/help/files/klappe.png%00",
    "/portal/help/files/drucker/fehler-42.md", "/portal/help/files/../../articles/boese.md",
])
async def test_paths_out_of_the_directory_are_404_and_read_nothing(public_site: Site,
                                                                   path: str) -> None:
    status, body, _ = await fetch(public_site, path)
    assert status == 404
    assert SECRET not in body and "Geheimnis" not in body and "PNG" not in body


async def test_a_file_added_later_appears_without_a_restart(public_site: Site,
                                                            shelf: Path) -> None:
    articles.for_settings(public_site.settings).rescan_seconds = 0
    assert (await fetch(public_site, "/portal/help/neu/vpn"))[0] == 404
    write(shelf, "neu/vpn.md", "# VPN verbinden\n\nSo verbinden Sie das VPN.")
    status, page, _ = await fetch(public_site, "/portal/help/neu/vpn")
    assert status == 200 and "So verbinden Sie das VPN." in page
    assert "VPN verbinden" in (await fetch(public_site, "/portal/help?q=vpn"))[1]


# -- suggestions for the new-request form ----------------------------------------------------


async def test_suggestions_as_json(public_site: Site) -> None:
    status, found = await suggestions(public_site, "Drucker%20St%C3%B6r")
    assert status == 200
    assert found == {"articles": [{
        "title": "Fehler 42 am Drucker", "url": "/portal/help/drucker/fehler-42",
        "category": "drucker",
        "snippet": "Meldet der Drucker eine Störung, legen Sie Papier nach. Die Klappe "
                   "vorne hinten"}]}
    assert (await suggestions(public_site, "dr"))[1] == {"articles": []}
    assert (await suggestions(public_site, ""))[1] == {"articles": []}
    assert (await suggestions(public_site, "Rasenm%C3%A4her"))[1] == {"articles": []}
    status, _, headers = await fetch(public_site, "/portal/help/suggest?q=drucker")
    assert headers["Cache-Control"] == "no-store"


async def test_at_most_five_suggestions(public_site: Site, shelf: Path) -> None:
    for n in range(8):
        write(shelf, f"router/modell-{n}.md", f"# Router Modell {n}{n}")
    status, found = await suggestions(public_site, "router")
    assert status == 200 and len(found["articles"]) == 5


# -- who may read ------------------------------------------------------------------------------


async def test_a_logged_in_customer_reads_with_the_portal_navigation(public_site: Site) -> None:
    mail_ticket(public_site.desk, f"Erika <{ERIKA}>", "Drucker streikt")
    assert (await log_in(public_site, ERIKA))[0] == 200
    status, page, _ = await fetch(public_site, "/portal/help")
    assert status == 200 and 'aria-label="Portal"' in page
    assert '<a href="/portal/help" aria-current="page">Hilfe-Artikel</a>' in page
    assert 'href="/portal/login"' not in page
    status, page, _ = await fetch(public_site, "/portal/help/drucker/fehler-42")
    assert status == 200 and 'aria-current="page">Hilfe-Artikel' in page


async def test_not_public_a_visitor_is_sent_to_the_login_and_sees_nothing(
        private_site: Site) -> None:
    for path in ("/portal/help", "/portal/help?q=drucker", "/portal/help/drucker/fehler-42",
                 "/portal/help/gibt-es-nicht", "/portal/help/files/drucker/klappe.png"):
        status, body, headers = await fetch(private_site, path)
        assert (status, headers.get("Location")) == (303, "/portal/login"), path
        assert "Drucker" not in body and "PNG" not in body
    status, body, headers = await fetch(private_site, "/portal/help/suggest?q=drucker")
    assert status == 401 and json.loads(body) == {"error": "login required"}
    assert "Drucker" not in body

    forged = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=forged,
                                     cookies={"maildesk_portal": "A" * 43}) as stranger:
        status, body, headers = await fetch(private_site, "/portal/help/drucker/fehler-42",
                                            stranger)
        assert status == 303 and "Drucker" not in body


async def test_not_public_a_logged_in_customer_reads_everything(private_site: Site) -> None:
    mail_ticket(private_site.desk, f"Erika <{ERIKA}>", "Drucker streikt")
    assert (await log_in(private_site, ERIKA))[0] == 200
    status, page, _ = await fetch(private_site, "/portal/help/drucker/fehler-42")
    assert status == 200 and "Fehler 42 am Drucker" in page and 'aria-label="Portal"' in page
    assert (await fetch(private_site, "/portal/help/files/drucker/klappe.png"))[0] == 200
    status, found = await suggestions(private_site, "drucker")
    assert status == 200 and len(found["articles"]) == 2
    status, page, _ = await fetch(private_site, "/portal/help/gibt-es-nicht")
    assert status == 404 and "Diesen Hilfe-Artikel gibt es nicht" in page


async def test_the_help_pages_take_no_posts(public_site: Site) -> None:
    base = f"http://127.0.0.1:{public_site.port}"
    for path in ("/portal/help", "/portal/help/suggest", "/portal/help/willkommen"):
        async with public_site.client.post(base + path, data={"q": "x"},
                                           headers={"Origin": "https://evil.example"}) as r:
            assert r.status == 405, path


async def test_without_a_directory_the_page_says_there_are_no_articles(
        desk: Desk, tmp_path: Path) -> None:
    settings = help_settings(desk, tmp_path / "fehlt", public=True)
    async for site in _site(desk, settings):
        status, page, _ = await fetch(site, "/portal/help")
        assert status == 200 and "Es gibt noch keine Hilfe-Artikel." in page
        assert (await suggestions(site, "drucker"))[1] == {"articles": []}
        assert (await fetch(site, "/portal/help/x"))[0] == 404
