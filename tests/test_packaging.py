"""Installed, the service is one import package, mlflow_webhooks: the clone's server/,
generated/ and clients/ folders map into it (setup.cfg's package_dir), so nothing it installs
is a top-level `server`, `generated` or `clients` that could collide with another
distribution's."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import ROOT

FOLDERS = ("server", "generated", "clients")
PACKAGE = "mlflow_webhooks"
# A distribution of its own (clients/mlflow_bridge/pyproject.toml), installed into MLflow's
# environment, never by this one.
OWN_DISTRIBUTION = "clients/mlflow_bridge"


def folder_packages() -> set[str]:
    """Every package folder of the clone, named as installed."""
    found = set()
    for folder in FOLDERS:
        for init in (Path(ROOT) / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT)
            if not str(relative).startswith(OWN_DISTRIBUTION):
                found.add(".".join((PACKAGE, *relative.parts)))
    return found


def test_setup_cfg_lists_every_package() -> None:
    config = configparser.ConfigParser()
    config.read(Path(ROOT) / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    assert listed == folder_packages()


def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if not name.split("/")[0].endswith("-info")}
    assert tops == {PACKAGE}
    assert f"{PACKAGE}/server/console/static/index.html" in names
    assert f"{PACKAGE}/generated/webhooks_pb2.py" in names


def test_installed_modules_import_without_the_clone_on_the_path(tmp_path: Path) -> None:
    """From outside the clone, every module imports through mlflow_webhooks alone: none of
    them reaches for a top-level server, generated or clients."""
    script = (
        "import importlib, pkgutil, sys\n"
        f"import {PACKAGE}.server, {PACKAGE}.generated, {PACKAGE}.clients\n"
        f"for parent in ({PACKAGE}.server, {PACKAGE}.generated, {PACKAGE}.clients):\n"
        "    for info in pkgutil.walk_packages(parent.__path__, parent.__name__ + '.'):\n"
        "        if not info.name.endswith('__main__'):\n"
        "            importlib.import_module(info.name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FOLDERS!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
