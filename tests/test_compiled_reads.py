"""Compiled reads (``schema.compiled``) answer exactly what Strawberry answers.

Differential: on the authorization matrix's world (four customers of two resellers and the
provider, with distributors, invoices, payments), every kind of caller sends the same
documents — the API dashboard, subsets, aliases, ``__typename``, literals and variables,
``first`` from 0 to over the limit, merged fields, enum arguments, fields a distributor
may not read, unknown and foreign ids, bad variables — to an app with compiled reads and
to one without, and the two responses (status and body) must be the same.  Randomly drawn
selections over the supported fields are compared the same way.  And the dashboard must
actually take the compiled path: a regression to Strawberry's executor fails here.
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
from prometheus_client import REGISTRY

from bench.api import DASHBOARD
from billing.db import Database
from schema.compiled import RESOLVERS
from tests.graphql_support import Api
from tests.statements import statements
from tests.test_authorization_matrix import GHOST, Caller, World, build_world, sign_in_as

pytest_plugins = ["tests.graphql_fixtures"]

CUSTOMER_FIELDS = (
    "id name email phone address currency timeZone billingPeriod billingAnchor periodStart "
    "nextBillAt creditLimit { amount currency } status autoPayment createdAt updatedAt"
)
INVOICE_FIELDS = (
    "id number kind status currency periodStart periodEnd issueDate dueDate "
    "previousBalance { amount currency } paymentsInPeriod { amount } total { amount currency } "
    "amountPaid { amount } outstanding { amount currency } balanceDue { amount } createdAt "
    "voidedAt voidReason notChargedReason"
)
PAYMENT_FIELDS = (
    "id method amount { amount currency } refundedAmount { amount } status reference "
    "receivedAt processor actionUrl flaggedReason declineCode message"
)

#: (document, extra variables): ``$id`` is always the target customer's id.
DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    (DASHBOARD, {}),
    ("query Q($id: ID!) { customer(id: $id) { id } }", {}),
    (f"query Q($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}", {}),
    (
        "query Q($id: ID!) { a: customer(id: $id) { n: name b: balance { amount } } "
        "b: customer(id: $id) { id availableFunds { currency } } }",
        {},
    ),
    (
        "query Q($id: ID!) { __typename customer(id: $id) { __typename "
        "balance { __typename amount } accounts { __typename id } "
        "invoices(first: 1) { __typename id } payments(first: 1) { __typename id } } }",
        {},
    ),
    (
        "query Q($id: ID!) { customer(id: $id) { name name balance { amount } "
        "balance { currency } invoices { id } invoices { number } } }",
        {},
    ),
    (
        f"query Q($id: ID!) {{ customer(id: $id) {{ invoices(first: 10) {{ {INVOICE_FIELDS} }} }} }}",
        {},
    ),
    (
        f"query Q($id: ID!) {{ customer(id: $id) {{ payments(first: 10) {{ {PAYMENT_FIELDS} }} }} }}",
        {},
    ),
    (
        "query Q($id: ID!) { customer(id: $id) { accounts { id number product status createdAt } "
        "paid: invoices(first: 5, status: PAID) { id status } "
        "open: invoices(status: OPEN) { id status } } }",
        {},
    ),
    *(
        (
            "query Q($id: ID!, $first: Int!) { customer(id: $id) { "
            "invoices(first: $first) { id } payments(first: $first) { id } } }",
            {"first": first},
        )
        for first in (0, 1, 10, 100, 101, -1)
    ),
    *(
        (
            f"query Q($id: ID!) {{ customer(id: $id) {{ invoices(first: {first}) {{ id }} "
            f"payments(first: {first}) {{ id amount {{ amount }} }} }} }}",
            {},
        )
        for first in (0, 1, 10, 101)
    ),
    # Not compiled (a field with a resolver outside the subset): Strawberry's, unchanged.
    ("query Q($id: ID!) { customer(id: $id) { accounts { id customer { id } } } }", {}),
    ("query Q($id: ID!) { customer(id: $id) { name } customers(first: 1) { nodes { id } } }", {}),
    # Variables that do not fit, and a null where an id must be.
    (
        "query Q($id: ID!, $first: Int!) { customer(id: $id) { invoices(first: $first) { id } } }",
        {"first": "ten"},
    ),
    ("query Q($id: ID!, $other: ID!) { customer(id: $other) { id } }", {"other": None}),
]


def literal(document: str, customer_id: str) -> str:
    """``document`` with the customer's id written in it instead of passed as ``$id``."""
    return document.replace("query Q($id: ID!)", "query Q").replace("$id", json.dumps(customer_id))


def compiled_count(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("kassa_graphql_compiled_reads_total", {"outcome": outcome}) or 0.0
    )


def prepared_count() -> float:
    """Requests answered past Strawberry's view: by the plan's walk, or (PostgreSQL) by the
    JSON PostgreSQL built (``schema.json_reads``)."""
    return compiled_count("prepared") + compiled_count("json")


async def differences(
    compiled: Api, plain: Api, document: str, variables: dict[str, Any] | None
) -> str | None:
    """What differs between the two apps' responses to one request, or None."""
    first = await compiled.post(document, variables)
    second = await plain.post(document, variables)
    if (first.status_code, first.json()) == (second.status_code, second.json()):
        return None
    return (
        f"compiled {first.status_code} {first.text}\nstrawberry {second.status_code} {second.text}"
    )


async def callers(
    http: httpx.AsyncClient, strawberry_http: httpx.AsyncClient, db: Database, world: World
) -> list[tuple[Caller, Api, Api]]:
    """Each caller's credentials, sent to both apps (a session token works on both)."""
    found = []
    for caller in Caller:
        api = await sign_in_as(caller, http, db, world)
        found.append((caller, api, Api(strawberry_http, api.token)))
    return found


async def test_compiled_answers_equal_strawberrys_for_every_caller(
    http: httpx.AsyncClient, strawberry_http: httpx.AsyncClient, db: Database
) -> None:
    world = await build_world(db)
    targets = [*world.sides.values(), GHOST]
    failures = []
    compiled_before = compiled_count("compiled")
    for caller, compiled, plain in await callers(http, strawberry_http, db, world):
        for document, extra in DOCUMENTS:
            for target in targets:
                for text, variables in (
                    (document, {"id": target.customer, **extra}),
                    (literal(document, target.customer), extra or None),
                ):
                    problem = await differences(compiled, plain, text, variables)
                    if problem is not None:
                        failures.append(f"{caller} {target.label} {text} {variables}\n{problem}")
        garbage = await differences(compiled, plain, DASHBOARD, {"id": "not-an-id"})
        if garbage is not None:
            failures.append(f"{caller} garbage id\n{garbage}")
    assert not failures, "\n\n".join(failures[:5]) + f"\n\n({len(failures)} in all)"
    assert compiled_count("compiled") > compiled_before  # the comparison compared something


def random_selection(rng: random.Random, depth: int = 0) -> str:
    """A random selection on Customer from the fields compiled reads support."""
    leaves = CUSTOMER_FIELDS.replace("creditLimit { amount currency }", "").split()
    money = "{ amount }"
    objects = {
        "balance": ["amount", "currency", "__typename"],
        "availableFunds": ["amount", "currency"],
        "accounts": ["id", "number", "product", "status", "createdAt", "__typename"],
        "invoices": [
            *[
                "id",
                "number",
                "kind",
                "status",
                "currency",
                "periodStart",
                "periodEnd",
                "issueDate",
                "dueDate",
            ],
            *["createdAt", "voidedAt", "voidReason", "notChargedReason"],
            *(f"{name} {money}" for name in ("previousBalance", "paymentsInPeriod", "total")),
            *(f"{name} {money}" for name in ("amountPaid", "outstanding", "balanceDue")),
        ],
        "payments": [
            *["id", "method", "status", "reference", "receivedAt", "processor", "actionUrl"],
            *["flaggedReason", "flagReviewedAt", "flagReviewNote", "declineCode", "message"],
            f"amount {money}",
            f"refundedAmount {money}",
        ],
    }
    parts = []
    for _ in range(rng.randint(1, 6)):
        alias = f"f{rng.randint(0, 3)}: " if rng.random() < 0.3 else ""
        if rng.random() < 0.5:
            parts.append(alias + rng.choice(leaves))
            continue
        name = rng.choice(sorted(objects))
        arguments = (
            f"(first: {rng.choice((0, 1, 3, 10))})" if name in ("invoices", "payments") else ""
        )
        inner = " ".join(rng.sample(objects[name], rng.randint(1, min(3, len(objects[name])))))
        parts.append(f"{name}{arguments} {{ {inner} }}")
    return " ".join(parts)


async def test_random_selections_answer_as_strawberry_does(
    http: httpx.AsyncClient, strawberry_http: httpx.AsyncClient, db: Database
) -> None:
    world = await build_world(db)
    rng = random.Random(15)
    everyone = await callers(http, strawberry_http, db, world)
    failures = []
    for number in range(60):
        selection = random_selection(rng)
        document = f"query Q($id: ID!) {{ customer(id: $id) {{ {selection} }} }}"
        caller, compiled, plain = rng.choice(everyone)
        target = rng.choice(list(world.sides.values()))
        first = await compiled.post(document, {"id": target.customer})
        second = await plain.post(document, {"id": target.customer})
        if (first.status_code, first.json()) != (second.status_code, second.json()):
            failures.append(
                f"#{number} {caller} {target.label} {document}\n{first.text}\n{second.text}"
            )
    assert not failures, "\n\n".join(failures[:3]) + f"\n\n({len(failures)} in all)"


async def test_the_dashboard_takes_the_compiled_path_then_the_prepared_one(
    http: httpx.AsyncClient, strawberry_http: httpx.AsyncClient, db: Database
) -> None:
    world = await build_world(db)
    ((_, compiled, plain),) = [
        found
        for found in await callers(http, strawberry_http, db, world)
        if found[0] == Caller.RESELLER_KEY
    ]
    variables = {"id": world.sides["A1"].customer}
    outcomes = ("compiled", "prepared", "json", "fallback", "unsupported")
    prepared_as = "prepared" if db.is_sqlite else "json"  # PostgreSQL builds the JSON
    before = {outcome: compiled_count(outcome) for outcome in outcomes}
    first = await compiled.run(DASHBOARD, variables)  # through Strawberry's pipeline
    after_first = {outcome: compiled_count(outcome) for outcome in outcomes}
    assert after_first == {**before, "compiled": before["compiled"] + 1}
    with statements(db) as seen:
        answer = await compiled.run(DASHBOARD, variables)  # prepared: past Strawberry's view
    after = {outcome: compiled_count(outcome) for outcome in outcomes}
    assert after == {**after_first, prepared_as: after_first[prepared_as] + 1}
    assert answer == first == await plain.run(DASHBOARD, variables)
    assert answer["customer"]["invoices"] and answer["customer"]["payments"]
    # The key, then on PostgreSQL one statement that builds the whole answer; on SQLite
    # the customer with its balance, then its accounts, invoices and payments in one
    # statement (Strawberry's executor reads the three lists with one statement each).
    assert len(seen) == (3 if db.is_sqlite else 2), seen
    # And Strawberry's own run of it is counted as neither.
    await plain.run(DASHBOARD, variables)
    assert {outcome: compiled_count(outcome) for outcome in outcomes} == after


async def test_a_prepared_document_meets_the_rules_that_read_the_request(
    http: httpx.AsyncClient, strawberry_http: httpx.AsyncClient, db: Database
) -> None:
    """Once prepared, a document's requests still meet every rule that depends on the
    request rather than the text: the caller's key, NUL in the variables, the cost its
    variables give it, variables that do not coerce, the operation named.  Each is
    answered as Strawberry answers it, and none counts as prepared."""
    world = await build_world(db)
    ((_, compiled, _),) = [
        found
        for found in await callers(http, strawberry_http, db, world)
        if found[0] == Caller.RESELLER_KEY
    ]
    customer = world.sides["A1"].customer
    paged = (
        "query Q($id: ID!, $first: Int!) { customer(id: $id) { "
        "invoices(first: $first) { id } payments(first: $first) { id } } }"
    )
    for document, variables in (
        (DASHBOARD, {"id": customer}),
        (paged, {"id": customer, "first": 2}),
    ):
        await compiled.run(document, variables)
        before = prepared_count()
        await compiled.run(document, variables)
        assert prepared_count() == before + 1  # prepared from here on
    requests: list[tuple[str, dict[str, Any] | None, str | None]] = [
        (DASHBOARD, {"id": customer + "\x00"}, None),
        (DASHBOARD, {"id": None}, None),
        (DASHBOARD, None, None),
        (paged, {"id": customer, "first": 1_000_000}, None),  # over the cost limit
        (paged, {"id": customer, "first": "ten"}, None),
        (paged, {"id": customer, "first": 101}, None),
        (DASHBOARD, {"id": customer}, "Other"),
    ]
    key = {"authorization": f"Bearer {compiled.token}"}
    before = prepared_count()
    for document, values, name in requests:
        sent = {"query": document, "variables": values, "operationName": name}
        first = await http.post("/graphql", json=sent, headers=key)
        second = await strawberry_http.post("/graphql", json=sent, headers=key)
        assert (first.status_code, first.text) == (second.status_code, second.text)
        assert first.status_code != 200 or "errors" in first.json(), (values, first.text)
    stranger = {"authorization": "Bearer kassa_nope_nothing"}
    body = {"query": DASHBOARD, "variables": {"id": customer}}
    assert (await http.post("/graphql", json=body, headers=stranger)).status_code == 401
    assert prepared_count() == before


def test_the_supported_resolvers_exist() -> None:
    """Every entry of RESOLVERS names a field of the schema that has a resolver."""
    from schema import schema

    graphql_schema = schema._schema
    for type_name, field_name in RESOLVERS:
        definition = graphql_schema.get_type(type_name).fields[field_name]  # type: ignore[union-attr]
        field = definition.extensions["strawberry-definition"]
        assert field.base_resolver is not None, (type_name, field_name)
