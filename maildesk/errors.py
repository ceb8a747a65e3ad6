"""maildesk's own exceptions, under one base with the one split callers act on.

Every caller that catches a maildesk error asks one question: will the same
work succeed later? So there are two roots:

- `TemporaryError`: the machine's fault (database or relay away, IMAP
  connection lost, lease taken). A listener answers 451, a mail stays
  pending, an outbox row is retried, a poller backs off.
- `PermanentError`: the same input fails again (a bad config, an old
  schema, a refused mail, an action a person may not take, an unknown
  template). A mail is parked as failed (5xx at the door), a command exits
  non-zero with the message.

Foreign exceptions (SQLAlchemy, psycopg, OSError) are sorted into the same
two kinds by `faults.is_temporary`, which also answers True for any
`TemporaryError`. Pure: imports nothing, so pure modules may raise these.
"""

from __future__ import annotations


class MaildeskError(Exception):
    """Base of every exception maildesk raises on purpose."""


class TemporaryError(MaildeskError):
    """Try again later: 451, retry with backoff, the mail stays pending."""


class PermanentError(MaildeskError):
    """Would fail again for the same input: 5xx, failed, a clear message."""
