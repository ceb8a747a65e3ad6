"""The portal's profile page (issue 16).

    GET  /portal/profile    name, phone, job title, language, information
                            recipient; the address (shown, not editable: it is
                            the login); log out and log out everywhere
    POST /portal/profile    saves them: 303 to ?saved=1, the page then in the
                            newly chosen language; bad input: 400, the form again

Whose profile is the session's, checked again in the transaction that
writes: the form carries no customer id and any such field is ignored
(web/portal/profile_form.py reads only its own fields). Without a live
session: to the login, nothing read or written. The change and its
history rows are actions/profile.py's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlmodel import Session

from maildesk.actions import profile as profile_actions
from maildesk.models import utcnow
from maildesk.store import portal as store
from maildesk.web.pages import _form
from maildesk.web.portal import auth
from maildesk.web.portal import profile_form as form

log = logging.getLogger(__name__)

PROFILE = auth.NAV["profile"]


@dataclass(frozen=True)
class View:
    customer: store.PortalCustomer
    profile: store.PortalProfile


def _view(session: Session, token_hash: str, now: datetime) -> View | None:
    found = auth.current(session, token_hash, now)
    if found is None:
        return None
    profile = store.profile_of(session, found.customer.id, now)
    return View(found.customer, profile) if profile is not None else None


def _saved(session: Session, token_hash: str, now: datetime,
           profile: form.Profile) -> list[str] | None:
    """The session and the change in one transaction; None: no live session
    (any more), nothing written."""
    found = auth.current(session, token_hash, now)
    if found is None:
        return None
    return profile_actions.change_profile(session, found.customer.id, found.customer.email,
                                          profile.values())


def _page(request: web.Request, view: View, values: form.Profile, status: int = 200,
          errors: dict[str, str] | None = None, saved: bool = False) -> web.Response:
    """The page in the customer's stored language (after a save: the new one)."""
    return auth.render(
        request, "portal_profile", view.customer.language, status,
        posts=(auth.LOGOUT_EVERYWHERE,), nav="profile", customer=view.customer,
        values=values, errors=errors or {}, saved=saved, languages=form.LANGUAGES,
        limits=form.LIMITS, yes=form.YES, fields=form.FIELDS,
        unsubscribed=view.profile.unsubscribed, live_sessions=view.profile.live_sessions)


def _stored(profile: store.PortalProfile) -> form.Profile:
    return form.Profile(profile.name, profile.phone, profile.job_title, profile.language,
                        profile.info_recipient)


async def profile_page(request: web.Request) -> web.StreamResponse:
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    view = await auth.in_transaction(request, _view, token_hash, utcnow())
    if view is None:
        return auth.to_login()
    return _page(request, view, _stored(view.profile), saved=request.query.get("saved") == "1")


async def save_profile(request: web.Request) -> web.StreamResponse:
    token_hash = auth.session_hash(request)
    if token_hash is None:
        return auth.redirect(auth.LOGIN)
    view = await auth.in_transaction(request, _view, token_hash, utcnow())
    if view is None:
        return auth.to_login()
    fields, ok = await _form(request)
    if not ok:
        return auth.forbidden(request, view.customer.language)
    checked = form.check(fields, form.LANGUAGES, view.profile.language)
    if not checked.ok:
        log.info("portal: customer %d profile refused (%s)", view.customer.id,
                 ", ".join(f"{f}: {e}" for f, e in checked.errors.items()))
        return _page(request, view, checked.profile, 400, checked.errors)
    changed = await auth.in_transaction(request, _saved, token_hash, utcnow(), checked.profile)
    if changed is None:
        return auth.to_login()
    log.info("portal: customer %d changed their profile (%s)", view.customer.id,
             ", ".join(changed) or "nothing")
    return auth.redirect(PROFILE + "?saved=1")


def add_routes(app: web.Application) -> None:
    app.router.add_get(PROFILE, profile_page)
    app.router.add_post(PROFILE, save_profile)
