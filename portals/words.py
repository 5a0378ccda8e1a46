"""The words the portals use for the API's values: one name for each, the same on every page.

An enum value (``OUT_OF_TURN``, ``PARTIALLY_PAID``) is shown by its name here and nowhere
else, so an invoice kind cannot be "out of turn" on one page and "Closed early" on another.
The table is flat because a value means one thing wherever it appears (``FAILED`` is a
failed payment or a failed card attempt alike); ``tests/test_portal_words.py`` checks that
every value of every enum a page shows has a name.

The sentences that explain a value (why an invoice is not charged, what auto-payment does
for this customer's class) are here too, beside the names they use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The invoice kind a customer's period closed before its end makes (``OUT_OF_TURN``).
CLOSED_EARLY = "Closed early"

NAMES: dict[str, str] = {
    # InvoiceStatus
    "PENDING_REVIEW": "Waiting for review",
    "UNPAID": "Unpaid",
    "PARTIALLY_PAID": "Partially paid",
    "PAID": "Paid",
    "OVERDUE": "Overdue",
    "VOID": "Void",
    # DistributorInvoiceStatus (PAID as above)
    "OPEN": "Open",
    # InvoiceKind
    "REGULAR": "Regular",
    "OUT_OF_TURN": CLOSED_EARLY,
    # PaymentStatus, AttemptStatus
    "PENDING": "Pending",
    "UNKNOWN": "Awaiting the card processor",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "PARTIALLY_REFUNDED": "Partially refunded",
    "REFUNDED": "Refunded",
    "VOIDED": "Voided",
    "SCHEDULED": "Scheduled",
    "SUCCEEDED": "Succeeded",
    "CANCELED": "Canceled",
    # PaymentChannel
    "CASH": "Cash",
    "WIRE": "Wire transfer",
    "CHEQUE": "Cheque",
    "CARD": "Card",
    "BITCOIN": "Bitcoin",
    "TERMINAL": "Cash terminal",
    "PAYNEARME": "PayNearMe cash",
    "REDIRECT": "Online payment",
    "DIRECT_DEBIT": "Direct debit",
    # Direct-debit gateway billing (enrollments, what a polled status did)
    "AWAITING_METHOD": "Waiting for payment details",
    "STOPPED": "Payment stop",
    "FLAGGED": "Flagged for review",
    # BitcoinPaymentState (PENDING above)
    "BELOW_MINIMUM": "Below the minimum",
    "CREDITED": "Credited",
    "DROPPED": "Dropped (replaced or double-spent)",
    "REVERSED": "Reversed (chain reorganisation)",
    # CustomerStatus, AccountStatus
    "ACTIVE": "Active",
    "SUSPENDED": "Suspended",
    "CLOSED": "Closed",
    # ChargeKind
    "SUBSCRIPTION": "Subscription",
    "USAGE": "Usage",
    "ONE_OFF": "One-off",
    # BillingPeriod
    "DAILY": "Daily",
    "WEEKLY": "Weekly",
    "SEMI_MONTHLY": "Twice a month",
    "MONTHLY": "Monthly",
    "MONTHLY_ANNIVERSARY": "Monthly, from the day of joining",
    # CardCharging
    "NEVER": "Never (the customer pays)",
    "ON_ISSUE": "When issued",
    "ON_DUE_DATE": "On the due date",
    # LedgerTransactionKind
    "OPENING_BALANCE": "Opening balance",
    "CHARGE": "Charge",
    "PAYMENT": "Payment",
    "REFUND": "Refund",
    "REVERSAL": "Reversal",
    "ADJUSTMENT": "Adjustment",
    "DISTRIBUTOR_PAYMENT": "Payment by a distributor",
    # StatusChangeCause
    "ISSUED": "Issued",
    "APPROVED": "Approved",
    "PAYMENT_RELEASED": "Payment taken back",
    "DUE_DATE_PASSED": "Due date passed",
    "GRACE_PERIOD_EXCEEDED": "Grace period over",
    "NOTHING_OVERDUE": "Nothing overdue any more",
    "STAFF": "Changed by staff",
    # RunKind
    "BILL_RUN": "Bill run",
    "COLLECTION": "Card collection",
    "DISTRIBUTOR_BILLING": "Distributor invoicing",
    # Role
    "ADMIN": "Administrator",
    "RESELLER": "Reseller",
    "DISTRIBUTOR": "Distributor",
    "CUSTOMER": "Customer",
}

#: Why an invoice will not be charged to the card (``Invoice.notChargedReason``), in words
#: that tell the customer what to do about it.
NOT_CHARGED: dict[str, str] = {
    "CHARGING_OFF": "Invoices like this one are not charged to a card automatically.",
    "AUTO_PAYMENT_OFF": "Automatic card payment is turned off for this account.",
    "NO_PAYMENT_METHOD": "There is no card to charge: add one to have it paid automatically.",
}

#: Why a planned card payment was not made (``CollectionAttempt.cancelReason``).
NOT_MADE: dict[str, str] = {
    "PAID": "Not needed: the invoice was already paid.",
    "VOIDED": "Not made: the invoice was voided.",
    "SUPERSEDED": "Not made: a later attempt took its place.",
    "AUTO_PAYMENT_OFF": "Not made: automatic card payment was off.",
    "NO_PAYMENT_METHOD": "Not made: there was no card to charge.",
}

#: What moved a distributor's balance (``DistributorTransactionKind``).  Its own table
#: because ``COLLECTION`` there is cash taken by hand, where a ``RunKind`` of the same
#: value is the card collection run.
DISTRIBUTOR_TRANSACTION_KINDS: dict[str, str] = {
    "SALE": "Sale of credit",
    "COLLECTION": "Cash collected",
    "PAYMENT_TO_PROVIDER": "Payment to the provider",
    "REVERSAL": "Voided collection",
    "ADJUSTMENT": "Adjustment",
}

#: How a distributor's statistics are mailed (``StatisticsEmail``).
STATISTICS_EMAILS: dict[str, str] = {
    "SUMMARY": "A summary",
    "FULL_WITH_CSV": "Full statistics, with the transactions attached as CSV",
    "NONE": "Do not send",
}

#: What an API key may do (``ApiKeyScope``), the first what a distributor's till needs.
API_KEY_SCOPES: dict[str, str] = {
    "READ_WRITE": "Read and change: sign up customers, record cash",
    "READ": "Read only",
}

#: The two kinds of invoice a class sets rules for: the API's field and the words for them.
INVOICE_KINDS = (
    ("regularInvoices", "Regular invoices"),
    ("outOfTurnInvoices", "Invoices closed early"),
)

#: Each kind of invoice in a sentence about one of them.
_ONE_INVOICE = {
    "regularInvoices": "each regular invoice",
    "outOfTurnInvoices": "each invoice closed early",
}
#: When a kind is charged (``CardCharging``), as the end of "… is charged to your card".
_CHARGED_WHEN = {"ON_ISSUE": "when it is issued", "ON_DUE_DATE": "on its due date"}


def name(value: str | None) -> str:
    """The name of an API enum value; one this table lacks is shown as readable words."""
    if not value:
        return ""
    return NAMES.get(value) or value.replace("_", " ").capitalize()


def auto_payment(customer: Mapping[str, Any]) -> str:
    """What auto-payment does for this customer, following its class's card charging.

    ``customer`` has ``autoPayment`` and ``customerClass { regularInvoices { cardCharging }
    outOfTurnInvoices { cardCharging } }``; without a class nothing is charged (the API's
    default), so the sentence never promises a charge the collection run will not make.
    """
    if not customer["autoPayment"]:
        return "Auto-payment is off: you pay each invoice yourself."
    cls = customer.get("customerClass")
    charging = {kind: cls[kind]["cardCharging"] if cls else "NEVER" for kind in _ONE_INVOICE}
    charged = [
        f"{_ONE_INVOICE[kind]} is charged to your default card {_CHARGED_WHEN[when]}"
        for kind, when in charging.items()
        if when in _CHARGED_WHEN
    ]
    if not charged:
        return (
            "Auto-payment is on: but under your terms no invoice is charged to a card, "
            "so you pay each one yourself."
        )
    yourself = [_ONE_INVOICE[kind] for kind, when in charging.items() if when not in _CHARGED_WHEN]
    return (
        "Auto-payment is on: "
        + "; ".join(charged + [f"{kind} you pay yourself" for kind in yourself])
        + "."
    )
