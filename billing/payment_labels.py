"""How a payment reads in a customer's ledger and statement.

A person recognises the way they paid (a card's brand and last digits, the reference written
on a transfer or cheque), not kassa's row ids, so that is what the ledger's descriptions say.
The descriptions are written once, when the money moves: the ledger is immutable, so a label
never changes after the fact even if the card is later removed.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Payment, PaymentChannel, PaymentMethod

_CHANNELS = {
    PaymentChannel.CASH: "cash payment",
    PaymentChannel.WIRE: "bank transfer",
    PaymentChannel.CHEQUE: "cheque",
    PaymentChannel.CARD: "card payment",
    PaymentChannel.BITCOIN: "bitcoin payment",
    PaymentChannel.TERMINAL: "cash terminal payment",
    PaymentChannel.REDIRECT: "online payment",
    PaymentChannel.PAYNEARME: "PayNearMe cash payment",
    PaymentChannel.DIRECT_DEBIT: "direct debit",
}


#: The networks' own spellings of the brands :func:`billing.processing.card_brand` names.
_BRANDS = {"amex": "American Express", "mastercard": "Mastercard", "visa": "Visa"}


def card_detail(brand: str, last4: str) -> str:
    """A card as its holder recognises it, worded as the portal words it: ``Visa ending 4242``."""
    return f"{_BRANDS.get(brand, brand.capitalize())} ending {last4}"


def payment_label(channel: PaymentChannel, detail: str | None) -> str:
    """``card payment (Visa ending 4242)``, ``bank transfer (ref 77-A)``, ``cash payment``."""
    label = _CHANNELS[channel]
    return f"{label} ({detail})" if detail else label


def sentence(label: str) -> str:
    """A label as a description of its own: its first letter upper-cased."""
    return label[:1].upper() + label[1:]


async def card_details(session: AsyncSession, method_ids: Iterable[int | None]) -> dict[int, str]:
    """The :func:`card_detail` of each stored card in ``method_ids``, in one query."""
    wanted = {method_id for method_id in method_ids if method_id is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(PaymentMethod.id, PaymentMethod.brand, PaymentMethod.last4).where(
            PaymentMethod.id.in_(wanted)
        )
    )
    return {method_id: card_detail(brand, last4) for method_id, brand, last4 in rows.all()}


async def label_of(session: AsyncSession, payment: Payment) -> str:
    """The label of one payment: its card for card payments, its network and transaction
    (the reference it was given) for a cash terminal's, its reference for the others."""
    if payment.method in (PaymentChannel.CARD, PaymentChannel.DIRECT_DEBIT):
        cards = await card_details(session, [payment.payment_method_id])
        return payment_label(payment.method, cards.get(payment.payment_method_id or 0))
    if payment.method in (PaymentChannel.TERMINAL, PaymentChannel.REDIRECT):
        return payment_label(payment.method, payment.reference)
    reference = f"ref {payment.reference}" if payment.reference else None
    return payment_label(payment.method, reference)
