"""What a notification mail says: the template context of an outbox row
(ticket, customer, agent, thread, links, survey) and the header fields
(reply address, threading ids, Thread-Index) that compose() writes.

Read in one short transaction per mail; the ticket's newest messages are
read once and reused by every part of the context that needs them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine

from maildesk.config import Settings
from maildesk.deliver import announcement, portal_login, queries, stop_links
from maildesk.deliver.compose import OutgoingFile, thread_index
from maildesk.deliver.render import Renderer, labels
from maildesk.mail import tokens
from maildesk.models import Message, utcnow
from maildesk.store import blobs
from maildesk.tickets import links, snapshot

log = logging.getLogger(__name__)

#: Messages of the thread quoted below an agent reply.
THREAD_DEPTH = 5
#: Kinds that carry the satisfaction survey link under the signature.
CSAT_KINDS = ("solution", "solved_by_customer")
#: Mails to one agent about their own mail (outbox.notify_agent): `agent`
#: in the template is the recipient.
TO_AGENT_KINDS = ("command_result", "agent_notice_statement")
#: Kinds whose text is only their own message's (none: the template says
#: it), never the customer's newest mail: a status change to solved or on hold.
OWN_TEXT_KINDS = ("solution", "second_level_solved", "on_hold_development")
#: Kinds that send the files of the agent's message to the customer.
REPLY_FILE_KINDS = ("agent_reply", "solution", "second_level_solved")
#: Kinds that tell an agent about a customer's message and its files.
NOTICE_FILE_KINDS = ("agent_notice_new", "agent_notice_reply", "agent_notice_unverified",
                     "agent_notice_statement")
#: Mails to a third person (tickets ask/forward): their own reply address
#: and a thread of their own; they show the customer's messages.
THIRD_PARTY_KINDS = ("third_party_ask", "third_party_forward")
#: Where a customer's mail links into the portal: the ticket's page, which
#: asks for the login when there is no session (it never logs in itself:
#: mail scanners open links).
PORTAL_TICKETS = "/portal/tickets/"
#: Mails to people who are no customer of the ticket: no portal link.
_NOT_TO_CUSTOMERS = (*THIRD_PARTY_KINDS, "command_result")


def portal_kind(kind: str) -> bool:
    """Whether a kind of mail goes to the ticket's customer side (requester,
    CC, followers): those carry the portal link, agents' notices do not."""
    return not kind.startswith("agent_notice") and kind not in _NOT_TO_CUSTOMERS
#: The customer's messages a third party mail shows (oldest first).
THIRD_PARTY_MESSAGES = 20
_CUSTOMER_MESSAGES = (
    select(Message.__table__.c.author, Message.__table__.c.from_addr,
           Message.__table__.c.from_name, Message.__table__.c.date,
           Message.__table__.c.created_at, Message.__table__.c.text_display,
           Message.__table__.c.text)
    .where(Message.__table__.c.ticket_id == bindparam("ticket_id"),
           Message.__table__.c.direction == "in")
    .order_by(Message.__table__.c.id).limit(THIRD_PARTY_MESSAGES))
#: Message-IDs of the thread named in References (the newest).
THREAD_IDS = 10
#: The newest messages of a ticket read in one query when a mail is built.
RECENT = max(THREAD_DEPTH + 1, THREAD_IDS)

#: The statements of claim, finish and the context, built once (deliver/queries.py).
SQL = queries.statements(THREAD_DEPTH, THREAD_IDS, RECENT)
_SQL = SQL


class MailBuilder:
    """The context and header fields of one outbox row's mail."""

    def __init__(self, settings: Settings, engine: Engine, secret: bytes,
                 renderer: Renderer) -> None:
        self.settings = settings
        self.engine = engine
        self.secret = secret
        self.renderer = renderer
        self._recent = threading.local()  # see _recent_messages

    def fields(self, row: dict[str, Any],
                    connection: Any = None) -> tuple[dict[str, Any], list[str], int]:
        """compose()'s arguments for the row, its recipients, the ticket number
        (read on ``connection`` when given, in a transaction ended here)."""
        with contextlib.ExitStack() as stack:
            if connection is None:
                connection = stack.enter_context(self.engine.connect())
            stack.enter_context(connection.begin())
            if row["kind"] == portal_login.KIND:  # a login link: no ticket either
                return portal_login.fields(self.settings, self.secret, self.renderer, row,
                                           connection)  # type: ignore[return-value]
            if row["ticket_id"] is None:  # an announcement: no ticket (deliver/announcement.py)
                return announcement.fields(self.settings, self.secret, self.renderer, row,
                                           connection)  # type: ignore[return-value]
            ticket = dict(connection.execute(
                _SQL["ticket"], {"ticket_id": row["ticket_id"]}).one()._mapping)
            # as it was when the notice was caused (rows without a snapshot: as it is)
            ticket = snapshot.as_of(ticket, json.loads(row["payload"] or "{}"))
            self._recent.rows = (ticket["id"], connection.execute(
                _SQL["recent"], {"ticket_id": ticket["id"]}).all())
            try:
                context = self._context(connection, row, ticket)
                context = {**context, "stop_links": stop_links.stop_links(
                    self.settings, self.secret, connection, row, ticket)}
                # the mail's own row is among the newest: it answers the others
                own = row["message_id"].strip("<>")
                thread = [m for m in self._thread_ids(connection, ticket["id"])
                          if m.strip("<>") != own]
            finally:
                self._recent.rows = None
            created = [ticket["created_at"]]
        attachments = context["attachments"]
        number = ticket["number"]
        rendered = self.renderer.render(row["kind"], row["language"], context)
        support = self.settings.mail.addresses[0]
        to = [a for a in row["to_addrs"].split(", ") if a]
        cc = [a for a in row["cc_addrs"].split(", ") if a]
        customer_facing = not row["kind"].startswith(("agent_notice", "command_result"))
        subject = tokens.tagged_subject(rendered.subject, number, self.settings.mail.subject_tag)
        fields = dict(
            rendered=replace(rendered, subject=subject),
            from_address=support, from_name=self.settings.notify.from_name, to=to, cc=cc,
            reply_to=self._reply_to(support, number, to, customer_facing),
            message_id=row["message_id"],
            in_reply_to=thread[-1] if thread else None,
            references=[self._stable_reference(number), *thread],
            thread_topic=tokens.remove_tag(ticket["subject"], self.settings.mail.subject_tag),
            thread_index=thread_index(self._stable_reference(number), created[0]),
            auto_submitted=row["auto_submitted"], date=utcnow(),
            extra_headers={"X-Maildesk-Ticket": str(number)} if not customer_facing else {},
            attachments=attachments,
        )
        if row["kind"] in THIRD_PARTY_KINDS:
            fields.update(self._third_party_fields(support, row))
        return fields, to + cc, number

    def _third_party_fields(self, support: str, row: dict[str, Any]) -> dict[str, Any]:
        """A third person answers to the request's own signed address; the
        mail starts a thread of its own (the customer's Message-IDs are
        none of their business), so their answer threads by our id."""
        request_id = int(json.loads(row["payload"] or "{}").get("third_party_id", 0))
        return {"reply_to": tokens.third_party_reply_address(self.secret, support, request_id),
                "in_reply_to": None, "references": []}

    def _reply_to(self, support: str, number: int, to: list[str], customer_facing: bool) -> str:
        """The customer's reply address; for a mail to one agent, that
        agent's own (its signature covers ticket and agent: the proof that
        an answer From the agent is the agent's, process/pipeline/authenticity.py).
        A group address gets the customer's: whoever answers from it must
        be proven otherwise (a trusted DMARC pass)."""
        agents = {a.email for a in self.settings.agents}
        if not customer_facing and len(to) == 1 and to[0].lower() in agents:
            return tokens.agent_reply_address(self.secret, support, number, to[0])
        return tokens.reply_address(self.secret, support, number)

    def _stable_reference(self, number: int) -> str:
        """One reference every mail of a ticket carries, so that Outlook and
        Gmail keep the whole conversation together."""
        return f"ticket-{number}@{self.settings.message_id_domain}"

    def _recent_messages(self, ticket_id: int) -> tuple[list[Any], bool] | None:
        """The ticket's newest messages (no internal notes), newest first, as
        fields() read them for the mail being built, and whether they are
        all of them; None outside fields()."""
        known = getattr(self._recent, "rows", None)
        if known is None or known[0] != ticket_id:
            return None
        return known[1], len(known[1]) < RECENT

    def _first_recent(self, ticket_id: int, direction: str) -> tuple[bool, Any]:
        """(found out, the newest message in ``direction`` or None) from the
        recent messages; (False, None) when a query must find out."""
        recent = self._recent_messages(ticket_id)
        if recent is None:
            return False, None
        rows, complete = recent
        found = next((r for r in rows if r.direction == direction), None)
        return found is not None or complete, found

    def _asked_at(self, connection: Any, ticket_id: int) -> Any:
        """When maildesk last wrote to the customer (None: never)."""
        known, latest = self._first_recent(ticket_id, "out")
        if known:
            return latest.created_at if latest is not None else None
        return connection.execute(_SQL["asked_at"], {"ticket_id": ticket_id}).scalar()

    def _thread_ids(self, connection: Any, ticket_id: int) -> list[str]:
        recent = self._recent_messages(ticket_id)
        if recent is not None:
            ids = [r.message_id for r in recent[0] if r.message_id]
            if len(ids) >= THREAD_IDS or recent[1]:
                return list(reversed(ids[:THREAD_IDS]))
        newest_first = connection.execute(
            _SQL["thread_ids"], {"ticket_id": ticket_id}).scalars().all()
        return list(reversed(newest_first))

    def _context(self, connection: Any, row: dict[str, Any],
                 ticket: dict[str, Any]) -> dict[str, Any]:
        requester = connection.execute(
            _SQL["requester"], {"customer_id": ticket["requester_id"]}).first()
        message = None
        if row["message_row_id"]:
            message = connection.execute(
                _SQL["message"], {"message_id": row["message_row_id"]}).first()
        agent = None
        author = message.author if message is not None else None
        to_agent = row["kind"] in TO_AGENT_KINDS
        if to_agent:  # greets its recipient, not the ticket's assignee
            author = row["to_addrs"]
        if author:
            agent = connection.execute(_SQL["agent_by_email"], {"email": author}).first()
        if agent is None and ticket["assignee_id"] and not to_agent:
            agent = connection.execute(
                _SQL["agent_by_id"], {"agent_id": ticket["assignee_id"]}).first()
        text, shown = self._text(connection, row, ticket, message)
        files, attachments = self._files(connection, row, shown)
        names = labels(row["language"])
        payload = json.loads(row["payload"] or "{}")
        old = None
        if ticket["follow_up_of"]:
            old_row = connection.execute(
                _SQL["old_ticket"], {"number": ticket["follow_up_of"]}).first()
            old = {"number": old_row.number, "subject": old_row.subject} if old_row else None
        asked_at = self._asked_at(connection, ticket["id"])
        extra = {k: v for k, v in payload.items()
                 if k not in ("commands", "csat_url", snapshot.KEY)}
        return {
            **extra,
            "asked_at": asked_at,
            "ticket": {
                "number": ticket["number"], "subject": ticket["subject"],
                "status": ticket["status"],
                "status_label": names["status"].get(ticket["status"], ticket["status"]),
                "request_type": ticket["request_type"],
                "request_type_label": names["request_type"].get(ticket["request_type"],
                                                                ticket["request_type"]),
                "priority": ticket["priority"],
                "priority_label": names["priority"].get(ticket["priority"], ticket["priority"]),
                "tag": self.settings.mail.subject_tag.format(number=ticket["number"]),
                "follow_up_of": ticket["follow_up_of"],
            },
            "customer": {"name": requester.name if requester else "",
                         "email": requester.email if requester else ""},
            "agent": {"name": agent.name, "email": agent.email} if agent else None,
            "text": text,
            "thread": self._thread(connection, ticket["id"], row["message_row_id"]),
            "reference_line": tokens.body_reference(self.secret, ticket["number"]),
            "signature_name": self.settings.notify.signature(row["language"]),
            "brand": self.settings.notify.brand,
            "old_ticket": old,
            "commands": payload.get("commands", []),
            "csat_url": payload.get("csat_url"),
            "files": files,
            "attachments": attachments,
            **self._links(row, ticket),
            **self._customer_messages(connection, row, ticket),
        }

    def _customer_messages(self, connection: Any, row: dict[str, Any],
                           ticket: dict[str, Any]) -> dict[str, Any]:
        """What a third person is shown: the customer's messages (never an
        internal note, nor an agent's reply), oldest first."""
        if row["kind"] not in THIRD_PARTY_KINDS:
            return {}
        rows = connection.execute(_CUSTOMER_MESSAGES, {"ticket_id": ticket["id"]}).all()
        return {"customer_messages": [
            {"author": r.from_name or r.author or r.from_addr, "date": r.date or r.created_at,
             "text": r.text_display or r.text} for r in rows]}

    def _links(self, row: dict[str, Any], ticket: dict[str, Any]) -> dict[str, Any]:
        """The page links a kind carries: the portal's (to customers) and the
        signed ones of the kind."""
        if not self.settings.web.enabled:
            return {}
        portal = ({"portal_url": f"{self.settings.web.base_url}{PORTAL_TICKETS}"
                                 f"{ticket['number']}"}
                  if self.settings.portal.enabled and portal_kind(row["kind"]) else {})
        return {**portal, **self._signed_links(row, ticket)}

    def _signed_links(self, row: dict[str, Any], ticket: dict[str, Any]) -> dict[str, Any]:
        """The signed page links a kind carries. Issued at the row's creation,
        so every retry of the mail carries the very same link."""
        web, kind, number = self.settings.web, row["kind"], ticket["number"]
        issued = row["created_at"]
        if kind in CSAT_KINDS:
            return {"csat_url": links.make_url(web.base_url, self.secret, "csat", number,
                                               issued, web.csat_link_days)}
        if kind == "agent_reply" and ticket["status"] not in ("solved", "closed"):
            return {"solve_url": links.make_url(web.base_url, self.secret, "solve", number,
                                                issued, web.solve_link_days)}
        if kind == "registration" and ticket["requester_id"]:
            days = self.settings.registration.link_days
            return {"confirm_url": links.make_url(web.base_url, self.secret, "confirm",
                                                  ticket["requester_id"], issued, days),
                    "confirm_days": days}
        return {}

    def _text(self, connection: Any, row: dict[str, Any], ticket: dict[str, Any],
              message: Any) -> tuple[str, int | None]:
        """The text the mail shows and the id of the message it is from."""
        if message is not None:
            return str(message.text_display or message.text), message.id
        if row["kind"] in OWN_TEXT_KINDS:  # e.g. solved without a reply: no text at all
            return "", None
        known, latest = self._first_recent(ticket["id"], "in")
        if not known:
            latest = connection.execute(_SQL["latest_in"], {"ticket_id": ticket["id"]}).first()
        return (str(latest.text_display or latest.text), latest.id) if latest else ("", None)

    def _files(self, connection: Any, row: dict[str, Any],
               message_id: int | None) -> tuple[list[dict[str, Any]], list[OutgoingFile]]:
        """The files of the message the mail shows: for the template (name,
        size, a signed download link in agent notices, whether attached)
        and the files that go with the mail. An agent's reply takes all of
        its files to the customer; an agent notice attaches the customer's
        files while they fit notify.agent_files_bytes, and links each."""
        kind = row["kind"]
        if message_id is None or kind not in REPLY_FILE_KINDS + NOTICE_FILE_KINDS:
            return [], []
        rows = connection.execute(_SQL["files"], {"message_id": message_id}).all()
        if not rows:
            return [], []
        notice = kind in NOTICE_FILE_KINDS
        budget = self.settings.notify.agent_files_bytes if notice else None
        attach = budget is None or sum(r.size for r in rows) <= budget
        listed, attached = [], []
        for file in rows:
            data = self._bytes(file) if attach else None
            if data is not None:
                attached.append(OutgoingFile(file.filename, file.content_type, data,
                                             file.content_id, file.inline))
            url = None
            if notice and self.settings.web.enabled:
                url = links.make_url(self.settings.web.base_url, self.secret, "file", file.id,
                                     row["created_at"], self.settings.web.file_link_days)
            listed.append({"name": file.filename, "size": file.size,
                           "size_label": _size_label(file.size), "url": url,
                           "attached": data is not None})
        return listed, attached

    def _bytes(self, file: Any) -> bytes | None:
        """A stored file's bytes; None (listed, not attached) when the file is
        gone from disk, which must not stop the mail."""
        try:
            return blobs.read_blob(self.settings.attachments_dir, file.sha256)
        except OSError as exc:
            log.warning("outbox: file %s (attachment %d) is missing from %s: %s; the mail "
                        "goes without it", file.filename, file.id,
                        self.settings.attachments_dir, exc)
            return None

    def _thread(self, connection: Any, ticket_id: int, exclude: int | None) -> list[dict[str, Any]]:
        recent = self._recent_messages(ticket_id)
        rows = (recent[0][:THREAD_DEPTH + 1] if recent is not None
                else connection.execute(_SQL["thread"], {"ticket_id": ticket_id}).all())
        return [
            {"author": r.author or r.from_addr, "date": r.date or r.created_at,
             "text": r.text_display or r.text}
            for r in rows if r.id != exclude
        ][:THREAD_DEPTH]


def _size_label(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
