"""Smoke test of an installed maildesk wheel, run by that install's Python.

`.ci/run` (and tests/ops/test_wheel.py) build a wheel, install it into a
fresh venv outside the checkout and run this script with the venv's Python
from an empty temporary directory, so nothing of the checkout (its
templates/, maildesk.toml, the source tree) can stand in for what the wheel
ships. Each step is what an ops person does first:

1. the package and its templates come from the venv, not the checkout;
2. `maildesk db upgrade` creates the database (data dir 0700, file 0600);
3. `maildesk ingest` takes a mail from standard input (a ticket is created);
4. every notification kind renders in German and English (and `maildesk
   check` says so);
5. `maildesk serve` starts on free ports, answers /healthz and serves the
   portal's login page from the shipped templates, and stops on SIGTERM.

Standard library only (and the installed maildesk); exits 1 naming the
failed step.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
MAIL = (b"From: Juergen Beispiel <juergen@example.de>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: Drucker druckt nicht\r\n"
        b"Message-ID: <wheel-smoke-1@example.de>\r\n"
        b"Date: Mon, 02 Nov 2026 10:15:00 +0100\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"Mein Drucker druckt nicht.\r\n")


class SmokeFailure(Exception):
    pass


def step(message: str) -> None:
    print(f"wheel smoke: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def maildesk(env: dict[str, str], cwd: Path, *args: str, stdin: bytes = b"",
             ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(BIN / "maildesk"), *args], input=stdin, env=env, cwd=cwd,
                          capture_output=True, timeout=120)
    if done.returncode not in ok:
        raise SmokeFailure(f"`maildesk {' '.join(args)}` exited {done.returncode}:\n"
                           f"{done.stdout.decode(errors='replace')}"
                           f"{done.stderr.decode(errors='replace')}")
    return done


def check_install() -> None:
    """maildesk and its templates are the venv's, not a checkout's."""
    import maildesk
    from maildesk.deliver.render import BUILTIN_DIR
    from maildesk.web.page_render import BUILTIN_DIR as PAGES_DIR

    prefix = Path(sys.prefix).resolve()
    for what, path in (("package", Path(maildesk.__file__)), ("mail templates", BUILTIN_DIR),
                       ("page templates", PAGES_DIR)):
        if prefix not in Path(path).resolve().parents:
            raise SmokeFailure(f"{what} at {path}, not inside the venv {prefix}")
        if not Path(path).exists():
            raise SmokeFailure(f"{what}: {path} does not exist (not shipped in the wheel?)")
    step(f"templates shipped at {BUILTIN_DIR.parent}")


def check_modes(data: Path) -> None:
    """The data dir and the database hold every raw mail: private."""
    for path, want in ((data, 0o700), (data / "maildesk.sqlite3", 0o600)):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != want:
            raise SmokeFailure(f"{path} has mode {mode:o}, want {want:o}")


def render_every_kind() -> int:
    from maildesk.cli.check_templates import KINDS, mail_problems, page_problems
    from maildesk.deliver.render import Renderer
    from maildesk.web.page_render import BUILTIN_DIR, PageRenderer

    problems = mail_problems(Renderer()) + page_problems(PageRenderer(None), BUILTIN_DIR)
    if problems:
        raise SmokeFailure("templates do not render:\n" + "\n".join(problems))
    return len(KINDS)


def get(url: str, language: str = "de") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept-Language": language})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def serve_and_get(env: dict[str, str], cwd: Path) -> None:
    web_port = free_port()
    env = {**env, "MAILDESK_SMTP__PORT": str(free_port()), "MAILDESK_WEB__PORT": str(web_port)}
    log = cwd / "serve.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen([str(BIN / "maildesk"), "serve"], env=env, cwd=cwd,
                                   stdout=handle, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{web_port}"
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SmokeFailure(f"serve exited {process.returncode}:\n{log.read_text()}")
            try:
                status, body = get(f"{base}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SmokeFailure(f"serve did not answer within 60 s:\n"
                                       f"{log.read_text()}") from None
                time.sleep(0.2)
        if status != 200:
            raise SmokeFailure(f"/healthz answered {status}: {body}")
        for language, words in (("de", "Anmeldelink schicken"),
                                ("en", "Send me a login link")):
            status, body = get(f"{base}/portal/login", language)
            if status != 200 or words not in body or f'<html lang="{language}">' not in body:
                raise SmokeFailure(f"/portal/login ({language}) answered {status} without "
                                   f"{words!r}:\n{body[:2000]}")
        step("serve answered /healthz and /portal/login (de, en)")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise SmokeFailure("serve did not stop within 30 s of SIGTERM") from None
    if code != 0:
        raise SmokeFailure(f"serve exited {code} after SIGTERM:\n{log.read_text()}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="maildesk-wheel-smoke-") as tmp:
        root = Path(tmp)
        data = root / "var"
        # The built-in defaults only (no maildesk.toml in the empty cwd, no
        # MAILDESK_* of the caller); a relay port nobody listens on, so the
        # acknowledgement waits in the outbox instead of reaching a real MTA.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILDESK_")}
        env.pop("PYTHONPATH", None)
        env |= {"MAILDESK_DATA_DIR": str(data), "MAILDESK_RELAY__PORT": str(free_port())}
        try:
            check_install()
            maildesk(env, root, "db", "upgrade")
            check_modes(data)
            step("db upgrade created the database (data dir 0700, file 0600)")
            done = maildesk(env, root, "ingest", "--json", stdin=MAIL)
            outcome = json.loads(done.stdout.decode().strip().splitlines()[-1])
            if outcome.get("action") != "created":
                raise SmokeFailure(f"ingest: {outcome}")
            step(f"ingest created ticket #{outcome['ticket']}")
            step(f"{render_every_kind()} notification kinds render in de and en")
            done = maildesk(env, root, "check", "--json", ok=(0, 1))
            results = json.loads(done.stdout)
            for name in ("mail templates", "page templates"):
                found = [r for r in results if r["name"].startswith(name)]
                if not found or not all(r["ok"] for r in found):
                    raise SmokeFailure(f"maildesk check, {name}: {found or 'no such item'}")
            step("maildesk check: templates OK")
            serve_and_get(env, root)
        except SmokeFailure as exc:
            print(f"wheel smoke: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    step("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
