"""Who is calling, and which customers they may see.

A :class:`Viewer` is built by the HTTP layer (session cookie or API key) and handed to every
service.  Scoping lives here, in one place: an object outside the viewer's scope is reported
as "not found", exactly like an object that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Row, Select, false, select

from billing.errors import Forbidden
from billing.models import ApiKeyScope, Customer, Distributor, Payment, Role

_Row = TypeVar("_Row")
_Columns = TypeVarTuple("_Columns")


@dataclass(frozen=True, slots=True)
class Viewer:
    role: Role | None
    user_id: int | None = None
    api_key_id: int | None = None
    reseller_id: int | None = None
    customer_id: int | None = None
    distributor_id: int | None = None
    scope: ApiKeyScope = ApiKeyScope.READ_WRITE

    @property
    def authenticated(self) -> bool:
        return self.role is not None

    @property
    def is_staff(self) -> bool:
        """Administrators and resellers manage customers; a reseller only its own."""
        return self.role in (Role.ADMIN, Role.RESELLER)

    @property
    def can_write(self) -> bool:
        return self.authenticated and self.scope == ApiKeyScope.READ_WRITE

    @property
    def idempotency_scope(self) -> str:
        if self.api_key_id is not None:
            return f"key:{self.api_key_id}"
        return f"user:{self.user_id}"


ANONYMOUS = Viewer(role=None)


def require_staff(viewer: Viewer, write: bool = False) -> None:
    if not viewer.is_staff:
        raise Forbidden("administrators only")
    if write and not viewer.can_write:
        raise Forbidden("this API key is read-only")


def require_write(viewer: Viewer) -> None:
    if not viewer.can_write:
        raise Forbidden("not allowed to change anything")


def sees_books(viewer: Viewer) -> bool:
    """May see the detail of a visible customer's money: the customer itself and staff.

    A distributor sees its customers (:func:`may_see_customer`) only as far as it needs to sell
    and collect cash: profile and contact details, accounts, balance, available funds, and each
    invoice's number, dates, status and what it still needs.  Not charges, invoice amounts,
    lines or PDFs, card attempts, payments, cards or the ledger: those are the customer's
    books, and a distributor does not keep them.  ``schema.permissions.SeesBooks`` applies
    this rule field by field; ``docs/graphql.md`` lists the fields.
    """
    return viewer.is_staff or viewer.role == Role.CUSTOMER


def acts_for_customer(viewer: Viewer, customer_id: int) -> bool:
    """May act *as* the customer (pay, see or change its cards): the customer itself or staff.

    The customer must already be visible to the viewer (:func:`may_see_customer`); this rule
    narrows it, because a distributor sees its customers but may not spend their money or see
    their cards.
    """
    is_self = viewer.role == Role.CUSTOMER and viewer.customer_id == customer_id
    return viewer.is_staff or is_self


def require_self_or_staff(viewer: Viewer, customer: Customer, write: bool = False) -> None:
    """:func:`acts_for_customer`, or Forbidden."""
    if not acts_for_customer(viewer, customer.id):
        raise Forbidden("only the customer or an administrator may do this")
    if write:
        require_write(viewer)


def require_provider_admin(viewer: Viewer) -> None:
    """Installation-wide acts (resellers, the test clock) belong to the provider's own staff."""
    require_staff(viewer, write=True)
    if viewer.reseller_id is not None:
        raise Forbidden("only the provider's administrators may do this")


def scope_customers(query: Select[*_Columns], viewer: Viewer) -> Select[*_Columns]:
    """Restrict a query over ``Customer`` to those the viewer may see."""
    if viewer.role == Role.ADMIN and viewer.reseller_id is None:
        return query
    if viewer.role in (Role.ADMIN, Role.RESELLER):
        return query.where(Customer.reseller_id == viewer.reseller_id)
    if viewer.role == Role.CUSTOMER and viewer.customer_id is not None:
        return query.where(Customer.id == viewer.customer_id)
    if viewer.role == Role.DISTRIBUTOR and viewer.distributor_id is not None:
        return query.where(Customer.distributor_id == viewer.distributor_id)
    return query.where(false())


def scope_distributors(query: Select[*_Columns], viewer: Viewer) -> Select[*_Columns]:
    """Restrict a query over ``Distributor`` to those the viewer may see: the provider's
    administrators every one, a reseller's staff that reseller's, a distributor itself."""
    if viewer.role == Role.ADMIN and viewer.reseller_id is None:
        return query
    if viewer.role in (Role.ADMIN, Role.RESELLER):
        return query.where(Distributor.reseller_id == viewer.reseller_id)
    if viewer.role == Role.DISTRIBUTOR and viewer.distributor_id is not None:
        return query.where(Distributor.id == viewer.distributor_id)
    return query.where(false())


def visible(model: type[_Row], viewer: Viewer) -> Select[_Row]:
    """``select(model)`` of rows whose customer (``model.customer_id``) the viewer may see."""
    customer_id = model.customer_id  # type: ignore[attr-defined]  # every such model has one
    return scope_customers(select(model).join(Customer, Customer.id == customer_id), viewer)


def payments_recorded_by(viewer: Viewer) -> int | None:
    """The distributor whose payments alone the viewer sees of the customers it sees, or
    ``None`` for every payment of them.

    A distributor sees the cash it collected itself (it answers for it to the provider), not
    the other payments of its customers: those are the customers' books (:func:`sees_books`).
    """
    if viewer.role != Role.DISTRIBUTOR:
        return None
    if viewer.distributor_id is None:
        raise Forbidden("this sign-in is linked to no distributor")
    return viewer.distributor_id


def visible_payments(viewer: Viewer) -> Select[Payment]:
    """``select(Payment)`` of the payments the viewer may see: of customers it sees
    (:func:`visible`), and for a distributor only those it recorded
    (:func:`payments_recorded_by`)."""
    query = visible(Payment, viewer)
    recorded_by = payments_recorded_by(viewer)
    if recorded_by is not None:
        query = query.where(Payment.recorded_by_distributor_id == recorded_by)
    return query


def may_see_customer(viewer: Viewer, customer: Customer | Row[*tuple[Any, ...]]) -> bool:
    """The same rule as :func:`scope_customers`, for a customer already read (the object, or
    a row of its columns)."""
    if viewer.role == Role.ADMIN and viewer.reseller_id is None:
        return True
    if viewer.role in (Role.ADMIN, Role.RESELLER):
        return customer.reseller_id == viewer.reseller_id
    if viewer.role == Role.CUSTOMER:
        return customer.id == viewer.customer_id
    if viewer.role == Role.DISTRIBUTOR:
        return (
            customer.distributor_id is not None and customer.distributor_id == viewer.distributor_id
        )
    return False
