"""A real Postfix for the delivery tests: Debian's package, a private instance.

`start_postfix()` runs `postfix -c DIR start` with its own config_directory,
queue_directory, data_directory and log file under a fresh temp dir, and no
network listener at all (mail goes in with `sendmail -C DIR`, the way local
programs hand Postfix mail). Its master.cf is Debian's as shipped (so the
lmtp client runs chrooted in the queue directory, as on a real server)
with the inet smtpd line removed and the pipe service of
config/postfix-pipe.example added. The system's own Postfix service is
neither needed nor touched.

Postfix's master must start as root; its delivery agents run as the
`postfix` user, the pipe command as the user its `user=` names.

The pipe runs `maildesk` the way config/postfix-pipe.example and the
README give it: the console script of a venv (`argv=/opt/maildesk/.venv/
bin/maildesk --config … ingest …`), as a user that is not root (Postfix
refuses root there; `nobody` stands in for the `maildesk` user of
config/sysusers.d). :func:`pipe_maildesk` finds one that user can run.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SHIPPED_MASTER_CF = Path("/etc/postfix/master.cf")
#: The user the pipe command runs as (Postfix refuses root there).
PIPE_USER = "nobody"

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.desk.test
mydomain = desk.test
myorigin = $myhostname
mydestination =
relayhost =
inet_interfaces = loopback-only
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
biff = no
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
transport_maps = texthash:{root}/etc/transport
# anything else is nobody's business in a test
default_transport = error:no outside mail from the test instance
lmtp_connect_timeout = 5s
# no automatic retry within a test: a deferred mail waits for the flush
minimal_backoff_time = 3600s
maximal_backoff_time = 7200s
queue_run_delay = 3600s
maildesk_destination_recipient_limit = 1
"""


def postfix_binary() -> str | None:
    return shutil.which("postfix") or next(
        (p for p in ("/usr/sbin/postfix",) if os.path.exists(p)), None)


def shipped_master_cf(pipe_argv: str) -> str:
    """Debian's master.cf without its public smtpd listener, plus the pipe
    service exactly as config/postfix-pipe.example gives it (but `argv`)."""
    lines = [line for line in SHIPPED_MASTER_CF.read_text().splitlines()
             if not re.match(r"smtp\s+inet\s", line)]
    lines += ["maildesk  unix  -       n       n       -       4       pipe",
              f"  flags=DRhu user={PIPE_USER} argv={pipe_argv}"]
    return "\n".join(lines) + "\n"


def _runs(user: str, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["runuser", "-u", user, "--", *argv], capture_output=True,
                          timeout=60)


def pipe_maildesk(where: Path, user: str = PIPE_USER) -> str:
    """The `maildesk` executable the pipe runs as `user`: a venv's own
    console script, like /opt/maildesk/.venv/bin/maildesk in a real install.

    This environment's own script when `user` can run it: in CI, where
    .ci/run makes the venv with Debian's python3 (a real Debian install
    does the same: `python3 -m venv /opt/maildesk/.venv`).

    Otherwise the venv's interpreter lives where `user` cannot go (pyenv
    under /root, mode 0700; that directory is not opened up for a test).
    Copying that interpreter does not help: its stdlib is found through
    /root too, and its RUNPATH names /root, so a copy would quietly load
    Debian's libpython instead. So a venv for the pipe is made under
    `where` (readable by `user`) from Debian's python of the same minor
    version, which is what a Debian install runs, and it gets this
    environment's packages (resolved for this interpreter, compiled for the
    same cp3XX ABI) through a .pth file instead of a second `pip install`,
    which would need the network at every run. The one difference from a
    fresh install on Debian 12: pip would add `async_timeout`, which redis
    wants below Python 3.11.3 (Debian has 3.11.2) and which this
    environment, resolved for a newer 3.11, lacks; a two-line module
    standing in for it (asyncio.timeout is the same) is added then.
    """
    own = Path(sys.prefix) / "bin" / "maildesk"
    if _runs(user, [str(own), "--help"]).returncode == 0:
        return str(own)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = f"/usr/bin/python{version}"
    venv = where / "pipe-venv"
    subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, timeout=120)
    site = venv / "lib" / f"python{version}" / "site-packages"
    # addsitedir, not a plain path line: the editable install's own .pth runs too
    (site / "maildesk-under-test.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    needs_shim = subprocess.run(
        [system, "-c", "import sys; sys.exit(sys.version_info >= (3, 11, 3))"],
        timeout=60).returncode == 0
    if needs_shim:
        (site / "async_timeout.py").write_text(
            '"""Stands in for the async_timeout package (see tests/postfix.py)."""\n'
            "from asyncio import timeout  # noqa: F401\n")
    # the console script pip writes for [project.scripts], with this venv's python
    script = venv / "bin" / "maildesk"
    body = own.read_text().split("\n", 1)[1]
    script.write_text(f"#!{venv / 'bin' / 'python'}\n{body}")
    script.chmod(0o755)
    done = _runs(user, [str(script), "--help"])
    if done.returncode != 0:
        raise RuntimeError(f"user {user} can run neither {own} nor {script}: "
                           f"{done.stderr.decode(errors='replace')}")
    return str(script)


@dataclass
class Postfix:
    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.root / "spool"

    @property
    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def send(self, raw: bytes, sender: str, recipient: str) -> None:
        """Hand Postfix one mail, as a local program does (postdrop, pickup)."""
        subprocess.run(["sendmail", "-C", str(self.config_dir), "-i", "-f", sender, recipient],
                       input=raw, check=True, timeout=30, capture_output=True)

    def status_lines(self, recipient: str) -> list[str]:
        """The delivery agents' log lines for a recipient (status=...)."""
        return [line for line in self.log.splitlines()
                if f"to=<{recipient}>" in line and " status=" in line]

    def wait_status(self, recipient: str, status: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for s in self.status_lines(recipient) if f" status={status} " in s]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no status={status} for {recipient} within {timeout} s; "
                             f"log:\n{self.log}")

    def queue(self) -> list[dict[str, object]]:
        done = subprocess.run(["postqueue", "-c", str(self.config_dir), "-j"],
                              capture_output=True, text=True, check=True, timeout=30)
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def flush(self) -> None:
        """`postqueue -f`: deliver the deferred mail now (what an admin runs)."""
        subprocess.run(["postqueue", "-c", str(self.config_dir), "-f"], check=True,
                       timeout=30, capture_output=True)

    def stop(self) -> None:
        pid = 0
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        with contextlib.suppress(Exception):
            subprocess.run(["postfix", "-c", str(self.config_dir), "stop"],
                           capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_postfix(transport: dict[str, str], pipe_argv: str, timeout: float = 20) -> Postfix:
    """A private Postfix routing each address of `transport` to its
    transport (e.g. "lmtp:inet:127.0.0.1:2424", "maildesk:")."""
    # Not under pytest's tmp_path (0700 for root): the postfix user and the
    # pipe user must reach their parts of it.
    root = Path(tempfile.mkdtemp(prefix="md-postfix-"))
    root.chmod(0o755)
    postfix = Postfix(root)
    postfix.config_dir.mkdir()
    postfix.queue_dir.mkdir()
    (root / "data").mkdir()
    owner = pwd.getpwnam("postfix")
    os.chown(root / "data", owner.pw_uid, owner.pw_gid)
    (postfix.config_dir / "main.cf").write_text(MAIN_CF.format(root=root))
    (postfix.config_dir / "master.cf").write_text(shipped_master_cf(pipe_argv))
    (postfix.config_dir / "transport").write_text(
        "".join(f"{address} {target}\n" for address, target in transport.items()))
    started = subprocess.run(["postfix", "-c", str(postfix.config_dir), "start"],
                             capture_output=True, text=True, timeout=60)
    if started.returncode != 0:
        postfix.stop()
        raise RuntimeError(f"postfix did not start: {started.stdout}{started.stderr}")
    deadline = time.monotonic() + timeout
    while not (postfix.queue_dir / "public" / "pickup").exists():
        if time.monotonic() > deadline:
            log = postfix.log
            postfix.stop()
            raise RuntimeError(f"postfix did not come up: {log}")
        time.sleep(0.05)
    return postfix


@contextlib.contextmanager
def postfix_for_tests(transport: dict[str, str], pipe_argv: str) -> Iterator[Postfix]:
    """A running private Postfix for a test module; in CI a missing one fails."""
    from tests.conftest import IN_CI

    problem = None
    if postfix_binary() is None:
        problem = "postfix is not installed (apt-get install postfix; .ci/run does)"
    elif os.geteuid() != 0:
        problem = "Postfix's master must start as root"
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    server = start_postfix(transport, pipe_argv)
    try:
        yield server
    finally:
        server.stop()
