"""kill -9 of `maildesk serve` during a stream of mails: after a restart,
every mail that got a 250 exists exactly once; nothing is half-written."""

from __future__ import annotations

import signal
import smtplib
import threading
from pathlib import Path

from sqlmodel import Session, select

from maildesk.models import InboundMail, Message
from tests.conftest import Desk
from tests.daemon_helpers import start_serve, wait_until
from tests.mailfactory import make_mail


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_sigkill_during_a_stream_loses_no_acknowledged_mail(desk: Desk, tmp_path: Path) -> None:
    serve = start_serve(desk.env, tmp_path)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        for n in range(200):
            if stop.is_set():
                return
            message_id = f"crash-{worker}-{n}@kunde.de"
            raw = make_mail(subject=f"Strom {worker}/{n}", message_id=f"<{message_id}>",
                            sender=f"kunde{worker}@firma{worker}.de")
            try:
                with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as smtp:
                    smtp.sendmail(f"kunde{worker}@firma{worker}.de", ["support@example.com"], raw)
            except (OSError, smtplib.SMTPException):
                return  # the daemon died under us: this mail was never acknowledged
            with lock:
                acknowledged.append(message_id)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acknowledged) >= 60, timeout=60, step=0.01)
    children = _children(serve.process.pid)
    assert children, "serve runs its processor in a child process"
    serve.process.send_signal(signal.SIGKILL)
    serve.process.wait(timeout=10)
    # its processor processes end with it (nothing left running outside systemd)
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), 10)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    killed_with = len(acknowledged)
    assert killed_with >= 60

    restarted = start_serve(desk.env, tmp_path)
    try:
        def all_processed() -> bool:
            with Session(desk.engine()) as session:
                states = session.exec(select(InboundMail.state)).all()
            return "pending" not in states and "processing" not in states

        wait_until(all_processed, timeout=60)
    finally:
        assert restarted.stop() == 0
    with Session(desk.engine()) as session:
        stored = session.exec(select(Message.message_id).where(Message.direction == "in")).all()
        failed = session.exec(select(InboundMail.error).where(InboundMail.state != "done")).all()
    assert not failed, failed[:3]
    counts = {mid: stored.count(mid) for mid in acknowledged}
    missing = [mid for mid, count in counts.items() if count == 0]
    doubled = [mid for mid, count in counts.items() if count > 1]
    assert not missing, f"{len(missing)} acknowledged mails lost, e.g. {missing[:3]}"
    assert not doubled, f"mails stored twice: {doubled[:3]}"
    assert len(stored) == len(set(stored)), "some mail became two messages"
