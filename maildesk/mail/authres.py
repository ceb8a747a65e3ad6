"""Authentication-Results headers (RFC 8601): what an MTA we trust says
about a mail's sender, and what that proves for its From domain.

maildesk verifies no DKIM signature or SPF record itself; the MTA in
front does, and writes its verdicts into an `Authentication-Results`
header that starts with its authserv-id. Anyone can write such a header
into a mail, so only the ids ops name (`security.trusted_authserv_ids`)
count, and of those only the topmost header: the one our last hop added
(an MTA adds its header on top and should strip incoming ones carrying
its own id, RFC 8601 §5; if it does not, an attacker's copy is below).

Hand-written rather than the `authres` package (1.2.0, last release
2019): it raises SyntaxError on Microsoft 365's header (no authserv-id)
and on an unclosed comment, and a parser that raises on a header a sender
wrote is one more way to make a mail fail; here a bad clause is skipped.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

#: Results that say "this domain really sent it".
PASS = "pass"
#: Results that say "this domain did NOT send it" (DMARC: the domain's
#: owner asks receivers to distrust such a mail).
FAIL = "fail"


@dataclass(frozen=True)
class MethodResult:
    """One `method=result` clause with its properties (`header.from=…`)."""

    method: str
    result: str
    reason: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    def prop(self, name: str) -> str:
        return self.properties.get(name, "")


@dataclass(frozen=True)
class AuthResults:
    """One parsed header. `authserv_id` is "" where the MTA wrote none
    (Microsoft 365's form): such a header can never be trusted."""

    authserv_id: str
    results: tuple[MethodResult, ...] = ()

    def of(self, method: str) -> list[MethodResult]:
        return [r for r in self.results if r.method == method]


@dataclass(frozen=True)
class SenderVerdict:
    """pass (the From domain is proven), fail (a trusted MTA says it is
    forged) or none (nothing trusted says either); `detail` is the line
    shown on the message ("dmarc=pass header.from=firma.de (by mx.firma.de)")."""

    verdict: str
    detail: str = ""
    authserv_id: str = ""


# -- tokenizer ---------------------------------------------------------------

_SPECIALS = ";=()\""


def _tokens(value: str) -> Iterator[tuple[str, str]]:
    """(kind, text): kind is "word", "quoted", "comment", `;` or `=`
    (a `/` stays inside its word: `dkim/1`). Unbalanced comments and
    quotes end at the end of the header (the rest of an attacker's header
    is then one comment, never a result)."""
    i, n = 0, len(value)
    while i < n:
        char = value[i]
        if char.isspace() or char == ")":  # a stray ")" means nothing
            i += 1
        elif char in ";=":
            yield char, char
            i += 1
        elif char == "(":
            depth, start, i = 1, i + 1, i + 1
            while i < n and depth:
                if value[i] == "\\":
                    i += 1
                elif value[i] == "(":
                    depth += 1
                elif value[i] == ")":
                    depth -= 1
                i += 1
            yield "comment", value[start:i - 1 if depth == 0 else i]
        elif char == '"':
            i += 1
            text: list[str] = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                text.append(value[i])
                i += 1
            i += 1
            yield "quoted", "".join(text)
        else:
            start = i
            while i < n and not value[i].isspace() and value[i] not in _SPECIALS:
                i += 1
            yield "word", value[start:i]


def _clauses(value: str) -> list[list[tuple[str, str]]]:
    """The header split at `;`, comments dropped."""
    clauses: list[list[tuple[str, str]]] = [[]]
    for kind, text in _tokens(value):
        if kind == ";":
            clauses.append([])
        elif kind != "comment":
            clauses[-1].append((kind, text))
    return clauses


# -- parser ------------------------------------------------------------------


def parse_authentication_results(value: str) -> AuthResults | None:
    """One header value; None when it holds nothing usable (empty, or no
    authserv-id and no result). Never raises: an unreadable clause is
    skipped, the others still count."""
    clauses = _clauses(value)
    head = clauses[0]
    authserv_id = ""
    if head and head[0][0] in ("word", "quoted") and not (len(head) > 1 and head[1][0] == "="):
        # authserv-id [version]; a first clause "spf=pass …" is Microsoft
        # 365's header without an id: that clause is a result.
        authserv_id = head[0][1].strip().lower().rstrip(".")
        clauses = clauses[1:]
    results = tuple(r for r in (_result(c) for c in clauses) if r is not None)
    if not authserv_id and not results:
        return None
    return AuthResults(authserv_id, results)


def _result(clause: list[tuple[str, str]]) -> MethodResult | None:
    """`method[/version]=result [reason=…] [ptype.property=value …]`."""
    pairs = list(_pairs(clause))
    if not pairs:
        return None
    method, result = pairs[0]
    method = method.lower().split("/", 1)[0]
    if not method or not result or method == "none":
        return None
    reason = ""
    properties: dict[str, str] = {}
    for key, text in pairs[1:]:
        key = key.lower()
        if key == "reason":
            reason = text
        elif "." in key:
            properties.setdefault(key, text)  # the first one counts, as for headers
        # anything else (Microsoft's action=, compauth's extras): ignored
    return MethodResult(method, result.lower(), reason, properties)


def _pairs(clause: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """key=value pairs of a clause; stray words (a version number after the
    method, unknown syntax) are skipped."""
    i = 0
    while i < len(clause):
        kind, text = clause[i]
        if kind == "word" and i + 2 < len(clause) and clause[i + 1][0] == "=" \
                and clause[i + 2][0] in ("word", "quoted"):
            value = clause[i + 2][1]
            # values may contain "=" (base64 in header.b): glue the rest on
            j = i + 3
            while j + 1 < len(clause) and clause[j][0] == "=" and clause[j + 1][0] == "word" \
                    and not (j + 2 < len(clause) and clause[j + 2][0] == "="):
                value += "=" + clause[j + 1][1]
                j += 2
            while j < len(clause) and clause[j][0] == "=":
                value += "="
                j += 1
            yield text, value
            i = j
        else:
            i += 1


def parse_all(values: Sequence[str]) -> list[AuthResults]:
    """Every header of a mail, top to bottom (the order they were added,
    newest first), unparseable ones left out."""
    return [r for r in (parse_authentication_results(v) for v in values) if r is not None]


# -- judging -----------------------------------------------------------------


def from_domain_of(address: str) -> str:
    """The domain of an address or of `header.from` (some MTAs write the
    whole address there), lowercased, without a trailing dot."""
    return address.rpartition("@")[2].strip().strip("<>").lower().rstrip(".")


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed DMARC alignment without a public-suffix list: the same
    domain, or one a subdomain of the other. A single label ("de") never
    aligns; a public suffix of two labels ("co.uk") would, but nobody can
    publish DKIM keys under it, so no pass for it ever reaches us."""
    d, f = signing_domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not d or not f or "." not in d or "." not in f:
        return False
    return d == f or f.endswith("." + d) or d.endswith("." + f)


def trusted_header(
    headers: Sequence[str], trusted: Collection[str]
) -> AuthResults | None:
    """The topmost header with a trusted authserv-id, if any."""
    ids = {t.strip().lower().rstrip(".") for t in trusted if t.strip()}
    if not ids:
        return None
    for parsed in parse_all(headers):
        if parsed.authserv_id and parsed.authserv_id in ids:
            return parsed
    return None


def judge_sender(
    headers: Sequence[str], trusted: Collection[str], from_domain: str
) -> SenderVerdict:
    """What the topmost trusted header proves about `from_domain`.

    DMARC for that domain decides when present (pass or fail); otherwise a
    DKIM pass whose signing domain aligns with it passes. SPF alone never
    proves a From (it covers the envelope sender, which anyone chooses).
    """
    header = trusted_header(headers, trusted)
    domain = from_domain.lower().rstrip(".")
    if header is None or not domain:
        return SenderVerdict("none")
    by = f"(by {header.authserv_id})"
    for dmarc in header.of("dmarc"):
        if from_domain_of(dmarc.prop("header.from")) != domain:
            continue
        if dmarc.result == PASS:
            return SenderVerdict(PASS, f"dmarc=pass header.from={domain} {by}",
                                 header.authserv_id)
        if dmarc.result == FAIL:
            return SenderVerdict(FAIL, f"dmarc=fail header.from={domain} {by}",
                                 header.authserv_id)
    for dkim in header.of("dkim"):
        signer = dkim.prop("header.d") or from_domain_of(dkim.prop("header.i"))
        if dkim.result == PASS and aligned(signer, domain):
            return SenderVerdict(PASS, f"dkim=pass header.d={signer.lower()} aligned with "
                                       f"{domain} {by}", header.authserv_id)
    return SenderVerdict("none", "", header.authserv_id)
