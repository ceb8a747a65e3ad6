"""Command lines at the top of an agent's mail: `#status pending` and friends.

Pure parsing and validation; the service applies them. All or nothing: if
one line is unknown or invalid, none is applied and the agent is told why,
because half of an instruction is worse than none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maildesk.config import PRIORITIES, REQUEST_TYPES

STATUS_TARGETS = ("open", "pending", "on_hold", "solved")
_LINE = re.compile(r"^#([a-z_]+)(?:[ \t]+(.*?))?[ \t]*$", re.IGNORECASE)
KNOWN = ("#status", "#priority", "#type", "#assign", "#group", "#internal")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Command:
    line: str
    name: str
    value: str = ""
    ok: bool = True
    message: str = ""
    #: why a line was refused, for the agent's language (the command-result
    #: templates word it): "unknown", "value" (expects `expected`), "no_value"
    problem: str = ""
    expected: str = ""


def _check(name: str, value: str, line: str) -> Command:
    def bad(message: str, problem: str = "value", expected: str = "") -> Command:
        return Command(line, name, value, False, message, problem, expected)

    if name == "status":
        if value not in STATUS_TARGETS:
            return bad(f"#status takes one of {', '.join(STATUS_TARGETS)}", expected=", ".join(
                STATUS_TARGETS))
    elif name == "priority":
        if value not in PRIORITIES:
            return bad(f"#priority takes one of {', '.join(PRIORITIES)}",
                       expected=", ".join(PRIORITIES))
    elif name == "type":
        if value not in REQUEST_TYPES:
            return bad(f"#type takes one of {', '.join(REQUEST_TYPES)}",
                       expected=", ".join(REQUEST_TYPES))
    elif name == "assign":
        if not _EMAIL.match(value) and value != "none":
            return bad("#assign takes an agent's address (or none)", expected="address")
    elif name == "group":
        if not value:
            return bad("#group takes a group name (or none)", expected="group")
    elif name == "internal":
        if value:
            return bad("#internal takes no value", "no_value")
    else:
        return bad(f"unknown command #{name} (known: {', '.join(KNOWN)})", "unknown",
                   ", ".join(KNOWN))
    return Command(line, name, value, True, "")


def parse_commands(text: str) -> tuple[list[Command], str]:
    """Leading `#` lines (blank lines between them allowed) are commands;
    the text after them is the reply. A `#` line further down is text."""
    lines = text.replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped:
            index += 1
            continue
        match = _LINE.match(stripped)
        if not match:
            break
        name = match.group(1).lower()
        value = (match.group(2) or "").strip()
        value = value if name in ("group", "assign") else value.lower()
        commands.append(_check(name, value, stripped))
        index += 1
    return commands, "\n".join(lines[index:]).strip()
