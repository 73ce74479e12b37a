"""Every package edgecnn imports, at the top of a module or inside a function, is declared in setup.cfg.

A package that happens to be on the developer's machine (the image's Python carries sympy, for one) does not
exist for a user: an undeclared import works here and fails after `pip install`.
"""
from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import sys

from .helpers import REPO


def imported_top_modules() -> dict[str, str]:
    """Top-level module -> the first file importing it, for every absolute import in the package."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "edgecnn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def declared_distributions() -> set[str]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    for extra in config["options.extras_require"].values():
        lines += extra.splitlines()
    return {_canonical(re.split(r"[\[<>=!~; ]", line.strip(), maxsplit=1)[0]) for line in lines if line.strip()}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_declared():
    providers = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    missing = []
    for module, where in imported_top_modules().items():
        if module in sys.stdlib_module_names or module in ("edgecnn", "__future__"):
            continue
        distributions = {_canonical(d) for d in providers.get(module, [])}
        if not distributions & declared:
            missing.append(f"{module} (imported in {where}; from {sorted(distributions) or 'no installed package'})")
    assert not missing, "imported but not declared in setup.cfg: " + "; ".join(missing)


def test_the_check_sees_an_undeclared_import(monkeypatch):
    """The check itself: a module no requirement provides is reported."""
    monkeypatch.setattr(sys.modules[__name__], "imported_top_modules", lambda: {"sympy": "edgecnn/x.py"})
    try:
        test_every_imported_package_is_declared()
    except AssertionError as exc:
        assert "sympy (imported in edgecnn/x.py" in str(exc)
    else:
        raise AssertionError("an undeclared import passed the check")
