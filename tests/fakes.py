"""A dict-backed stand-in for the store's read-only Lookup."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from maildesk.types import ThirdPartyInfo, TicketInfo


@dataclass
class FakeLookup:
    tickets: dict[int, TicketInfo] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    organisations: dict[str, int] = field(default_factory=dict)
    participants: dict[int, set[str]] = field(default_factory=dict)
    recent: dict[str, int] = field(default_factory=dict)
    outgoing: set[str] = field(default_factory=set)
    third_parties: dict[int, ThirdPartyInfo] = field(default_factory=dict)

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        return next((self.stored[m] for m in message_ids if m in self.stored), None)

    def organisation_for_domain(self, domain: str) -> int | None:
        return self.organisations.get(domain)

    def ticket(self, number: int) -> TicketInfo | None:
        return self.tickets.get(number)

    def is_participant(self, number: int, email: str) -> bool:
        return email in self.participants.get(number, set())

    def mails_from_since(self, email: str, since: datetime) -> int:
        return self.recent.get(email, 0)

    def is_our_outgoing(self, message_id: str) -> bool:
        return message_id in self.outgoing

    def third_party_request(self, request_id: int) -> ThirdPartyInfo | None:
        return self.third_parties.get(request_id)
