"""The wheel works outside the checkout (issue 17): built from the sources,
installed into a fresh venv in a temporary directory, and run there by
.ci/wheel_smoke.py (db upgrade, ingest, every notification kind, serve's
/healthz and the portal's login page from the shipped templates).

Kept to ~20 s: the venv borrows the test venv's installed dependencies
(a .pth line) and gets only the wheel itself; `.ci/run` installs the wheel
with its dependencies from the index, so a missing dependency fails CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: What an sdist holds (MANIFEST.in and setuptools' defaults): the build
#: must need nothing else of the checkout.
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "maildesk", "templates")


def build_wheel(tmp: Path) -> Path:
    """A wheel built from a copy of the sources (an in-tree build would
    write build/ into the checkout, where parallel tests would share it)."""
    source = tmp / "src"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    out = tmp / "dist"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("maildesk-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A venv with the wheel installed and the test venv's dependencies
    visible (a .pth file only adds a path: the checkout's editable finder,
    registered by a .pth in that directory, is not run)."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; "
                             "print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(target, "borrowed-deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "-q", "--no-deps", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return python


def test_the_wheel_ships_the_templates_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("maildesk/templates/mail/de/acknowledgement.txt.j2",
                    "maildesk/templates/mail/en/_layout.html.j2",
                    "maildesk/templates/web/_base.html.j2",
                    "maildesk/templates/web/en/portal_login.html.j2",
                    "maildesk/templates/web/static/suggest.js",
                    "maildesk/migrations/env.py"):
        assert shipped in names
    assert not [n for n in names if n.startswith("templates/")]  # not top-level in site-packages

    python = fresh_venv(tmp_path, wheel)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MAILDESK_", "PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run([str(python), str(REPO / ".ci" / "wheel_smoke.py")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wheel smoke: passed" in done.stdout
    assert f"templates shipped at {tmp_path / 'venv'}" in done.stdout
