"""Starting kassa from the command line: what it refuses, what it says, what it never creates.

* ``serve`` and ``worker`` refuse production settings that would let anyone sign sessions and
  PDF links (the public development secret, a short one) or that cannot make links (no
  ``KASSA_PUBLIC_URL``), and say why, before touching the database.
* In development the public address follows the port served, so links work on any port.
* Every command but ``migrate``, ``serve`` and ``demo`` finds a missing or unmigrated database
  and says so in one line, leaving no empty database file behind.
* ``worker --once`` says how many jobs ran; ``demo`` tells a first load from a second run.
"""

from __future__ import annotations

from itertools import takewhile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from billing.db import Database
from billing.models import Job
from resolvers.invoice_pdf_links import invoice_pdf_url
from settings import (
    DEVELOPMENT_ENCRYPTION_KEY,
    DEVELOPMENT_SECRET_KEY,
    Settings,
    from_env,
    sqlite_url,
    start_problems,
)
from tests.ports import free_port
from tests.test_cli import kassa, query

GOOD_SECRET = "k" * 32
PRODUCTION = {
    "KASSA_ENV": "production",
    "KASSA_SECRET_KEY": GOOD_SECRET,
    "KASSA_ENCRYPTION_KEY": "e" * 32,
    "KASSA_PUBLIC_URL": "https://billing.example.com",
}


# --- refusing to start in production -------------------------------------------------------


def test_development_starts_with_the_development_defaults() -> None:
    assert start_problems(from_env({})) == []


def test_production_with_a_secret_and_an_address_starts() -> None:
    settings = from_env(PRODUCTION)
    assert start_problems(settings) == []
    assert settings.public_url == "https://billing.example.com"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"KASSA_SECRET_KEY": ""}, "KASSA_SECRET_KEY is not set"),
        ({"KASSA_SECRET_KEY": DEVELOPMENT_SECRET_KEY}, "KASSA_SECRET_KEY is not set"),
        ({"KASSA_SECRET_KEY": "x" * 31}, "KASSA_SECRET_KEY is 31 characters long"),
        ({"KASSA_ENCRYPTION_KEY": ""}, "KASSA_ENCRYPTION_KEY is not set"),
        (
            {"KASSA_ENCRYPTION_KEY": DEVELOPMENT_ENCRYPTION_KEY},
            "KASSA_ENCRYPTION_KEY is not set",
        ),
        ({"KASSA_ENCRYPTION_KEY": "x" * 31}, "KASSA_ENCRYPTION_KEY is 31 characters long"),
        ({"KASSA_PUBLIC_URL": ""}, "KASSA_PUBLIC_URL is not set"),
    ],
)
def test_production_names_each_problem(changes: dict[str, str], problem: str) -> None:
    problems = start_problems(from_env({**PRODUCTION, **changes}))
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_every_problem_is_listed_at_once() -> None:
    problems = start_problems(from_env({"KASSA_ENV": "production"}))
    assert [p.split(" ")[0] for p in problems] == [
        "KASSA_SECRET_KEY",
        "KASSA_ENCRYPTION_KEY",
        "KASSA_PUBLIC_URL",
    ]


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker", "--once"]])
def test_serve_and_worker_refuse_and_say_why(tmp_path: Path, command: list[str]) -> None:
    database = tmp_path / "kassa.db"
    result = kassa(
        Settings(database_url=sqlite_url(database)), *command, env={"KASSA_ENV": "production"}
    )
    assert result.exit_code == 1
    assert "kassa will not start with KASSA_ENV=production" in result.output
    assert "KASSA_SECRET_KEY is not set" in result.output
    assert "KASSA_ENCRYPTION_KEY is not set" in result.output
    assert "KASSA_PUBLIC_URL is not set" in result.output
    assert "Traceback" not in result.output
    assert not database.exists()  # refused before the database was touched


# --- links on any port ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "port", "public_url"),
    [
        ({}, None, "http://127.0.0.1:8000"),
        ({"PORT": "8123"}, None, "http://127.0.0.1:8123"),
        ({"PORT": "8123"}, 9001, "http://127.0.0.1:9001"),  # kassa serve --port 9001
        ({"KASSA_PUBLIC_URL": "https://kassa.test/"}, 9001, "https://kassa.test"),
        ({"KASSA_ENV": "production", "PORT": "8123"}, None, ""),
    ],
)
def test_the_public_address_follows_the_port_served_in_development(
    environ: dict[str, str], port: int | None, public_url: str
) -> None:
    assert from_env(environ, port=port).public_url == public_url


def test_invoice_pdf_links_point_at_the_port_served() -> None:
    url = invoice_pdf_url(from_env({"PORT": "8123"}), 1)
    assert url.startswith("http://127.0.0.1:8123/documents/invoices/")


# --- no database, no file --------------------------------------------------------------------


COMMANDS_ON_AN_EXISTING_DATABASE = [
    ["check"],
    ["collect"],
    ["worker", "--once"],
    ["create-admin", "--email", "a@example.com", "--password", "long enough"],
    ["create-api-key", "--name", "Partner", "--scope", "read"],
]


@pytest.mark.parametrize("command", COMMANDS_ON_AN_EXISTING_DATABASE)
def test_commands_say_the_database_is_missing_and_create_none(
    tmp_path: Path, command: list[str]
) -> None:
    database = tmp_path / "var" / "kassa.db"
    result = kassa(Settings(database_url=sqlite_url(database)), *command)
    assert result.exit_code == 1
    assert result.output == (
        f"error: no database at {database}: run `kassa migrate` to create it, "
        "or set KASSA_DATABASE_URL to the database to use\n"
    )
    assert not database.parent.exists()


@pytest.mark.parametrize("command", COMMANDS_ON_AN_EXISTING_DATABASE)
def test_commands_say_the_database_is_not_migrated(tmp_path: Path, command: list[str]) -> None:
    database = tmp_path / "kassa.db"
    database.touch()
    result = kassa(Settings(database_url=sqlite_url(database)), *command)
    assert result.exit_code == 1
    assert result.output == (
        f"error: the database at {database} has no kassa tables: run `kassa migrate` first\n"
    )


def test_commands_say_when_the_database_cannot_be_reached() -> None:
    unreachable = Settings(database_url="postgresql+asyncpg://kassa@127.0.0.1:1/kassa")
    result = kassa(unreachable, "check")
    assert result.exit_code == 1
    assert result.output.startswith(
        "error: cannot use the database at postgresql+asyncpg://kassa@127.0.0.1:1/kassa: "
    )
    assert result.output.count("\n") == 1


def test_migrate_then_check_works_on_a_new_file(tmp_path: Path) -> None:
    """The way out the messages point to."""
    settings = Settings(database_url=sqlite_url(tmp_path / "kassa.db"))
    assert kassa(settings, "migrate").exit_code == 0
    result = kassa(settings, "check")
    assert result.exit_code == 0, result.output
    assert result.output == "ledger OK: 0 books, 0 transactions\n"


# --- what the worker and the demo say --------------------------------------------------------


def _attempts(settings: Settings) -> int:
    """Every run of a job counts one attempt, whatever its outcome."""
    total = query(settings, lambda s: s.scalar(select(func.sum(Job.attempts))))
    return int(total or 0)


def test_worker_once_says_how_many_jobs_ran(settings: Settings, db: Database) -> None:
    """The count is the real one (the mail polls, which every worker starts, are jobs too),
    on a line of its own, as a cron job's log would want it."""
    for _ in range(2):
        before = _attempts(settings)
        result = kassa(settings, "worker", "--once")
        assert result.exit_code == 0, result.output
        ran = _attempts(settings) - before
        assert result.stdout == f"ran {ran} job{'' if ran == 1 else 's'}\n"


def test_demo_says_where_to_go_and_whether_it_loaded(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    # The demo serves the payment systems' fakes on its port meanwhile: a free one, with their
    # state in tmp_path, so a run beside this one (the other database's) is not disturbed.
    port = free_port()
    env = {"PORT": str(port), "KASSA_FAKE_STATE_DIR": str(tmp_path)}
    first = kassa(settings, "demo", env=env)
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0] == "Demo data loaded."
    for path in ("/graphql", "/portal", "/admin", "/distributor"):
        assert any(line.startswith(f"  http://127.0.0.1:{port}{path} ") for line in lines)
    after = lines[lines.index("Sign in with:") + 1 :]
    sign_ins = list(takewhile(lambda line: line.startswith("  "), after))
    assert {line.split()[0] for line in sign_ins} == {"administrator", "customer", "distributor"}
    # The e-mail addresses and the passwords each start in one column.
    for column in (1, 2):
        assert len({line.index(line.split()[column]) for line in sign_ins}) == 1, sign_ins

    again = kassa(settings, "demo", env=env)
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("The demo was already there")
    assert "loaded" not in again.stdout.splitlines()[0]
