"""The authorisation matrix: every query and mutation, run as every kind of caller, against
the caller's own objects and against someone else's.

Why a matrix: scoping is enforced in many places (``scope_customers``, ``may_see_customer``,
the ``require_*`` rules, DataLoaders that trust the parent they hang off), so a new field or a
new path through a loader can bypass it without any single-feature test noticing.  Here every
root field of the schema has at least one row in :data:`OPERATIONS` (a guard test fails when a
field is missing), every relation between types is followed by some row (another guard), and
each caller runs every row:

* **against its own objects** — the callers in the row's ``allowed`` set succeed; anybody else
  is refused with a top-level ``FORBIDDEN`` (``UNAUTHENTICATED`` when anonymous) and nothing in
  the database changes;
* **against someone else's objects** — the answer is exactly the answer for an id that does
  not exist (a "ghost"), so nothing tells the caller the object is there, and nothing in the
  database changes (every row of every table is compared, balances included);
* **in every answer** — no id, name or e-mail address from outside the caller's scope appears,
  however deeply it is nested.

The world has four customers, each with the same objects (account, an invoiced and an
uninvoiced charge, an invoice, a cash payment, a card, a card payment for the invoice, a second
cash payment to void): A1 and A2 of reseller A (A1 signed up by distributor DA), B1 of reseller
B (distributor DB) and P1 of the provider itself (distributor DP).

One test per caller walks the whole table on one world (the ``db`` fixture empties the tables
for every test, so the world cannot be shared across tests) and collects every failure,
naming the caller and the row, before asserting there were none.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    get_named_type,
    parse,
    validate,
    visit,
)
from graphql.language import FieldNode
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock
from billing.accounts import create_account
from billing.api_keys import create_api_key
from billing.bitcoin_addresses import request_address
from billing.bitcoin_payments import latest_rate, to_minor
from billing.bitcoin_wallets import WalletInput, set_wallet
from billing.card_charges import within
from billing.charges import ChargeInput, post_charge
from billing.customers import (
    CustomerInput,
    create_customer,
    create_customer_class,
    update_customer,
)
from billing.db import Database
from billing.invoices import close_period_out_of_turn
from billing.models import (
    ApiKeyScope,
    BitcoinAddress,
    BitcoinPayment,
    BitcoinPaymentState,
    ChargeKind,
    Customer,
    CustomerClass,
    CustomerStatus,
    Distributor,
    Payment,
    PaymentChannel,
    PaymentStatus,
    Reseller,
    Role,
    RunFailure,
    RunKind,
)
from billing.payment_methods import add_card
from billing.payment_systems import MethodKind
from billing.payments import pay_with_payment_method, record_payment
from billing.processor_accounts import AccountInput as ProcessorAccountInput
from billing.processor_accounts import create_account as create_processor_account
from billing.users import create_user
from schema import schema as strawberry_schema
from schema.relay import decode_id, encode_id
from tests.bitcoin_keys import TESTNET_TPUB, TESTNET_UPUB, TESTNET_VPUB
from tests.factories import (
    T0,
    admin_viewer,
    card_details,
    distributor_viewer,
    make_distributor,
    make_reseller,
)
from tests.graphql_support import Api, table_contents

pytest_plugins = ["tests.graphql_fixtures"]

PASSWORD = "correct horse battery"
#: A user nobody in the matrix acts as: the ``signIn`` row signs in with it.
SIGN_IN_EMAIL = "sign-in@matrix.example"


# --- callers -------------------------------------------------------------------------------


class Caller(StrEnum):
    """Who calls: every kind of credential the API accepts."""

    ANONYMOUS = "anonymous"
    PROVIDER_ADMIN = "provider-admin"  # an ADMIN user with no reseller: sees everything
    RESELLER_KEY = "reseller-key"  # reseller A's READ_WRITE partner API key
    READ_KEY = "reseller-read-key"  # reseller A's READ partner API key
    RESELLER_USER = "reseller-user"  # a RESELLER user of reseller A
    CUSTOMER_USER = "customer-user"  # the CUSTOMER user of customer A1
    DISTRIBUTOR_USER = "distributor-user"  # the DISTRIBUTOR user of DA (A1's distributor)
    DISTRIBUTOR_KEY = "distributor-key"  # DA's READ_WRITE API key: DA, as its user is
    DISTRIBUTOR_READ_KEY = "distributor-read-key"  # DA's READ API key


EVERYONE = frozenset(Caller)
SIGNED_IN = EVERYONE - {Caller.ANONYMOUS}
STAFF = frozenset(
    {Caller.PROVIDER_ADMIN, Caller.RESELLER_KEY, Caller.READ_KEY, Caller.RESELLER_USER}
)
STAFF_WRITE = STAFF - {Caller.READ_KEY}
SELF_OR_STAFF = STAFF | {Caller.CUSTOMER_USER}
SELF_OR_STAFF_WRITE = STAFF_WRITE | {Caller.CUSTOMER_USER}
#: DA however it calls: its user or its keys.  Each sees and does what the user does, a READ
#: key without the changes.
DISTRIBUTORS = frozenset(
    {Caller.DISTRIBUTOR_USER, Caller.DISTRIBUTOR_KEY, Caller.DISTRIBUTOR_READ_KEY}
)
DISTRIBUTORS_WRITE = DISTRIBUTORS - {Caller.DISTRIBUTOR_READ_KEY}
#: Every API key: keys have no session, and manage no keys (``billing.api_keys``).
KEYS = frozenset(
    {Caller.RESELLER_KEY, Caller.READ_KEY, Caller.DISTRIBUTOR_KEY, Caller.DISTRIBUTOR_READ_KEY}
)
#: Who manages API keys: signed-in staff and distributors (the provider's administrators
#: every key, a reseller's staff their reseller's and its distributors', a distributor its own).
KEY_MANAGERS = frozenset({Caller.PROVIDER_ADMIN, Caller.RESELLER_USER, Caller.DISTRIBUTOR_USER})
#: Staff, and a distributor on its own customers: signing up customers and accounts,
#: recording the cash it collected (``billing.distributors``).
STAFF_OR_DISTRIBUTOR_WRITE = STAFF_WRITE | DISTRIBUTORS_WRITE
#: Who sees a distributor: its administrators and the distributor itself.
STAFF_OR_DISTRIBUTOR = STAFF | DISTRIBUTORS
#: Everyone who sees a customer's books (``access.sees_books``): not its distributor, who
#: sees profile, accounts, balance and what invoices still need (:data:`DISTRIBUTOR_SEES`).
SEES_BOOKS = SIGNED_IN - DISTRIBUTORS
PROVIDER_ONLY = frozenset({Caller.PROVIDER_ADMIN})

#: The customer whose objects each caller acts on as "its own".
OWN_SIDE: dict[Caller, str] = {caller: "A1" for caller in Caller} | {Caller.PROVIDER_ADMIN: "P1"}

#: Customers whose objects each caller must not reach; every row is tried against each.
OTHER_SIDES: dict[Caller, tuple[str, ...]] = {
    Caller.ANONYMOUS: ("B1",),
    Caller.PROVIDER_ADMIN: (),  # nothing is someone else's for the provider
    Caller.RESELLER_KEY: ("B1", "P1"),  # another reseller's, and the provider's own
    Caller.READ_KEY: ("B1",),
    Caller.RESELLER_USER: ("B1",),
    Caller.CUSTOMER_USER: ("A2", "B1"),  # a neighbour at the same reseller, and a stranger
    Caller.DISTRIBUTOR_USER: ("A2", "B1"),  # a customer without distributor, another's
    Caller.DISTRIBUTOR_KEY: ("A2", "B1"),
    Caller.DISTRIBUTOR_READ_KEY: ("A2", "B1"),
}

#: Every customer each caller may see: the lists must hold exactly these.
VISIBLE: dict[Caller, tuple[str, ...]] = {
    Caller.ANONYMOUS: (),
    Caller.PROVIDER_ADMIN: ("A1", "A2", "B1", "P1"),
    Caller.RESELLER_KEY: ("A1", "A2"),
    Caller.READ_KEY: ("A1", "A2"),
    Caller.RESELLER_USER: ("A1", "A2"),
    Caller.CUSTOMER_USER: ("A1",),
    Caller.DISTRIBUTOR_USER: ("A1",),
    Caller.DISTRIBUTOR_KEY: ("A1",),
    Caller.DISTRIBUTOR_READ_KEY: ("A1",),
}

#: What each caller must never be shown even of the customers it sees: a distributor sees
#: none of its customers' books, so neither their charges nor their cards nor the payments
#: others recorded (only the cash it collected itself, ``collected_payment``).
BLIND_TO: dict[Caller, tuple[str, ...]] = dict.fromkeys(
    DISTRIBUTORS,
    (
        "invoiced_charge",
        "waiting_charge",
        "cash_payment",
        "card",
        "card_payment",
        "voidable_payment",
        "flagged_payment",
        "bitcoin_address",
        "bitcoin_payment",
        "bitcoin_payment_record",
    ),
)

#: Each owner's wallet key (a key serves one owner only): by the first letter of a side.
BITCOIN_KEYS = {"A": TESTNET_UPUB, "B": TESTNET_TPUB, "P": TESTNET_VPUB, "g": TESTNET_VPUB}


# --- the world -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One customer and everything of it, as the API's global ids."""

    label: str
    name: str
    email: str
    reseller: str | None
    customer_class: str
    distributor: str | None
    customer: str
    account: str
    invoiced_charge: str
    waiting_charge: str
    invoice: str
    cash_payment: str
    card: str
    card_payment: str
    voidable_payment: str
    #: A payment kassa flagged for an administrator, not yet reviewed.
    flagged_payment: str
    run_failure: str
    #: The customer's receiving address (a string, not an id, but just as private).
    bitcoin_address: str
    #: A payment to it below the minimum, waiting for an administrator to credit it, and
    #: its payment record (method BITCOIN).
    bitcoin_payment: str
    bitcoin_payment_record: str
    #: Cash the side's distributor collected from it (None for a side without one): the one
    #: payment the distributor sees.
    collected_payment: str | None
    #: Its distributor's failed invoicing run (None for a side without one).
    distributor_failure: str | None
    #: An API key of its distributor, made by the distributor's administrator (None for a
    #: side without one).
    distributor_key: str | None
    #: A processor account of the side's owner (the provider's or its reseller's), made
    #: after the side's card so the card went through the default processor.
    processor_account: str
    #: A cash-terminal network of the side's owner (a processor account that takes no card).
    terminal_network: str

    def ids(self) -> set[str]:
        """Every global id of this side (what must not leak when the side is hidden)."""
        return {
            value
            for item in fields(self)
            if item.name not in ("label", "name", "email")
            and (value := getattr(self, item.name)) is not None
        }

    @property
    def payments(self) -> set[str]:
        recorded = {
            self.cash_payment,
            self.card_payment,
            self.voidable_payment,
            self.flagged_payment,
            self.bitcoin_payment_record,
        }
        return recorded if self.collected_payment is None else recorded | {self.collected_payment}


def _customer_name(label: str) -> str:
    return f"Matrix customer {label}"


def _ghost() -> Side:
    """Ids of the right types that exist nowhere: what "not found" looks like."""
    missing = 999_999
    return Side(
        label="ghost",
        name=_customer_name("ghost"),
        email="ghost@matrix.example",
        reseller=encode_id("Reseller", missing),
        customer_class=encode_id("CustomerClass", missing),
        distributor=encode_id("Distributor", missing),
        customer=encode_id("Customer", missing),
        account=encode_id("Account", missing),
        invoiced_charge=encode_id("Charge", missing),
        waiting_charge=encode_id("Charge", missing + 1),
        invoice=encode_id("Invoice", missing),
        cash_payment=encode_id("Payment", missing),
        card=encode_id("PaymentMethod", missing),
        card_payment=encode_id("Payment", missing + 1),
        voidable_payment=encode_id("Payment", missing + 2),
        flagged_payment=encode_id("Payment", missing + 5),
        run_failure=encode_id("RunFailure", missing),
        bitcoin_address="tb1qghost",
        bitcoin_payment=encode_id("BitcoinPayment", missing),
        bitcoin_payment_record=encode_id("Payment", missing + 3),
        collected_payment=encode_id("Payment", missing + 4),
        distributor_failure=encode_id("RunFailure", missing + 1),
        distributor_key=encode_id("ApiKey", missing),
        processor_account=encode_id("ProcessorAccount", missing),
        terminal_network=encode_id("ProcessorAccount", missing + 1),
    )


GHOST = _ghost()


@dataclass(frozen=True)
class World:
    sides: dict[str, Side]
    reseller_a: int
    customer_a1: int
    distributor_a: int


async def _make_side(
    db: Database,
    label: str,
    reseller: Reseller | None,
    customer_class: CustomerClass,
    distributor: Distributor | None,
) -> Side:
    """A customer with one of everything, made through the services as the provider would.

    The objects are in the state in which every mutation of the matrix would succeed: an
    open invoice, a default card, refundable and voidable payments, an uninvoiced charge.  So
    when a caller is refused, the refusal is the authorisation's doing, not the state's.
    """
    admin = admin_viewer()
    async with db.transaction() as session:
        customer = await create_customer(
            session,
            admin,
            CustomerInput(
                name=_customer_name(label),
                email=f"{label.lower()}@matrix.example",
                currency="USD",
                time_zone="UTC",
                reseller_id=None if reseller is None else reseller.id,
                class_id=customer_class.id,
                distributor_id=None if distributor is None else distributor.id,
            ),
        )
        account = await create_account(session, admin, customer.id, f"ACC-{label}", "Mobile")
        invoiced = await post_charge(
            session,
            admin,
            ChargeInput(
                account.id, ChargeKind.USAGE, "Calls", 3000, "USD", f"world-{label}-invoiced"
            ),
        )
        invoice = await close_period_out_of_turn(session, admin, customer.id)
        cash = await record_payment(
            session, admin, customer.id, 500, "USD", PaymentChannel.CASH, f"world-{label}-cash"
        )
        card = await add_card(session, admin, customer.id, card_details())
        card_payment = await pay_with_payment_method(
            within(session), admin, customer.id, 500, invoice.id, None, f"world-{label}-card"
        )
        voidable = await record_payment(
            session,
            admin,
            customer.id,
            100,
            "USD",
            PaymentChannel.CASH,
            f"world-{label}-voidable",
        )
        flagged = await record_payment(
            session, admin, customer.id, 100, "USD", PaymentChannel.WIRE, f"world-{label}-flagged"
        )
        flagged.flagged_reason = "the bank reported another amount"
        waiting = await post_charge(
            session,
            admin,
            ChargeInput(
                account.id, ChargeKind.USAGE, "Calls", 200, "USD", f"world-{label}-waiting"
            ),
        )
        # As a collection run records an invoice it could not charge.
        failure = RunFailure(
            kind=RunKind.COLLECTION,
            customer_id=customer.id,
            invoice_id=invoice.id,
            code="INTERNAL_ERROR",
            message="An internal error (RuntimeError); the server log has details.",
            attempts=1,
            first_seen_at=T0,
            last_seen_at=T0,
            next_retry_at=T0 + timedelta(minutes=15),
        )
        session.add(failure)
        await session.flush()
        bitcoin_address = await request_address(session, admin, customer.id)
        bitcoin_payment = await _below_minimum_payment(session, customer, bitcoin_address, label)
        # As the distributor invoicing run records a distributor it could not invoice.
        distributor_failure = None
        if distributor is not None:
            distributor_failure = RunFailure(
                kind=RunKind.DISTRIBUTOR_BILLING,
                distributor_id=distributor.id,
                code="INVALID_TIME_ZONE",
                message="Unknown time zone.",
                attempts=1,
                first_seen_at=T0,
                last_seen_at=T0,
                next_retry_at=T0 + timedelta(minutes=15),
            )
            session.add(distributor_failure)
            await session.flush()
        distributor_key = (
            None
            if distributor is None
            else (
                await create_api_key(
                    session, f"Till {label}", ApiKeyScope.READ, distributor_id=distributor.id
                )
            )[0]
        )
        processor_account = await create_processor_account(
            session,
            admin,
            ProcessorAccountInput(
                name=f"Matrix {label}",
                processor="simulator",
                credentials={"webhook_secret": f"secret-{label}"},
                minimums=[("USD", "0")],
                method_kinds=[MethodKind.VISA, MethodKind.MASTERCARD],
            ),
            None if reseller is None else reseller.id,
        )
        terminal_network = await create_processor_account(
            session,
            admin,
            ProcessorAccountInput(
                name=f"Kiosks {label}",
                processor="cash_terminal",
                credentials={"signing_secret": f"kiosk-secret-{label}"},
                minimums=[("USD", "0")],
                method_kinds=[],
            ),
            None if reseller is None else reseller.id,
        )
        collected = (
            None
            if distributor is None
            else await record_payment(
                session,
                distributor_viewer(distributor.id),
                customer.id,
                200,
                "USD",
                PaymentChannel.CASH,
                f"world-{label}-collected",
            )
        )
    return Side(
        label=label,
        name=customer.name,
        email=customer.email or "",
        reseller=None if reseller is None else encode_id("Reseller", reseller.id),
        customer_class=encode_id("CustomerClass", customer_class.id),
        distributor=None if distributor is None else encode_id("Distributor", distributor.id),
        customer=encode_id("Customer", customer.id),
        account=encode_id("Account", account.id),
        invoiced_charge=encode_id("Charge", invoiced.id),
        waiting_charge=encode_id("Charge", waiting.id),
        invoice=encode_id("Invoice", invoice.id),
        cash_payment=encode_id("Payment", cash.id),
        card=encode_id("PaymentMethod", card.id),
        card_payment=encode_id("Payment", card_payment.id),
        voidable_payment=encode_id("Payment", voidable.id),
        flagged_payment=encode_id("Payment", flagged.id),
        run_failure=encode_id("RunFailure", failure.id),
        bitcoin_address=bitcoin_address.address,
        bitcoin_payment=encode_id("BitcoinPayment", bitcoin_payment.id),
        bitcoin_payment_record=encode_id("Payment", bitcoin_payment.payment_id),
        collected_payment=None if collected is None else encode_id("Payment", collected.id),
        distributor_failure=(
            None if distributor_failure is None else encode_id("RunFailure", distributor_failure.id)
        ),
        distributor_key=(
            None if distributor_key is None else encode_id("ApiKey", distributor_key.id)
        ),
        processor_account=encode_id("ProcessorAccount", processor_account.id),
        terminal_network=encode_id("ProcessorAccount", terminal_network.id),
    )


async def _below_minimum_payment(
    session: AsyncSession, customer: Customer, address: BitcoinAddress, label: str
) -> BitcoinPayment:
    """A confirmed payment to ``address`` below the minimum, as a scan leaves it."""
    rate = await latest_rate(session, customer.reseller_id, "USD", T0)
    assert rate is not None
    payment = Payment(
        customer_id=customer.id,
        method=PaymentChannel.BITCOIN,
        amount=to_minor(5_000, rate.minor_per_btc),
        currency="USD",
        refunded_amount=0,
        status=PaymentStatus.PENDING,
        received_at=T0,
    )
    session.add(payment)
    await session.flush()
    row = BitcoinPayment(
        payment_id=payment.id,
        address_id=address.id,
        customer_id=customer.id,
        txid=hashlib.sha256(label.encode()).hexdigest(),
        vout=0,
        satoshis=5_000,
        confirmations=1,
        rate_id=rate.id,
        minor_per_btc=rate.minor_per_btc,
        state=BitcoinPaymentState.BELOW_MINIMUM,
        flag="BELOW_MINIMUM",
        first_seen_at=T0,
    )
    session.add(row)
    await session.flush()
    return row


async def build_world(db: Database) -> World:
    """Resellers A and B and the provider, each with a class and a distributor; four sides."""
    async with db.transaction() as session:
        await clock.freeze(session, T0)
        reseller_a = await make_reseller(session, "Reseller A")
        reseller_b = await make_reseller(session, "Reseller B")
        class_a = await create_customer_class(session, admin_viewer(reseller_a.id), "A", 14, 7)
        class_b = await create_customer_class(session, admin_viewer(reseller_b.id), "B", 14, 7)
        class_p = await create_customer_class(session, admin_viewer(), "Provider", 14, 7)
        distributors = [
            await make_distributor(
                session,
                f"Distributor {name}",
                reseller_id=None if owner is None else owner.id,
                credit_limit=100_000,
                sales_commission_bps=1500,
                payment_commission_bps=1000,
            )
            for name, owner in (("A", reseller_a), ("B", reseller_b), ("P", None))
        ]
        await create_user(session, SIGN_IN_EMAIL, PASSWORD, Role.ADMIN)
        for owner, letter in ((reseller_a, "A"), (reseller_b, "B"), (None, "P")):
            await set_wallet(
                session,
                admin_viewer(None if owner is None else owner.id),
                WalletInput(BITCOIN_KEYS[letter], fixed_rates=[("USD", "65000.00")]),
            )
    distributor_a, distributor_b, distributor_p = distributors
    sides = {
        "A1": await _make_side(db, "A1", reseller_a, class_a, distributor_a),
        "A2": await _make_side(db, "A2", reseller_a, class_a, None),
        "B1": await _make_side(db, "B1", reseller_b, class_b, distributor_b),
        "P1": await _make_side(db, "P1", None, class_p, distributor_p),
    }
    customer_a1 = decode_id(sides["A1"].customer, "Customer")
    return World(sides, reseller_a.id, customer_a1, distributor_a.id)


async def sign_in_as(caller: Caller, http: httpx.AsyncClient, db: Database, world: World) -> Api:
    """An API client holding the caller's credentials: an API key or a ``signIn`` token."""
    keys = {
        Caller.RESELLER_KEY: (ApiKeyScope.READ_WRITE, {"reseller_id": world.reseller_a}),
        Caller.READ_KEY: (ApiKeyScope.READ, {"reseller_id": world.reseller_a}),
        Caller.DISTRIBUTOR_KEY: (ApiKeyScope.READ_WRITE, {"distributor_id": world.distributor_a}),
        Caller.DISTRIBUTOR_READ_KEY: (ApiKeyScope.READ, {"distributor_id": world.distributor_a}),
    }
    if caller == Caller.ANONYMOUS:
        return Api(http)
    if caller in keys:
        scope, owner = keys[caller]
        async with db.transaction() as session:
            _, token = await create_api_key(session, "Matrix partner", scope, **owner)
        return Api(http, token)
    links: dict[Caller, tuple[Role, dict[str, int]]] = {
        Caller.PROVIDER_ADMIN: (Role.ADMIN, {}),
        Caller.RESELLER_USER: (Role.RESELLER, {"reseller_id": world.reseller_a}),
        Caller.CUSTOMER_USER: (Role.CUSTOMER, {"customer_id": world.customer_a1}),
        Caller.DISTRIBUTOR_USER: (Role.DISTRIBUTOR, {"distributor_id": world.distributor_a}),
    }
    role, link = links[caller]
    email = f"{caller.value}@matrix.example"
    async with db.transaction() as session:
        await create_user(session, email, PASSWORD, role, **link)
    payload = await Api(http).mutate("signIn", {"email": email, "password": PASSWORD}, "token")
    http.cookies.clear()  # the bearer token alone must carry the caller
    assert payload["errors"] == [] and payload["token"], payload
    return Api(http, payload["token"])


# --- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What an expectation needs to know about the caller running it."""

    caller: Caller
    me: Side
    visible: tuple[Side, ...]


#: Builds an operation's variables from the caller's own side and the side targeted (the
#: same side for the "own" run); ``None`` when the target has nothing to aim at.
Variables = Callable[[Side, Side, str], dict[str, Any] | None]
#: Checks a successful own-side answer; returns what is wrong, or None.
Expectation = Callable[[Any, Scope], str | None]


@dataclass(frozen=True)
class Operation:
    """One row: a root field, how to call it, and who may call it on their own objects."""

    field: str
    document: str
    variables: Variables
    allowed: frozenset[Caller]
    mutation: bool
    variant: str = ""
    #: False for rows with no object to aim at (lists, creations, the clock).
    against_others: bool = True
    #: Callers to whom their own side's object is someone else's: it answers exactly like
    #: one that does not exist (a distributor and the payments it did not record).
    not_found_for: frozenset[Caller] = frozenset()
    #: Mutations: the payload field holding the object.
    returns: str | None = None
    #: Mutations: the attribute of the own side the returned object must be.
    result_is: str | None = None
    #: Mutations: the payload error codes an allowed run answers (public mutations fed a
    #: credential nobody has: not refused at the top level, but not done either).
    own_errors: tuple[str, ...] = ()
    expect: Expectation | None = None

    @property
    def name(self) -> str:
        return f"{self.field}[{self.variant}]" if self.variant else self.field


def query(
    field: str,
    document: str,
    variables: Variables,
    allowed: frozenset[Caller],
    *,
    variant: str = "",
    against_others: bool = True,
    not_found_for: frozenset[Caller] = frozenset(),
    expect: Expectation | None = None,
) -> Operation:
    return Operation(
        field,
        document,
        variables,
        allowed,
        mutation=False,
        variant=variant,
        against_others=against_others,
        not_found_for=not_found_for,
        expect=expect,
    )


def mutation(
    field: str,
    returns: str | None,
    selection: str,
    input_of: Callable[[Side, Side, str], dict[str, Any] | None],
    allowed: frozenset[Caller],
    *,
    variant: str = "",
    against_others: bool = True,
    result_is: str | None = None,
    own_errors: tuple[str, ...] = (),
    not_found_for: frozenset[Caller] = frozenset(),
) -> Operation:
    """A mutation taking one ``input`` and answering ``{returns {selection} errors}`` (just
    ``{errors}`` when ``returns`` is None)."""
    answer = "" if returns is None else f"{returns} {{ {selection} }} "
    document = (
        f"mutation($input: {field[0].upper()}{field[1:]}Input!) {{ {field}(input: $input)"
        f" {{ {answer}errors {{ field code message }} }} }}"
    )

    def variables(me: Side, target: Side, unique: str) -> dict[str, Any] | None:
        given = input_of(me, target, unique)
        return None if given is None else {"input": given}

    return Operation(
        field,
        document,
        variables,
        allowed,
        mutation=True,
        variant=variant,
        against_others=against_others,
        returns=returns,
        result_is=result_is,
        own_errors=own_errors,
        not_found_for=not_found_for,
    )


def _no_variables(me: Side, target: Side, unique: str) -> dict[str, Any]:
    return {}


def _id_of(attribute: str) -> Variables:
    """``{"id": <the target's attribute>}``; None when the target has no such object."""

    def variables(me: Side, target: Side, unique: str) -> dict[str, Any] | None:
        value = getattr(target, attribute)
        return None if value is None else {"id": value}

    return variables


def _node_ids(connection: dict[str, Any]) -> set[str]:
    return {edge["node"]["id"] for edge in connection["edges"]}


def _exact_page(expected: Callable[[Scope], set[str]]) -> Expectation:
    """A list holds exactly the caller's scope, and its totalCount counts nothing else."""

    def check(connection: dict[str, Any], scope: Scope) -> str | None:
        ids = _node_ids(connection)
        if ids != expected(scope):
            return f"listed {sorted(ids)}, expected {sorted(expected(scope))}"
        if connection["totalCount"] != len(ids):
            return f"totalCount {connection['totalCount']} but {len(ids)} items in scope"
        return None

    return check


def _contains(required: Callable[[Scope], set[str]], root: Callable[[Scope], str]) -> Expectation:
    """The object asked for, with (at least) the caller's own children beneath it."""

    def check(value: dict[str, Any], scope: Scope) -> str | None:
        if value.get("id") != root(scope):
            return f"answered {value.get('id')}, expected {root(scope)}"
        missing = required(scope) - set(_strings(value))
        return f"missing own objects {sorted(missing)}" if missing else None

    return check


def _payments_seen(scope: Scope) -> set[str]:
    """Every payment of the customers the caller sees; a distributor's: the cash it
    collected itself."""
    if scope.caller in DISTRIBUTORS:
        return {s.collected_payment for s in scope.visible if s.collected_payment is not None}
    return set().union(*(s.payments for s in scope.visible))


def _own_classes(value: dict[str, Any], scope: Scope) -> str | None:
    ids = _node_ids(value)
    if scope.me.customer_class not in ids:
        return f"own class {scope.me.customer_class} not listed: {sorted(ids)}"
    if value["totalCount"] != len(ids):
        return f"totalCount {value['totalCount']} but {len(ids)} classes listed"
    return None


def _card_payment(value: dict[str, Any], scope: Scope) -> str | None:
    if value["id"] != scope.me.card_payment or value["invoice"]["id"] != scope.me.invoice:
        return f"not the caller's card payment for its invoice: {value}"
    card = value["paymentMethod"]
    if card is None or card["id"] != scope.me.card:
        return f"the card charged is missing: {value}"
    return None


def _statement(value: dict[str, Any], scope: Scope) -> str | None:
    """The caller's own customer, whose ledger transactions add up to its balance."""
    if value["id"] != scope.me.customer:
        return f"answered {value['id']}, expected {scope.me.customer}"
    statement = value["ledgerTransactions"]
    amounts = [Decimal(edge["node"]["amount"]["amount"]) for edge in statement["edges"]]
    if statement["totalCount"] != len(amounts) or not amounts:
        return f"totalCount {statement['totalCount']} but {len(amounts)} transactions listed"
    if sum(amounts) != Decimal(value["balance"]["amount"]):
        return f"the transactions add up to {sum(amounts)}, the balance is {value['balance']}"
    return None


def _letterhead_of(me: Side, target: Side, unique: str) -> dict[str, Any] | None:
    """The target's owner as ``$r``: the caller's own (None for the provider) or a stranger
    reseller; a side of the caller's own owner, but not the caller's, has nothing to aim at."""
    if target is not me and target.reseller in (None, me.reseller):
        return None
    return {"r": target.reseller}


def _bitcoin_wallet_of(me: Side, target: Side, unique: str) -> dict[str, Any] | None:
    """The target owner's settings, with that owner's own key."""
    aimed = _letterhead_of(me, target, unique)
    if aimed is None:
        return None
    rates = [{"currency": "USD", "price": "65000.00"}]
    key = BITCOIN_KEYS[target.label[0]]
    return {"resellerId": aimed["r"], "accountKey": key, "fixedRates": rates}


def _own_letterhead(value: dict[str, Any], scope: Scope) -> str | None:
    """The letterhead of the owner that bills the caller's side."""
    if value["resellerId"] != scope.me.reseller:
        return f"the letterhead of {value['resellerId']}, expected {scope.me.reseller}"
    return None


#: What ``viewer`` says each caller is: its kind of credential and the scope it acts in.
VIEWER_KINDS = {
    Caller.ANONYMOUS: ("ANONYMOUS", "READ_WRITE"),
    Caller.RESELLER_KEY: ("API_KEY", "READ_WRITE"),
    Caller.READ_KEY: ("API_KEY", "READ"),
    Caller.DISTRIBUTOR_KEY: ("API_KEY", "READ_WRITE"),
    Caller.DISTRIBUTOR_READ_KEY: ("API_KEY", "READ"),
}


def _viewer(value: dict[str, Any], scope: Scope) -> str | None:
    signed_in = scope.caller != Caller.ANONYMOUS
    kind = VIEWER_KINDS.get(scope.caller, ("USER", "READ_WRITE"))
    own = scope.me.distributor if scope.caller in DISTRIBUTORS else None
    distributor = (value["distributor"] or {}).get("id")
    if value["authenticated"] is signed_in and (value["kind"], value["scope"]) == kind:
        return None if distributor == own else f"viewer.distributor is {distributor}"
    return f"viewer says {value}"


def _of_distributor(make: Callable[[Side], dict[str, Any]]) -> Variables:
    """Variables aimed at the target's distributor (None for a side without one)."""
    return lambda me, target, unique: None if target.distributor is None else make(target)


def _own_distributor(value: dict[str, Any], scope: Scope) -> str | None:
    if value["id"] != scope.me.distributor:
        return f"answered {value['id']}, expected {scope.me.distributor}"
    lines = value["transactionsCsv"].splitlines()
    if not lines or not lines[0].startswith("date,kind,customer"):
        return f"no CSV header: {value['transactionsCsv'][:80]!r}"
    return None


@cache
def _sdl_schema() -> GraphQLSchema:
    return build_schema(str(strawberry_schema))


# --- what a distributor sees of its own customers ------------------------------------------


@dataclass(frozen=True)
class Reach:
    """Objects of one type a distributor reaches from its own customer, and what it sees of
    them: every field of the type is in ``sees`` or ``refused`` (answered ``FORBIDDEN``)."""

    #: The type whose field leads here (None for ``Customer`` itself) and that field, with
    #: its arguments.
    parent: str | None
    through: str
    sees: frozenset[str]
    refused: frozenset[str] = frozenset()


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: The rule of ``access.sees_books``, field by field: what a distributor needs to sell and
#: collect cash — profile and contact details, accounts, balance, available funds, and each
#: invoice's number, dates, status and what it still needs, and the payments it recorded
#: itself — and not the customer's books: charges, invoice amounts, lines and PDFs, card
#: attempts, payments others recorded, cards, the ledger.  Types reached only through
#: refused fields (Charge, PaymentMethod, …) are out of a distributor's reach altogether.  ``docs/graphql.md`` says the same.
DISTRIBUTOR_SEES: dict[str, Reach] = {
    "Customer": Reach(
        None,
        "customer(id: $id)",
        sees=_names(
            "id name email phone address currency timeZone billingPeriod billingAnchor "
            "periodStart nextBillAt creditLimit status autoPayment createdAt updatedAt "
            "balance availableFunds customerClass accounts invoices statusChanges payments"
        ),
        refused=_names(
            "charges ledgerTransactions paymentMethods bitcoinAddress bitcoinAddresses "
            "bitcoinPaymentRequest bitcoinPayments cardForm cashSlip cashSlipOffered"
        ),
    ),
    "CustomerClass": Reach(
        "Customer",
        "customerClass",
        sees=_names(
            "id name paymentTermsDays gracePeriodDays issueEmptyInvoices createdAt "
            "regularInvoices outOfTurnInvoices"
        ),
    ),
    "CollectionSettings": Reach(
        "CustomerClass",
        "regularInvoices",
        sees=_names(
            "paymentTermsDays gracePeriodDays cardCharging attemptDaysBeforeDue "
            "attemptDaysAfterDue reviewInvoices"
        ),
    ),
    "StatusChange": Reach(
        "Customer",
        "statusChanges",
        sees=frozenset({"at", "fromStatus", "toStatus", "cause"}),
        refused=frozenset({"causedById"}),  # the id of the payment that caused it
    ),
    "Account": Reach(
        "Customer",
        "accounts",
        sees=frozenset({"id", "number", "product", "status", "createdAt", "customer"}),
        refused=frozenset({"charges"}),
    ),
    "Invoice": Reach(
        "Customer",
        "invoices(first: 100)",
        sees=_names(
            "id number kind status currency periodStart periodEnd issueDate dueDate "
            "outstanding createdAt voidedAt customer"
        ),
        refused=_names(
            "previousBalance paymentsInPeriod total amountPaid balanceDue voidReason "
            "notChargedReason lines pdfUrl attempts nextAttemptAt statusChanges payments"
        ),
    ),
    # Only the cash it collected itself is listed to it (the list is scoped, not the fields).
    "Payment": Reach(
        "Customer",
        "payments(first: 100)",
        sees=_names("id method amount status reference receivedAt distributorCommission customer"),
        refused=_names(
            "refundedAmount processor declineCode message invoice paymentMethod actionUrl "
            "flaggedReason flagReviewedAt flagReviewNote processorAccount"
        ),
    ),
}


def _field_type(type_name: str, field_name: str) -> str:
    parent = _sdl_schema().type_map[type_name]
    assert isinstance(parent, GraphQLObjectType)
    name: str = get_named_type(parent.fields[field_name].type).name
    return name


def _leaf_selection(type_name: str, field_name: str) -> str:
    """``field`` with the least selection it needs: none for scalars, ``{ amount currency }``
    for money, ``{ __typename }`` for any other object."""
    target = _sdl_schema().type_map[_field_type(type_name, field_name)]
    if not isinstance(target, GraphQLObjectType):
        return field_name
    return f"{field_name} {{ {'amount currency' if target.name == 'Money' else '__typename'} }}"


def _distributor_view(type_name: str) -> str:
    """Everything a distributor sees of ``type_name``, and below it, as one selection."""
    parts = []
    for name in sorted(DISTRIBUTOR_SEES[type_name].sees):
        child = next(
            (
                child
                for child, reach in DISTRIBUTOR_SEES.items()
                if reach.parent == type_name and reach.through.split("(")[0] == name
            ),
            None,
        )
        if child is None:
            parts.append(_leaf_selection(type_name, name))
        else:
            parts.append(f"{DISTRIBUTOR_SEES[child].through} {{ {_distributor_view(child)} }}")
    return " ".join(parts)


def _one_field(type_name: str, field_name: str) -> str:
    """A query reaching ``type_name`` from the customer ``$id`` and selecting one field."""
    selection = _leaf_selection(type_name, field_name)
    reach: Reach | None = DISTRIBUTOR_SEES[type_name]
    while reach is not None:
        selection = f"{reach.through} {{ {selection} }}"
        reach = None if reach.parent is None else DISTRIBUTOR_SEES[reach.parent]
    return f"query($id: ID!) {{ {selection} }}"


PAGE = "totalCount edges { node { id } }"
PAYMENT_FIELDS = "id status customer { id } invoice { id } paymentMethod { id last4 }"
CUSTOMER_DEEP = f"""query($id: ID!) {{ customer(id: $id) {{
    id name email statusChanges {{ toStatus cause causedById }}
    customerClass {{ id name issueEmptyInvoices
                     regularInvoices {{ cardCharging attemptDaysAfterDue }}
                     outOfTurnInvoices {{ cardCharging reviewInvoices }} }}
    accounts {{ id number customer {{ id }} charges(first: 100) {{ {PAGE} }} }}
    charges(first: 100) {{ totalCount edges {{ node {{ id account {{ id }} }} }} }}
    invoices(first: 100) {{ id number customer {{ id }} lines {{ id }}
                            payments {{ payment {{ {PAYMENT_FIELDS} }} }}
                            attempts {{ id status payment {{ {PAYMENT_FIELDS} }} }}
                            statusChanges {{ toStatus cause causedById }} }}
    payments(first: 100) {{ {PAYMENT_FIELDS} }}
}} }}"""


def _whole_side(scope: Scope) -> set[str]:
    me = scope.me
    return {
        me.customer_class,
        me.account,
        me.invoiced_charge,
        me.waiting_charge,
        me.invoice,
        *me.payments,
    }


def _card(amount: str = "1.00") -> Callable[[Side, Side, str], dict[str, Any]]:
    return lambda me, target, unique: {
        "customerId": target.customer,
        "amount": amount,
        "idempotencyKey": f"matrix-{unique}",
    }


OPERATIONS: tuple[Operation, ...] = (
    # --- queries: run first, on the untouched world, so lists can be checked exactly ---
    query(
        "viewer",
        "query { viewer { authenticated kind role scope resellerId customerId distributorId "
        "distributor { id balance { amount } } } }",
        _no_variables,
        EVERYONE,
        against_others=False,
        expect=_viewer,
    ),
    query(
        "customer",
        CUSTOMER_DEEP,
        _id_of("customer"),
        SEES_BOOKS,
        expect=_contains(_whole_side, lambda scope: scope.me.customer),
    ),
    query(
        "customer",
        f"query($id: ID!) {{ customer(id: $id) {{ {_distributor_view('Customer')} }} }}",
        _id_of("customer"),
        SIGNED_IN,
        variant="distributor's view",
        expect=_contains(
            lambda scope: (
                {scope.me.customer_class, scope.me.account, scope.me.invoice}
                | _payments_seen(Scope(scope.caller, scope.me, (scope.me,)))
            ),
            lambda scope: scope.me.customer,
        ),
    ),
    query(
        "customer",
        "query($id: ID!) { customer(id: $id) { id paymentMethods { id last4 isDefault } } }",
        _id_of("customer"),
        SELF_OR_STAFF,
        variant="paymentMethods",
        expect=_contains(lambda scope: {scope.me.card}, lambda scope: scope.me.customer),
    ),
    # A statement shows every movement of the customer's money: not for its distributor.
    query(
        "customer",
        "query($id: ID!) { customer(id: $id) { id balance { amount } "
        "ledgerTransactions(first: 100) { totalCount edges { node { id kind description "
        "createdAt amount { amount currency } } } } } }",
        _id_of("customer"),
        SELF_OR_STAFF,
        variant="ledgerTransactions",
        expect=_statement,
    ),
    query(
        "customers",
        f"query {{ customers(first: 100) {{ {PAGE} }} }}",
        _no_variables,
        SIGNED_IN,
        against_others=False,
        expect=_exact_page(lambda scope: {side.customer for side in scope.visible}),
    ),
    query(
        "customers",
        f"query($q: String!) {{ customers(first: 100, search: $q) {{ {PAGE} }} }}",
        lambda me, target, unique: {"q": target.name},
        SIGNED_IN,
        variant="search",
        expect=_exact_page(lambda scope: {scope.me.customer}),
    ),
    query(
        "customers",
        f"query($q: String!) {{ customers(first: 100, email: $q) {{ {PAGE} }} }}",
        lambda me, target, unique: {"q": target.email},
        SIGNED_IN,
        variant="email",
        expect=_exact_page(lambda scope: {scope.me.customer}),
    ),
    query(
        "runFailures",
        "query { runFailures(first: 100) { totalCount edges { node { id kind code message "
        "attempts nextRetryAt resolvedAt customer { id } invoice { id } "
        "distributor { id name } } } } }",
        _no_variables,
        STAFF,
        against_others=False,
        expect=_exact_page(
            lambda scope: (
                {side.run_failure for side in scope.visible}
                | {
                    s.distributor_failure
                    for s in scope.visible
                    if s.distributor_failure is not None
                }
            )
        ),
    ),
    query(
        "runFailures",
        f"query($c: ID!) {{ runFailures(first: 100, customerId: $c) {{ {PAGE} }} }}",
        lambda me, target, unique: {"c": target.customer},
        STAFF,
        variant="customerId",
        expect=_exact_page(lambda scope: {scope.me.run_failure}),
    ),
    query(
        "customerClasses",
        f"query {{ customerClasses(first: 100) {{ {PAGE} }} }}",
        _no_variables,
        STAFF,
        against_others=False,
        expect=_own_classes,
    ),
    query(
        "account",
        f"query($id: ID!) {{ account(id: $id) {{ {_distributor_view('Account')} }} }}",
        _id_of("account"),
        SIGNED_IN,
        variant="distributor's view",
        expect=_contains(lambda scope: set(), lambda scope: scope.me.account),
    ),
    query(
        "account",
        """query($id: ID!) { account(id: $id) { id number customer { id }
            charges(first: 100) { totalCount edges { node { id account { id } } } } } }""",
        _id_of("account"),
        SEES_BOOKS,
        expect=_contains(
            lambda scope: {scope.me.invoiced_charge, scope.me.waiting_charge},
            lambda scope: scope.me.account,
        ),
    ),
    query(
        "invoice",
        f"""query($id: ID!) {{ invoice(id: $id) {{ id number customer {{ id }}
            pdfUrl voidReason lines {{ id description }} payments {{ amount {{ amount }}
            payment {{ {PAYMENT_FIELDS} }} }} nextAttemptAt notChargedReason
            attempts {{ id status amount {{ amount }} payment {{ id }} }}
            statusChanges {{ fromStatus toStatus cause causedById }} }} }}""",
        _id_of("invoice"),
        SEES_BOOKS,
        expect=_contains(
            lambda scope: {scope.me.card_payment, scope.me.cash_payment},
            lambda scope: scope.me.invoice,
        ),
    ),
    query(
        "invoices",
        "query { invoices(first: 100) { totalCount edges { node { id customer { id } } } } }",
        _no_variables,
        SIGNED_IN,
        against_others=False,
        expect=_exact_page(lambda scope: {side.invoice for side in scope.visible}),
    ),
    query(
        "invoices",
        f"query($c: ID!) {{ invoices(first: 100, customerId: $c) {{ {PAGE} }} }}",
        lambda me, target, unique: {"c": target.customer},
        SIGNED_IN,
        variant="customerId",
        expect=_exact_page(lambda scope: {scope.me.invoice}),
    ),
    query(
        "invoice",
        f"query($id: ID!) {{ invoice(id: $id) {{ {_distributor_view('Invoice')} }} }}",
        _id_of("invoice"),
        SIGNED_IN,
        variant="distributor's view",
        expect=_contains(lambda scope: set(), lambda scope: scope.me.invoice),
    ),
    # A distributor sees only the cash it collected: its customer's card payment is not
    # its own and answers like a missing one.
    query(
        "payment",
        f"query($id: ID!) {{ payment(id: $id) {{ {PAYMENT_FIELDS} }} }}",
        _id_of("card_payment"),
        SEES_BOOKS,
        not_found_for=DISTRIBUTORS,
        expect=_card_payment,
    ),
    query(
        "payment",
        f"query($id: ID!) {{ payment(id: $id) {{ {_distributor_view('Payment')} }} }}",
        _id_of("collected_payment"),
        SIGNED_IN,
        variant="collected by the distributor",
        expect=_contains(lambda scope: set(), lambda scope: scope.me.collected_payment or ""),
    ),
    query(
        "payments",
        f"query {{ payments(first: 100) {{ totalCount edges {{ node {{ "
        f"{_distributor_view('Payment')} }} }} }} }}",
        _no_variables,
        SIGNED_IN,
        against_others=False,
        expect=_exact_page(_payments_seen),
    ),
    query(
        "payments",
        f"query($c: ID!) {{ payments(first: 100, customerId: $c) {{ {PAGE} }} }}",
        lambda me, target, unique: {"c": target.customer},
        SIGNED_IN,
        variant="customerId",
        expect=_exact_page(
            lambda scope: _payments_seen(Scope(scope.caller, scope.me, (scope.me,)))
        ),
    ),
    # The letterhead on the caller's invoices: everyone signed in has one (its owner's).
    query(
        "letterhead",
        "query { letterhead { resellerId name address paymentInstructions } }",
        _no_variables,
        SIGNED_IN,
        against_others=False,
        expect=_own_letterhead,
    ),
    query(
        "letterhead",
        "query($r: ID) { letterhead(resellerId: $r) { resellerId name } }",
        _letterhead_of,
        SIGNED_IN,
        variant="resellerId",
        expect=_own_letterhead,
    ),
    query(
        "distributor",
        """query($id: ID!) { distributor(id: $id) { id name salesCommission balance { amount }
            availableCredit { amount } commissionThisPeriod { amount } customerClass { id }
            salePreview(amount: "10") { gross { amount } net { amount } exceedsCreditLimit }
            transactions(first: 100) { totalCount edges { node { id kind paymentId
            customer { id } } } } transactionsCsv
            invoices(first: 100) { totalCount edges { node { id number sales { net { amount } }
            collections { net { amount } } reversals { net { amount } } } } }
            billingFailure { code }
            commissionByPeriod(first: 3) { periodStart periodEnd commission { amount } }
            customers(first: 100) { totalCount edges { node { id name } } } } }""",
        _of_distributor(lambda target: {"id": target.distributor}),
        STAFF_OR_DISTRIBUTOR,
        expect=_own_distributor,
    ),
    query(
        "exchangeRates",
        "query { exchangeRates { from to rate updatedAt } }",
        _no_variables,
        STAFF,
        against_others=False,
    ),
    query(
        "distributors",
        f"query {{ distributors(first: 100) {{ {PAGE} }} }}",
        _no_variables,
        STAFF,
        against_others=False,
        expect=_exact_page(
            lambda scope: {s.distributor for s in scope.visible if s.distributor is not None}
        ),
    ),
    # API keys are managed by signed-in people, never by a key (``billing.api_keys``); the
    # world's keys are its distributors', one each.
    query(
        "apiKeys",
        "query { apiKeys(first: 100) { totalCount edges { node { id name prefix scope "
        "resellerId createdAt revokedAt distributor { id name } } } } }",
        _no_variables,
        KEY_MANAGERS,
        against_others=False,
        expect=_exact_page(
            lambda scope: {s.distributor_key for s in scope.visible if s.distributor_key}
        ),
    ),
    query(
        "apiKeys",
        "query($d: ID) { apiKeys(first: 100, distributorId: $d) { totalCount "
        "edges { node { id } } } }",
        _of_distributor(lambda target: {"d": target.distributor}),
        KEY_MANAGERS,
        variant="distributorId",
        expect=_exact_page(lambda scope: {scope.me.distributor_key or ""}),
    ),
    query(
        "distributorCommissionPreview",
        'query($c: ID!) { distributorCommissionPreview(customerId: $c, amount: "10") '
        "{ gross { amount } commission { amount } net { amount } exceedsCreditLimit } }",
        lambda me, target, unique: {"c": target.customer},
        STAFF_OR_DISTRIBUTOR,
        expect=lambda value, scope: (
            None if value["net"] == {"amount": "9.00"} else f"previewed {value}"
        ),
    ),
    # The Bitcoin settings name the owner's wallet: its administrators only.
    query(
        "bitcoinWallet",
        "query { bitcoinWallet { resellerId accountKey addressType minimumPayment { amount } "
        "fixedRates { currency price { amount } } priceEndpoints { currency url } "
        "addressesAllocated unfundedAddresses warnings } }",
        _no_variables,
        STAFF,
        against_others=False,
        expect=_own_letterhead,
    ),
    query(
        "bitcoinWallet",
        "query($r: ID) { bitcoinWallet(resellerId: $r) { resellerId accountKey "
        "flaggedPayments { customerId customerName payment { id state } } } }",
        _letterhead_of,
        STAFF,
        variant="resellerId",
        expect=_own_letterhead,
    ),
    # A customer's addresses are how it pays: the customer's and staff's, not a distributor's.
    query(
        "customer",
        "query($id: ID!) { customer(id: $id) { id bitcoinAddress { address network } "
        "bitcoinAddresses { address addressType createdAt firstFundedAt } "
        "bitcoinPaymentRequest { address uri qrCodeSvg amount { amount } rate { amount } "
        "rateFetchedAt minimumPayment { amount currency } confirmationsRequired } "
        "bitcoinPayments { id txid vout amount { amount } value { amount } state flag } } }",
        _id_of("customer"),
        SELF_OR_STAFF,
        variant="bitcoin",
        expect=_contains(lambda scope: {scope.me.bitcoin_address}, lambda scope: scope.me.customer),
    ),
    # A cash slip is how the customer pays: the customer's and staff's, not a distributor's
    # (the sides' accounts make no slips, so none is offered and none was made).
    query(
        "customer",
        "query($id: ID!) { customer(id: $id) { id cashSlipOffered cashSlip { "
        "paymentIdentifier whereToPay howToPay barcodeSvg pdfUrl amountDue { amount } } } }",
        _id_of("customer"),
        SELF_OR_STAFF,
        variant="cashSlip",
    ),
    query(
        "processorAccounts",
        "query { processorAccounts { id resellerId name processor mode baseUrl "
        "minimumPayments { amount currency } methodKinds enabled credentialsSet callbackPath "
        "createdAt updatedAt } }",
        _no_variables,
        STAFF,
        against_others=False,
        expect=lambda value, scope: (
            None
            if scope.me.processor_account in {a["id"] for a in value}
            else f"own account missing from {value}"
        ),
    ),
    query(
        "processorAccounts",
        "query($r: ID) { processorAccounts(resellerId: $r) { id resellerId name } }",
        _letterhead_of,
        STAFF,
        variant="resellerId",
    ),
    query(
        "processors",
        "query { processors { name capabilities methodKinds } }",
        _no_variables,
        STAFF,
        against_others=False,
    ),
    query(
        "processorFallback",
        "query($r: ID) { processorFallback(resellerId: $r) }",
        _letterhead_of,
        STAFF,
    ),
    # Direct-debit gateway billing: the sides' accounts are no gateways (none is listed, no
    # customer has enrolled) and no class is gateway-billed (no offer).
    query(
        "gatewayBillingAccounts",
        "query { gatewayBillingAccounts { processorAccountId name paidOn pollCursor "
        "lastPollAt lastPollError } }",
        _no_variables,
        STAFF,
        against_others=False,
    ),
    query(
        "gatewayEnrollments",
        "query { gatewayEnrollments { customerId accountReference status stopCode schedules "
        "{ externalIdentifier status history { status outcome timesSeen } } } }",
        _no_variables,
        STAFF,
        against_others=False,
    ),
    query(
        "directDebitOffer",
        "query($c: ID!) { directDebitOffer(customerId: $c) { billedByGateway gateway "
        "establishmentFee { amount currency } commissionPercent status "
        "paymentMethod { id last4 } } }",
        lambda me, target, unique: {"c": target.customer},
        SELF_OR_STAFF,
    ),
    # How a card is entered: the side's card account is the simulator's, which tokenizes on
    # the server (no script); a distributor is refused it like the cards themselves.
    query(
        "customer",
        "query($id: ID!) { customer(id: $id) { id cardForm { processor scriptUrl "
        "publicSettings { name value } } } }",
        _id_of("customer"),
        SELF_OR_STAFF,
        variant="cardForm",
    ),
    # A terminal network's day, for its owner's administrators (empty CSV with its header).
    query(
        "terminalReconciliation",
        'query($a: ID!) { terminalReconciliation(accountId: $a, date: "2026-01-15") }',
        lambda me, target, unique: {"a": target.terminal_network},
        STAFF,
    ),
    # The side's account is a card processor's: its own paymentOptions are an empty list.
    query(
        "paymentOptions",
        "query($c: ID!) { paymentOptions(customerId: $c) { processorAccountId name "
        "processor minimum { amount currency } } }",
        lambda me, target, unique: {"c": target.customer},
        SELF_OR_STAFF,
    ),
    query(
        "testClock",
        "query { testClock { now frozen running nextJobDueAt } }",
        _no_variables,
        SIGNED_IN,
        against_others=False,
    ),
    # --- mutations, in an order in which every allowed own-side run can succeed ---
    mutation(
        "signIn",
        "viewer",
        "authenticated role",
        lambda me, target, unique: {"email": SIGN_IN_EMAIL, "password": PASSWORD},
        EVERYONE,
        against_others=False,
    ),
    # Public: the address, or the token from the mail, is the credential.  An address with
    # no user answers like any other (and mails nothing); a made-up token is INVALID_TOKEN.
    mutation(
        "requestPasswordReset",
        None,
        "",
        lambda me, target, unique: {"email": "nobody@matrix.example"},
        EVERYONE,
        against_others=False,
    ),
    mutation(
        "resetPassword",
        None,
        "",
        lambda me, target, unique: {
            "token": f"not-a-reset-token-{unique}",
            "newPassword": "a new password",
        },
        EVERYONE,
        against_others=False,
        own_errors=("INVALID_TOKEN",),
    ),
    mutation(
        "createCustomer",
        "customer",
        "id name",
        lambda me, target, unique: {"name": f"Made by the matrix {unique}", "currency": "USD"},
        STAFF_OR_DISTRIBUTOR_WRITE,
        against_others=False,
    ),
    mutation(
        "createCustomer",
        "customer",
        "id name",
        lambda me, target, unique: (
            None
            if target.reseller is None
            else {
                "name": f"Made by the matrix {unique}",
                "currency": "USD",
                "resellerId": target.reseller,
            }
        ),
        STAFF_WRITE,
        variant="resellerId",
    ),
    mutation(
        "createCustomer",
        "customer",
        "id name",
        lambda me, target, unique: {
            "name": f"Made by the matrix {unique}",
            "currency": "USD",
            "classId": target.customer_class,
        },
        STAFF_WRITE,
        variant="classId",
    ),
    mutation(
        "createCustomer",
        "customer",
        "id name",
        lambda me, target, unique: (
            None
            if target.distributor is None
            else {
                "name": f"Made by the matrix {unique}",
                "currency": "USD",
                "distributorId": target.distributor,
            }
        ),
        STAFF_OR_DISTRIBUTOR_WRITE,  # a distributor naming itself
        variant="distributorId",
    ),
    mutation(
        "updateCustomer",
        "customer",
        "id phone",
        lambda me, target, unique: {"id": target.customer, "phone": "+1 555 0100"},
        SELF_OR_STAFF_WRITE,
        result_is="customer",
    ),
    # A customer changes its own contact details only: asking to change its own class or
    # distributor is refused (FORBIDDEN), not quietly dropped.
    mutation(
        "updateCustomer",
        "customer",
        "id customerClass { id }",
        lambda me, target, unique: {"id": me.customer, "classId": target.customer_class},
        STAFF_WRITE,
        variant="classId",
        result_is="customer",
    ),
    mutation(
        "updateCustomer",
        "customer",
        "id",
        lambda me, target, unique: (
            None
            if target.distributor is None
            else {"id": me.customer, "distributorId": target.distributor}
        ),
        STAFF_WRITE,
        variant="distributorId",
        result_is="customer",
    ),
    mutation(
        "createCustomerClass",
        "customerClass",
        "id",
        lambda me, target, unique: {"name": f"Class {unique}"},
        STAFF_WRITE,
        against_others=False,
    ),
    mutation(
        "updateCustomerClass",
        "customerClass",
        "id name",
        lambda me, target, unique: {"id": target.customer_class, "name": f"Class {unique}"},
        STAFF_WRITE,
        result_is="customer_class",
    ),
    mutation(
        "createReseller",
        "reseller",
        "id",
        lambda me, target, unique: {"name": f"Reseller {unique}"},
        PROVIDER_ONLY,
        against_others=False,
    ),
    # Rates are installation-wide: the provider's administrators set them, staff read them.
    mutation(
        "setExchangeRate",
        "exchangeRate",
        "from to rate",
        lambda me, target, unique: {"from": "EUR", "to": "USD", "rate": f"1.{unique}"},
        PROVIDER_ONLY,
        against_others=False,
    ),
    mutation(
        "createDistributor",
        "distributor",
        "id name",
        lambda me, target, unique: {"name": f"Matrix distributor {unique}", "currency": "USD"},
        STAFF_WRITE,
        against_others=False,
    ),
    mutation(
        "createDistributor",
        "distributor",
        "id name",
        lambda me, target, unique: (
            None
            if target.reseller is None
            else {
                "name": f"Matrix distributor {unique}",
                "currency": "USD",
                "resellerId": target.reseller,
            }
        ),
        STAFF_WRITE,
        variant="resellerId",
    ),
    # Only administrators change a distributor's terms: never the distributor itself.
    mutation(
        "updateDistributor",
        "distributor",
        "id phone paymentCommission",
        _of_distributor(
            lambda target: {
                "id": target.distributor,
                "phone": "+1 555 0177",
                "paymentCommission": "10",
            }
        ),
        STAFF_WRITE,
        result_is="distributor",
    ),
    mutation(
        "recordDistributorPayment",
        "distributor",
        "id balance { amount }",
        lambda me, target, unique: (
            None
            if target.distributor is None
            else {
                "distributorId": target.distributor,
                "amount": "1.00",
                "idempotencyKey": f"matrix-{unique}",
            }
        ),
        STAFF_WRITE,
        result_is="distributor",
    ),
    mutation(
        "createAccount",
        "account",
        "id",
        lambda me, target, unique: {
            "customerId": target.customer,
            "number": f"M-{unique}",
            "product": "Mobile",
        },
        STAFF_OR_DISTRIBUTOR_WRITE,
    ),
    mutation(
        "updateAccount",
        "account",
        "id product",
        lambda me, target, unique: {"id": target.account, "product": f"Fibre {unique}"},
        STAFF_WRITE,
        result_is="account",
    ),
    mutation(
        "postCharge",
        "charge",
        "id account { id }",
        lambda me, target, unique: {
            "accountId": target.account,
            "description": "Matrix",
            "amount": "3.00",
            "currency": "USD",
            "idempotencyKey": f"matrix-{unique}",
        },
        STAFF_WRITE,
    ),
    mutation(
        "closePeriodOutOfTurn",
        "invoice",
        "id customer { id }",
        lambda me, target, unique: {"customerId": target.customer},
        STAFF_WRITE,
    ),
    mutation(
        "recordPayment",
        "payment",
        "id customer { id }",
        lambda me, target, unique: {
            "customerId": target.customer,
            "amount": "1.00",
            "currency": "USD",
            "method": "CASH",
            "idempotencyKey": f"matrix-{unique}",
        },
        STAFF_OR_DISTRIBUTOR_WRITE,
    ),
    mutation(
        "refundPayment",
        "payment",
        "id status",
        lambda me, target, unique: {
            "paymentId": target.cash_payment,
            "amount": "1.00",
            "reason": "Matrix",
            "idempotencyKey": f"matrix-{unique}",
        },
        STAFF_WRITE,
        result_is="cash_payment",
    ),
    mutation(
        "voidPayment",
        "payment",
        "id status",
        lambda me, target, unique: {"paymentId": target.voidable_payment, "reason": "Matrix"},
        STAFF_WRITE,
        result_is="voidable_payment",
    ),
    mutation(
        "reviewFlaggedPayment",
        "payment",
        "id flagReviewedAt flagReviewNote",
        lambda me, target, unique: {"paymentId": target.flagged_payment, "note": "Matrix"},
        STAFF_WRITE,
        result_is="flagged_payment",
    ),
    mutation(
        "payInvoice",
        "payment",
        PAYMENT_FIELDS,
        lambda me, target, unique: {
            "invoiceId": target.invoice,
            "amount": "1.00",
            "idempotencyKey": f"matrix-{unique}",
        },
        SELF_OR_STAFF_WRITE,
    ),
    mutation(
        "payInvoice",
        "payment",
        PAYMENT_FIELDS,
        lambda me, target, unique: {
            "invoiceId": me.invoice,
            "amount": "1.00",
            "paymentMethodId": target.card,
            "idempotencyKey": f"matrix-{unique}",
        },
        SELF_OR_STAFF_WRITE,
        variant="paymentMethodId",
    ),
    mutation("topUp", "payment", PAYMENT_FIELDS, _card(), SELF_OR_STAFF_WRITE),
    # A card processor's account is no redirect system: an allowed caller hears NOT_FOUND
    # for it (tests/test_redirect_payments.py pays through real ones), the others as usual.
    replace(
        mutation(
            "startRedirectPayment",
            None,
            "",
            lambda me, target, unique: {
                "customerId": target.customer,
                "processorAccountId": me.processor_account,
                "amount": "1.00",
                "idempotencyKey": f"matrix-{unique}",
            },
            SELF_OR_STAFF_WRITE,
            own_errors=("NOT_FOUND",),
        ),
        document="mutation($input: StartRedirectPaymentInput!) { startRedirectPayment("
        "input: $input) { payment { id status } redirect { url method fields { name value } } "
        "errors { field code message } } }",
    ),
    # The side's card payment is no redirect payment: NOT_FOUND to those allowed; a
    # distributor does not see it at all.
    mutation(
        "completeRedirectPayment",
        None,
        "",
        lambda me, target, unique: {"paymentId": target.card_payment, "query": "token=x"},
        SELF_OR_STAFF_WRITE,
        own_errors=("NOT_FOUND",),
        not_found_for=DISTRIBUTORS_WRITE,
    ),
    mutation(
        "topUp",
        "payment",
        PAYMENT_FIELDS,
        lambda me, target, unique: {
            "customerId": me.customer,
            "amount": "1.00",
            "paymentMethodId": target.card,
            "idempotencyKey": f"matrix-{unique}",
        },
        SELF_OR_STAFF_WRITE,
        variant="paymentMethodId",
    ),
    mutation(
        "addPaymentMethod",
        "paymentMethod",
        "id last4",
        lambda me, target, unique: {
            "customerId": target.customer,
            "cardNumber": "5555555555554444",
            "expMonth": 12,
            "expYear": 2030,
            "cvc": "123",
        },
        SELF_OR_STAFF_WRITE,
    ),
    # The side's card account (the simulator) tokenizes on the server: an allowed caller hears
    # CLIENT_TOKENIZATION_NOT_OFFERED (tests/browser/test_portal_processor_cards.py adopts real
    # ones), the others are refused as usual.
    mutation(
        "adoptPaymentMethod",
        None,
        "",
        lambda me, target, unique: {"customerId": target.customer, "clientToken": "pm_matrix"},
        SELF_OR_STAFF_WRITE,
        own_errors=("CLIENT_TOKENIZATION_NOT_OFFERED",),
    ),
    mutation(
        "setDefaultPaymentMethod",
        "paymentMethod",
        "id isDefault",
        lambda me, target, unique: {"id": target.card},
        SELF_OR_STAFF_WRITE,
        result_is="card",
    ),
    mutation(
        "removePaymentMethod",
        "paymentMethod",
        "id removedAt",
        lambda me, target, unique: {"id": target.card},
        SELF_OR_STAFF_WRITE,
        result_is="card",
    ),
    # The world's invoices are approved already: an allowed caller gets that answer.
    mutation(
        "approveInvoices",
        None,
        "",
        lambda me, target, unique: {"ids": [target.invoice]},
        STAFF_WRITE,
        own_errors=("NOT_PENDING_REVIEW",),
    ),
    # Administrators set their own owner's letterhead; only the provider's, a reseller's.
    mutation(
        "setLetterhead",
        "letterhead",
        "resellerId name",
        lambda me, target, unique: (
            None
            if (variables := _letterhead_of(me, target, unique)) is None
            else {"resellerId": variables["r"], "name": f"Letterhead {unique}"}
        ),
        STAFF_WRITE,
    ),
    mutation(
        "setBitcoinWallet",
        "bitcoinWallet",
        "resellerId accountKey",
        _bitcoin_wallet_of,
        STAFF_WRITE,
    ),
    # No side's owner offers cash slips: an allowed caller hears CASH_SLIPS_NOT_OFFERED
    # (tests/test_cash_slips.py makes real ones), the others are refused as usual.
    mutation(
        "requestCashSlip",
        None,
        "",
        lambda me, target, unique: {"customerId": target.customer},
        SELF_OR_STAFF_WRITE,
        own_errors=("CASH_SLIPS_NOT_OFFERED",),
    ),
    mutation(
        "requestBitcoinAddress",
        "bitcoinAddress",
        "address",
        lambda me, target, unique: {"customerId": target.customer},
        SELF_OR_STAFF_WRITE,
    ),
    # A payment below the minimum is credited by hand by the customer's staff only.
    mutation(
        "creditBitcoinPayment",
        "bitcoinPayment",
        "id state flag",
        lambda me, target, unique: {
            "bitcoinPaymentId": target.bitcoin_payment,
            "idempotencyKey": f"credit-{unique}",
        },
        STAFF_WRITE,
        result_is="bitcoin_payment",
    ),
    mutation(
        "voidInvoice",
        "invoice",
        "id status voidReason",
        lambda me, target, unique: {"id": target.invoice, "reason": "Matrix"},
        STAFF_WRITE,
        result_is="invoice",
    ),
    # After voidInvoice, so an allowed caller's own invoice answers ALREADY_VOID.
    mutation(
        "voidInvoices",
        None,
        "",
        lambda me, target, unique: {"ids": [target.invoice], "reason": "Matrix"},
        STAFF_WRITE,
        own_errors=("ALREADY_VOID",),
    ),
    # The test clock is the whole installation's: moving it runs every reseller's bill run,
    # overdue marking and retries, so only the provider's own administrators may move it.
    mutation(
        "advanceTestClock",
        "testClock",
        "now",
        lambda me, target, unique: {"to": (T0 + timedelta(days=45)).isoformat()},
        PROVIDER_ONLY,
        against_others=False,
    ),
    # A distributor's keys are its own: it may name itself or leave the distributor out.
    mutation(
        "createApiKey",
        "apiKey",
        "id scope distributor { id }",
        lambda me, target, unique: {"name": f"Matrix key {unique}", "scope": "READ"},
        KEY_MANAGERS,
        against_others=False,
    ),
    mutation(
        "createApiKey",
        "apiKey",
        "id distributor { id }",
        _of_distributor(
            lambda target: {
                "name": "Matrix till",
                "scope": "READ",
                "distributorId": target.distributor,
            }
        ),
        KEY_MANAGERS,
        variant="distributorId",
    ),
    # A reseller is no distributor's to name: its own reseller answers like a missing one.
    mutation(
        "createApiKey",
        "apiKey",
        "id resellerId",
        lambda me, target, unique: (
            None
            if target.reseller is None
            else {"name": "Matrix partner", "scope": "READ", "resellerId": target.reseller}
        ),
        KEY_MANAGERS - DISTRIBUTORS,
        variant="resellerId",
        not_found_for=frozenset({Caller.DISTRIBUTOR_USER}),
    ),
    mutation(
        "revokeApiKey",
        "apiKey",
        "id revokedAt",
        _id_of("distributor_key"),
        KEY_MANAGERS,
        result_is="distributor_key",
    ),
    # Processor accounts are their owner's administrators'; credentials are never readable
    # (there is no field for a value), so only their names are asked for.
    mutation(
        "createProcessorAccount",
        "processorAccount",
        "id resellerId name credentialsSet",
        lambda me, target, unique: {
            "name": f"Created {unique}",
            "processor": "simulator",
            "credentials": [{"name": "webhook_secret", "value": "s"}],
            "minimums": [{"currency": "USD", "amount": "1.00"}],
            "methodKinds": ["VISA"],
        },
        STAFF_WRITE,
        against_others=False,
    ),
    mutation(
        "updateProcessorAccount",
        "processorAccount",
        "id name credentialsSet",
        lambda me, target, unique: {
            "id": target.processor_account,
            "name": f"Renamed {unique}",
            "processor": "simulator",
            "minimums": [{"currency": "USD", "amount": "0"}],
            "methodKinds": ["VISA", "MASTERCARD"],
        },
        STAFF_WRITE,
        result_is="processor_account",
    ),
    mutation(
        "disableProcessorAccount",
        "processorAccount",
        "id enabled",
        _id_of("processor_account"),
        STAFF_WRITE,
        result_is="processor_account",
    ),
    # The provider has no one to fall back to: only a reseller is aimed at.
    mutation(
        "setProcessorFallback",
        None,
        "",
        lambda me, target, unique: (
            None
            if target.reseller is None or (target is not me and target.reseller == me.reseller)
            else {"resellerId": target.reseller, "allowed": True}
        ),
        STAFF_WRITE,
    ),
    # Gateway billing's settings are for gateways only (the sides' accounts are not one);
    # a class is taken off gateway billing (it was on none); on-boarding needs a
    # gateway-billed class and completing it an enrollment.
    mutation(
        "saveGatewaySettings",
        None,
        "",
        lambda me, target, unique: {
            "processorAccountId": target.processor_account,
            "paidOn": "SETTLED",
            "establishmentFee": "0",
            "feeCurrency": "USD",
            "commissionPercent": "0",
        },
        STAFF_WRITE,
        own_errors=("NOT_A_GATEWAY",),
    ),
    mutation(
        "billClassThroughGateway",
        None,
        "",
        lambda me, target, unique: {"classId": target.customer_class},
        STAFF_WRITE,
    ),
    mutation(
        "startDirectDebit",
        None,
        "",
        lambda me, target, unique: {
            "customerId": target.customer,
            "returnUrl": "https://kassa.test/back",
        },
        SELF_OR_STAFF_WRITE,
        own_errors=("NOT_GATEWAY_BILLED",),
    ),
    mutation(
        "completeDirectDebit",
        None,
        "",
        lambda me, target, unique: {"customerId": target.customer},
        SELF_OR_STAFF_WRITE,
        own_errors=("NOT_ENROLLED",),
    ),
    # Last, because they end the caller's session: no row after them would be signed in.
    # An API key has no session of its own (another user's sessions: tests/test_sessions.py).
    Operation(
        "signOutEverywhere",
        "mutation { signOutEverywhere(input: {}) { sessionsEnded errors { field code message } } }",
        _no_variables,
        SIGNED_IN - KEYS,
        mutation=True,
        against_others=False,
        returns="sessionsEnded",
    ),
    Operation(
        "signOut",
        "mutation { signOut { viewer { authenticated } errors { field code message } } }",
        _no_variables,
        EVERYONE,
        mutation=True,
        against_others=False,
        returns="viewer",
    ),
)


# --- running the table ---------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON value (ids, names, error messages)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _values_at(value: Any, key: str) -> Iterator[Any]:
    """Every value under ``key`` anywhere in a JSON value."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name == key:
                yield item
            yield from _values_at(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _values_at(item, key)


def _short(body: Any, limit: int = 400) -> str:
    text = json.dumps(body, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "…"


def _codes(body: dict[str, Any]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


Snapshot = dict[str, list[tuple[Any, ...]]]


def _changes(before: Snapshot, after: Snapshot) -> str:
    return ", ".join(
        f"{table} ({len(before[table])} → {len(after[table])} rows)"
        if len(before[table]) != len(after[table])
        else f"{table} (rows updated)"
        for table in before
        if before[table] != after[table]
    )


@dataclass
class Matrix:
    """One caller working through :data:`OPERATIONS`, collecting failures as it goes."""

    caller: Caller
    api: Api
    db: Database
    world: World
    state: Snapshot
    failures: list[str] = field(default_factory=list)
    serial: Iterator[int] = field(default_factory=itertools.count)

    @property
    def me(self) -> Side:
        return self.world.sides[OWN_SIDE[self.caller]]

    @property
    def others(self) -> list[Side]:
        return [self.world.sides[label] for label in OTHER_SIDES[self.caller]]

    @property
    def scope(self) -> Scope:
        return Scope(
            self.caller, self.me, tuple(self.world.sides[label] for label in VISIBLE[self.caller])
        )

    def hidden(self) -> tuple[set[str], list[str]]:
        """Ids and texts the caller must never be shown: everything outside its scope."""
        visible = self.scope.visible
        hidden_sides = [s for s in self.world.sides.values() if s not in visible]
        ids = set().union(*(s.ids() for s in hidden_sides)) - set().union(
            *(s.ids() for s in visible)
        )
        ids |= {getattr(s, name) for s in visible for name in BLIND_TO.get(self.caller, ())}
        texts = [text for s in hidden_sides for text in (s.name, s.email)]
        return ids, texts

    def fail(self, operation: Operation, where: str, problem: str) -> None:
        self.failures.append(f"{self.caller} × {operation.name} ({where}): {problem}")

    async def send(self, operation: Operation, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.api.post(operation.document, variables)
        self.api.http.cookies.clear()  # signIn sets a session cookie on the shared client
        body: dict[str, Any] = response.json()
        if response.status_code != 200:
            body = {"status": response.status_code, **body}
        return body

    def describe(self, global_id: str) -> str:
        """``A1.card`` rather than ``UGF5bWVudE1ldGhvZDox``: failures should read as English."""
        for side in self.world.sides.values():
            for item in fields(side):
                if getattr(side, item.name) == global_id:
                    return f"{side.label}.{item.name}"
        return global_id

    def check_leaks(self, operation: Operation, where: str, body: dict[str, Any]) -> None:
        ids, texts = self.hidden()
        leaked = sorted(self.describe(gid) for gid in set(_strings(body)) & ids)
        text = json.dumps(body)
        leaked += [t for t in texts if t in text]
        if leaked:
            self.fail(
                operation, where, f"shows what is not the caller's: {leaked} in {_short(body)}"
            )

    async def check_unchanged(self, operation: Operation, where: str) -> None:
        if not operation.mutation:
            return  # queries run in read-only transactions; a snapshot would only cost time
        after = await table_contents(self.db)
        if after != self.state:
            self.fail(operation, where, f"changed the database: {_changes(self.state, after)}")
            self.state = after

    async def run(self, operation: Operation) -> None:
        await self.run_against_others(operation)
        await self.run_own(operation)

    async def run_against_others(self, operation: Operation) -> None:
        """Someone else's ids must answer exactly as ids that exist nowhere, and write nothing."""
        if not operation.against_others or not self.others:
            return
        ghost: dict[str, Any] | None = None
        for other in self.others:
            variables = operation.variables(self.me, other, str(next(self.serial)))
            if variables is None:
                continue  # nothing of this kind on that side to aim at
            where = f"{other.label}'s objects"
            body = await self.send(operation, variables)
            self.check_leaks(operation, where, body)
            await self.check_unchanged(operation, where)
            if ghost is None:
                ghost_variables = operation.variables(self.me, GHOST, str(next(self.serial)))
                assert ghost_variables is not None
                ghost = await self.send(operation, ghost_variables)
                await self.check_unchanged(operation, "nonexistent ids")
            if body != ghost:
                self.fail(
                    operation,
                    where,
                    f"answers {_short(body)}, but for an id that does not exist {_short(ghost)}",
                )

    async def run_own(self, operation: Operation) -> None:
        variables = operation.variables(self.me, self.me, str(next(self.serial)))
        if variables is None:
            return
        body = await self.send(operation, variables)
        self.check_leaks(operation, "own objects", body)
        if self.caller in operation.not_found_for:
            ghost_variables = operation.variables(self.me, GHOST, str(next(self.serial)))
            assert ghost_variables is not None
            ghost = await self.send(operation, ghost_variables)
            if body != ghost:
                self.fail(
                    operation,
                    "own objects",
                    f"answers {_short(body)}, but for a missing id {_short(ghost)}",
                )
            await self.check_unchanged(operation, "own objects")
            return
        if self.caller in operation.allowed:
            problem = self.judge_allowed(operation, body)
            if problem is not None:
                self.fail(operation, "own objects", f"should be allowed: {problem}")
            if operation.mutation:
                self.state = await table_contents(self.db)
            return
        code = "UNAUTHENTICATED" if self.caller == Caller.ANONYMOUS else "FORBIDDEN"
        data = body.get("data") or {}
        if set(_codes(body)) != {code} or data.get(operation.field) is not None:
            self.fail(operation, "own objects", f"should be refused with {code}: {_short(body)}")
        await self.check_unchanged(operation, "own objects")

    def judge_allowed(self, operation: Operation, body: dict[str, Any]) -> str | None:
        if "errors" in body:
            return _short(body)
        value = body["data"][operation.field]
        if operation.mutation:
            codes = tuple(error["code"] for error in value["errors"])
            if codes != operation.own_errors:
                return _short(value)
            if operation.returns is None:
                return None
            if value[operation.returns] is None:
                return _short(value)
            value = value[operation.returns]
            if operation.result_is is not None:
                expected = getattr(self.me, operation.result_is)
                if value.get("id") != expected:
                    return f"changed {value.get('id')} instead of {expected}"
        if value is None:
            return f"{operation.field} is null"
        return None if operation.expect is None else operation.expect(value, self.scope)


# --- the tests -----------------------------------------------------------------------------


def test_every_query_and_mutation_is_in_the_matrix() -> None:
    """A new root field must get a row (and a decision on who may call it) before it ships."""
    sdl = _sdl_schema()
    assert sdl.query_type is not None and sdl.mutation_type is not None
    in_schema = set(sdl.query_type.fields) | set(sdl.mutation_type.fields)
    in_matrix = {operation.field for operation in OPERATIONS}
    assert in_schema - in_matrix == set(), "add these fields to OPERATIONS"
    assert in_matrix - in_schema == set(), "these rows name fields the schema no longer has"


def test_every_relation_is_followed_by_the_matrix() -> None:
    """Nested fields are loaded by DataLoaders that trust their parent, so a new relation
    (say ``Customer.distributor``) is a new way to reach objects: some row must select it, so
    that the leak check sees what it returns."""
    sdl = _sdl_schema()
    plumbing = {"Query", "Mutation", "Money", "PageInfo"}
    relations = {
        f"{parent.name}.{name}"
        for parent in sdl.type_map.values()
        if isinstance(parent, GraphQLObjectType)
        and not parent.name.startswith("__")
        and parent.name not in plumbing
        and not parent.name.endswith(("Payload", "Connection", "Edge"))
        for name, field_ in parent.fields.items()
        if isinstance(target := get_named_type(field_.type), GraphQLObjectType)
        and target.name not in plumbing
    }
    selected: set[str] = set()
    type_info = TypeInfo(sdl)

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            parent = type_info.get_parent_type()
            if parent is not None:
                selected.add(f"{parent.name}.{node.name.value}")

    for operation in OPERATIONS:
        visit(parse(operation.document), TypeInfoVisitor(type_info, Collect()))
    assert relations - selected == set(), "select these fields in some row of OPERATIONS"


def test_every_row_is_a_valid_operation() -> None:
    """A typo in a row would make it fail for every caller alike and hide nothing; catch it
    here, with the schema's own validation, rather than as 49 puzzling failures."""
    sdl = _sdl_schema()
    for operation in OPERATIONS:
        assert validate(sdl, parse(operation.document)) == [], operation.name


def test_every_field_a_distributor_reaches_is_decided() -> None:
    """A new field on a customer's objects must be decided for distributors (seen or refused)
    before it ships, and a newly seen relation must bring its type into the table."""
    sdl = _sdl_schema()
    leaves = {"Money"}
    reached = {"Customer"}
    for type_name, reach in DISTRIBUTOR_SEES.items():
        parent = sdl.type_map[type_name]
        assert isinstance(parent, GraphQLObjectType)
        assert reach.sees & reach.refused == set(), type_name
        assert reach.sees | reach.refused == set(parent.fields), f"decide these {type_name} " + (
            f"fields: {sorted(set(parent.fields) - reach.sees - reach.refused)}"
        )
        if reach.parent is not None:
            assert reach.through.split("(")[0] in DISTRIBUTOR_SEES[reach.parent].sees, type_name
        for name in reach.sees:
            target = sdl.type_map[_field_type(type_name, name)]
            if isinstance(target, GraphQLObjectType) and target.name not in leaves:
                reached.add(target.name)
    assert reached == set(DISTRIBUTOR_SEES), "give each type a distributor reaches a Reach"


@pytest.mark.parametrize(
    "caller", [Caller.DISTRIBUTOR_USER, Caller.DISTRIBUTOR_KEY, Caller.CUSTOMER_USER], ids=str
)
async def test_a_distributor_sees_exactly_what_it_needs_to_sell_and_collect(
    caller: Caller, http: httpx.AsyncClient, db: Database
) -> None:
    """Every field of :data:`DISTRIBUTOR_SEES`, one query each, on the caller's own customer A1:
    the distributor sees the ``sees`` fields and is refused the others with ``FORBIDDEN``;
    the customer itself, for contrast, sees them all."""
    world = await build_world(db)
    async with db.transaction() as session:  # a status change for StatusChange to be seen
        admin = admin_viewer()
        for status in (CustomerStatus.SUSPENDED, CustomerStatus.ACTIVE):
            await update_customer(session, admin, world.customer_a1, CustomerInput(status=status))
    api = await sign_in_as(caller, http, db, world)
    failures = []
    for type_name, reach in DISTRIBUTOR_SEES.items():
        for name in sorted(reach.sees | reach.refused):
            seen = caller == Caller.CUSTOMER_USER or name in reach.sees
            response = await api.post(
                _one_field(type_name, name), {"id": world.sides["A1"].customer}
            )
            body = response.json()
            values = list(_values_at(body.get("data"), name))
            if seen and ("errors" in body or not values):
                failures.append(f"{type_name}.{name} should be seen: {_short(body)}")
            refused = set(_codes(body)) == {"FORBIDDEN"} and all(v is None for v in values)
            if not seen and not refused:
                failures.append(f"{type_name}.{name} should be refused: {_short(body)}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("caller", list(Caller), ids=str)
async def test_nobody_reads_or_changes_what_is_not_theirs(
    caller: Caller, http: httpx.AsyncClient, db: Database
) -> None:
    """Every row of the table, as ``caller``: own objects as the row allows, other people's
    objects exactly as if they did not exist, and no answer showing anything out of scope."""
    world = await build_world(db)
    api = await sign_in_as(caller, http, db, world)
    matrix = Matrix(caller, api, db, world, await table_contents(db))
    for operation in OPERATIONS:
        await matrix.run(operation)
    assert not matrix.failures, f"{len(matrix.failures)} authorisation failure(s):\n" + "\n".join(
        matrix.failures
    )


async def test_the_provider_reaches_every_reseller(http: httpx.AsyncClient, db: Database) -> None:
    """The one caller without "someone else's" objects: its own runs are on the provider's
    customer, so prove here that reseller B's objects answer too (and are not "not found")."""
    world = await build_world(db)
    api = await sign_in_as(Caller.PROVIDER_ADMIN, http, db, world)
    b1 = world.sides["B1"]
    for name, gid in (
        ("customer", b1.customer),
        ("account", b1.account),
        ("invoice", b1.invoice),
        ("payment", b1.card_payment),
    ):
        found = await api.run(f"query($id: ID!) {{ {name}(id: $id) {{ id }} }}", {"id": gid})
        assert found == {name: {"id": gid}}
    payload = await api.mutate(
        "updateCustomer", {"id": b1.customer, "phone": "+1 555 0199"}, "customer { id phone }"
    )
    assert payload == {"customer": {"id": b1.customer, "phone": "+1 555 0199"}, "errors": []}
