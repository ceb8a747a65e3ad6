"""What agents do to tickets from the CLI: reply, note, set fields.

Each action is one transaction: the ticket change, its events and the
outgoing message row (with our signed Message-ID, the tokenised Reply-To and
the body reference) commit together, so a customer's answer to the mail
threads even if it arrives before anything else happens.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from maildesk.actions import second_level, uploads
from maildesk.actions.intake import ADDRESS_PATTERN
from maildesk.config import PRIORITIES, PRIORITY_FOR_TYPE, REQUEST_TYPES, Settings
from maildesk.db import session_scope
from maildesk.errors import PermanentError
from maildesk.mail import tokens
from maildesk.models import Agent, AgentGroup, Event, Message, utcnow
from maildesk.secret import load_secret
from maildesk.store import tickets as store
from maildesk.tickets import categories, outbox, participants
from maildesk.tickets import writes as tickets
from maildesk.tickets.lifecycle import IllegalTransition, next_status
from maildesk.types import ParsedAttachment

#: Hands committed outbox ids to the broker (deliver/broker.hand_over, or
#: serve's dispatch): Actions never import Deliver.
Dispatch = Callable[[list[int]], None]


class ActionError(PermanentError):
    """An agent action that cannot be done, phrased for the agent; `field`
    names the input refused when it is one (the API's problem names it)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NoSuchTicket(ActionError):
    """The ticket number names no ticket (the API answers 404)."""


@dataclass(frozen=True)
class ReplyResult:
    number: int
    message_id: str
    reply_to: str
    status: str
    outbox_ids: tuple[int, ...] = ()


def cli_actor() -> str:
    """Who changed a ticket from the shell when no agent was named."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _ticket(session: Session, number: int) -> dict[str, Any]:
    ticket = store.ticket_row(session, number)
    if ticket is None:
        raise NoSuchTicket(f"no ticket #{number}")
    return ticket


def _agent(session: Session, settings: Settings, email: str) -> Agent:
    """The agent row; the config is the source of truth for who is one."""
    store.sync_directory(session, settings)
    agent = session.exec(select(Agent).where(Agent.email == email.lower())).first()
    if agent is None or not agent.active:
        known = ", ".join(a.email for a in settings.agents) or "none configured"
        raise ActionError(f"{email} is not an agent (agents in the config: {known})")
    return agent


def _transition(ticket: dict[str, Any], event_name: str, target: str | None = None) -> str:
    try:
        return next_status(ticket["status"], event_name, target).status
    except IllegalTransition as exc:
        raise ActionError(f"#{ticket['number']}: {exc}") from None


def reply(engine: Engine, settings: Settings, number: int, agent_email: str,
          text: str, solve: bool = False, *, dispatch: Dispatch,
          files: Sequence[ParsedAttachment] = ()) -> ReplyResult:
    """A public reply to the requester and CCs (sent by the worker), with
    `files` attached. With `solve` it is the solution mail and the ticket
    becomes solved. `dispatch` gets the committed outbox ids (the caller
    knows the broker). UploadRefused before anything is written when a file
    is over a limit."""
    if not text.strip():
        raise ActionError("the reply text is empty")
    uploads.check(settings, files)
    secret = load_secret(settings)
    with session_scope(engine) as session:
        ticket = _ticket(session, number)
        agent = _agent(session, settings, agent_email)
        result = write_reply(session, settings, secret, ticket, agent, text, solve,
                             files=files)
    dispatch(list(result.outbox_ids))
    return result


def write_reply(session: Session, settings: Settings, secret: bytes, ticket: dict[str, Any],
                agent: Agent, text: str, solve: bool = False,
                authenticity: str = "", files: Sequence[ParsedAttachment] = (),
                files_kept_in: str = "the agent's upload",
                signed: bool = False) -> ReplyResult:
    """The reply inside the caller's transaction: the outgoing message row
    (signed Message-ID, tokenised Reply-To, body reference) with its files,
    the status change, the events and the outbox row (the worker attaches
    the message's files to the mail). `signed`: the text carries the
    agent's own sign-off (written by mail), so the mail adds none of its
    own but the team's name. Raises ActionError for a closed ticket."""
    number = ticket["number"]
    new_status = _transition(ticket, "agent_reply")
    if solve:
        new_status = _transition({**ticket, "status": new_status}, "agent_set_status", "solved")
    requester = store.customer_address(session, ticket["requester_id"])
    # followers get the reply as a mail of their own, never in the visible Cc
    cc = [email for email, _, role in store.participants_of_ticket(session, ticket["id"])
          if role != "follower"]
    support = settings.mail.addresses[0]
    thread = store.thread_message_ids(session, ticket["id"])
    message_id = tokens.new_message_id(secret, number, settings.message_id_domain)
    reply_to = tokens.reply_address(secret, support, number)
    body = f"{text.rstrip()}\n\n{tokens.body_reference(secret, number)}\n"
    message_row = store.insert_returning_id(session, Message, {
        "ticket_id": ticket["id"], "direction": "out", "author": agent.email,
        "from_addr": support, "from_name": agent.name,
        "to_addrs": requester.email if requester else "", "cc_addrs": ", ".join(cc),
        "subject": tokens.tagged_subject(ticket["subject"], number, settings.mail.subject_tag),
        "date": utcnow(), "message_id": message_id,
        "in_reply_to": thread[-1] if thread else "", "references": " ".join(thread),
        "text": body, "text_display": text.strip(), "reply_to": reply_to,
        "authenticity": authenticity[:255], "created_at": utcnow(),
    })
    events = tickets.store_files(session, settings, ticket["id"], message_row, files,
                                 kept_in=files_kept_in)
    values, more = tickets.status_change(ticket, new_status, agent.email)
    events += more
    events.append(tickets.event(ticket["id"], agent.email, "reply", _with_files(
        f"mail {message_id}", files)))
    if ticket["assignee_id"] is None:
        values["assignee_id"] = agent.id
        events.append(tickets.event(ticket["id"], agent.email, "assignee", agent.email))
    if ticket["first_response_at"] is None:
        values["first_response_at"] = utcnow()
    store.update_ticket(session, ticket["id"], **values)
    store.insert_many(session, Event, events)
    ids = outbox.notify(session, settings, secret, number,
                        "solution" if solve else "agent_reply", message_row_id=message_row,
                        payload={"signed_by_agent": True} if signed else None)
    return ReplyResult(number, message_id, reply_to, new_status, tuple(ids))


def note(engine: Engine, settings: Settings, number: int, agent_email: str, text: str,
         files: Sequence[ParsedAttachment] = ()) -> None:
    """An internal note, with `files`: on the ticket, never sent to the
    customer."""
    if not text.strip():
        raise ActionError("the note text is empty")
    uploads.check(settings, files)
    with session_scope(engine) as session:
        ticket = _ticket(session, number)
        agent = _agent(session, settings, agent_email)
        message_row = store.insert_returning_id(session, Message, {
            "ticket_id": ticket["id"], "direction": "internal", "author": agent.email,
            "from_addr": agent.email, "from_name": agent.name, "text": text.strip(),
            "text_display": text.strip(), "date": utcnow(), "created_at": utcnow(),
        })
        events = tickets.store_files(session, settings, ticket["id"], message_row, files,
                                     kept_in="the agent's upload")
        events.append(tickets.event(ticket["id"], agent.email, "note",
                                    _with_files(text.strip()[:200], files)))
        store.insert_many(session, Event, events)
        store.update_ticket(session, ticket["id"])


def _with_files(what: str, files: Sequence[ParsedAttachment]) -> str:
    """The history line names the files that went with a message."""
    if not files:
        return what
    return f"{what} (files: {', '.join(f.filename for f in files)})"


def set_fields(
    engine: Engine, settings: Settings, number: int, actor: str, *,
    status: str | None = None, priority: str | None = None, request_type: str | None = None,
    assign: str | None = None, group: str | None = None,
    planned_version: str | None = None, dev_item: str | None = None,
    category: str | None = None, add_cc: Sequence[str] = (), remove_cc: Sequence[str] = (),
    add_followers: Sequence[str] = (), remove_followers: Sequence[str] = (),
    support_level: int | None = None, end_customer: str | None = None,
    dispatch: Dispatch,
) -> list[str]:
    """Change fields; returns what changed as "field: old -> new" lines.
    `dispatch` gets the committed outbox ids (the caller knows the broker).
    All or nothing: one refused field changes nothing."""
    with session_scope(engine) as session:
        ticket = _ticket(session, number)
        if "@" in actor:  # an agent named (tickets set --agent): one, like reply's
            _agent(session, settings, actor)
        changes, ids = change_fields(session, settings, ticket, actor, status=status,
                                     priority=priority, request_type=request_type,
                                     assign=assign, group=group,
                                     planned_version=planned_version, dev_item=dev_item,
                                     category=category, add_cc=add_cc, remove_cc=remove_cc,
                                     add_followers=add_followers,
                                     remove_followers=remove_followers,
                                     support_level=support_level, end_customer=end_customer)
    dispatch(list(ids))
    return changes


def change_fields(
    session: Session, settings: Settings, ticket: dict[str, Any], actor: str, *,
    status: str | None = None, priority: str | None = None, request_type: str | None = None,
    assign: str | None = None, group: str | None = None,
    planned_version: str | None = None, dev_item: str | None = None,
    category: str | None = None, add_cc: Sequence[str] = (), remove_cc: Sequence[str] = (),
    add_followers: Sequence[str] = (), remove_followers: Sequence[str] = (),
    support_level: int | None = None, end_customer: str | None = None,
) -> tuple[list[str], list[int]]:
    """The changes inside the caller's transaction: (change lines, outbox ids).

    `category` is "Main" or "Main/Sub" ("none" clears it; tickets/categories).
    The address lists change who is CC or follower (tickets/participants):
    adding one already there in the other role moves it, removing one not
    there (or there in the other role) is refused naming it. Every check
    runs before anything is written. `support_level` 2 hands a partner's
    ticket to the central support, `end_customer` names the partner's end
    customer ("none" clears it): actions/second_level.py."""
    if request_type is not None and request_type not in REQUEST_TYPES:
        raise ActionError(f"unknown request type {request_type!r} ({', '.join(REQUEST_TYPES)})")
    if priority is not None and priority not in PRIORITIES:
        raise ActionError(f"unknown priority {priority!r} ({', '.join(PRIORITIES)})")
    new_category = _category(category, settings) if category is not None else None
    moves = _participant_changes(session, settings, ticket, participants.Wanted(
        add_cc=_addresses("add_cc", add_cc), remove_cc=_addresses("remove_cc", remove_cc),
        add_followers=_addresses("add_followers", add_followers),
        remove_followers=_addresses("remove_followers", remove_followers)))
    values: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    if status is not None:
        status_values, status_events = tickets.status_change(
            ticket, _transition(ticket, "agent_set_status", status), actor
        )
        values |= status_values
        events += status_events
    if request_type is not None and request_type != ticket["request_type"]:
        values["request_type"] = request_type
        events.append(tickets.event(ticket["id"], actor, "request_type", request_type,
                                    ticket["request_type"]))
        if priority is None and not ticket["priority_explicit"]:
            priority = PRIORITY_FOR_TYPE[request_type]  # the priority follows the type
        elif priority is not None:
            values["priority_explicit"] = True
    elif priority is not None:
        values["priority_explicit"] = True
    if priority is not None and priority != ticket["priority"]:
        values["priority"] = priority
        events.append(tickets.event(ticket["id"], actor, "priority", priority,
                                    ticket["priority"]))
    if assign is not None:
        values, events = _assign(session, settings, ticket, actor, assign, values, events)
    if group is not None:
        found = session.exec(select(AgentGroup).where(AgentGroup.name == group)).first()
        if found is None and group != "none":
            raise ActionError(f"no group {group!r} (groups come from the config)")
        group_id = found.id if found else None
        if group_id != ticket["group_id"]:
            values["group_id"] = group_id
            events.append(tickets.event(ticket["id"], actor, "group", group,
                                        _old_name(store.group_names, session,
                                                  ticket["group_id"])))
    for name, value in (("planned_version", planned_version), ("dev_item", dev_item)):
        if value is not None and (value or None) != ticket[name]:
            values[name] = value or None
            events.append(tickets.event(ticket["id"], actor, name, value or "-", ticket[name]))
    if new_category is not None:
        main, sub = new_category
        old = categories.label(ticket["category"], ticket["subcategory"])
        if (main, sub) != (ticket["category"], ticket["subcategory"]):
            values |= {"category": main, "subcategory": sub}
            events.append(tickets.event(ticket["id"], actor, "category",
                                        categories.label(main, sub) or categories.NONE, old))
    told = _category_group(session, settings, ticket, actor, new_category, group, values, events)
    levels = _second_level(session, settings, ticket, actor, support_level, end_customer,
                           group_given=group is not None)
    values |= levels.values
    events += levels.events
    events += _move_participants(session, ticket, actor, moves)
    if moves and not values:
        store.touch_ticket(session, ticket["id"])
    if values:
        store.update_ticket(session, ticket["id"], **values)
    store.insert_many(session, Event, events)
    ids: list[int] = []
    if values.get("status") == "closed":
        ids = outbox.notify(session, settings, load_secret(settings), ticket["number"], "closed")
    ids += _status_notice(session, settings, ticket, values)
    for event_name, payload in told:
        ids += outbox.notify(session, settings, load_secret(settings), ticket["number"],
                             event_name, skip_agent=actor, payload=payload)
    if levels.handover:
        ids += outbox.notify(session, settings, load_secret(settings), ticket["number"],
                             "second_level_handover", skip_agent=actor,
                             payload=second_level.handover_payload(
                                 session, ticket["number"], actor))
    return [f"{e['field']}: {e['old'] or '-'} -> {e['new'] or '-'}" for e in events], ids


def _status_notice(session: Session, settings: Settings, ticket: dict[str, Any],
                   values: dict[str, Any]) -> list[int]:
    """The customer is told of a status set without a reply (CLI, API, a
    `#status` line alone): solved sends the solution notice with the survey
    link (seed 001; the template speaks for the missing text), on hold the
    "in Entwicklung" notice with the planned version (seeds 000/002). A
    reply with solve is the solution itself (write_reply), not this."""
    status = values.get("status")
    if status not in ("solved", "on_hold"):
        return []
    payload = None
    if status == "on_hold":
        version = values["planned_version"] if "planned_version" in values \
            else ticket["planned_version"]
        payload = {"planned_version": version}
    return outbox.notify(session, settings, load_secret(settings), ticket["number"],
                         "solution" if status == "solved" else "on_hold", payload=payload)


#: An address as the API's schema checks it (actions/intake.ADDRESS_PATTERN).
_ADDRESS = re.compile(ADDRESS_PATTERN.removesuffix("$") + r"\Z")


def _addresses(field: str, values: Sequence[str]) -> tuple[str, ...]:
    """The addresses of one list, trimmed and lower-cased; ActionError
    naming the field for one that is not an address."""
    found = []
    for value in values:
        address = value.strip().lower()
        if len(address) > 320 or not _ADDRESS.match(address):
            raise ActionError(f"{field}: {value!r} is not an e-mail address", field=field)
        found.append(address)
    return tuple(found)


def _second_level(session: Session, settings: Settings, ticket: dict[str, Any], actor: str,
                  support_level: int | None, end_customer: str | None,
                  group_given: bool) -> second_level.Planned:
    try:
        return second_level.plan(session, settings, ticket, actor,
                                 support_level=support_level, end_customer=end_customer,
                                 group_given=group_given)
    except second_level.SecondLevelRefused as exc:
        raise ActionError(str(exc), field=exc.field) from None


def _category(value: str, settings: Settings | None = None) -> tuple[str | None, str | None]:
    """(main, sub); with categories in the config, only one of them."""
    try:
        return categories.parse(value, settings.category_labels if settings else ())
    except categories.CategoryRefused as exc:
        raise ActionError(str(exc), field="category") from None


def _category_group(session: Session, settings: Settings, ticket: dict[str, Any], actor: str,
                    new_category: tuple[str | None, str | None] | None, group: str | None,
                    values: dict[str, Any], events: list[dict[str, Any]]
                    ) -> list[tuple[str, dict[str, Any]]]:
    """A new main category assigns its group (config categories_assign_group)
    with a history line, unless `group` was given in the same change; returns
    the notice events (notices.CATEGORY_EVENTS) to write once the change is,
    with the payload their mail shows (the category and the group)."""
    if new_category is None:
        return []
    payload = {"category": categories.label(*new_category)}
    effect = categories.effect(settings.categories, ticket["category"], new_category[0],
                               group, settings.categories_assign_group)
    if effect.group:  # its members are told when the group is new to the ticket
        store.sync_directory(session, settings)
        found = store.group_by_name(session, effect.group)
        if found is None:  # the config check makes this unreachable
            raise ActionError(f"category group {effect.group!r} does not exist",
                              field="category")
        if found.id != ticket["group_id"]:
            old = store.group_names(session).get(ticket["group_id"]) if ticket["group_id"] \
                else None
            values["group_id"] = found.id
            events.append(tickets.event(ticket["id"], actor, "group", found.name, old))
            return [("category_group", {**payload, "category_group": found.name})]
        return []
    return [("category_address", payload)] if effect.tell_address else []


def _participant_changes(session: Session, settings: Settings, ticket: dict[str, Any],
                         wanted: participants.Wanted) -> list[participants.Change]:
    if not any(addresses for _, _, _, addresses in wanted.lists()):
        return []
    current = {email.lower(): role
               for email, _, role in store.participants_of_ticket(session, ticket["id"])}
    requester = store.customer_address(session, ticket["requester_id"])
    try:
        changes = participants.plan(ticket["number"], current, wanted,
                                    requester=requester.email.lower() if requester else None,
                                    ours=settings.mail.addresses)
    except participants.ParticipantRefused as exc:
        raise ActionError(str(exc), field=exc.field) from None
    _check_followers(session, ticket, [c.email for c in changes if c.new_role == "follower"])
    return changes


def _check_followers(session: Session, ticket: dict[str, Any], emails: list[str]) -> None:
    """Only who may read the ticket may follow it (access.follower_refusal):
    ActionError naming the address, before anything is written."""
    from maildesk.access import TicketFacts, follower_refusal
    from maildesk.models import Customer
    from maildesk.store.access import viewer_of

    facts = TicketFacts(ticket["requester_id"], ticket["organisation_id"])
    for email in emails:
        customer = session.exec(select(Customer).where(Customer.email == email)).first()
        viewer = viewer_of(session, customer.id) if customer and customer.id else None
        why = follower_refusal(viewer, facts)
        if why:
            raise ActionError(f"add_followers: {email} {why} (#{ticket['number']}); "
                              "nothing was changed", field="add_followers")


def _move_participants(session: Session, ticket: dict[str, Any], actor: str,
                       moves: list[participants.Change]) -> list[dict[str, Any]]:
    """Writes the planned changes; an event per role left (old: the address)
    and per role taken (new: the address)."""
    stored = {email.lower(): email
              for email, _, _ in store.participants_of_ticket(session, ticket["id"])}
    events = []
    for move in moves:
        email = stored.get(move.email, move.email)
        if move.new_role is None:
            store.remove_participant(session, ticket["id"], email)
        elif move.old_role is None:
            store.add_participant(session, ticket["id"], move.email, "", move.new_role)
        else:
            store.set_participant_role(session, ticket["id"], email, move.new_role)
        if move.old_role is not None:
            events.append(tickets.event(ticket["id"], actor, move.old_role, None, move.email))
        if move.new_role is not None:
            events.append(tickets.event(ticket["id"], actor, move.new_role, move.email))
    return events


def _assign(session: Session, settings: Settings, ticket: dict[str, Any], actor: str,
            assign: str, values: dict[str, Any],
            events: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if assign == "none":
        agent_id, label = None, "none"
    else:
        agent = _agent(session, settings, assign)
        agent_id, label = agent.id, agent.email
    if agent_id != ticket["assignee_id"]:
        values["assignee_id"] = agent_id
        events.append(tickets.event(ticket["id"], actor, "assignee", label,
                                    _old_name(store.agent_emails, session,
                                              ticket["assignee_id"])))
    return values, events


def _old_name(names: Callable[[Session], dict[int, str]], session: Session,
              row_id: int | None) -> str | None:
    """The history's old value of an assignee or group change: the name of
    the row the ticket had (None: it had none)."""
    return names(session).get(row_id) if row_id is not None else None
