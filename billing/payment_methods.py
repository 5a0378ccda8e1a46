"""Stored cards: add (tokenize), adopt (tokenized in the browser), remove, choose the
default, list.

Only what a processor's customer may keep is stored — the processor's token, brand, last four
digits and expiry.  The card number and CVC pass through :func:`add_card` to the processor and
are dropped; they never reach a column, a log line or an error message.  Where the routed
processor tokenizes in the browser (Stripe.js, Accept.js: :func:`card_form`), the number does
not reach kassa at all: :func:`adopt` keeps the token the browser made.

A customer always has at most one default card: the first card becomes it, and removing the
default hands it to the newest remaining card.  Every change runs under the customer's row
lock, so two cards added at once cannot both become the default.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, processor_accounts
from billing.access import Viewer, require_self_or_staff, visible
from billing.customers import get_customer, get_customer_for_update
from billing.errors import NotFound, UserError
from billing.models import Customer, PaymentMethod, ProcessorAccount
from billing.payment_systems import (
    CARD_BRAND_KINDS,
    Capability,
    ClientTokenization,
    Payer,
    ProfileProcessor,
)
from billing.processing import (
    CardDetails,
    CardProcessor,
    CardToken,
    card_brand,
    default_card_processor,
)

#: The longest browser token accepted (Accept.js's opaque data is a few hundred characters).
CLIENT_TOKEN_LENGTH = 4000


async def add_card(
    session: AsyncSession,
    viewer: Viewer,
    customer_id: int,
    card: CardDetails,
    make_default: bool = False,
) -> PaymentMethod:
    """Tokenize ``card`` with the customer's processor and keep the token and display details.

    The processor is the processor account the customer's owner routes this card's brand in
    the customer's currency to (:func:`billing.processor_accounts.route`); when the owner
    has configured none, the installation's default processor, as before accounts existed.
    The customer's first card becomes its default whatever ``make_default`` says, so a
    customer with cards always has one to charge.  An invalid card is the processor's
    :class:`~billing.errors.UserError`, which names the problem and never the digits.
    """
    customer = await get_customer_for_update(session, viewer, customer_id)
    require_self_or_staff(viewer, customer, write=True)
    account = await processor_accounts.route(
        session, customer, customer.currency, CARD_BRAND_KINDS.get(card_brand(card.number))
    )
    if account is None:
        processor = default_card_processor()
    else:
        processor = processor_accounts.make_processor(
            account.processor, processor_accounts.config_of(session, account)
        )
    token = await processor.tokenize(card)
    return await _keep(session, customer, processor.name, account, token, make_default)


@dataclass(frozen=True, slots=True)
class CardForm:
    """How the customer's card form works: the processor a new card goes to and, when it
    tokenizes in the browser, its script and public settings (never a secret)."""

    processor: str
    client: ClientTokenization | None


async def _routed_processor(
    session: AsyncSession, customer: Customer
) -> tuple[ProcessorAccount | None, CardProcessor]:
    """The account a new card of ``customer`` goes to (any brand) and its processor."""
    account = await processor_accounts.route(session, customer, customer.currency)
    if account is None:
        return None, default_card_processor()
    config = processor_accounts.config_of(session, account)
    return account, processor_accounts.make_processor(account.processor, config)


def _client_tokenization(processor: CardProcessor) -> ClientTokenization | None:
    if Capability.CLIENT_TOKENIZATION not in getattr(processor, "capabilities", frozenset()):
        return None
    if not isinstance(processor, ProfileProcessor):
        return None
    return processor.client_tokenization()


async def card_form(session: AsyncSession, viewer: Viewer, customer_id: int) -> CardForm:
    """How ``customer_id``'s card form tokenizes a new card (see :class:`CardForm`)."""
    customer = await get_customer(session, viewer, customer_id)
    require_self_or_staff(viewer, customer)
    _, processor = await _routed_processor(session, customer)
    return CardForm(processor.name, _client_tokenization(processor))


async def adopt(
    session: AsyncSession,
    viewer: Viewer,
    customer_id: int,
    client_token: str,
    make_default: bool = False,
) -> PaymentMethod:
    """Keep a card the processor's script tokenized in the customer's browser: the number
    never reached kassa.  Only for a routed processor with client tokenization
    (CLIENT_TOKENIZATION_NOT_OFFERED otherwise, nothing written)."""
    customer = await get_customer_for_update(session, viewer, customer_id)
    require_self_or_staff(viewer, customer, write=True)
    account, processor = await _routed_processor(session, customer)
    if _client_tokenization(processor) is None or not isinstance(processor, ProfileProcessor):
        raise UserError(
            "CLIENT_TOKENIZATION_NOT_OFFERED",
            "cards are entered here, not tokenized in the browser, for this payment system",
            "clientToken",
        )
    if not client_token.strip() or len(client_token) > CLIENT_TOKEN_LENGTH:
        raise UserError("INVALID_CLIENT_TOKEN", "the card token is not valid", "clientToken")
    payer = Payer(customer_id=customer.id, name=customer.name, email=customer.email)
    token = await processor.adopt_client_token(client_token.strip(), payer)
    return await _keep(session, customer, processor.name, account, token, make_default)


async def _keep(
    session: AsyncSession,
    customer: Customer,
    processor_name: str,
    account: ProcessorAccount | None,
    token: CardToken,
    make_default: bool,
) -> PaymentMethod:
    """Store the processor's ``token`` for ``customer`` (the first card becomes the default)."""
    has_default = await default_payment_method(session, customer.id) is not None
    method = PaymentMethod(
        customer_id=customer.id,
        processor=processor_name,
        processor_account_id=None if account is None else account.id,
        token=token.token,
        brand=token.brand,
        last4=token.last4,
        exp_month=token.exp_month,
        exp_year=token.exp_year,
        is_default=False,
        created_at=await clock.now(session),
    )
    session.add(method)
    await session.flush()
    if make_default or not has_default:
        await _make_default(session, method)
    return method


async def get_payment_method(
    session: AsyncSession, viewer: Viewer, payment_method_id: int, *, lock: bool = False
) -> PaymentMethod:
    """A card that is not removed, if the viewer may use it; otherwise NotFound.

    With ``lock`` the owning customer's row is locked too, as every change to cards needs.
    """
    query = visible(PaymentMethod, viewer).where(
        PaymentMethod.id == payment_method_id, PaymentMethod.removed_at.is_(None)
    )
    method = await session.scalar(query)
    if method is not None and lock:
        await get_customer_for_update(session, viewer, method.customer_id)
        # Read again under the lock: a concurrent removal may have got there first.
        method = await session.scalar(query.execution_options(populate_existing=True))
    if method is None:
        raise NotFound("payment method", "paymentMethodId")
    customer = await get_customer(session, viewer, method.customer_id)
    require_self_or_staff(viewer, customer, write=lock)
    return method


async def remove_payment_method(
    session: AsyncSession, viewer: Viewer, payment_method_id: int
) -> PaymentMethod:
    """Remove a card (kept as a row with ``removed_at`` because payments refer to it).

    Removing the default card makes the newest remaining card the default.
    """
    method = await get_payment_method(session, viewer, payment_method_id, lock=True)
    method.removed_at = await clock.now(session)
    if method.is_default:
        method.is_default = False
        await session.flush()
        newest = await session.scalar(
            _active_cards(method.customer_id)
            .order_by(PaymentMethod.created_at.desc(), PaymentMethod.id.desc())
            .limit(1)
        )
        if newest is not None:
            await _make_default(session, newest)
    await session.flush()
    return method


async def set_default_payment_method(
    session: AsyncSession, viewer: Viewer, payment_method_id: int
) -> PaymentMethod:
    """Make this card the one charged when no card is named."""
    method = await get_payment_method(session, viewer, payment_method_id, lock=True)
    await _make_default(session, method)
    return method


async def payment_methods_for(
    session: AsyncSession, viewer: Viewer, customer_id: int
) -> list[PaymentMethod]:
    """The customer's cards, the default first, then newest first."""
    customer = await get_customer(session, viewer, customer_id)
    require_self_or_staff(viewer, customer)
    return list(
        (
            await session.scalars(
                _active_cards(customer.id).order_by(
                    PaymentMethod.is_default.desc(),
                    PaymentMethod.created_at.desc(),
                    PaymentMethod.id.desc(),
                )
            )
        ).all()
    )


async def default_payment_method(session: AsyncSession, customer_id: int) -> PaymentMethod | None:
    """The card charged when none is named, if the customer has any card."""
    return await session.scalar(_active_cards(customer_id).where(PaymentMethod.is_default))


def _active_cards(customer_id: int) -> Select[PaymentMethod]:
    """The customer's cards that are not removed."""
    return select(PaymentMethod).where(
        PaymentMethod.customer_id == customer_id, PaymentMethod.removed_at.is_(None)
    )


async def _make_default(session: AsyncSession, method: PaymentMethod) -> None:
    """``method`` becomes its customer's only default card (caller holds the customer lock)."""
    await session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.customer_id == method.customer_id, PaymentMethod.id != method.id)
        .values(is_default=False)
        .execution_options(synchronize_session="fetch")
    )
    method.is_default = True
    await session.flush()
