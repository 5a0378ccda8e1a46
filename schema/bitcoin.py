"""Bitcoin: an owner's wallet settings (administrators) and customers' receiving addresses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from billing import models
from billing.bitcoin import AddressType, BitcoinNetwork
from billing.bitcoin_payments import FlaggedPayment, PaymentRequest, to_minor
from billing.bitcoin_wallets import WalletDetails
from billing.errors import UserError
from resolvers import bitcoin as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.permissions import IsAuthenticated
from schema.relay import encode_id
from wallets import qr

strawberry.enum(BitcoinNetwork, name="BitcoinNetwork")
strawberry.enum(AddressType, name="BitcoinAddressType")
strawberry.enum(models.BitcoinRateSource, name="BitcoinRateSource")
strawberry.enum(
    models.BitcoinPaymentState,
    name="BitcoinPaymentState",
    description="PENDING until confirmed; then CREDITED, or BELOW_MINIMUM (an administrator "
    "may credit it); DROPPED if it vanished unconfirmed; REVERSED if a chain "
    "reorganisation removed it after it was credited.",
)

_ACCOUNT_KEY = (
    "The account-level (depth 3) extended public key of the wallet: xpub, ypub or zpub on "
    "mainnet, tpub, upub or vpub on the test networks. Private keys and seeds are refused "
    "and never stored."
)


@strawberry.type(description="A receiving address given to a customer; never given to another.")
class BitcoinAddress:
    address: str
    address_type: AddressType
    network: BitcoinNetwork
    created_at: datetime
    first_funded_at: datetime | None = strawberry.field(
        description="When a payment to it was first seen; null while nothing was paid to it."
    )

    @classmethod
    def from_model(cls, row: models.BitcoinAddress, wallet: models.BitcoinWallet) -> BitcoinAddress:
        return cls(
            address=row.address,
            address_type=wallet.address_type,
            network=wallet.network,
            created_at=row.created_at,
            first_funded_at=row.first_funded_at,
        )


@strawberry.type(description="The price of one bitcoin in a currency.")
class BitcoinRate:
    currency: str
    price: Money


@strawberry.type(description="Where the price of one bitcoin in `currency` is read.")
class BitcoinPriceEndpoint:
    currency: str
    url: str
    json_path: str = strawberry.field(description="The price's place in the JSON answer.")


@strawberry.type(
    description="An owner's Bitcoin payment settings (the provider's, or a reseller's). "
    "Before any are set, `accountKey` is null and the rest are the defaults."
)
class BitcoinWallet:
    reseller_id: strawberry.ID | None = strawberry.field(
        description="The reseller whose settings these are; null for the provider's."
    )
    network: BitcoinNetwork = strawberry.field(
        description="The network this installation takes payments on (set by its operator)."
    )
    account_key: str | None = strawberry.field(description=_ACCOUNT_KEY)
    address_type: AddressType
    minimum_payment: Money = strawberry.field(
        description="Smaller payments are recorded but not credited: in BTC, or in a currency."
    )
    confirmations_required: int
    rate_source: models.BitcoinRateSource
    fixed_rates: list[BitcoinRate]
    price_endpoints: list[BitcoinPriceEndpoint]
    addresses_allocated: int = strawberry.field(
        description="Addresses handed out from the current key."
    )
    unfunded_addresses: int = strawberry.field(
        description="Addresses handed out from the current key that never received funds: "
        "the wallet software holding the key must scan with a gap limit above this number "
        "to see every payment."
    )
    warnings: list[str] = strawberry.field(
        description="What to know before relying on these settings (0 confirmations)."
    )
    updated_at: datetime | None = strawberry.field(description="Null until first set.")
    owner: strawberry.Private[int | None] = None

    @strawberry.field(
        description="Payments to this owner's addresses an administrator should look at, "
        "newest first (at most 100): confirmed below the minimum (credit one by hand with "
        "creditBitcoinPayment) or reversed by a chain reorganisation."
    )
    async def flagged_payments(self, info: Info) -> list[FlaggedBitcoinPayment]:
        rows = await resolve.flagged_bitcoin_payments(info.context, self.owner)
        return [FlaggedBitcoinPayment.of(row) for row in rows]

    @classmethod
    def of(cls, details: WalletDetails) -> BitcoinWallet:
        return cls(
            reseller_id=None
            if details.reseller_id is None
            else encode_id("Reseller", details.reseller_id),
            network=details.network,
            account_key=details.account_key,
            address_type=details.address_type,
            minimum_payment=Money.of(details.minimum_amount, details.minimum_currency),
            confirmations_required=details.confirmations,
            rate_source=details.rate_source,
            fixed_rates=[
                BitcoinRate(currency=c, price=Money.of(minor, c))
                for c, minor in details.fixed_rates
            ],
            price_endpoints=[
                BitcoinPriceEndpoint(currency=e.currency, url=e.url, json_path=e.json_path)
                for e in details.price_endpoints
            ],
            addresses_allocated=details.addresses_allocated,
            unfunded_addresses=details.unfunded_addresses,
            warnings=list(details.warnings),
            owner=details.reseller_id,
            updated_at=details.updated_at,
        )


@strawberry.input
class BitcoinRateInput:
    currency: str
    price: str = strawberry.field(description="Decimal price of one bitcoin, e.g. 65000.00.")


@strawberry.input
class BitcoinPriceEndpointInput:
    currency: str
    url: str = strawberry.field(description="https:// (http:// too in development).")
    json_path: str = strawberry.field(
        description="Dot-separated keys (and array indexes) of the price: data.amount."
    )


@strawberry.input(description="Every setting is replaced; one left out takes its default.")
class SetBitcoinWalletInput:
    reseller_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Whose settings: a reseller (the provider's administrators only). "
        "Omitted: your own.",
    )
    account_key: str = strawberry.field(description=_ACCOUNT_KEY)
    address_type: AddressType | None = strawberry.field(
        default=None,
        description="Omitted: what the key's prefix implies — zpub/vpub native segwit, "
        "ypub/upub nested segwit, xpub/tpub native segwit. Only an xpub/tpub may choose.",
    )
    minimum_payment: str | None = strawberry.field(
        default=None, description="Decimal amount. Omitted: 0.0001 BTC."
    )
    minimum_payment_currency: str = strawberry.field(
        default="BTC", description="BTC, or the currency the minimum is counted in."
    )
    confirmations_required: int = strawberry.field(
        default=1, description="0 to 100. 0 credits unconfirmed payments (with a warning)."
    )
    rate_source: models.BitcoinRateSource = models.BitcoinRateSource.FIXED
    fixed_rates: list[BitcoinRateInput] | None = strawberry.field(
        default=None, description="With FIXED: the price of a bitcoin per currency."
    )
    price_endpoints: list[BitcoinPriceEndpointInput] | None = strawberry.field(
        default=None, description="With HTTP: where each currency's price is read."
    )


@strawberry.type(
    description="A payment to one of a customer's addresses: one output of a transaction."
)
class BitcoinPayment:
    id: strawberry.ID
    txid: str
    vout: int = strawberry.field(description="The output's index in the transaction.")
    amount: Money = strawberry.field(description="What was paid, in BTC.")
    value: Money = strawberry.field(
        description="What it is worth in the customer's currency at `rate`: what is credited."
    )
    rate: Money = strawberry.field(
        description="The price of one bitcoin when the payment was first seen."
    )
    confirmations: int
    state: models.BitcoinPaymentState
    flag: str | None = strawberry.field(
        description="Why an administrator should look at it: BELOW_MINIMUM or REORGANISED; "
        "null once handled or when nothing is wrong."
    )
    payment_id: strawberry.ID = strawberry.field(description="Its payment (method BITCOIN).")
    first_seen_at: datetime
    credited_at: datetime | None

    @classmethod
    def from_model(cls, row: models.BitcoinPayment, currency: str) -> BitcoinPayment:
        return cls(
            id=encode_id("BitcoinPayment", row.id),
            txid=row.txid,
            vout=row.vout,
            amount=Money.of(row.satoshis, "BTC"),
            value=Money.of(to_minor(row.satoshis, row.minor_per_btc), currency),
            rate=Money.of(row.minor_per_btc, currency),
            confirmations=row.confirmations,
            state=row.state,
            flag=row.flag if row.flag_cleared_at is None else None,
            payment_id=encode_id("Payment", row.payment_id),
            first_seen_at=row.first_seen_at,
            credited_at=row.credited_at,
        )


@strawberry.type(description="A flagged bitcoin payment and whose it is.")
class FlaggedBitcoinPayment:
    payment: BitcoinPayment
    customer_id: strawberry.ID
    customer_name: str

    @classmethod
    def of(cls, row: FlaggedPayment) -> FlaggedBitcoinPayment:
        return cls(
            payment=BitcoinPayment.from_model(row.payment, row.customer.currency),
            customer_id=encode_id("Customer", row.customer.id),
            customer_name=row.customer.name,
        )


@strawberry.type(
    description="How a customer pays in bitcoin: what a wallet needs, and what to expect."
)
class BitcoinPaymentRequest:
    address: str = strawberry.field(description="The customer's newest receiving address.")
    uri: str = strawberry.field(
        description="The BIP21 payment URI (a bech32 address in capitals, as BIP173 allows), "
        "with the open invoice's amount at the current rate when asked for an invoice."
    )
    qr_code_svg: str = strawberry.field(description="`uri` as a QR code: an inline SVG element.")
    amount: Money | None = strawberry.field(
        description="What to pay in BTC; null for a payment of any amount (credit)."
    )
    invoice_id: strawberry.ID | None
    rate: Money | None = strawberry.field(
        description="The price of one bitcoin now; null while the owner has none for the "
        "customer's currency (payments then wait to be credited)."
    )
    rate_fetched_at: datetime | None
    minimum_payment: Money = strawberry.field(
        description="Smaller payments are recorded but not credited."
    )
    confirmations_required: int

    @classmethod
    def of(cls, request: PaymentRequest) -> BitcoinPaymentRequest:
        rate = request.rate
        return cls(
            address=request.address.address,
            uri=request.uri,
            qr_code_svg=qr.svg(request.uri),
            amount=None if request.satoshis is None else Money.of(request.satoshis, "BTC"),
            invoice_id=None
            if request.invoice is None
            else encode_id("Invoice", request.invoice.id),
            rate=None if rate is None else Money.of(rate.minor_per_btc, rate.currency),
            rate_fetched_at=None if rate is None else rate.fetched_at,
            minimum_payment=Money.of(request.minimum_amount, request.minimum_currency),
            confirmations_required=request.confirmations,
        )


@strawberry.input
class CreditBitcoinPaymentInput:
    bitcoin_payment_id: strawberry.ID
    idempotency_key: str


@strawberry.type
class BitcoinPaymentPayload:
    bitcoin_payment: BitcoinPayment | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class RequestBitcoinAddressInput:
    customer_id: strawberry.ID


@strawberry.type
class BitcoinWalletPayload:
    bitcoin_wallet: BitcoinWallet | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class BitcoinAddressPayload:
    bitcoin_address: BitcoinAddress | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class BitcoinQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Your Bitcoin payment settings, or, for the provider's administrators, "
        "any reseller's. Administrators only.",
    )
    async def bitcoin_wallet(
        self,
        info: Info,
        reseller_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Omitted: your own owner's settings."),
        ] = None,
    ) -> BitcoinWallet | None:
        found = await resolve.bitcoin_wallet(info.context, reseller_id)
        return None if found is None else BitcoinWallet.of(found)


@strawberry.type
class BitcoinMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Set the provider's or a reseller's Bitcoin payment settings "
        "(administrators; a reseller's only its own).",
    )
    async def set_bitcoin_wallet(
        self, info: Info, input: SetBitcoinWalletInput
    ) -> BitcoinWalletPayload:
        result = await resolve.set_bitcoin_wallet(info.context, input)
        if isinstance(result, UserError):
            return BitcoinWalletPayload(errors=user_errors(result))
        return BitcoinWalletPayload(bitcoin_wallet=BitcoinWallet.of(result))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="A fresh receiving address for a customer (the customer or staff). "
        "Earlier addresses stay the customer's and keep being watched.",
    )
    async def request_bitcoin_address(
        self, info: Info, input: RequestBitcoinAddressInput
    ) -> BitcoinAddressPayload:
        result = await resolve.request_bitcoin_address(info.context, input)
        if isinstance(result, UserError):
            return BitcoinAddressPayload(errors=user_errors(result))
        wallet = await info.context.loaders.bitcoin_wallets.load(result.wallet_id)
        assert wallet is not None
        return BitcoinAddressPayload(bitcoin_address=BitcoinAddress.from_model(result, wallet))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Credit a confirmed bitcoin payment below the minimum, at the rate it was "
        "recorded at (staff). Its flag is cleared.",
    )
    async def credit_bitcoin_payment(
        self, info: Info, input: CreditBitcoinPaymentInput
    ) -> BitcoinPaymentPayload:
        result = await resolve.credit_bitcoin_payment(info.context, input)
        if isinstance(result, UserError):
            return BitcoinPaymentPayload(errors=user_errors(result))
        customer = await info.context.loaders.customers.load(result.customer_id)
        assert customer is not None
        return BitcoinPaymentPayload(
            bitcoin_payment=BitcoinPayment.from_model(result, customer.currency)
        )
