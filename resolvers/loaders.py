"""Per-request DataLoaders: one query per kind of lookup, however many parents ask.

A page of 50 customers showing their accounts and last invoices costs the same handful of
queries as a page of 5.  Loaders are made fresh for every request (and again after every
mutation, see :class:`resolvers.context.Context`), so a cache never outlives the data
it was read from.  They load children of objects the resolvers have already scoped to the
viewer, which is why they do not scope again — except where the key itself says whose
children (a distributor's own payments of a customer, :class:`LatestPayments`).
"""

from __future__ import annotations

from collections import defaultdict, namedtuple
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Row,
    Select,
    Table,
    bindparam,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from billing import bitcoin_payments, collection, invoices, status_changes
from billing.bitcoin_addresses import addresses_of
from billing.fixed_reads import FixedRead
from billing.models import (
    Account,
    BitcoinAddress,
    BitcoinPayment,
    BitcoinWallet,
    Charge,
    CollectionAttempt,
    CollectionSettings,
    Customer,
    CustomerClass,
    Distributor,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    LedgerAccount,
    Payment,
    PaymentMethod,
    StatusChange,
    StatusSubject,
)

Model = TypeVar(
    "Model",
    Customer,
    CustomerClass,
    Account,
    Invoice,
    PaymentMethod,
    Payment,
    BitcoinWallet,
    Charge,
    Distributor,
)
Reader = Callable[[Callable[[AsyncSession], Awaitable[Any]]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class LatestInvoices:
    """Key of :attr:`Loaders.latest_invoices`: a customer's newest ``first`` invoices."""

    customer_id: int
    first: int
    status: InvoiceStatus | None = None


@dataclass(frozen=True, slots=True)
class LatestPayments:
    """Key of :attr:`Loaders.latest_payments`: a customer's newest ``first`` payments, only
    those ``recorded_by`` a distributor if set (:func:`billing.access.payments_recorded_by`)."""

    customer_id: int
    first: int
    recorded_by: int | None = None


@cache
def _latest_per_parent(
    model: type[Invoice] | type[Payment],
    parent_column: str,
    with_status: bool = False,
    with_recorder: bool = False,
    prefix: str = "",
) -> Select[Any]:
    """The newest ``:first`` rows per parent in ``:parent_ids``, as one query (ROW_NUMBER),
    as rows of the table's columns (see :data:`_ACCOUNTS_BY_CUSTOMER`).  ``with_status``:
    the newest ``:first`` of each status in ``:statuses`` per parent, so a page listing a
    customer's unpaid, partly paid and overdue invoices reads them in one statement.

    Built once per shape and cached, with the ids, page size, status and recording
    distributor as bound parameters:
    constructing a windowed subquery costs more than running it, and this is on the
    dashboard's hot path.  ``prefix`` goes before every parameter's name, so two of these
    can share a statement (:func:`_customer_lists`).
    """
    table = model.__table__
    parent = table.c[parent_column]
    criteria: list[ColumnElement[bool]] = [
        parent.in_(bindparam(f"{prefix}parent_ids", expanding=True))
    ]
    partition = [parent]
    if with_status:
        criteria.append(table.c.status.in_(bindparam(f"{prefix}statuses", expanding=True)))
        partition.append(table.c.status)
    if with_recorder:
        assert model is Payment
        criteria.append(table.c.recorded_by_distributor_id == bindparam(f"{prefix}recorded_by"))
    rank = func.row_number().over(partition_by=partition, order_by=table.c.id.desc()).label("rank")
    ranked = select(*table.c, rank).where(*criteria).subquery()
    columns = [ranked.c[column.name] for column in table.c]
    newest = ranked.c.rank <= bindparam(f"{prefix}first")
    return select(*columns).where(newest).order_by(ranked.c.id.desc())


@cache
def _by_ids(model: type[Model]) -> Select[Any]:
    """``model``'s rows whose id is in ``:ids``; built once per model (see
    :func:`_latest_per_parent` for why)."""
    return select(model).where(model.id.in_(bindparam("ids", expanding=True)))


#: Customers' accounts as rows of the table's columns, not ORM objects: a customer's page
#: only reads them, and the ORM's identity map and instances cost more than the query
#: (the same goes for the newest invoices and payments, :func:`_latest_per_parent`).
_ACCOUNTS_BY_CUSTOMER = FixedRead(
    select(*Account.__table__.c)
    .where(Account.__table__.c.customer_id.in_(bindparam("ids", expanding=True)))
    .order_by(Account.__table__.c.id)
)

#: The tables :func:`_customer_lists` reads, in the order of their columns in its rows.
_ACCOUNTS, _INVOICES, _PAYMENTS = (
    cast(Table, model.__table__) for model in (Account, Invoice, Payment)
)
_LIST_TABLES = (_ACCOUNTS, _INVOICES, _PAYMENTS)
#: A row of one of them, as :func:`_customer_lists` hands it out: the table's columns by name,
#: as the rows of the loaders' own statements have them.
_LIST_ROWS: dict[str, Any] = {
    table.name: namedtuple(f"{table.name}_row", table.c.keys()) for table in _LIST_TABLES
}


@cache
def _latest_read(
    model: type[Invoice] | type[Payment], with_status: bool = False, with_recorder: bool = False
) -> FixedRead:
    """A customer's newest invoices or payments (:func:`_latest_per_parent`) as a fixed read."""
    return FixedRead(_latest_per_parent(model, "customer_id", with_status, with_recorder))


@cache
def _customer_lists(
    accounts: bool, invoices: bool, by_status: bool, payments: bool, with_recorder: bool
) -> FixedRead:
    """One customer's accounts, newest invoices and newest payments — those asked for — in
    one statement (``UNION ALL``): each row is named by ``list_name`` and carries the
    columns of all three tables, those of the other two null.

    The invoices and payments are :func:`_latest_per_parent`'s (parameters prefixed
    ``invoice_`` and ``payment_``), the accounts :data:`_ACCOUNTS_BY_CUSTOMER`'s (parameter
    ``customer_id``); rows come in each list's own order.  Built once per shape.
    """

    def branch(name: str, source: FromClause, sort_key: ColumnElement[Any]) -> Select[Any]:
        columns: list[ColumnElement[Any]] = [literal(name).label("list_name"), sort_key]
        for table in _LIST_TABLES:
            for column in table.c:
                value = source.c[column.name] if table.name == name else null().cast(column.type)
                columns.append(value.label(f"{table.name}_{column.name}"))
        return select(*columns).select_from(source)

    branches = []
    if accounts:
        branches.append(
            branch(_ACCOUNTS.name, _ACCOUNTS, _ACCOUNTS.c.id.label("sort_key")).where(
                _ACCOUNTS.c.customer_id == bindparam("customer_id")
            )
        )
    newest = []
    if invoices:
        newest.append(
            (_INVOICES, _latest_per_parent(Invoice, "customer_id", by_status, False, "invoice_"))
        )
    if payments:
        newest.append(
            (
                _PAYMENTS,
                _latest_per_parent(Payment, "customer_id", False, with_recorder, "payment_"),
            )
        )
    for table, query in newest:
        ranked = query.order_by(None).subquery()
        branches.append(branch(table.name, ranked, (-ranked.c.id).label("sort_key")))
    return FixedRead(
        union_all(*branches).order_by(literal_column("list_name"), literal_column("sort_key"))
    )


class Loaders:
    """The request's DataLoaders.  ``read`` runs a query under the context's session lock.

    Each is made when first used: a request uses a few of them, and making all of them for
    every request was ~30 µs of a dashboard request's CPU.
    """

    def __init__(self, read: Reader) -> None:
        self._read = read

    @cached_property
    def customers(self) -> DataLoader[int, Customer | None]:
        return DataLoader(self._by_id(Customer))

    @cached_property
    def customer_classes(self) -> DataLoader[int, CustomerClass | None]:
        return DataLoader(self._by_id(CustomerClass))

    @cached_property
    def accounts(self) -> DataLoader[int, Account | None]:
        return DataLoader(self._by_id(Account))

    @cached_property
    def invoices(self) -> DataLoader[int, Invoice | None]:
        return DataLoader(self._by_id(Invoice))

    @cached_property
    def payment_methods(self) -> DataLoader[int, PaymentMethod | None]:
        return DataLoader(self._by_id(PaymentMethod))

    @cached_property
    def balances(self) -> DataLoader[int, int]:
        return DataLoader(self._load_balances)

    @cached_property
    def accounts_by_customer(self) -> DataLoader[int, list[Row[Any]]]:
        return DataLoader(self._load_accounts_by_customer)

    @cached_property
    def latest_invoices(self) -> DataLoader[LatestInvoices, list[Row[Any]]]:
        return DataLoader(self._load_latest_invoices)

    @cached_property
    def latest_payments(self) -> DataLoader[LatestPayments, list[Row[Any]]]:
        return DataLoader(self._load_latest_payments)

    @cached_property
    def lines_by_invoice(self) -> DataLoader[int, list[Charge]]:
        return DataLoader(self._load_lines_by_invoice)

    @cached_property
    def payments(self) -> DataLoader[int, Payment | None]:
        return DataLoader(self._by_id(Payment))

    @cached_property
    def distributors(self) -> DataLoader[int, Distributor | None]:
        return DataLoader(self._by_id(Distributor))

    @cached_property
    def attempts_by_invoice(self) -> DataLoader[int, list[CollectionAttempt]]:
        return DataLoader(self._load_attempts_by_invoice)

    @cached_property
    def invoice_status_changes(self) -> DataLoader[int, list[StatusChange]]:
        return DataLoader(self._status_changes(StatusSubject.INVOICE))

    @cached_property
    def customer_status_changes(self) -> DataLoader[int, list[StatusChange]]:
        return DataLoader(self._status_changes(StatusSubject.CUSTOMER))

    @cached_property
    def collection_settings_by_class(
        self,
    ) -> DataLoader[int, dict[InvoiceKind, CollectionSettings]]:
        return DataLoader(self._load_collection_settings_by_class)

    @cached_property
    def bitcoin_wallets(self) -> DataLoader[int, BitcoinWallet | None]:
        return DataLoader(self._by_id(BitcoinWallet))

    @cached_property
    def bitcoin_addresses_by_customer(self) -> DataLoader[int, list[BitcoinAddress]]:
        return DataLoader(self._load_bitcoin_addresses_by_customer)

    @cached_property
    def bitcoin_payments_by_customer(self) -> DataLoader[int, list[BitcoinPayment]]:
        return DataLoader(self._load_bitcoin_payments_by_customer)

    async def _rows(self, query: Select[Any], **params: Any) -> Sequence[Any]:
        """ORM objects of ``query``'s single entity."""

        async def run(session: AsyncSession) -> Sequence[Any]:
            return (await session.scalars(query, params)).all()

        result: Sequence[Any] = await self._read(run)
        return result

    async def _column_rows(self, query: FixedRead, **params: Any) -> Sequence[Row[Any]]:
        """Rows of ``query``'s columns."""

        async def run(session: AsyncSession) -> Sequence[Row[Any]]:
            rows: Sequence[Row[Any]] = await query.rows(session, params)
            return rows

        result: Sequence[Row[Any]] = await self._read(run)
        return result

    def _by_id(self, model: type[Model]) -> Callable[[list[int]], Awaitable[list[Model | None]]]:
        async def load(ids: list[int]) -> list[Model | None]:
            rows = await self._rows(_by_ids(model), ids=ids)
            found = {row.id: row for row in rows}
            return [found.get(pk) for pk in ids]

        return load

    async def _load_balances(self, book_ids: list[int]) -> list[int]:
        """Balances read as columns, never from the identity map.

        The ledger moves cached balances with a SQL ``UPDATE … balance + delta``, which the
        ORM objects already in the session do not see; a column query always does.
        """

        async def run(session: AsyncSession) -> dict[int, int]:
            rows = await session.execute(
                select(LedgerAccount.id, LedgerAccount.balance).where(
                    LedgerAccount.id.in_(book_ids)
                )
            )
            return {int(pk): int(balance) for pk, balance in rows.all()}

        balances: dict[int, int] = await self._read(run)
        return [balances.get(pk, 0) for pk in book_ids]

    async def prime_customer_lists(
        self,
        customer_id: int,
        accounts: bool,
        invoices: LatestInvoices | None,
        payments: LatestPayments | None,
    ) -> None:
        """Read the customer's accounts (if ``accounts``) and the invoices and payments of the
        keys given in one statement (:func:`_customer_lists`), and prime their loaders with
        them, so resolving the three lists afterwards costs no statement of its own.

        For compiled reads (``schema.compiled``), which know every list a customer's
        selection asks for before resolving any: the loaders, batching what fields ask for
        together, would read each list with a statement of its own.
        """
        query = _customer_lists(
            accounts,
            invoices is not None,
            invoices is not None and invoices.status is not None,
            payments is not None,
            payments is not None and payments.recorded_by is not None,
        )
        params: dict[str, Any] = {"customer_id": customer_id}
        if invoices is not None:
            params |= {"invoice_parent_ids": [customer_id], "invoice_first": invoices.first}
            if invoices.status is not None:
                params["invoice_statuses"] = [invoices.status]
        if payments is not None:
            params |= {"payment_parent_ids": [customer_id], "payment_first": payments.first}
            if payments.recorded_by is not None:
                params["payment_recorded_by"] = payments.recorded_by
        found: dict[str, list[Any]] = {table.name: [] for table in _LIST_TABLES}
        start = 2  # after list_name and sort_key
        spans = {}
        for table in _LIST_TABLES:
            spans[table.name] = (start, start + len(table.c))
            start += len(table.c)
        for row in await self._column_rows(query, **params):
            first, last = spans[row.list_name]
            found[row.list_name].append(_LIST_ROWS[row.list_name]._make(row[first:last]))
        if accounts:
            self.accounts_by_customer.prime(customer_id, found[_ACCOUNTS.name])
        if invoices is not None:
            self.latest_invoices.prime(invoices, found[_INVOICES.name])
        if payments is not None:
            self.latest_payments.prime(payments, found[_PAYMENTS.name])

    async def _load_accounts_by_customer(self, customer_ids: list[int]) -> list[list[Row[Any]]]:
        rows = await self._column_rows(_ACCOUNTS_BY_CUSTOMER, ids=customer_ids)
        return _group(rows, "customer_id", customer_ids)

    async def _load_bitcoin_addresses_by_customer(
        self, customer_ids: list[int]
    ) -> list[list[BitcoinAddress]]:
        """Newest first, as :func:`billing.bitcoin_addresses.addresses_of` orders them."""
        rows = await self._rows(addresses_of(customer_ids))
        return _group(rows, "customer_id", customer_ids)

    async def _load_bitcoin_payments_by_customer(
        self, customer_ids: list[int]
    ) -> list[list[BitcoinPayment]]:
        """The newest :data:`~billing.bitcoin_payments.RECENT` of each, newest first."""
        found = await self._read(lambda s: bitcoin_payments.payments_of(s, customer_ids))
        return [found[c] for c in customer_ids]

    async def _load_latest_invoices(self, keys: list[LatestInvoices]) -> list[list[Row[Any]]]:
        results: dict[LatestInvoices, list[Row[Any]]] = {}
        shapes = _grouped_keys(keys, lambda k: (k.first, k.status is not None))
        for (first, by_status), group in shapes.items():
            ids = sorted({k.customer_id for k in group})
            query = _latest_read(Invoice, with_status=by_status)
            statuses = sorted({k.status for k in group if k.status is not None})
            params = {"statuses": statuses} if by_status else {}
            rows = await self._column_rows(query, parent_ids=ids, first=first, **params)
            found: dict[tuple[int, InvoiceStatus | None], list[Row[Any]]] = defaultdict(list)
            for row in rows:
                found[row.customer_id, row.status if by_status else None].append(row)
            for key in group:
                results[key] = found.get((key.customer_id, key.status), [])
        return [results[key] for key in keys]

    async def _load_latest_payments(self, keys: list[LatestPayments]) -> list[list[Row[Any]]]:
        results: dict[LatestPayments, list[Row[Any]]] = {}
        shapes = _grouped_keys(keys, lambda k: (k.first, k.recorded_by))
        for (first, recorded_by), group in shapes.items():
            ids = [k.customer_id for k in group]
            query = _latest_read(Payment, with_recorder=recorded_by is not None)
            params = {} if recorded_by is None else {"recorded_by": recorded_by}
            rows = await self._column_rows(query, parent_ids=ids, first=first, **params)
            for key, children in zip(group, _group(rows, "customer_id", ids), strict=True):
                results[key] = children
        return [results[key] for key in keys]

    async def _load_attempts_by_invoice(
        self, invoice_ids: list[int]
    ) -> list[list[CollectionAttempt]]:
        attempts: dict[int, list[CollectionAttempt]] = await self._read(
            lambda session: collection.attempts_for_invoices(session, invoice_ids)
        )
        return [attempts[pk] for pk in invoice_ids]

    def _status_changes(
        self, subject: StatusSubject
    ) -> Callable[[list[int]], Awaitable[list[list[StatusChange]]]]:
        async def load(ids: list[int]) -> list[list[StatusChange]]:
            changes: dict[int, list[StatusChange]] = await self._read(
                lambda session: status_changes.history(session, subject, ids)
            )
            return [changes[pk] for pk in ids]

        return load

    async def _load_collection_settings_by_class(
        self, class_ids: list[int]
    ) -> list[dict[InvoiceKind, CollectionSettings]]:
        rows: dict[tuple[int, InvoiceKind], CollectionSettings] = await self._read(
            lambda session: collection.settings_rows(session, class_ids)
        )
        return [
            {kind: row for (class_id, kind), row in rows.items() if class_id == pk}
            for pk in class_ids
        ]

    async def _load_lines_by_invoice(self, invoice_ids: list[int]) -> list[list[Charge]]:
        lines: dict[int, list[Charge]] = await self._read(
            lambda session: invoices.invoice_lines(session, invoice_ids)
        )
        return [lines[pk] for pk in invoice_ids]


K = TypeVar("K")
G = TypeVar("G", bound=Hashable)


def _grouped_keys(keys: list[K], group_of: Callable[[K], G]) -> dict[G, list[K]]:
    """Keys that can share one query (same page size and filter), in first-seen order."""
    groups: dict[G, list[K]] = defaultdict(list)
    for key in keys:
        groups[group_of(key)].append(key)
    return groups


def _group(rows: Sequence[Any], parent_attribute: str, parent_ids: list[int]) -> list[list[Any]]:
    """Rows split by parent, one list per id in ``parent_ids``, keeping the query's order."""
    by_parent: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_parent[getattr(row, parent_attribute)].append(row)
    return [by_parent.get(pk, []) for pk in parent_ids]
