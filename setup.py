"""Build hook: ship the repository's top-level ``templates/`` inside the package.

The repository keeps the jinja2 mail and page templates at the top level
(``templates/mail``, ``templates/web``, ``templates/web/static``); a wheel
carries them as package data, ``maildesk/templates/``, where
``maildesk.deliver.render.shipped_templates`` finds them with
importlib.resources. An editable install (``pip install -e``) copies
nothing: the checkout's own ``templates/`` is used in place. Everything else
about the build is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "templates"
#: Inside the package, relative to the build's lib directory.
TARGET = Path("maildesk") / "templates"


class BuildPyWithTemplates(build_py):
    """build_py, then templates/ copied to maildesk/templates/ in the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not (SOURCE / "mail").is_dir() or not (SOURCE / "web").is_dir():
            raise SystemExit(f"maildesk build: {SOURCE} has no mail/ and web/ templates "
                             "(an sdist without them? MANIFEST.in grafts templates/)")
        target = Path(self.build_lib) / TARGET
        shutil.rmtree(target, ignore_errors=True)  # no stale file from an earlier build
        shutil.copytree(SOURCE, target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.py[co]", ".*", "*~"))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            target = Path(self.build_lib) / TARGET
            outputs += [str(p) for p in sorted(target.rglob("*")) if p.is_file()]
        return outputs


setup(cmdclass={"build_py": BuildPyWithTemplates})
