"""What the portal's browser tests (tests/web/test_portal_browser.py) do
in the page: an accessibility check run inside chromium (axe-core is not
available offline, so a small one of our own: the rules a keyboard or
screen-reader user trips over first), a keyboard walk with Tab, and the
phone's horizontal overflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: Returns a list of problems, each a short text naming the element.
A11Y_CHECK = r"""
() => {
  const problems = [];
  const short = el => el.outerHTML.slice(0, 140);
  const byIds = ids => (ids || '').split(/\s+/).filter(Boolean)
      .map(id => document.getElementById(id));
  const ariaName = el => {
    const label = (el.getAttribute('aria-label') || '').trim();
    if (label) return label;
    return byIds(el.getAttribute('aria-labelledby'))
        .map(ref => ref ? ref.textContent : '').join(' ').trim();
  };
  if (!(document.documentElement.getAttribute('lang') || '').trim())
    problems.push('<html> has no lang');
  if (!document.title.trim()) problems.push('the page has no <title>');
  const h1 = document.querySelectorAll('h1');
  if (h1.length !== 1) problems.push(`${h1.length} <h1> elements, not one`);
  const seen = new Set();
  for (const el of document.querySelectorAll('[id]')) {
    if (seen.has(el.id)) problems.push(`duplicate id "${el.id}"`);
    seen.add(el.id);
  }
  for (const el of document.querySelectorAll('[aria-describedby], [aria-labelledby]')) {
    for (const attr of ['aria-describedby', 'aria-labelledby']) {
      byIds(el.getAttribute(attr)).forEach((ref, i) => {
        if (!ref) problems.push(`${attr} names a missing id: ${short(el)}`);
      });
    }
  }
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const forLabel = el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
    const text = (forLabel && forLabel.textContent.trim()) || (el.closest('label') &&
        el.closest('label').textContent.trim()) || ariaName(el);
    if (!text) problems.push(`field without a label: ${short(el)}`);
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push(`image without alt: ${short(img)}`);
  }
  for (const el of document.querySelectorAll('a[href], button, [role=button]')) {
    const images = [...el.querySelectorAll('img[alt]')].map(i => i.alt).join('');
    const text = (el.innerText || el.textContent || '').trim() || ariaName(el) ||
        (el.getAttribute('title') || '').trim() || images.trim();
    if (!text) problems.push(`link or button without a name: ${short(el)}`);
  }
  // text contrast (WCAG AA: 4.5:1, 3:1 from 24px or 18.66px bold)
  const rgb = text => (text.match(/[\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (let node = el; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('.visually-hidden')) continue;
    const fg = rgb(style.color).slice(0, 3), bg = background(el);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed)
      problems.push(`contrast ${ratio.toFixed(2)}:1 < ${needed}: ${short(el)}`);
  }
  return problems;
}
"""

#: Where the keyboard focus is, as "tag#id" or "tag[name]" or "tag:text".
FOCUSED = r"""
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return 'body';
  const tag = el.tagName.toLowerCase();
  if (el.id) return `${tag}#${el.id}`;
  const text = (el.innerText || el.value || '').trim().slice(0, 40);
  return `${tag}:${text}`;
}
"""

#: Whether the focused element shows where the focus is (outline or ring).
FOCUS_SHOWN = r"""
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return false;
  const style = getComputedStyle(el);
  return (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) ||
      style.boxShadow !== 'none';
}
"""

#: How much wider than the window the page is (0: no sideways scrolling).
OVERFLOW = r"""
() => document.documentElement.scrollWidth - window.innerWidth
"""

#: Elements sticking out of the window on the right, to name them in a failure.
WIDE_ELEMENTS = r"""
() => [...document.body.querySelectorAll('*')]
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 8).map(el => el.outerHTML.slice(0, 120))
"""


def accessibility_problems(page: Page) -> list[str]:
    """The in-page check's findings for the page shown now."""
    return list(page.evaluate(A11Y_CHECK))


def tab_to(page: Page, target: str, limit: int = 40) -> list[str]:
    """Press Tab until the focus is on `target` (as FOCUSED names it); the
    stops on the way. Fails if the keyboard never gets there, or if a stop
    on the way does not show the focus."""
    stops: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stops.append(page.evaluate(FOCUSED))
        assert page.evaluate(FOCUS_SHOWN), f"no visible focus on {stops[-1]}"
        if stops[-1] == target:
            return stops
    raise AssertionError(f"Tab never reached {target}: {stops}")


def overflow(page: Page) -> tuple[int, list[str]]:
    """Sideways overflow in pixels and the elements causing it."""
    extra = int(page.evaluate(OVERFLOW))
    return extra, (list(page.evaluate(WIDE_ELEMENTS)) if extra > 0 else [])
