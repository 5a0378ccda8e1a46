"""JSON reads: a prepared read answered on PostgreSQL by one statement that builds its JSON.

Compiled and prepared reads (:mod:`schema.compiled`, :mod:`schema.prepared`) still answer
a dashboard by walking ~130 fields in Python — the resolvers, their DataLoaders, an object
per invoice and payment with its money strings — and encoding the result: on the API
dashboard that walk and its three statements were two thirds of the request's CPU.  The
best hand-written endpoint reads everything in one statement and builds little in
Python.  Here a prepared plan whose every field has a SQL rendering below is compiled, once,
into one such statement: PostgreSQL builds the answer's JSON (``json_build_object`` in the
order the query asks, ``json_agg`` for the lists), and the endpoint sends its text as the
response's ``data`` without decoding or encoding it again.

What the resolvers decide is decided the same way here, by the same code:

* the root field's argument is decoded by :func:`schema.relay.decode_id`, and the row is
  shown only if :func:`billing.access.may_see_customer` allows the viewer — the statement
  reads the customer's columns beside the JSON for it;
* every permission class of a field is a :class:`~schema.permissions.ViewerPermission`,
  which decides from the viewer alone, so it is asked once per request (a plan with any
  other permission is not compiled);
* the lists' arguments go through :func:`schema.relay.page_size` and
  :func:`billing.access.payments_recorded_by`, and each list is ordered and cut as its
  loader orders and cuts it (:mod:`resolvers.loaders`);
* leaves are rendered as the API renders them (:mod:`schema.json_sql`).

Anything else — an id that does not decode, a customer not found or not the viewer's, a
refused permission, a bad argument — answers nothing here: the request goes on to the
compiled walk and Strawberry, which answer it as they answer every request.  Only on
PostgreSQL (SQLite's requests take the walk); ``tests/test_json_reads.py`` compares both
answers field by field for every field this module renders, for every kind of viewer.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLEnumType, GraphQLError, GraphQLID, GraphQLScalarType, GraphQLString
from graphql.execution.values import get_variable_values
from sqlalchemy import (
    JSON,
    FromClause,
    Select,
    String,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement

from billing import models
from billing.access import Viewer, may_see_customer, payments_recorded_by
from billing.errors import Forbidden, NotFound
from billing.fixed_reads import FixedRead
from resolvers.context import Context
from schema import json_sql
from schema.compiled import Field, Plan, Runner, Unsupported
from schema.permissions import ViewerPermission
from schema.relay import decode_id, page_size

_CUSTOMERS, _LEDGER, _ACCOUNTS, _INVOICES, _PAYMENTS = (
    typing.cast(Table, model.__table__)
    for model in (
        models.Customer,
        models.LedgerAccount,
        models.Account,
        models.Invoice,
        models.Payment,
    )
)

#: ``json_build_object`` takes at most 100 arguments: 50 keys and their values.
_MAX_KEYS = 50
#: A GraphQL name (a response key is one): safe to write into the SQL as it is.
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


# --- how each field is rendered ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leaf:
    """A scalar or enum: a column or expression, rendered by the field's GraphQL type."""

    value: ColumnElement[Any]


@dataclass(frozen=True, slots=True)
class GlobalId:
    """An ``ID`` field: the type's global id of a key."""

    type_name: str
    pk: ColumnElement[int]


@dataclass(frozen=True, slots=True)
class Amount:
    """A ``Money`` field: minor units and their currency."""

    minor: ColumnElement[int]
    currency: ColumnElement[str]


#: A list's arguments (as GraphQL coerces them: an enum is its value's string), the viewer
#: and the prefix of the list's bound parameters, to those parameters.
Params = Callable[[Mapping[str, Any], Viewer, str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Rows:
    """A list field: another type's rows of a parent row, as its loader reads them."""

    type_name: str
    #: The parent's rows to the list's rows (every column), ordered and cut, given the
    #: prefix of its bound parameters.
    rows: Callable[[FromClause, str], Select[Any]]
    params: Params
    #: Newest first (by id, descending) or oldest first.
    newest_first: bool


Rendering = Leaf | GlobalId | Amount | Rows
#: A type's fields (GraphQL names) rendered from one of its rows.
Fields = Callable[[FromClause], dict[str, Rendering]]


def _account_fields(row: FromClause) -> dict[str, Rendering]:
    """:meth:`schema.accounts.Account.from_model`."""
    c = row.c
    return {
        "id": GlobalId("Account", c.id),
        "number": Leaf(c.number),
        "product": Leaf(c.product),
        "status": Leaf(c.status),
        "createdAt": Leaf(c.created_at),
    }


def _invoice_fields(row: FromClause) -> dict[str, Rendering]:
    """:meth:`schema.invoices.Invoice.from_model` (its fields read off the row)."""
    c = row.c

    def money(minor: ColumnElement[int]) -> Amount:
        return Amount(minor, c.currency)

    void = c.status == json_sql.constant(models.InvoiceStatus.VOID.value)
    return {
        "id": GlobalId("Invoice", c.id),
        "number": Leaf(c.number),
        "kind": Leaf(c.kind),
        "status": Leaf(c.status),
        "currency": Leaf(c.currency),
        "periodStart": Leaf(c.period_start),
        "periodEnd": Leaf(c.period_end),
        "issueDate": Leaf(c.issue_date),
        "dueDate": Leaf(c.due_date),
        "previousBalance": money(c.previous_balance),
        "paymentsInPeriod": money(c.payments_in_period),
        "total": money(c.total),
        "amountPaid": money(c.amount_paid),
        # models.invoice_outstanding: nothing once void.
        "outstanding": money(case((void, json_sql.number(0)), else_=c.total - c.amount_paid)),
        # models.invoice_balance_due
        "balanceDue": money(c.previous_balance - c.payments_in_period + c.total),
        "createdAt": Leaf(c.created_at),
        "voidedAt": Leaf(c.voided_at),
        "voidReason": Leaf(c.void_reason),
    }


def _payment_fields(row: FromClause) -> dict[str, Rendering]:
    """:meth:`schema.payments.Payment.from_model`."""
    c = row.c
    return {
        "id": GlobalId("Payment", c.id),
        "method": Leaf(c.method),
        "amount": Amount(c.amount, c.currency),
        "refundedAmount": Amount(c.refunded_amount, c.currency),
        "status": Leaf(c.status),
        "reference": Leaf(c.reference),
        "receivedAt": Leaf(c.received_at),
        "processor": Leaf(c.processor),
        "actionUrl": Leaf(c.action_url),
        "flaggedReason": Leaf(c.flagged_reason),
        "flagReviewedAt": Leaf(c.flag_reviewed_at),
        "flagReviewNote": Leaf(c.flag_review_note),
        "declineCode": Leaf(c.decline_code),
        "message": Leaf(c.message),
    }


def _accounts(parent: FromClause, prefix: str) -> Select[Any]:
    """:data:`resolvers.loaders._ACCOUNTS_BY_CUSTOMER`: every account, oldest first."""
    return select(_ACCOUNTS).where(_ACCOUNTS.c.customer_id == parent.c.id).correlate(parent)


def _newest(table: Table, parent: FromClause, prefix: str) -> Select[Any]:
    """:func:`resolvers.loaders._latest_per_parent`: the newest ``first``."""
    return (
        select(table)
        .where(table.c.customer_id == parent.c.id)
        .order_by(table.c.id.desc())
        .limit(bindparam(f"{prefix}first"))
        .correlate(parent)
    )


def _invoices(parent: FromClause, prefix: str) -> Select[Any]:
    rows = _newest(_INVOICES, parent, prefix)
    status = bindparam(f"{prefix}status", type_=String)
    return rows.where(status.is_(None) | (_INVOICES.c.status == status))


def _invoice_params(arguments: Mapping[str, Any], viewer: Viewer, prefix: str) -> dict[str, Any]:
    """``Customer.invoices``' arguments, checked as its resolver checks them."""
    status = arguments.get("status")
    return {
        f"{prefix}first": page_size(arguments["first"]),
        f"{prefix}status": None if status is None else models.InvoiceStatus(status).value,
    }


def _payments(parent: FromClause, prefix: str) -> Select[Any]:
    rows = _newest(_PAYMENTS, parent, prefix)
    recorder = bindparam(f"{prefix}recorded_by", type_=_PAYMENTS.c.recorded_by_distributor_id.type)
    return rows.where(recorder.is_(None) | (_PAYMENTS.c.recorded_by_distributor_id == recorder))


def _payment_params(arguments: Mapping[str, Any], viewer: Viewer, prefix: str) -> dict[str, Any]:
    """``Customer.payments``' arguments, and whose payments the viewer sees."""
    return {
        f"{prefix}first": page_size(arguments["first"]),
        f"{prefix}recorded_by": payments_recorded_by(viewer),
    }


def _no_params(arguments: Mapping[str, Any], viewer: Viewer, prefix: str) -> dict[str, Any]:
    return {}


def _customer_fields(row: FromClause) -> dict[str, Rendering]:
    """:meth:`schema.customers.Customer.from_model` and its lists; the row carries the
    ledger account's ``balance`` (:data:`_ROOT`)."""
    c = row.c
    return {
        "id": GlobalId("Customer", c.id),
        "name": Leaf(c.name),
        "email": Leaf(c.email),
        "phone": Leaf(c.phone),
        "address": Leaf(c.address),
        "currency": Leaf(c.currency),
        "timeZone": Leaf(c.time_zone),
        "billingPeriod": Leaf(c.billing_period),
        "billingAnchor": Leaf(c.billing_anchor),
        "periodStart": Leaf(c.period_start),
        "nextBillAt": Leaf(c.next_bill_at),
        "creditLimit": Amount(c.credit_limit, c.currency),
        "status": Leaf(c.status),
        "autoPayment": Leaf(c.auto_payment),
        "createdAt": Leaf(c.created_at),
        "updatedAt": Leaf(c.updated_at),
        "balance": Amount(c.balance, c.currency),
        "availableFunds": Amount(c.credit_limit - c.balance, c.currency),
        "accounts": Rows("Account", _accounts, _no_params, newest_first=False),
        "invoices": Rows("Invoice", _invoices, _invoice_params, newest_first=True),
        "payments": Rows("Payment", _payments, _payment_params, newest_first=True),
    }


TYPES: dict[str, Fields] = {
    "Customer": _customer_fields,
    "Account": _account_fields,
    "Invoice": _invoice_fields,
    "Payment": _payment_fields,
}

#: ``Query.customer``'s row: the customer's columns and its balance.
_ROOT = (
    select(*_CUSTOMERS.c, _LEDGER.c.balance)
    .join_from(_CUSTOMERS, _LEDGER, _LEDGER.c.id == _CUSTOMERS.c.ledger_account_id)
    .where(_CUSTOMERS.c.id == bindparam("root_id"))
    .subquery("customer")
)


@dataclass(frozen=True, slots=True)
class Root:
    """A root field this module answers: its type, its row and who may see it."""

    type_name: str
    #: The row its fields render from.
    row: FromClause
    #: The field's arguments to the row's parameters (NotFound: not one the viewer sees).
    params: Callable[[Mapping[str, Any]], dict[str, Any]]
    #: Whether the viewer may see the row found, and the columns it reads of it (the
    #: statement reads those beside the JSON, and no more).
    visible: Callable[[Viewer, Any], bool]
    columns: tuple[str, ...]


def _customer_params(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"root_id": decode_id(arguments["id"], "Customer")}


ROOTS: dict[str, Root] = {
    "customer": Root(
        "Customer",
        _ROOT,
        _customer_params,
        may_see_customer,
        ("id", "reseller_id", "distributor_id"),
    ),
}


# --- compiling a plan --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListArguments:
    """A list field of the plan, and the prefix of its statement's parameters."""

    field: Field
    prefix: str
    params: Params


@dataclass(frozen=True, slots=True)
class Statement:
    """One root field's statement: its row's columns and ``data``, the field's JSON."""

    field: Field
    root: Root
    read: FixedRead
    lists: tuple[ListArguments, ...]


@dataclass(frozen=True, slots=True)
class JsonPlan:
    """A plan compiled to statements (one per root field), and the permissions to ask."""

    plan: Plan
    #: Response keys in order: a statement, or a ``__typename``'s value.
    keys: tuple[tuple[str, Statement | str], ...]
    permissions: tuple[ViewerPermission, ...]


def compile_plan(plan: Plan) -> JsonPlan | None:
    """The plan as statements, or None when a field has no rendering here."""
    try:
        return _Compiler().plan(plan)
    except Unsupported:
        return None


class _Compiler:
    def __init__(self) -> None:
        self.lists: list[ListArguments] = []
        self.permissions: dict[type, ViewerPermission] = {}

    def plan(self, plan: Plan) -> JsonPlan:
        keys: list[tuple[str, Statement | str]] = []
        for field in plan.selection:
            if field.typename is not None:
                keys.append((field.key, field.typename))
                continue
            keys.append((field.key, self.statement(field)))
        return JsonPlan(plan, tuple(keys), tuple(self.permissions.values()))

    def statement(self, field: Field) -> Statement:
        root = ROOTS.get(field.node.name.value if field.node is not None else "")
        if root is None or field.leaf is not None or field.list_items_nullable is not None:
            raise Unsupported
        self.allow(field)
        self.lists = []
        data = self.object(root.type_name, root.row, field.selection)
        columns = [root.row.c[name] for name in root.columns]
        statement = select(*columns, cast(data, Text).label("data")).select_from(root.row)
        return Statement(field, root, FixedRead(statement), tuple(self.lists))

    def allow(self, field: Field) -> None:
        """Keep the field's permissions to ask once per request; refuse any other kind."""
        for permission in field.permissions:
            if not isinstance(permission, ViewerPermission):
                raise Unsupported
            self.permissions.setdefault(type(permission), permission)

    def object(
        self, type_name: str, row: FromClause, selection: tuple[Field, ...]
    ) -> ColumnElement[Any]:
        fields = TYPES[type_name](row)
        pairs: list[ColumnElement[Any]] = []
        for field in selection:
            if not _NAME.fullmatch(field.key):
                raise Unsupported
            pairs.append(json_sql.constant(field.key))
            if field.typename is not None:
                pairs.append(json_sql.constant(field.typename))
                continue
            assert field.node is not None
            rendering = fields.get(field.node.name.value)
            if rendering is None:
                raise Unsupported
            self.allow(field)
            pairs.append(self.value(field, rendering, row))
        if len(pairs) > 2 * _MAX_KEYS:
            raise Unsupported
        return func.json_build_object(*pairs)

    def value(self, field: Field, rendering: Rendering, row: FromClause) -> ColumnElement[Any]:
        if isinstance(rendering, Rows):
            if field.list_items_nullable is None or field.leaf is not None:
                raise Unsupported
            return self.rows(field, rendering, row)
        if field.list_items_nullable is not None:
            raise Unsupported
        if isinstance(rendering, Amount):
            return self.amount(field, rendering)
        if field.leaf is None:
            raise Unsupported
        if isinstance(rendering, GlobalId):
            if field.leaf is not GraphQLID:
                raise Unsupported
            return json_sql.global_id(rendering.type_name, rendering.pk)
        return _leaf(field, rendering.value)

    def amount(self, field: Field, amount: Amount) -> ColumnElement[Any]:
        """A ``Money`` object: ``amount``, ``currency`` and ``__typename`` may be selected."""
        if field.leaf is not None:
            raise Unsupported
        pairs: list[ColumnElement[Any]] = []
        for child in field.selection:
            if not _NAME.fullmatch(child.key):
                raise Unsupported
            pairs.append(json_sql.constant(child.key))
            name = child.node.name.value if child.node is not None else "__typename"
            if child.typename is not None:
                pairs.append(json_sql.constant(child.typename))
            elif name == "amount" and not child.permissions:
                pairs.append(json_sql.amount(amount.minor, amount.currency))
            elif name == "currency" and not child.permissions:
                pairs.append(amount.currency)
            else:
                raise Unsupported
        return func.json_build_object(*pairs)

    def rows(self, field: Field, rows: Rows, parent: FromClause) -> ColumnElement[Any]:
        prefix = f"list{len(self.lists)}_"
        self.lists.append(ListArguments(field, prefix, rows.params))
        page = rows.rows(parent, prefix).subquery()
        item = self.object(rows.type_name, page, field.selection)
        order = page.c.id.desc() if rows.newest_first else page.c.id
        listed = func.json_agg(aggregate_order_by(item, order))
        empty = cast(json_sql.constant("[]"), JSON)
        return select(func.coalesce(listed, empty)).select_from(page).scalar_subquery()


def _leaf(field: Field, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A scalar or enum leaf rendered as its GraphQL type serializes it."""
    kind = field.leaf
    if kind is GraphQLString or kind is GraphQLID:
        return value
    if isinstance(kind, GraphQLEnumType):
        # Stored by value (models._enum); the GraphQL names are the same strings.
        if any(name != value.value for name, value in kind.values.items()):
            raise Unsupported
        return value
    if isinstance(kind, GraphQLScalarType):
        if kind.name == "Boolean":
            return value
        if kind.name == "DateTime":
            return json_sql.instant(value)
        if kind.name == "Date":
            return json_sql.day(value)
    raise Unsupported


# --- answering a request -----------------------------------------------------------------------


async def answer(plan: JsonPlan, schema: Any, context: Context, variables: dict[str, Any]) -> str:
    """The operation's ``data`` as JSON text; :class:`Unsupported` when the walk must
    answer instead (see the module docstring)."""
    coerced = get_variable_values(
        schema._schema, plan.plan.operation.variable_definitions or (), variables
    )
    if isinstance(coerced, list):  # variables that do not fit: a request error
        raise Unsupported
    runner = Runner(schema, context, coerced)
    for permission in plan.permissions:
        if permission.has_permission(None, runner.info) is not True:  # type: ignore[arg-type]
            raise Unsupported
    parts = []
    for key, item in plan.keys:
        value = json.dumps(item) if isinstance(item, str) else await _run(item, runner, context)
        parts.append(f"{json.dumps(key)}:{value}")
    return "{" + ",".join(parts) + "}"


async def _run(statement: Statement, runner: Runner, context: Context) -> str:
    """One root field's JSON, from its statement."""
    try:
        params = statement.root.params(runner.arguments(statement.field))
        for listed in statement.lists:
            arguments = runner.arguments(listed.field)
            params |= listed.params(arguments, context.viewer, listed.prefix)
    except (GraphQLError, NotFound, Forbidden) as error:  # the walk's to report
        raise Unsupported from error

    async def read(session: Any) -> Any:
        return await statement.read.one_or_none(session, params)

    row = await context.read(read)
    if row is None or not statement.root.visible(context.viewer, row):
        raise Unsupported
    data: str = row.data
    return data
