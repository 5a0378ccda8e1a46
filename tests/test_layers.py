"""The layers are one-way, and this test is what keeps them so.

* ``billing`` (the domain) imports nothing of the layers above it, nor of the payment systems
  that implement its interfaces;
* ``processors`` and ``wallets`` implement billing's interfaces and import nothing of kassa
  but those and billing's value types;
* ``schema`` and ``resolvers`` (the API) never import the ``portals`` built on top of them;
* ``portals`` run GraphQL operations and never touch the database or its models.

Read from the source with ``ast`` (not by importing), so an import inside a function body
or behind ``TYPE_CHECKING`` counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL_MODULES = ("app", "cli", "settings")

#: The only parts of ``billing`` that payment systems may use: the ports and value types.
BILLING_INTERFACES = (
    "billing.processing",
    "billing.payment_systems",
    "billing.bitcoin",
    "billing.money",
    "billing.errors",
)

#: Per layer, the imports it may not make (a module and everything under it).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "billing": ("schema", "resolvers", "portals", "processors", "wallets", "app", "cli"),
    "processors": (
        "schema",
        "resolvers",
        "portals",
        "wallets",
        "app",
        "cli",
        "settings",
        "migrations",
        "billing",
    ),
    "wallets": (
        "schema",
        "resolvers",
        "portals",
        "processors",
        "app",
        "cli",
        "settings",
        "migrations",
        "billing",
    ),
    "schema": ("portals",),
    "resolvers": ("portals",),
    "portals": ("billing.models", "billing.db", "sqlalchemy", "migrations"),
}
#: Exceptions to FORBIDDEN, per layer.
ALLOWED: dict[str, tuple[str, ...]] = {
    "processors": BILLING_INTERFACES,
    "wallets": BILLING_INTERFACES,
}


def _imported_modules(source: str, package: list[str]) -> list[str]:
    """Every module ``source`` imports, as absolute names; a relative import is resolved from
    ``package``, and ``from a import b`` counts as both ``a`` and ``a.b``."""
    modules: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            modules += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return modules


def _under(module: str, names: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in names)


def violations(layer: str, source: str, package: list[str] | None = None) -> list[str]:
    """The imports in ``source`` (a module of ``package``, by default directly in ``layer``)
    that the layer may not make."""
    imported = _imported_modules(source, package or [layer])
    if layer == "billing":
        # "from billing import x" inside billing is its own business.
        imported = [m for m in imported if not _under(m, ("billing",))]
    return [
        m
        for m in imported
        if _under(m, FORBIDDEN[layer])
        and not _under(m, ALLOWED.get(layer, ()))
        and not (m in BILLING_INTERFACES or m == "billing")
    ]


def _files(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_has_code_to_check(layer: str) -> None:
    assert _files(layer), layer


@pytest.mark.parametrize(
    ("layer", "path"),
    [(layer, path) for layer in sorted(FORBIDDEN) for path in _files(layer)],
    ids=lambda value: value if isinstance(value, str) else str(value.relative_to(ROOT)),
)
def test_layer_imports_only_what_it_may(layer: str, path: Path) -> None:
    package = list(path.relative_to(ROOT).parts[:-1])
    assert violations(layer, path.read_text(), package) == []


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("billing", "from schema import build_schema"),
        ("billing", "import processors.registry"),
        ("billing", "def f():\n    from processors import registry"),
        ("billing", "from app import create_app"),
        ("processors", "from billing.models import Payment"),
        ("processors", "from billing import payments"),
        ("processors", "from settings import Settings"),
        ("wallets", "from billing.db import Database"),
        ("wallets", "from billing.bitcoin_wallets import set_wallet"),
        ("wallets", "from processors import simulator"),
        ("schema", "from portals import rendering"),
        ("resolvers", "import portals.forms"),
        ("portals", "import sqlalchemy"),
        ("portals", "from sqlalchemy.orm import Session"),
        ("portals", "from billing.models import Invoice"),
        ("portals", "from billing import models"),
        ("portals", "from ..billing import db"),
        ("portals", "from billing.db import Database"),
    ],
)
def test_the_check_catches_each_way_of_importing(layer: str, source: str) -> None:
    assert violations(layer, source), source


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("processors", "from billing.processing import CardProcessor"),
        ("processors", "from billing.money import validate_currency"),
        ("processors", "from billing import processing"),
        ("wallets", "from billing.errors import UserError"),
        ("wallets", "from billing.bitcoin import AddressDeriver"),
        ("billing", "from settings import Settings"),
        ("portals", "from resolvers import sessions"),
    ],
)
def test_the_check_lets_the_allowed_imports_through(layer: str, source: str) -> None:
    assert violations(layer, source) == [], source
