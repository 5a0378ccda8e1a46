"""The cost limit: an operation that could return too many nodes is refused before it runs.

The attack (issue 8, item 8): 30 aliases × ``customers(first: 100)`` × ``invoices(first:
100) { lines payments }`` passed the depth, alias and token limits and took seconds even on
the demo data.  The cost is the product of ``first`` down each path of lists, summed.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    GraphQLError,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    TypeNode,
    parse,
)

import portals
from schema import schema
from schema.cost import UNPAGED_LIST_SIZE, estimate_cost
from schema.http import GRAPHQL_RESPONSE_JSON
from schema.relay import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from settings import Settings
from tests.graphql_support import Api

pytest_plugins = ["tests.graphql_fixtures"]

LIMIT = Settings().max_query_cost

ATTACK = (
    "query { "
    + " ".join(
        f"a{n}: customers(first: 100) {{ edges {{ node {{ "
        "invoices(first: 100) { lines { description } payments { amount { amount } } } "
        "} } }"
        for n in range(30)
    )
    + " }"
)


def cost(document: str, variables: dict[str, Any] | None = None) -> int:
    return estimate_cost(schema._schema, parse(document), variables)


def test_the_reported_attack_costs_millions() -> None:
    per_customer = 1 + 100 * (1 + 2 * UNPAGED_LIST_SIZE)
    assert cost(ATTACK) == 30 * 100 * per_customer > LIMIT


async def test_the_reported_attack_is_refused_before_it_runs(api: Api) -> None:
    response = await api.post(ATTACK, accept=GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": cost(ATTACK), "limit": LIMIT}
    assert f"{cost(ATTACK):,} nodes" in error["message"]
    assert f"limit of {LIMIT:,}" in error["message"]


def test_first_multiplies_down_the_path_and_sums_across() -> None:
    assert cost("{ viewer { role } }") == 0
    assert cost("{ customers { totalCount } }") == DEFAULT_PAGE_SIZE  # the default page
    nested = "{ customers(first: 10) { edges { node { invoices(first: 7) { number } } } } }"
    assert cost(nested) == 10 * (1 + 7)
    # Plain lists count UNPAGED_LIST_SIZE each; lists of scalars and edges count nothing.
    lines = "{ invoices(first: 3) { edges { node { id lines { description } } } } }"
    assert cost(lines) == 3 * (1 + UNPAGED_LIST_SIZE)
    # Aliases and siblings add up.
    assert (
        cost("{ a: customers(first: 5) { totalCount } b: customers(first: 6) { totalCount } }")
        == 11
    )


def test_variables_fragments_and_inline_fragments_count() -> None:
    query = """
    query($n: Int!, $m: Int = 4) {
      customers(first: $n) { edges { node { ...Bills ... on Customer { payments { id } } } } }
    }
    fragment Bills on Customer { invoices(first: $m) { id } }
    """
    assert cost(query, {"n": 10}) == 10 * (1 + 4 + 5)  # Customer.payments defaults to 5
    assert cost(query, {"n": 10, "m": 50}) == 10 * (1 + 50 + 5)


def test_a_chain_of_fragments_is_costed_quickly() -> None:
    """Fragments spreading the next one twice, 40 deep: 2⁴⁰ paths, costed once each."""
    chain = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    chain.append("fragment F40 on Query { customers(first: 1) { totalCount } }")
    started = time.perf_counter()
    assert cost("{ ...F0 } " + " ".join(chain)) == 2**40
    assert time.perf_counter() - started < 1


async def test_an_operation_under_the_limit_runs(api: Api) -> None:
    query = (
        "query($n: Int!) { customers(first: $n) { edges { node { invoices(first: $n) { id } } } } }"
    )
    assert cost(query, {"n": 100}) == 10_100 <= LIMIT
    assert (await api.run(query, {"n": 100})) == {"customers": {"edges": []}}
    # The variables decide: the same document may be too costly with other values.
    deep = (
        "query($n: Int!) { customers(first: $n) { edges { node { "
        "accounts { charges(first: $n) { edges { node { id } } } } } } } }"
    )
    assert cost(deep, {"n": 100}) > LIMIT
    refused = (await api.post(deep, {"n": 100})).json()
    assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert (await api.run(deep, {"n": 20})) == {"customers": {"edges": []}}


def _portal_operations() -> list[tuple[str, DocumentNode]]:
    """Every GraphQL document the portals send: the module-level strings that parse as one."""
    found = []
    for module_info in pkgutil.iter_modules(portals.__path__):
        module = importlib.import_module(f"portals.{module_info.name}")
        for name, value in vars(module).items():
            if not isinstance(value, str):
                continue
            try:
                document = parse(value)
            except GraphQLError:
                continue
            if any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
                found.append((f"{module_info.name}.{name}", document))
    return found


def _worst_variables(document: DocumentNode) -> dict[str, int]:
    """The largest page for every Int variable: what a portal page could ask at most."""
    return {
        v.variable.name.value: MAX_PAGE_SIZE
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        for v in d.variable_definitions or ()
        if _names_int(v.type)
    }


def _names_int(type_node: TypeNode) -> bool:
    """Whether a variable's type is ``Int`` or ``Int!``."""
    if isinstance(type_node, NonNullTypeNode):
        return _names_int(type_node.type)
    return isinstance(type_node, NamedTypeNode) and type_node.name.value == "Int"


@pytest.mark.parametrize(("name", "document"), _portal_operations())
def test_every_portal_operation_stays_under_the_limit(name: str, document: DocumentNode) -> None:
    assert estimate_cost(schema._schema, document, _worst_variables(document)) <= LIMIT, name


def test_the_portal_operations_were_found() -> None:
    names = {name for name, _ in _portal_operations()}
    assert len(names) >= 10
    assert {"auth_pages.SIGN_IN", "customer.DASHBOARD"} <= names, names
