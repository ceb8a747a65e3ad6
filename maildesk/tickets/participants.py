"""Who is CC or follower of a ticket after an agent's change. Pure.

A participant is an address on the ticket with a role: "cc" or
"follower". Either gets a copy of every public reply and of the solution
(SPEC §6; tickets/notices.py does not tell the roles apart), and either may
thread a mail onto the ticket by its subject tag alone (SPEC §4,
store.lookup.is_participant); a removed one is neither.

The rules of a change, all checked before anything is written:

- adding an address already there in the same role changes nothing (a
  retried request is harmless); adding one there in the other role moves it
  to the new role;
- removing an address that is not there, or is there in the other role, is
  refused and names it: a mistyped address must not leave the real one
  receiving copies while the agent believes it gone;
- the requester (who gets every mail anyway) and our own support
  addresses are refused, and so is one address named in two lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ROLES = ("cc", "follower")
#: The most addresses one list of a change may name.
MAX_PER_CHANGE = 50


class ParticipantRefused(ValueError):
    """The change cannot be made; `field` names the list it comes from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Change:
    """One address moved: `old_role` None means added, `new_role` None removed."""

    email: str
    old_role: str | None
    new_role: str | None


@dataclass(frozen=True)
class Wanted:
    """The lists of a change, by the field that named them (lower-cased)."""

    add_cc: Sequence[str] = ()
    remove_cc: Sequence[str] = ()
    add_followers: Sequence[str] = ()
    remove_followers: Sequence[str] = ()

    def lists(self) -> list[tuple[str, str, str, Sequence[str]]]:
        """(field, what, role, addresses) in the order they are applied."""
        return [("add_cc", "add", "cc", self.add_cc),
                ("add_followers", "add", "follower", self.add_followers),
                ("remove_cc", "remove", "cc", self.remove_cc),
                ("remove_followers", "remove", "follower", self.remove_followers)]


def _is_ours(address: str, ours: Iterable[str]) -> bool:
    local, _, domain = address.partition("@")
    base = f"{local.split('+', 1)[0]}@{domain}"
    return any(address == o or base == o for o in ours)


def plan(number: int, current: Mapping[str, str], wanted: Wanted, *,
         requester: str | None, ours: Iterable[str]) -> list[Change]:
    """The changes `wanted` makes to `current` (address -> role, lower-cased)
    on ticket `number`; raises ParticipantRefused naming the address."""
    ours = [o.lower() for o in ours]
    named: dict[str, str] = {}
    changes: list[Change] = []
    for field, what, role, addresses in wanted.lists():
        if len(addresses) > MAX_PER_CHANGE:
            raise ParticipantRefused(field, f"{field}: at most {MAX_PER_CHANGE} addresses")
        for address in addresses:
            if address in named:
                if named[address] == field:
                    continue  # named twice in one list: once is enough
                raise ParticipantRefused(
                    field, f"{field}: {address} is also in {named[address]}")
            named[address] = field
            have = current.get(address)
            if what == "add":
                if requester is not None and address == requester:
                    raise ParticipantRefused(
                        field, f"{field}: {address} is the requester of #{number} "
                               "(the requester gets every reply)")
                if _is_ours(address, ours):
                    raise ParticipantRefused(
                        field, f"{field}: {address} is one of our support addresses")
                if have != role:
                    changes.append(Change(address, have, role))
            elif have == role:
                changes.append(Change(address, role, None))
            else:
                on = (f"it is a {have} of #{number}" if have
                      else f"it is not on #{number}")
                raise ParticipantRefused(field, f"{field}: {address}: {on} "
                                                f"({describe(current)})")
    return changes


def describe(current: Mapping[str, str]) -> str:
    """"cc: a, b; follower: c", or "no CC or followers"."""
    parts = []
    for role in ROLES:
        people = [email for email, has in current.items() if has == role]
        if people:
            parts.append(f"{role}: {', '.join(people)}")
    return "; ".join(parts) or "no CC or followers"
