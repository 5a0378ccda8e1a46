"""Bitcoin: an owner's wallet settings, and a customer's receiving addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from billing import bitcoin_addresses, bitcoin_payments, bitcoin_wallets
from billing.bitcoin_wallets import PriceEndpoint, WalletDetails, WalletInput
from billing.errors import UserError
from billing.models import BitcoinAddress, BitcoinPayment, Customer, Reseller
from resolvers.context import Context
from schema.relay import decode_id, decode_optional_id

if TYPE_CHECKING:
    from schema.bitcoin import (
        CreditBitcoinPaymentInput,
        RequestBitcoinAddressInput,
        SetBitcoinWalletInput,
    )


async def bitcoin_wallet(ctx: Context, reseller_id: str | None) -> WalletDetails | None:
    """None for a reseller out of the caller's scope (or none at all)."""
    return await ctx.find(
        lambda session: bitcoin_wallets.get_wallet(
            session, ctx.viewer, decode_optional_id(reseller_id, "Reseller", "resellerId")
        )
    )


async def set_bitcoin_wallet(
    ctx: Context, input: SetBitcoinWalletInput
) -> WalletDetails | UserError:
    async def work(session: AsyncSession) -> WalletDetails:
        data = WalletInput(
            account_key=input.account_key,
            address_type=input.address_type,
            minimum=input.minimum_payment,
            minimum_currency=input.minimum_payment_currency,
            confirmations=input.confirmations_required,
            rate_source=input.rate_source,
            fixed_rates=[(rate.currency, rate.price) for rate in input.fixed_rates or []],
            price_endpoints=[
                PriceEndpoint(e.currency, e.url, e.json_path) for e in input.price_endpoints or []
            ],
        )
        reseller_id = decode_optional_id(input.reseller_id, "Reseller", "resellerId")
        return await bitcoin_wallets.set_wallet(session, ctx.viewer, data, reseller_id)

    return await ctx.attempt(work)


async def request_bitcoin_address(
    ctx: Context, input: RequestBitcoinAddressInput
) -> BitcoinAddress | UserError:
    return await ctx.attempt(
        lambda session: bitcoin_addresses.request_address(
            session, ctx.viewer, decode_id(input.customer_id, "Customer", "customerId")
        ),
        id_field="customerId",
    )


async def _owner_name(session: AsyncSession, ctx: Context, customer_id: int) -> str:
    """Who is paid, as a BIP21 label: the customer's reseller, or the provider."""
    customer = await session.get(Customer, customer_id)
    reseller = (
        None
        if customer is None or customer.reseller_id is None
        else (await session.get(Reseller, customer.reseller_id))
    )
    return reseller.name if reseller is not None else ctx.settings.provider_name


async def payment_request(
    ctx: Context, customer_id: int, invoice_id: str | None
) -> bitcoin_payments.PaymentRequest | None:
    """None for an invoice out of scope, as for a customer without an address."""

    async def work(session: AsyncSession) -> bitcoin_payments.PaymentRequest | None:
        invoice = decode_optional_id(invoice_id, "Invoice", "invoiceId")
        name = await _owner_name(session, ctx, customer_id)
        return await bitcoin_payments.payment_request(
            session, ctx.viewer, customer_id, invoice, name
        )

    return await ctx.find(work)


async def credit_bitcoin_payment(
    ctx: Context, input: CreditBitcoinPaymentInput
) -> BitcoinPayment | UserError:
    return await ctx.attempt(
        lambda session: bitcoin_payments.credit_by_hand(
            session,
            ctx.viewer,
            decode_id(input.bitcoin_payment_id, "BitcoinPayment", "bitcoinPaymentId"),
            input.idempotency_key,
        ),
        id_field="bitcoinPaymentId",
    )


async def flagged_bitcoin_payments(
    ctx: Context, reseller_id: int | None
) -> list[bitcoin_payments.FlaggedPayment]:
    """The owner's flagged payments (empty when out of scope: the wallet was found first)."""
    found = await ctx.find(
        lambda session: bitcoin_payments.flagged_payments(session, ctx.viewer, reseller_id)
    )
    return found or []
