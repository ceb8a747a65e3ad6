"""`maildesk customers ...` and `maildesk organisations ...`: the directory
from the shell (a root shell is an administrator's: roles and access too).
Keys of --json are the API's (store/directory.py)."""

from __future__ import annotations

from typing import Any

import click

from maildesk import access, db, views
from maildesk.actions import directory as directory_actions
from maildesk.actions.agent import cli_actor
from maildesk.cli.common import App, emit_json, fail, handles_errors, pass_app
from maildesk.store import access as access_store
from maildesk.store import directory
from maildesk.store.tickets import TicketFilter
from maildesk.tickets import second_level


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _customer_id(app: App, who: str) -> int:
    """A customer by address or id."""
    with db.session_scope(app.ready_engine()) as session:
        found = (int(who) if who.isdigit() and directory.customer(session, int(who))
                 else directory.customer_id_by_email(session, who))
    if found is None:
        fail(f"no customer {who}", 1)
    assert found is not None
    return found


def _refused(exc: directory_actions.DirectoryError) -> None:
    fail(f"not changed: {exc}", 1 if exc.status == 404 else 2)


@click.group("customers")
def customers_group() -> None:
    """Customers: contact data, language, confirmation, role and ticket access."""


@customers_group.command("list")
@click.option("--unconfirmed", is_flag=True, help="Only customers who did not confirm yet.")
@click.option("--search", default=None, help="Part of the address or name.")
@click.option("--organisation", "organisation_id", type=int, default=None,
              help="Only members of this organisation (its id).")
@click.option("--role", type=click.Choice(access.ROLES), default=None)
@click.option("--bouncing", is_flag=True, help="Only addresses whose mail bounces.")
@click.option("--kind", type=click.Choice(second_level.KINDS), default=None,
              help="Only internal customers (partners, 2nd-level support) or external ones.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def customers_list(app: App, unconfirmed: bool, search: str | None,
                   organisation_id: int | None, role: str | None, bouncing: bool,
                   kind: str | None, limit: int, as_json: bool) -> None:
    """Customers, newest first."""
    wanted = directory.CustomerFilter(search=search, organisation_id=organisation_id,
                                      role=role, confirmed=False if unconfirmed else None,
                                      bouncing=True if bouncing else None, kind=kind)
    with db.session_scope(app.ready_engine()) as session:
        rows = directory.list_customers(session, wanted, limit)
    if as_json:
        emit_json(rows)
        return
    click.echo(views.table(
        ["ID", "EMAIL", "NAME", "ORGANISATION", "KIND", "ROLE", "SEES", "LANGUAGE",
         "CONFIRMED", "BOUNCING"],
        [[str(r["id"]), r["email"], r["name"], (r["organisation"] or {}).get("name", "-"),
          r["kind"], r["role"], r["sees"], r["language"], _yes(r["confirmed"]),
          _yes(r["bouncing"])]
         for r in rows],
        "no customers"))


def _customer_text(row: dict[str, Any], events: list[dict[str, Any]]) -> str:
    organisation = row["organisation"]
    lines = [
        f"{row['name'] or '-'} <{row['email']}>  (customer {row['id']})",
        f"organisation: {organisation['name'] + ' (' + str(organisation['id']) + ')' if organisation else '-'}",  # noqa: E501
        f"role: {row['role']}   information recipient: {_yes(row['info_recipient'])}",
        f"kind: {row['kind']}" + ("  (a partner: its tickets may name an end customer and "
                                  "go to 2nd-level support)" if row["kind"] == "internal"
                                  else ""),
        f"ticket access: {row['ticket_access'] or 'default of the role'}   "
        f"sees: {row['sees']}",
        f"phone: {row['phone'] or '-'}   language: {row['language']}",
        f"confirmed: {_yes(row['confirmed'])}   bouncing: {_yes(row['bouncing'])}"
        + (f" since {str(row.get('bounced_at') or '?')[:16].replace('T', ' ')}"
           f"{': ' + row['bounce_reason'] if row.get('bounce_reason') else ''}"
           if row["bouncing"] else ""),
    ]
    if events:
        lines += ["", "History:"] + [
            f"{e['at'][:19].replace('T', ' ')}  {e['actor']}  {e['field']}: "
            f"{e['old'] or '-'} -> {e['new'] or '-'}" for e in events]
    return "\n".join(lines)


@customers_group.command("show")
@click.argument("who")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def customers_show(app: App, who: str, as_json: bool) -> None:
    """One customer (by address or id) with the history of changes."""
    customer_id = _customer_id(app, who)
    with db.session_scope(app.engine) as session:
        row = directory.customer(session, customer_id)
        events = directory.history(session, "customer", customer_id)
    assert row is not None
    if as_json:
        emit_json({**row, "events": events})
    else:
        click.echo(_customer_text(row, events))


@customers_group.command("set")
@click.argument("who")
@click.option("--name", default=None)
@click.option("--phone", default=None)
@click.option("--language", type=click.Choice(directory_actions.LANGUAGES), default=None,
              help="Language of the customer's mails and pages.")
@click.option("--confirmed/--unconfirmed", default=None,
              help="Mark the address confirmed (e.g. confirmed by phone) or not.")
@click.option("--clear-bouncing", is_flag=True,
              help="Mail to the address works again: stop treating it as bouncing.")
@click.option("--info-recipient/--no-info-recipient", default=None,
              help="Gets product announcements by mail.")
@click.option("--role", type=click.Choice(access.ROLES), default=None,
              help="main_contact and admin see their organisation's tickets by default.")
@click.option("--kind", type=click.Choice(second_level.KINDS), default=None,
              help="internal: a partner serving end customers of its own (its tickets may "
                   "name an end customer and be handed to 2nd-level support).")
@click.option("--access", "ticket_access", type=click.Choice([*access.SETTINGS, "default"]),
              default=None, help="Which tickets the customer sees (default: by role); "
                                 "the organisation's setting may restrict it further.")
@click.option("--organisation", "organisation", default=None,
              help="Move to this organisation (its id), or 'none'.")
@pass_app
@handles_errors
def customers_set(app: App, who: str, name: str | None, phone: str | None,
                  language: str | None, confirmed: bool | None, clear_bouncing: bool,
                  info_recipient: bool | None, role: str | None, kind: str | None,
                  ticket_access: str | None, organisation: str | None) -> None:
    """Change a customer (by address or id); prints what changed."""
    wanted: dict[str, Any] = {k: v for k, v in {
        "name": name, "phone": phone, "language": language, "confirmed": confirmed,
        "info_recipient": info_recipient, "role": role, "kind": kind}.items()
        if v is not None}
    if clear_bouncing:
        wanted["bouncing"] = False
    if ticket_access is not None:
        wanted["ticket_access"] = None if ticket_access == "default" else ticket_access
    if organisation is not None:
        if organisation != "none" and not organisation.isdigit():
            fail("--organisation: an organisation's id or 'none'", 2)
        wanted["organisation_id"] = None if organisation == "none" else int(organisation)
    if not wanted:
        fail("nothing to change: give at least one option (see --help)", 2)
    customer_id = _customer_id(app, who)
    try:
        changed = directory_actions.change_customer(app.engine, customer_id, cli_actor(),
                                                    wanted, admin=True)
    except directory_actions.DirectoryError as exc:
        _refused(exc)
        return
    click.echo(f"{changed.row['email']}: " + ("; ".join(changed.changes) or "unchanged"))


@customers_group.command("tickets")
@click.argument("who")
@click.option("--status", default=None)
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def customers_tickets(app: App, who: str, status: str | None, limit: int,
                      as_json: bool) -> None:
    """The tickets this customer may see (role and settings, the stricter wins)."""
    customer_id = _customer_id(app, who)
    with db.session_scope(app.engine) as session:
        viewer = access_store.viewer_of(session, customer_id)
        assert viewer is not None
        rows = views.ticket_list(session, app.settings, status, None, limit,
                                 wanted=TicketFilter(visible_to=viewer))
    if as_json:
        emit_json({"sees": access.scope(viewer), "items": rows})
        return
    click.echo(f"{viewer.email} sees: {access.scope(viewer)}")
    click.echo(views.table(["NUMBER", "STATUS", "REQUESTER", "SUBJECT"],
                           [[f"#{r['number']}", r["status"],
                             (r["requester"] or {}).get("email", "-"), r["subject"][:60]]
                            for r in rows], "no tickets"))


@click.group("organisations")
def organisations_group() -> None:
    """Organisations: name, mail domains, who of them sees whose tickets."""


@organisations_group.command("list")
@click.option("--search", default=None, help="Part of the name or a domain.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def organisations_list(app: App, search: str | None, limit: int, as_json: bool) -> None:
    """Organisations, newest first."""
    with db.session_scope(app.ready_engine()) as session:
        rows = directory.list_organisations(session, search, limit)
    if as_json:
        emit_json(rows)
        return
    click.echo(views.table(["ID", "NAME", "ACCESS", "MEMBERS", "DOMAINS"],
                           [[str(r["id"]), r["name"], r["ticket_access"], str(r["members"]),
                             ", ".join(r["domains"])] for r in rows], "no organisations"))


@organisations_group.command("show")
@click.argument("organisation_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def organisations_show(app: App, organisation_id: int, as_json: bool) -> None:
    """One organisation with its domains and history."""
    with db.session_scope(app.ready_engine()) as session:
        row = directory.organisation(session, organisation_id)
        events = directory.history(session, "organisation", organisation_id)
    if row is None:
        fail(f"no organisation {organisation_id}", 1)
        return
    if as_json:
        emit_json({**row, "events": events})
        return
    click.echo(f"{row['name']}  (organisation {row['id']}, {row['members']} members)")
    click.echo(f"domains: {', '.join(row['domains']) or '-'}")
    click.echo(f"ticket access: {row['ticket_access']}")
    for e in events:
        click.echo(f"{e['at'][:19].replace('T', ' ')}  {e['actor']}  {e['field']}: "
                   f"{e['old'] or '-'} -> {e['new'] or '-'}")


@organisations_group.command("set")
@click.argument("organisation_id", type=int)
@click.option("--name", default=None)
@click.option("--access", "ticket_access", type=click.Choice(access.SETTINGS), default=None,
              help="organisation: members may see each other's tickets (as far as their "
                   "own setting allows); own: each sees only their own.")
@click.option("--add-domain", "add_domains", multiple=True,
              help="Senders from this domain become members (repeatable).")
@click.option("--remove-domain", "remove_domains", multiple=True)
@pass_app
@handles_errors
def organisations_set(app: App, organisation_id: int, name: str | None,
                      ticket_access: str | None, add_domains: tuple[str, ...],
                      remove_domains: tuple[str, ...]) -> None:
    """Rename an organisation, set its ticket access, move domains to it."""
    if name is None and ticket_access is None and not add_domains and not remove_domains:
        fail("nothing to change: give at least one option (see --help)", 2)
    try:
        changed = directory_actions.change_organisation(
            app.ready_engine(), organisation_id, cli_actor(), name=name,
            ticket_access=ticket_access, add_domains=add_domains,
            remove_domains=remove_domains)
    except directory_actions.DirectoryError as exc:
        _refused(exc)
        return
    click.echo(f"organisation {organisation_id}: " + ("; ".join(changed.changes)
                                                      or "unchanged"))


#: What app.py adds to the `maildesk` group.
COMMANDS = [customers_group, organisations_group]
