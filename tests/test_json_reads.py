"""JSON reads (``schema.json_reads``): PostgreSQL builds a prepared read's answer, and it is
the answer the API gives by every other path.

* The SQL renderings of leaves (``schema.json_sql``) against the Python they stand for, on
  values at the edges: every currency's decimals with signs and carries, instants with and
  without microseconds, long ids.
* Every field the module renders, selected on every type it renders, asked by every kind of
  caller about every kind of customer, twice: the second answer (JSON reads) must equal
  Strawberry's own, and JSON reads must actually have answered.
* What JSON reads must not answer — a refused permission, a customer out of sight, an id
  that does not decode — is answered as Strawberry answers it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType, is_non_null_type
from sqlalchemy import BigInteger, Date, String, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from bench.api import DASHBOARD
from billing import models
from billing.db import Database
from billing.invoices import void_invoice
from billing.models import UTCDateTime
from billing.money import CURRENCY_DECIMALS, format_amount
from schema import json_reads, json_sql
from schema import schema as kassa_schema
from schema.relay import decode_id, encode_id
from tests.factories import admin_viewer
from tests.test_authorization_matrix import GHOST, Caller, build_world
from tests.test_compiled_reads import callers, compiled_count

pytest_plugins = ["tests.graphql_fixtures"]

EDGE_AMOUNTS = (
    0,
    1,
    -1,
    5,
    -5,
    9,
    10,
    -10,
    99,
    100,
    -100,
    101,
    999,
    1000,
    -1001,
    123456789,
    -(10**18),
    10**18 - 1,
    2**62,
)


@pytest.fixture
def postgresql_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("JSON reads are PostgreSQL's (SQLite's requests take the walk)")


async def rendered(db: Database, expression: Any, **arrays: Any) -> list[Any]:
    """``expression`` over rows of the parallel ``arrays`` (``unnest``), in their order."""
    types = {"minor": BigInteger, "code": String, "at": UTCDateTime, "day": Date, "pk": BigInteger}
    rows = (
        func.unnest(
            *(bindparam(name, value, type_=ARRAY(types[name])) for name, value in arrays.items())
        )
        .table_valued(*arrays)
        .render_derived()
    )
    async with db.session() as session:
        return list((await session.execute(select(expression(rows.c)))).scalars())


@pytest.mark.usefixtures("postgresql_only")
async def test_amounts_are_written_as_format_amount_writes_them(db: Database) -> None:
    pairs = [(minor, code) for code in sorted(CURRENCY_DECIMALS) for minor in EDGE_AMOUNTS]
    found = await rendered(
        db,
        lambda c: json_sql.amount(c.minor, c.code),
        minor=[minor for minor, _ in pairs],
        code=[code for _, code in pairs],
    )
    expected = [format_amount(minor, code) for minor, code in pairs]
    wrong = [
        (pair, got, want)
        for pair, got, want in zip(pairs, found, expected, strict=True)
        if got != want
    ]
    assert not wrong, wrong[:10]


@pytest.mark.usefixtures("postgresql_only")
async def test_instants_days_and_ids_are_written_as_the_api_writes_them(db: Database) -> None:
    instants = [
        datetime(2026, 12, 4, 13, 17, 32, tzinfo=UTC),
        datetime(2026, 12, 4, 13, 17, 32, 1, tzinfo=UTC),
        datetime(2026, 12, 4, 13, 17, 32, 500000, tzinfo=UTC),
        datetime(1999, 1, 1, 0, 0, 0, 999999, tzinfo=UTC),
        datetime(2030, 2, 28, 23, 59, 59, 120, tzinfo=UTC),
    ]
    found = await rendered(db, lambda c: json_sql.instant(c.at), at=instants)
    assert found == [at.isoformat() for at in instants]
    days = [date(2026, 1, 2), date(1999, 12, 31), date(2030, 10, 10)]
    assert await rendered(db, lambda c: json_sql.day(c.day), day=days) == [
        day.isoformat() for day in days
    ]
    pks = [1, 9, 10, 12345, 10**18, 2**63 - 1]
    for type_name in ("Customer", "Invoice", "Payment", "Account"):
        got = await rendered(db, lambda c, t=type_name: json_sql.global_id(t, c.pk), pk=pks)
        assert got == [encode_id(type_name, pk) for pk in pks]


def test_every_rendered_field_is_a_field_of_its_type() -> None:
    """A rendering under a name the type does not have would never be used (a typo); a
    non-null field read from a column that may hold NULL would answer null where the API
    answers an error."""
    graphql_schema = kassa_schema._schema
    for type_name, fields in json_reads.TYPES.items():
        kind = graphql_schema.get_type(type_name)
        assert isinstance(kind, GraphQLObjectType), type_name
        renderings = fields(_row_of(type_name))
        assert set(renderings) <= set(kind.fields), type_name
        for name, rendering in renderings.items():
            if isinstance(rendering, json_reads.Leaf) and is_non_null_type(kind.fields[name].type):
                assert rendering.value.nullable is False, (type_name, name)
    query = graphql_schema.query_type
    assert query is not None and set(json_reads.ROOTS) <= set(query.fields)


def _row_of(type_name: str) -> Any:
    """The rows JSON reads render ``type_name`` from."""
    if type_name == "Customer":
        return json_reads.ROOTS["customer"].row
    return getattr(models, type_name).__table__


def _selection(type_name: str) -> str:
    """Every field JSON reads render on ``type_name``, lists with their own, and a
    ``__typename`` and an alias on each object."""
    parts = ["__typename", "alias: id"]
    for name, rendering in json_reads.TYPES[type_name](_row_of(type_name)).items():
        if isinstance(rendering, json_reads.Amount):
            parts.append(f"{name} {{ amount currency __typename }}")
        elif isinstance(rendering, json_reads.Rows):
            arguments = "(first: 3)" if rendering.newest_first else ""
            parts.append(f"{name}{arguments} {{ {_selection(rendering.type_name)} }}")
        else:
            parts.append(name)
    return " ".join(parts)


EVERYTHING = f"query Everything($id: ID!) {{ customer(id: $id) {{ {_selection('Customer')} }} }}"
#: What a distributor may read: nothing of the books (``SeesBooks``).
PROFILE = (
    "query Profile($id: ID!) { customer(id: $id) { id name email status balance { amount } "
    "availableFunds { amount currency } accounts { id number status createdAt } "
    "invoices(first: 10) { id number status dueDate outstanding { amount currency } } "
    "paid: invoices(status: PAID) { id status } "
    "payments(first: 10) { id method status receivedAt amount { amount currency } } } }"
)


@pytest.mark.usefixtures("postgresql_only")
async def test_json_reads_answer_what_strawberry_answers_for_every_caller(
    http: httpx.AsyncClient, strawberry_http: httpx.AsyncClient, db: Database
) -> None:
    world = await build_world(db)
    async with db.transaction() as session:  # a void invoice: its outstanding is nothing
        voided = decode_id(world.sides["A1"].invoice, "Invoice")
        await void_invoice(session, admin_viewer(), voided, "JSON reads' test")
    targets = [*world.sides.values(), GHOST]
    failures = []
    json_before = compiled_count("json")
    for caller, kassa, plain in await callers(http, strawberry_http, db, world):
        for document in (EVERYTHING, PROFILE, DASHBOARD):
            for target in targets:
                variables = {"id": target.customer}
                await kassa.post(document, variables)  # the first compiles (and prepares)
                ours = await kassa.post(document, variables)
                theirs = await plain.post(document, variables)
                if (ours.status_code, ours.json()) != (theirs.status_code, theirs.json()):
                    failures.append(
                        f"{caller} {target.label} {document[:40]}\n{ours.text}\n{theirs.text}"
                    )
    assert not failures, "\n\n".join(failures[:3]) + f"\n\n({len(failures)} in all)"
    # Every caller who sees a customer at all was answered by JSON reads at least once.
    assert compiled_count("json") - json_before >= 10


@pytest.mark.usefixtures("postgresql_only")
async def test_what_json_reads_may_not_answer_goes_to_the_walk_and_strawberry(
    http: httpx.AsyncClient, strawberry_http: httpx.AsyncClient, db: Database
) -> None:
    """A distributor's books (a refused permission), another reseller's customer, an id
    of another type, a customer that does not exist: answered as Strawberry answers, and
    never by JSON reads."""
    world = await build_world(db)
    everyone = {
        caller: (kassa, plain)
        for caller, kassa, plain in await callers(http, strawberry_http, db, world)
    }
    requests = [
        (Caller.DISTRIBUTOR_KEY, DASHBOARD, world.sides["A1"].customer),
        (Caller.RESELLER_KEY, DASHBOARD, world.sides["B1"].customer),
        (Caller.CUSTOMER_USER, PROFILE, world.sides["A2"].customer),
        (Caller.RESELLER_KEY, PROFILE, encode_id("Invoice", 1)),
        (Caller.RESELLER_KEY, PROFILE, GHOST.customer),
    ]
    preparer, _ = everyone[Caller.RESELLER_KEY]
    for caller, document, customer in requests:
        kassa, plain = everyone[caller]
        await preparer.post(document, {"id": world.sides["A1"].customer})  # prepared
        before = compiled_count("json")
        ours = await kassa.post(document, {"id": customer})
        theirs = await plain.post(document, {"id": customer})
        assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())
        assert compiled_count("json") == before, (caller, customer)
