"""Sending through the SMTP relay, with errors sorted into temporary and
permanent (per recipient), because they are handled differently."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage

from maildesk.config import RelaySettings
from maildesk.errors import PermanentError, TemporaryError


class TemporaryFailure(TemporaryError):
    """Try again later: relay down, 4xx, timeout."""


@dataclass(frozen=True)
class Delivery:
    accepted: tuple[str, ...]
    refused: dict[str, tuple[int, str]]  # permanently refused recipients


#: A kept connection idle longer than this is checked with NOOP before use.
IDLE_CHECK_SECONDS = 5
#: ... and closed when idle longer than this (relays drop idle sessions).
IDLE_CLOSE_SECONDS = 60


class Relay:
    """Sends through the relay, keeping one SMTP session per worker thread
    (a new TCP+EHLO(+TLS+AUTH) per mail costs more than the mail itself).

    A kept session is only ever re-checked *before* a mail (NOOP); once a
    mail's MAIL FROM is sent, any failure is reported, never retried here:
    the relay may have taken it, and the outbox decides about retries.
    """

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self._local = threading.local()

    def send(self, message: EmailMessage | bytes, envelope_from: str,
             recipients: list[str]) -> Delivery:
        """Send a message, or a mail's bytes (CRLF line ends, 7-bit, ASCII
        envelope: what send_message would hand to sendmail)."""
        client = self._client()
        try:
            if isinstance(message, bytes):
                refused = client.sendmail(envelope_from, recipients, message)
            else:
                refused = client.send_message(message, from_addr=envelope_from,
                                              to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset(client)
            return _sorted(recipients, exc.recipients)
        except smtplib.SMTPResponseException as exc:
            self._reset(client)
            if 500 <= exc.smtp_code < 600 and exc.smtp_code != 552:
                raise PermanentFailure(f"relay refused the mail: {exc.smtp_code} "
                                       f"{exc.smtp_error!r}") from exc
            raise TemporaryFailure(f"relay said {exc.smtp_code} {exc.smtp_error!r}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TemporaryFailure(f"relay {self.settings.host}:{self.settings.port}: "
                                   f"{exc}") from exc
        self._local.used = time.monotonic()
        return _sorted(recipients, refused)

    def probe(self) -> int:
        """Connect (TLS, login as configured), EHLO, QUIT: the EHLO code."""
        client = self._client()
        try:
            return int(client.ehlo()[0])
        finally:
            self._drop()

    def _client(self) -> smtplib.SMTP:
        client: smtplib.SMTP | None = getattr(self._local, "client", None)
        idle = time.monotonic() - getattr(self._local, "used", 0.0)
        if client is not None and idle > IDLE_CLOSE_SECONDS:
            self._drop()
            client = None
        if client is not None and idle > IDLE_CHECK_SECONDS:
            try:
                if client.noop()[0] != 250:
                    raise smtplib.SMTPException("NOOP refused")
            except (OSError, smtplib.SMTPException):
                self._drop()
                client = None
        if client is None:
            try:
                client = _connect(self.settings)
                if self.settings.user:
                    client.login(self.settings.user, self.settings.read_password())
            except (OSError, smtplib.SMTPException) as exc:
                raise TemporaryFailure(
                    f"relay {self.settings.host}:{self.settings.port}: {exc}") from exc
            self._local.client = client
            self._local.used = time.monotonic()
        return client

    def _reset(self, client: smtplib.SMTP) -> None:
        try:
            client.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.close()


def send(relay: RelaySettings, message: EmailMessage | bytes, envelope_from: str,
         recipients: list[str]) -> Delivery:
    """One mail over a fresh session (for callers without a Relay)."""
    return Relay(relay).send(message, envelope_from, recipients)


class PermanentFailure(PermanentError):
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
