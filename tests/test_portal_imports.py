"""The portals never touch the database: they run GraphQL operations and nothing else.

Read from the source with ``ast`` (not by importing), so an import hidden in a function
body or behind ``TYPE_CHECKING`` counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PORTALS = Path(__file__).resolve().parent.parent / "kassa" / "portals"
FORBIDDEN = ("kassa.billing.models", "kassa.db", "sqlalchemy")


def _imported_modules(path: Path) -> list[str]:
    """Every module a file imports, absolute; relative imports are resolved as from a module
    directly in ``kassa/portals`` (``from .. import db`` is ``kassa.db``)."""
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = ["kassa", "portals"][: 2 - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            modules += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return modules


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


def test_there_are_portal_modules_to_check() -> None:
    assert len(list(PORTALS.rglob("*.py"))) >= 5


@pytest.mark.parametrize("path", sorted(PORTALS.rglob("*.py")), ids=lambda path: path.name)
def test_no_portal_module_imports_the_database(path: Path) -> None:
    assert [module for module in _imported_modules(path) if _forbidden(module)] == []


@pytest.mark.parametrize("source", [
    "import sqlalchemy", "from sqlalchemy.orm import Session", "import kassa.db",
    "from kassa import db", "from kassa.billing import models",
    "from kassa.billing.models import Invoice", "def f():\n    from kassa.db import Database",
    "from ..billing import models", "from .. import db", "from ..db import Database",
])
def test_the_check_catches_each_way_of_importing(tmp_path: Path, source: str) -> None:
    module = tmp_path / "page.py"
    module.write_text(source + "\n")
    assert any(_forbidden(name) for name in _imported_modules(module))
