"""What an agent should read first of a mail: the new text, without history.

Customers answer on top of the whole conversation (Outlook's "Von: … /
Gesendet: …" block, Gmail's and Apple Mail's "Am … schrieb …:" with ">"
lines, "-----Ursprüngliche Nachricht-----"), and end with a signature.
:func:`display_text` returns the part above all that. It is for display
only: the full text is stored with the message and stays searchable.

Cutting off a real answer is worse than showing some history, so the rules
are narrow and every doubt keeps the text:

- a separator counts only as a whole line in a known form: maildesk's own
  "## Bitte oberhalb dieser Zeile antworten ##" marker, Outlook's
  "-----Original Message-----" and header block (From, a date and To or
  Subject on consecutive lines), and an "Am … schrieb …:" / "On … wrote:"
  line with a date or time and either an address or a quote right below,
  so that a sentence like "Am Montag schrieb mir ein Kollege, dass …:" is
  not one;
- ">" lines followed by more unquoted text are a bottom-posted or
  interleaved answer: the customer's lines are shown without the quotes
  and the intro above each (the full text keeps them);
- an explicit forward ("---------- Forwarded message ---------", "Anfang
  der weitergeleiteten E-Mail:") is shown whole: the forwarded mail is the
  request;
- if nothing would be left, the whole text is shown.

The signature goes too: everything after a "-- " line, and a last line like
"Von meinem iPhone gesendet" or "Sent from my …". Closings such as "Mit freundlichen
Grüßen" stay: no rule tells them reliably from a sentence that starts with
"Grüße an das Team, …".

Why no library: mail-parser-reply cut real answers in our tests (a line
starting with "Grüße" or "- " and everything after it, a sentence ending in
"schrieb …:") and rewrites whitespace; quotequail misses Outlook header
blocks in ``quote()`` and takes ~3 ms per 5 KB in ``unwrap()``. This module
is a single pass over the lines (~0.1 ms for 5 KB).
"""

from __future__ import annotations

import logging
import re

__all__ = ["display_text", "message_display_text"]

log = logging.getLogger(__name__)

# maildesk's own line above the quoted notification (templates/mail/…).
_MARKER = re.compile(
    r"^(?:##\s*)?(?:Bitte oberhalb dieser Zeile antworten|Please reply above this line)"
    r"\s*(?:##)?$",
    re.IGNORECASE,
)
# Outlook, Thunderbird: the original follows (with a header block or quoted).
_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:Urspr(?:ü|ue)ngliche Nachricht|Original[- ]Nachricht|Original Message"
    r"|Message d'origine|Mensaje original|Messaggio originale|Oorspronkelijk bericht"
    r"|Wiadomo(?:ść|sc) oryginalna|Исходное сообщение|Mensagem original"
    r"|Ursprungligt meddelande|Oprindelig meddelelse|Opprinnelig melding"
    r"|Alkuperäinen viesti|Původní zpráva|Özgün ileti|Orijinal ileti)"
    r"\s*-{2,}$",
    re.IGNORECASE,
)
# Forwards: what follows is the request itself, so the whole text is shown.
_FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:Weitergeleitete Nachricht|Nachricht weitergeleitet|Forwarded message)"
    r"\s*-{2,}|(?:Anfang der weitergeleiteten (?:E-Mail|Nachricht)|Begin forwarded message):)$",
    re.IGNORECASE,
)
# One line of a mail header block as Outlook, Apple Mail and Gmail write it,
# optionally in bold (*Von:*) when converted from HTML, in the languages of
# Outlook's own block (French puts a space before the colon). Short words
# such as "A:" or "De:" count only inside a whole block (_is_header_block).
_HEADER_KIND = {
    "von": "from", "from": "from", "de": "from", "da": "from", "van": "from",
    "od": "from", "от": "from", "från": "from", "fra": "from", "kimden": "from",
    "lähettäjä": "from",
    "gesendet": "date", "sent": "date", "datum": "date", "date": "date",
    "envoyé": "date", "enviado": "date", "enviada": "date", "enviado el": "date",
    "inviato": "date", "verzonden": "date", "wysłano": "date", "отправлено": "date",
    "skickat": "date", "sendt": "date", "odesláno": "date", "gönderildi": "date",
    "lähetetty": "date", "data": "date", "fecha": "date", "дата": "date",
    "an": "to", "to": "to", "à": "to", "a": "to", "para": "to", "aan": "to",
    "do": "to", "кому": "to", "till": "to", "til": "to", "komu": "to", "kime": "to",
    "vastaanottaja": "to", "destinatario": "to",
    "betreff": "subject", "subject": "subject", "objet": "subject", "asunto": "subject",
    "oggetto": "subject", "onderwerp": "subject", "temat": "subject", "тема": "subject",
    "ämne": "subject", "emne": "subject", "předmět": "subject", "konu": "subject",
    "aihe": "subject", "assunto": "subject",
    "cc": "cc", "kopie": "cc", "копия": "cc", "kopia": "cc",
}  # fmt: skip
_HEADER = re.compile(
    r"^\*?(" + "|".join(sorted(map(re.escape, _HEADER_KIND), key=len, reverse=True))
    + r")\*?\s?:", re.IGNORECASE)
_HEADER_BLOCK_LINES = 10
# "Am 02.11.2026 um 10:15 schrieb Erika <e@x.de>:", "Erika schrieb am …:",
# "On Mon, Nov 2, 2026 at 10:15 AM Erika <e@x.de> wrote:", "Erika wrote on …:".
_INTRO = re.compile(
    r"^(?:Am\s.*\sschrieb\s.+|.+\sschrieb am\s.+|On\s.*\swrote|.+\swrote on\s.+):$"
    # "Le … a écrit :", "El … escribió:", "Il giorno … ha scritto:", "Op … schreef …:",
    # "W dniu … pisze:", "… пишет:" / "… написал(а):", "Em … escreveu:",
    # "Den … skrev …:", "… kirjoitti:", "Dne … napsal(a):", "… yazdı:"
    r"|^.+\s(?:a écrit|escribió|ha scritto|schreef|pisze|napisał(?:a|\(a\))?|пишет"
    r"|написал(?:а|\(а\))?|escreveu|skrev|kirjoitti|napsal(?:a|\(a\))?|yazdı)(?:\s.+)?\s?:$",
    re.IGNORECASE,
)
#: The verbs of _INTRO: a line without one is no intro (the fast path).
_INTRO_VERBS = ("schrieb", "wrote", "écrit", "escribió", "scritto", "schreef", "pisze",
                "napisał", "пишет", "написал", "escreveu", "skrev", "kirjoitti", "napsal",
                "yazdı")
_INTRO_MAX = 300
_DATE_OR_TIME = re.compile(r"\d{1,2}[:.]\d{2}")
# The short "Erika Mustermann schrieb:" / "Erika wrote:" right above a quote.
_LOOSE_INTRO = re.compile(
    r"^[^,.!?:;<]{1,80}(?:<[^<>\s]+>)?\s(?:schrieb|wrote|a écrit|escribió|ha scritto"
    r"|schreef|pisze|пишет|написал[а]?|escreveu|skrev|kirjoitti|napsal(?:a|\(a\))?|yazdı)\s*:$",
    re.IGNORECASE
)
_RULE = re.compile(r"^[-_=*]{5,}$")
# The last line mobile and web mail apps add; only these exact forms, so that
# a last line like "Gesendet mit DHL, Sendungsnummer …" stays.
_MOBILE_FOOTER = re.compile(
    r"^(?:Von meinem .{1,40} gesendet|Gesendet von meinem .{1,40}"
    r"|Gesendet (?:mit|von) (?:der )?.{1,40} (?:App|für Windows|für iOS|für Android)"
    r"|Sent from my .{1,40}|Sent from (?:Mail|Outlook|Yahoo Mail) for .{1,40}"
    r"|Get Outlook for (?:iOS|Android).{0,60}|Von Outlook für (?:iOS|Android) gesendet.{0,60}"
    r"|Outlook für (?:iOS|Android) beziehen.{0,60}"
    r"|Envoyé de mon .{1,40}|Enviado desde mi .{1,40}|Inviato da(?:l mio)? .{1,40}"
    r"|Verzonden (?:vanaf|met) (?:mijn )?.{1,40}|Wysłane z (?:mojego )?.{1,40}"
    r"|Отправлено с (?:моего )?.{1,40}|Enviado do meu .{1,40}|Skickat från min .{1,40}"
    r"|Sendt fra min .{1,40}|Odesláno z (?:mého )?.{1,40})\.?$",
    re.IGNORECASE,
)

_HISTORY, _FORWARDED = "history", "forwarded"


def message_display_text(subject: str, text: str) -> str:
    """The display text the ticket keeps for an incoming mail: a forward
    ("WG:", "Fwd:") whole, since its quoted part is the request; any other
    mail through :func:`display_text`."""
    from maildesk.mail import tokens  # tokens is heavier and imports more

    return text if tokens.is_forward(subject) else display_text(text)


def display_text(text: str) -> str:
    """Return the part of a plain-text mail body an agent should see first.

    That is the new text of a reply without the quoted history and the
    signature; for a reply written below or between quotes (bottom-posted,
    interleaved) the customer's own lines without the quotes and their
    intros; or the whole text (stripped) when no history is found, when the
    mail is a forward, or when nothing would be left. Line ends become "\\n"; lines are kept as they
    are. Pure; never raises.
    """
    if not isinstance(text, str):
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        return _display_text(text)
    except Exception as exc:  # one line at WARNING; the traceback is for DEBUG
        log.warning("display text fell back to the full text: %s: %s",
                    type(exc).__name__, str(exc)[:200] or "no detail")
        log.debug("the traceback of that fallback", exc_info=exc)
        return text.strip()


def _display_text(text: str) -> str:
    full = text.strip()
    lines = text.split("\n")
    end = _history_start(lines)
    if end is None:
        return _answers(lines) or full
    top = _without_signature(lines[:end])
    return "\n".join(top).strip() or full


def _quoted_from(lines: list[str], i: int) -> bool:
    """The next filled line from i on is a quote."""
    below = _next_filled(lines, i)
    return below is not None and lines[below].startswith(">")


# mutt's attribution: "* Erika <e@x.de> [2026-11-02 10:15]:"
_MUTT_INTRO = re.compile(r"^\*\s.{1,120}\[\d{4}-\d{2}-\d{2}[^\]]*\]:$")


def _answers(lines: list[str]) -> str:
    """A bottom-posted or interleaved reply: the customer's own lines, the
    quotes (">" lines and the intro above each) left out, up to older
    history or the signature; "" for a forward (shown whole)."""
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(">"):
            i += 1
            continue
        kind = _separator(lines, i)
        if kind == _FORWARDED:
            return ""
        if kind == _HISTORY:
            break
        intro_end = _intro_end(lines, i)
        if intro_end is not None and _quoted_from(lines, intro_end + 1):
            i = intro_end + 1
            continue
        quoted_below = _quoted_from(lines, i + 1)
        if quoted_below and (_LOOSE_INTRO.match(line.strip())
                             or _MUTT_INTRO.match(line.strip())):
            i += 1
            continue
        kept.append(line)
        i += 1
    kept = _without_signature(kept)
    collapsed: list[str] = []
    for line in kept:
        if not line.strip() and collapsed and not collapsed[-1].strip():
            continue
        collapsed.append(line.rstrip() if not line.strip() else line)
    return "\n".join(collapsed).strip()


def _history_start(lines: list[str]) -> int | None:
    """Index of the first line of history, len(lines) if there is none.

    None means: show the whole text (interleaved answers, a forward).
    """
    for i, line in enumerate(lines):
        if line.startswith(">"):
            if not _only_history_from(lines, i):
                return None  # an answer below a quote
            return _with_loose_intro(lines, i)
        kind = _separator(lines, i)
        if kind == _FORWARDED:
            return None
        if kind == _HISTORY:
            return i
        intro_end = _intro_end(lines, i)
        if intro_end is not None:
            below = _next_filled(lines, intro_end + 1)
            if below is None or not lines[below].startswith(">"):
                return i  # unquoted history (Outlook, converted HTML)
            if _only_history_from(lines, below):
                return i
            return None  # the quote under the intro is answered in between
    return len(lines)


def _separator(lines: list[str], i: int) -> str | None:
    """_HISTORY or _FORWARDED when line i is a separator (not an intro)."""
    line = lines[i].strip()
    if not line:
        return None
    if _FORWARD.match(line):
        return _FORWARDED
    if _MARKER.match(line) or _ORIGINAL.match(line) or _is_header_block(lines, i):
        return _HISTORY
    return None


def _only_history_from(lines: list[str], i: int) -> bool:
    """True when from line i on there is nothing but quotes and history.

    History under an intro is either quoted (then it is checked on) or, in
    Outlook's and converted HTML's way, not (then all of it is history).
    """
    j = i
    while j < len(lines):
        if not lines[j].strip() or lines[j].startswith(">"):
            j += 1
            continue
        if _separator(lines, j) is not None:
            return True
        intro_end = _intro_end(lines, j)
        if intro_end is None:
            return False  # an answer
        below = _next_filled(lines, intro_end + 1)
        if below is None or not lines[below].startswith(">"):
            return True
        j = below
    return True


def _is_header_block(lines: list[str], i: int) -> bool:
    """True when line i starts a block of consecutive header lines with From,
    a date, and To or Subject (Outlook, Apple Mail and Gmail forwards)."""
    if not _HEADER.match(lines[i].strip()):
        return False
    kinds: set[str] = set()
    for line in lines[i : i + _HEADER_BLOCK_LINES]:
        stripped = line.strip()
        if not stripped:
            break
        header = _HEADER.match(stripped)
        if header:
            kinds.add(_HEADER_KIND[header.group(1).lower()])
    return {"from", "date"} <= kinds and bool(kinds & {"to", "subject"})


def _intro_end(lines: list[str], i: int) -> int | None:
    """The last line of an intro ("Am … schrieb …:") at line i, maybe wrapped
    onto line i+1; None if there is none.

    It must carry a date or a time, and an address or, right below it, a
    quote or an indented block (a blockquote of converted HTML).
    """
    lowered = " ".join(lines[i : i + 2]).lower()
    if not any(verb in lowered for verb in _INTRO_VERBS):  # fast path: most lines
        return None
    for last in (i, i + 1):
        if last >= len(lines):
            return None
        intro = " ".join(part.strip() for part in lines[i : last + 1])
        if len(intro) > _INTRO_MAX:
            return None
        if _INTRO.match(intro):
            break
    else:
        return None
    if not _DATE_OR_TIME.search(intro):
        return None
    if "@" in intro:
        return last
    below = _next_filled(lines, last + 1)
    return last if below is not None and lines[below][:1] in (">", " ", "\t") else None


def _with_loose_intro(lines: list[str], i: int) -> int:
    """Move the start of a quote up over a short "Erika wrote:" line above it."""
    above = _previous_filled(lines, i - 1)
    if above is not None and _LOOSE_INTRO.match(lines[above].strip()):
        return above
    return i


def _without_signature(lines: list[str]) -> list[str]:
    """The lines above the signature: before a "-- " line, without trailing
    rules (Outlook's line above its header block) and "Sent from my iPhone"."""
    for i, line in enumerate(lines):
        if line.rstrip() == "--":
            lines = lines[:i]
            break
    while True:
        last = _previous_filled(lines, len(lines) - 1)
        if last is None:
            return lines
        stripped = lines[last].strip()
        if not (_MOBILE_FOOTER.match(stripped) or _RULE.match(stripped)):
            return lines
        lines = lines[:last]


def _next_filled(lines: list[str], i: int) -> int | None:
    for j in range(i, len(lines)):
        if lines[j].strip():
            return j
    return None


def _previous_filled(lines: list[str], i: int) -> int | None:
    for j in range(i, -1, -1):
        if lines[j].strip():
            return j
    return None
