"""Sending through the SMTP relay, with errors sorted into temporary and
permanent (per recipient), because they are handled differently."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from maildesk.config import RelaySettings


class TemporaryFailure(Exception):
    """Try again later: relay down, 4xx, timeout."""


@dataclass(frozen=True)
class Delivery:
    accepted: tuple[str, ...]
    refused: dict[str, tuple[int, str]]  # permanently refused recipients


def send(relay: RelaySettings, message: EmailMessage, envelope_from: str,
         recipients: list[str]) -> Delivery:
    try:
        client = _connect(relay)
    except (OSError, smtplib.SMTPException) as exc:
        raise TemporaryFailure(f"relay {relay.host}:{relay.port}: {exc}") from exc
    try:
        with client:
            if relay.user:
                client.login(relay.user, relay.read_password())
            refused = client.send_message(message, from_addr=envelope_from, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        return _sorted(recipients, exc.recipients)
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600 and exc.smtp_code not in (552,):
            raise PermanentFailure(f"relay refused the mail: {exc.smtp_code} "
                                   f"{exc.smtp_error!r}") from exc
        raise TemporaryFailure(f"relay said {exc.smtp_code} {exc.smtp_error!r}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TemporaryFailure(f"relay {relay.host}:{relay.port}: {exc}") from exc
    return _sorted(recipients, refused)


class PermanentFailure(Exception):
    """The relay refused the whole mail for good (5xx)."""


def _sorted(recipients: list[str], refused: dict[str, tuple[int, bytes]]) -> Delivery:
    temporary = [r for r, (code, _) in refused.items() if 400 <= code < 500]
    if temporary:
        raise TemporaryFailure(f"recipients deferred: {', '.join(temporary)}")
    permanent = {r: (code, text.decode(errors="replace") if isinstance(text, bytes) else str(text))
                 for r, (code, text) in refused.items()}
    return Delivery(tuple(r for r in recipients if r not in permanent), permanent)


def _connect(relay: RelaySettings) -> smtplib.SMTP:
    if relay.security == "tls":
        return smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout_seconds,
                                context=ssl.create_default_context())
    client = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_seconds)
    if relay.security == "starttls":
        client.starttls(context=ssl.create_default_context())
    return client
