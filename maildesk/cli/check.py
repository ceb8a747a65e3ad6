"""`maildesk check`: the config and every connection it names, item by item.

Each check returns (ok, detail); the command prints OK/WARN/FAIL lines and
exits non-zero on any failure, so it can gate a deployment or a unit's
ExecStartPre. A warning (WARN, exit 0) is something that works but will
surprise: a relay not reachable yet, links in mails over plain http.

It is meant to run beside a running `maildesk serve` too (before a
restart): a port held by that serve is OK, asked through its /healthz.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import os
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from maildesk import db
from maildesk.config import WILDCARD_HOSTS, Settings, WorkerSettings, listener_url

#: How long `check` waits for a running maildesk's /healthz.
HEALTHZ_TIMEOUT = 3.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    #: ok, but worth acting on: printed as WARN, does not fail the command
    warning: bool = False

    @property
    def label(self) -> str:
        return "FAIL" if not self.ok else "WARN" if self.warning else "OK  "


def check_database(settings: Settings) -> CheckResult:
    name = f"database {db.safe_url(settings.database_url)}"
    try:
        engine = db.make_engine(settings.database_url)
        db.require_schema(engine, settings.database_url)
        engine.dispose()
    except (db.StoreUnavailable, db.SchemaError) as exc:
        return CheckResult(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001 — any failure is the answer
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
    return CheckResult(name, True, f"reachable, schema at revision {db.SCHEMA_REVISION}")


def check_data_dir(settings: Settings) -> CheckResult:
    path = settings.data_dir
    try:
        db.make_private_dir(path)  # 0700, as serve would create it
        probe = path / f".check-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return CheckResult(f"data dir {path}", False, str(exc))
    return CheckResult(f"data dir {path}", True, "writable")


@dataclass(frozen=True)
class RunningServe:
    """A `maildesk serve` that answered /healthz: its pid and listeners."""

    url: str
    pid: int
    ports: tuple[tuple[str, int], ...]  # (listener name, TCP port)

    def holds(self, name: str, port: int) -> bool:
        """Whether this serve listens on `port` as `name` (its web server
        answered, so the web port is its own)."""
        return name == "web" or (name, port) in self.ports


def healthz_url(settings: Settings) -> str | None:
    """Where a maildesk serve with this config answers /healthz (none
    without [web]); a wildcard host is asked on loopback."""
    if not settings.web.enabled:
        return None
    host = settings.web.host.strip()
    if host in WILDCARD_HOSTS:
        host = "::1" if host == "::" else "127.0.0.1"
    return f"{listener_url(host, settings.web.port)}/healthz"


def ask_running_serve(url: str | None, timeout: float = HEALTHZ_TIMEOUT) -> RunningServe | None:
    """The maildesk serve answering `url`, or None (nothing answers, or
    something that is not maildesk). A 503 (draining, database down) still
    names the process."""
    if url is None:
        return None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (OSError, ValueError):
        return None
    try:
        report = json.loads(body)
        pid = int(report["pid"])
        ports = tuple((str(item["name"]), int(item["port"])) for item in report.get("ports", ()))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return RunningServe(url, pid, ports)


def port_result(name: str, host: str, port: int, bind_errno: int | None, bind_error: str,
                running: RunningServe | None, asked: str | None) -> CheckResult:
    """The verdict on a listener port from what binding it and asking
    /healthz found (pure: the tests feed it every case)."""
    label = f"{name} listener {host}:{port}"
    if bind_errno is None:
        return CheckResult(label, True, "free")
    if bind_errno != errno.EADDRINUSE:
        return CheckResult(label, False, bind_error)
    if running is not None and running.holds(name, port):
        return CheckResult(label, True, f"in use by maildesk serve, pid {running.pid}")
    if running is not None:
        return CheckResult(label, False, f"in use, but not by the maildesk serve (pid "
                                         f"{running.pid}) answering {running.url}: another "
                                         f"program has it (`ss -ltnp 'sport = :{port}'`)")
    if asked is None:
        return CheckResult(label, False, f"in use (web is disabled, so a running maildesk "
                                         f"cannot be asked; `ss -ltnp 'sport = :{port}'` "
                                         f"shows which program)")
    return CheckResult(label, False, f"in use by a program that is not a maildesk serve of "
                                     f"this config (nothing answers {asked}; "
                                     f"`ss -ltnp 'sport = :{port}'` shows which)")


def check_port(name: str, host: str, port: int,
               running: Callable[[], RunningServe | None] = lambda: None,
               asked: str | None = None) -> CheckResult:
    """Free to listen on, or held by the running maildesk serve."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            in_use = exc.errno == errno.EADDRINUSE
            return port_result(name, host, port, exc.errno, str(exc),
                               running() if in_use else None, asked)
    return port_result(name, host, port, None, "", None, asked)


def check_unix_socket(name: str, path: str) -> CheckResult:
    directory = os.path.dirname(path) or "."
    if not os.access(directory, os.W_OK):
        return CheckResult(f"{name} socket {path}", False, f"{directory} is not writable")
    return CheckResult(f"{name} socket {path}", True, "directory writable")


def check_imap(settings: Settings) -> Iterator[CheckResult]:
    if not settings.imap:
        return
    from maildesk.accept.imap import DbTokenCache
    from maildesk.accept.imap_client import check_account

    # An OAuth2 account's fresh token goes into the database's token cache
    # (with the refresh token the endpoint may have rotated to), when the
    # database is there; otherwise it is only checked.
    engine = None
    if any(account.oauth2 is not None for account in settings.imap):
        try:
            engine = db.make_engine(settings.database_url)
            db.require_schema(engine, settings.database_url)
        except Exception:  # noqa: BLE001 — check_database reports it
            if engine is not None:
                engine.dispose()
            engine = None
    try:
        for account in settings.imap:
            name = f"imap {account.name} ({account.user}@{account.host}:{account.port})"
            cache = DbTokenCache(engine) if engine is not None else None
            try:
                ok, detail = asyncio.run(check_account(account, cache=cache))
            except Exception as exc:  # noqa: BLE001
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            yield CheckResult(name, ok, detail)
    finally:
        if engine is not None:
            engine.dispose()


def retry_minutes(worker: WorkerSettings) -> float:
    """How long the worker keeps retrying a notification the relay did not
    take (deliver/sender.py: backoff doubling from backoff_seconds, given
    up at max_attempts)."""
    return worker.backoff_seconds * (2 ** (worker.max_attempts - 1) - 1) / 60


def unreachable(cause: BaseException | None) -> bool:
    """Nothing answers there (yet): refused, timed out, no route. Not a
    wrong name, a TLS problem or a refused login, which need a fix."""
    if isinstance(cause, ssl.SSLError | socket.gaierror):
        return False
    return isinstance(cause, ConnectionRefusedError | TimeoutError) or (
        isinstance(cause, OSError) and cause.errno in (
            errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT))


def relay_unreachable(name: str, error: str, settings: Settings) -> CheckResult:
    """A warning, not a failure: mail still comes in and becomes tickets;
    the notifications wait in the outbox. What to do is in the detail."""
    return CheckResult(name, True, (
        f"{error}; until it answers, notifications wait in the outbox (`maildesk outbox "
        f"list`) and are retried for about {retry_minutes(settings.worker):.0f} min, then "
        f"marked failed (`maildesk outbox retry ID`). Point [relay] host/port at your mail "
        f"server (MAILDESK_RELAY__HOST=...), or to try maildesk out run a local sink: "
        f"python -m aiosmtpd -n -l 127.0.0.1:2526 with MAILDESK_RELAY__PORT=2526"),
        warning=True)


def check_relay(settings: Settings) -> CheckResult:
    """Connect, EHLO (and STARTTLS/login as configured), QUIT."""
    from maildesk.deliver.transport import Relay, TemporaryFailure

    relay = settings.relay
    name = f"relay {relay.host}:{relay.port} ({relay.security})"
    try:
        code = Relay(relay).probe()  # the same connect path the worker uses
    except TemporaryFailure as exc:
        if unreachable(exc.__cause__):
            return relay_unreachable(name, f"not reachable ({exc.__cause__})", settings)
        return CheckResult(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
    return CheckResult(name, code == 250, f"EHLO answered {code}")


def check_broker(settings: Settings) -> CheckResult:
    if not settings.broker.url:
        return CheckResult("broker", True, "embedded (serve sends notifications itself)")
    import redis

    name = f"broker {db.safe_url(settings.broker.url)}"
    try:
        client = redis.Redis.from_url(settings.broker.url, socket_timeout=5,
                                      socket_connect_timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
    return CheckResult(name, True, "PING answered")


def check_secret(settings: Settings, config: str) -> CheckResult:
    from maildesk.secret import FILE_NAME, shared_secret_problem

    problem = shared_secret_problem(settings, config)
    if problem:
        return CheckResult("secret", False, problem)
    if settings.security.secret:
        return CheckResult("secret", True, "security.secret is set (share it with every "
                                           "instance)")
    return CheckResult("secret", True, f"generated into {settings.data_dir / FILE_NAME} "
                                       f"(one instance only)")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(settings: Settings) -> CheckResult:
    """Links in mails (login, survey, file downloads) start with web.base_url."""
    web = settings.web
    url = web.base_url
    name = f"web base_url {url}"
    host = urlsplit(url).hostname or ""
    derived = url == listener_url(web.host, web.port)
    if derived and web.host.strip() in WILDCARD_HOSTS:
        return CheckResult(name, True, (
            f"not set, so derived from web.host {web.host!r} with this machine's name; "
            f"set web.base_url to the address customers reach (behind a TLS reverse proxy: "
            f"https://support.example.com)"), warning=True)
    if urlsplit(url).scheme == "http" and not is_loopback(host):
        return CheckResult(name, True, (
            "plain http on a non-loopback address: links in mails (portal login, "
            "downloads) travel unencrypted; put a TLS reverse proxy in front and set "
            "web.base_url = \"https://...\""), warning=True)
    where = " (from web.host and web.port)" if derived else ""
    if is_loopback(host):
        return CheckResult(name, True, f"links in mails start with it{where}; reachable "
                                       f"from this machine only")
    return CheckResult(name, True, f"links in mails start with it{where}")


def check_calendar(settings: Settings) -> CheckResult:
    """The calendar's values are only interpreted when a rule runs: say here."""
    from maildesk.schedule.calendar import BusinessCalendar

    cal = settings.calendar
    try:
        BusinessCalendar.from_settings(cal)
    except ValueError as exc:
        return CheckResult("calendar", False, str(exc))
    return CheckResult("calendar", True, f"{cal.timezone}, holidays of {cal.country}"
                                         f"{'-' + cal.subdivision if cal.subdivision else ''}, "
                                         f"open {cal.business_hours[0]}-{cal.business_hours[1]}")


def run_checks(settings: Settings, config: str = "built-in defaults") -> list[CheckResult]:
    results = [check_data_dir(settings), check_secret(settings, config),
               check_database(settings), check_broker(settings), check_relay(settings),
               check_base_url(settings), check_calendar(settings)]
    asked = healthz_url(settings)
    serving: list[RunningServe | None] = []

    def running() -> RunningServe | None:  # asked once, only when a port is in use
        if not serving:
            serving.append(ask_running_serve(asked))
        return serving[0]

    if settings.smtp.enabled:
        results.append(check_port("smtp", settings.smtp.host, settings.smtp.port,
                                  running, asked))
    if settings.lmtp.enabled:
        if settings.lmtp.socket:
            results.append(check_unix_socket("lmtp", settings.lmtp.socket))
        else:
            results.append(check_port("lmtp", settings.lmtp.host, settings.lmtp.port,
                                      running, asked))
    if settings.web.enabled:
        results.append(check_port("web", settings.web.host, settings.web.port,
                                  running, asked))
    results.extend(check_imap(settings))
    from maildesk.cli.check_templates import check_templates  # imports CheckResult from here

    results.extend(check_templates(settings))
    return results
