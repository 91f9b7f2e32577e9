"""The shape of the dependencies: the domain <- the device side <- the app. Nothing under
`devices/` imports the app (not even inside a function), and the domain, the protocol and the
simulator's device-side modules load without Flask or SQLAlchemy."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVICES = ROOT / "devices"
TRACECORE = ROOT / "tracecore"

#: The device side's modules that must load without the web framework or the database.
DEVICE_MODULES = (
    "devices",
    "devices.protocol",
    "devices.redaction",
    "devices.broker",
    "devices.simulator",
    "devices.simulator.geography",
    "devices.simulator.fleet",
    "devices.simulator.generator",
    "devices.simulator.transports",
)
FORBIDDEN = ("flask", "sqlalchemy", "app")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement in ``path`` names, wherever the statement is (module
    level, inside a function, under TYPE_CHECKING), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _modules_under(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def test_nothing_under_devices_imports_the_app():
    """Does any module under devices/ import app (or Flask, or SQLAlchemy), anywhere in it?"""
    offending = [
        f"{path.relative_to(ROOT)}:{line}: import {name}"
        for path in _modules_under(DEVICES)
        for line, name in _imported_modules(path)
        if _top(name) in FORBIDDEN
    ]
    assert offending == []


def test_the_domain_imports_neither_the_device_side_nor_the_app():
    """Does any module of tracecore/ import devices, app, Flask or SQLAlchemy?"""
    offending = [
        f"{path.relative_to(ROOT)}:{line}: import {name}"
        for path in _modules_under(TRACECORE)
        for line, name in _imported_modules(path)
        if _top(name) in (*FORBIDDEN, "devices")
    ]
    assert offending == []


def _loaded_after_importing(modules: list[str]) -> list[str]:
    """The forbidden top-level packages in ``sys.modules`` after a fresh interpreter, started
    in the checkout, has imported ``modules``."""
    code = (
        "import json, sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(FORBIDDEN)!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _domain_modules() -> list[str]:
    return [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in _modules_under(TRACECORE)
    ]


@pytest.mark.parametrize(
    "modules",
    [list(DEVICE_MODULES), _domain_modules()],
    ids=["devices", "tracecore"],
)
def test_the_domain_and_the_device_side_load_without_flask_or_sqlalchemy(modules):
    """Does importing the protocol, the simulator's device-side modules, or every module of
    the domain, in a fresh interpreter, load Flask, SQLAlchemy or the app?"""
    assert _loaded_after_importing(modules) == []
