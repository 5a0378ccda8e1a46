"""Customers, customer classes and resellers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import collection, customers
from billing.errors import UserError
from billing.models import Customer, CustomerClass, CustomerStatus, InvoiceKind, Reseller
from billing.money import parse_amount
from resolvers.context import Context
from schema.relay import decode_id, decode_optional_id

if TYPE_CHECKING:
    from schema.customers import (
        CreateCustomerClassInput,
        CreateCustomerInput,
        CreateResellerInput,
        UpdateCustomerClassInput,
        UpdateCustomerInput,
    )


def _optional_amount(text: str | None, currency: str, field: str) -> int | None:
    return None if text is None else parse_amount(text, currency, field)


async def customer(ctx: Context, id: str) -> Row[*tuple[Any, ...]] | None:
    """The customer, with its balance read in the same statement and handed to the balance
    loader, so ``balance`` and ``availableFunds`` cost no statement of their own."""
    found = await ctx.find(
        lambda session: customers.get_customer_with_balance(
            session, ctx.viewer, decode_id(id, "Customer")
        )
    )
    if found is None:
        return None
    row, balance = found
    ctx.loaders.balances.prime(row.ledger_account_id, balance)
    return row


def customer_list(
    ctx: Context, status: CustomerStatus | None, search: str | None, email: str | None
) -> Select[Any]:
    return customers.customer_query(ctx.viewer, status=status, search=search, email=email)


async def create_customer(ctx: Context, input: CreateCustomerInput) -> Customer | UserError:
    async def work(session: AsyncSession) -> Customer:
        data = customers.CustomerInput(
            name=input.name,
            email=input.email,
            phone=input.phone,
            address=input.address,
            currency=input.currency,
            time_zone=input.time_zone,
            billing_period=input.billing_period,
            credit_limit=_optional_amount(input.credit_limit, input.currency, "creditLimit"),
            opening_balance=_optional_amount(
                input.opening_balance, input.currency, "openingBalance"
            ),
            status=input.status,
            class_id=decode_optional_id(input.class_id, "CustomerClass", "classId"),
            reseller_id=decode_optional_id(input.reseller_id, "Reseller", "resellerId"),
            distributor_id=decode_optional_id(input.distributor_id, "Distributor", "distributorId"),
            auto_payment=input.auto_payment,
        )
        return await customers.create_customer(session, ctx.viewer, data, input.idempotency_key)

    return await ctx.attempt(work)


async def update_customer(ctx: Context, input: UpdateCustomerInput) -> Customer | UserError:
    async def work(session: AsyncSession) -> Customer:
        customer_id = decode_id(input.id, "Customer")
        # The credit limit is in the customer's own currency, so read that first.
        current = await customers.get_customer(session, ctx.viewer, customer_id)
        data = customers.CustomerInput(
            name=input.name,
            email=input.email,
            phone=input.phone,
            address=input.address,
            time_zone=input.time_zone,
            credit_limit=_optional_amount(input.credit_limit, current.currency, "creditLimit"),
            status=input.status,
            class_id=decode_optional_id(input.class_id, "CustomerClass", "classId"),
            distributor_id=decode_optional_id(input.distributor_id, "Distributor", "distributorId"),
            auto_payment=input.auto_payment,
        )
        return await customers.update_customer(session, ctx.viewer, customer_id, data)

    return await ctx.attempt(work)


def _collection_settings(
    input: CreateCustomerClassInput | UpdateCustomerClassInput,
) -> dict[InvoiceKind, collection.SettingsInput]:
    given = {
        InvoiceKind.REGULAR: input.regular_invoices,
        InvoiceKind.OUT_OF_TURN: input.out_of_turn_invoices,
    }
    return {kind: settings.to_domain() for kind, settings in given.items() if settings is not None}


def customer_class_list(ctx: Context) -> Select[Any]:
    return customers.customer_class_query(ctx.viewer)


async def create_customer_class(
    ctx: Context, input: CreateCustomerClassInput
) -> CustomerClass | UserError:
    return await ctx.attempt(
        lambda session: customers.create_customer_class(
            session,
            ctx.viewer,
            input.name,
            input.payment_terms_days,
            input.grace_period_days,
            _collection_settings(input),
            input.issue_empty_invoices,
        )
    )


async def update_customer_class(
    ctx: Context, input: UpdateCustomerClassInput
) -> CustomerClass | UserError:
    return await ctx.attempt(
        lambda session: customers.update_customer_class(
            session,
            ctx.viewer,
            decode_id(input.id, "CustomerClass"),
            input.name,
            input.payment_terms_days,
            input.grace_period_days,
            _collection_settings(input),
            input.issue_empty_invoices,
        )
    )


async def create_reseller(ctx: Context, input: CreateResellerInput) -> Reseller | UserError:
    return await ctx.attempt(
        lambda session: customers.create_reseller(session, ctx.viewer, input.name, input.email)
    )
