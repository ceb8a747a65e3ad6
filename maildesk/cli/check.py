"""`maildesk check`: the config and every connection it names, item by item.

Each check returns (ok, detail); the command prints OK/FAIL lines and exits
non-zero on any failure, so it can gate a deployment or a unit's
ExecStartPre.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from maildesk import db
from maildesk.config import Settings


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


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
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".check-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return CheckResult(f"data dir {path}", False, str(exc))
    return CheckResult(f"data dir {path}", True, "writable")


def check_port(name: str, host: str, port: int) -> CheckResult:
    """Free to listen on (a running maildesk on it shows as in use)."""
    label = f"{name} listener {host}:{port}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = "in use" if exc.errno == errno.EADDRINUSE else str(exc)
            return CheckResult(label, False, reason)
    return CheckResult(label, True, "free")


def check_unix_socket(name: str, path: str) -> CheckResult:
    directory = os.path.dirname(path) or "."
    if not os.access(directory, os.W_OK):
        return CheckResult(f"{name} socket {path}", False, f"{directory} is not writable")
    return CheckResult(f"{name} socket {path}", True, "directory writable")


def check_imap(settings: Settings) -> Iterator[CheckResult]:
    if not settings.imap:
        return
    from maildesk.accept.imap_client import check_account

    for account in settings.imap:
        name = f"imap {account.name} ({account.user}@{account.host}:{account.port})"
        try:
            ok, detail = asyncio.run(check_account(account))
        except Exception as exc:  # noqa: BLE001
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        yield CheckResult(name, ok, detail)


def check_relay(settings: Settings) -> CheckResult:
    """Connect, EHLO (and STARTTLS/login as configured), QUIT."""
    from maildesk.deliver.transport import Relay, TemporaryFailure

    relay = settings.relay
    name = f"relay {relay.host}:{relay.port} ({relay.security})"
    try:
        code = Relay(relay).probe()  # the same connect path the worker uses
    except TemporaryFailure as exc:
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


def run_checks(settings: Settings, config: str = "built-in defaults") -> list[CheckResult]:
    results = [check_data_dir(settings), check_secret(settings, config),
               check_database(settings), check_broker(settings), check_relay(settings)]
    if settings.smtp.enabled:
        results.append(check_port("smtp", settings.smtp.host, settings.smtp.port))
    if settings.lmtp.enabled:
        if settings.lmtp.socket:
            results.append(check_unix_socket("lmtp", settings.lmtp.socket))
        else:
            results.append(check_port("lmtp", settings.lmtp.host, settings.lmtp.port))
    if settings.web.enabled:
        results.append(check_port("web", settings.web.host, settings.web.port))
    results.extend(check_imap(settings))
    return results
