"""Collection: per-class settings by invoice kind, charge attempts, recorded status changes."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from billing import collection, models, status_changes
from billing.collection import CollectionPolicy
from resolvers.context import Info
from schema.money import Money
from schema.payments import Payment
from schema.permissions import SeesBooks
from schema.relay import encode_id

# The billing enums are the API's enums: registered here, then used as they are.
strawberry.enum(
    models.CardCharging,
    description="When an invoice is charged to the "
    "customer's default card: NEVER, ON_ISSUE or ON_DUE_DATE.",
)
strawberry.enum(
    models.AttemptStatus,
    description="SCHEDULED → UNKNOWN (in flight, or no "
    "answer yet) → SUCCEEDED or FAILED; CANCELED when not made.",
)
strawberry.enum(
    collection.NotCharged,
    name="NotChargedReason",
    description="Why an invoice was passed by when it was to be charged.",
)
strawberry.enum(collection.CancelReason, name="AttemptCancelReason")
strawberry.enum(status_changes.Cause, name="StatusChangeCause")


@strawberry.type(
    description="How invoices of one kind (REGULAR or OUT_OF_TURN) of a class "
    "are due and collected; days are the customer's local calendar days."
)
class CollectionSettings:
    payment_terms_days: int = strawberry.field(description="Net days: issue date → due date.")
    grace_period_days: int = strawberry.field(
        description="Days after the due date before the customer is suspended."
    )
    card_charging: models.CardCharging
    attempt_days_before_due: list[int] = strawberry.field(
        description="Extra attempts this many days before the due date (with ON_ISSUE)."
    )
    attempt_days_after_due: list[int] = strawberry.field(
        description="Extra attempts this many days after the due date; 0 is the due date."
    )
    review_invoices: bool = strawberry.field(
        description="New invoices wait in PENDING_REVIEW until approved or voided."
    )

    @classmethod
    def from_policy(cls, policy: CollectionPolicy) -> CollectionSettings:
        return cls(
            payment_terms_days=policy.payment_terms_days,
            grace_period_days=policy.grace_period_days,
            card_charging=policy.card_charging,
            attempt_days_before_due=list(policy.days_before_due),
            attempt_days_after_due=list(policy.days_after_due),
            review_invoices=policy.review,
        )


@strawberry.input(
    description="Fields left out (or null) keep their value; a new setting "
    "starts from the class's terms and grace period, never charging, no review."
)
class CollectionSettingsInput:
    payment_terms_days: int | None = None
    grace_period_days: int | None = None
    card_charging: models.CardCharging | None = None
    attempt_days_before_due: list[int] | None = None
    attempt_days_after_due: list[int] | None = None
    review_invoices: bool | None = None

    def to_domain(self) -> collection.SettingsInput:
        return collection.SettingsInput(
            payment_terms_days=self.payment_terms_days,
            grace_period_days=self.grace_period_days,
            card_charging=self.card_charging,
            attempt_days_before_due=self.attempt_days_before_due,
            attempt_days_after_due=self.attempt_days_after_due,
            review=self.review_invoices,
        )


@strawberry.type(
    description="One planned charge of the invoice's outstanding amount to the "
    "customer's default card (at most one per day)."
)
class CollectionAttempt:
    id: strawberry.ID
    scheduled_for: date = strawberry.field(description="The customer's local day.")
    scheduled_at: datetime = strawberry.field(description="When it falls due.")
    status: models.AttemptStatus
    amount: Money | None = strawberry.field(
        description="What was charged (or is being): the amount outstanding at the time."
    )
    decline_code: str | None
    processor_response: str | None = strawberry.field(
        description="The processor's answer, safe to show."
    )
    cancel_reason: collection.CancelReason | None
    attempted_at: datetime | None
    finished_at: datetime | None
    payment_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.CollectionAttempt) -> CollectionAttempt:
        return cls(
            id=encode_id("CollectionAttempt", row.id),
            scheduled_for=row.scheduled_for,
            scheduled_at=row.scheduled_at,
            status=row.status,
            amount=None if row.amount is None else Money.of(row.amount, row.currency),
            decline_code=row.decline_code,
            processor_response=row.message,
            cancel_reason=None if row.reason is None else collection.CancelReason(row.reason),
            attempted_at=row.attempted_at,
            finished_at=row.finished_at,
            payment_id=row.payment_id,
        )

    @strawberry.field(description="The payment a successful attempt made.")
    async def payment(self, info: Info) -> Payment | None:
        if self.payment_id is None:
            return None
        row = await info.context.loaders.payments.load(self.payment_id)
        return None if row is None else Payment.from_model(row)


#: The objects a status change's ``detail`` may name, as global id types.
_CAUSE_TYPES = {"payment": "Payment", "invoice": "Invoice"}


@strawberry.type(description="A recorded status transition; fromStatus is null at creation.")
class StatusChange:
    at: datetime
    from_status: str | None
    to_status: str
    cause: status_changes.Cause
    caused_by_id: strawberry.ID | None = strawberry.field(
        description="The payment (PAYMENT, PAYMENT_RELEASED) or invoice "
        "(GRACE_PERIOD_EXCEEDED) that caused it.",
        permission_classes=[SeesBooks],
    )

    @classmethod
    def from_model(cls, row: models.StatusChange) -> StatusChange:
        kind, _, pk = (row.detail or "").partition(":")
        caused_by = (
            encode_id(_CAUSE_TYPES[kind], int(pk))
            if kind in _CAUSE_TYPES and pk.isdigit()
            else None
        )
        return cls(
            at=row.at,
            from_status=row.from_status,
            to_status=row.to_status,
            cause=status_changes.Cause(row.cause),
            caused_by_id=caused_by,
        )
