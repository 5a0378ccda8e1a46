"""Direct-debit gateway billing (Debitsuccess): gateway accounts' settings and polling, each
on-boarded customer's account reference, payment stop, schedules and their statuses, and the
customer's on-boarding step (the fee and commission shown before committing, then the
gateway's hosted form)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry

from billing.errors import UserError
from billing.gateway_billing import FormStart, Offer
from billing.models import (
    GatewayEnrollment as EnrollmentRow,
)
from billing.models import (
    GatewaySchedule as ScheduleRow,
)
from billing.models import (
    GatewayScheduleStatus as StatusRow,
)
from billing.models import (
    GatewaySettings,
    ProcessorAccount,
)
from billing.models import (
    PaymentMethod as MethodRow,
)
from billing.money import format_percent
from resolvers import gateway_billing as resolve
from resolvers.context import Info
from resolvers.gateway_billing import EnrollmentView
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.payment_methods import PaymentMethod
from schema.permissions import IsAuthenticated
from schema.relay import encode_id


@strawberry.enum(description="Which gateway status counts as paid: the operator's choice.")
class GatewayPaidOn(Enum):
    CLEARED = "CLEARED"
    SETTLED = "SETTLED"


@strawberry.type(description="A direct-debit gateway account: its settings and its status poll.")
class GatewayBillingAccount:
    processor_account_id: strawberry.ID
    name: str
    paid_on: GatewayPaidOn
    establishment_fee: Money
    commission_percent: str = strawberry.field(description="A decimal string, e.g. 2.5.")
    poll_cursor: date | None = strawberry.field(
        description="The end of the last date range polled; the next poll starts a little before."
    )
    last_poll_at: datetime | None
    last_poll_seen: int = strawberry.field(description="Statuses the last window reported.")
    last_poll_applied: int = strawberry.field(description="Of those, seen for the first time.")
    last_poll_error: str | None
    billed_class_ids: list[strawberry.ID] = strawberry.field(
        description="The customer classes whose customers this gateway bills."
    )

    @classmethod
    def of(
        cls, account: ProcessorAccount, row: GatewaySettings, class_ids: list[int]
    ) -> GatewayBillingAccount:
        return cls(
            processor_account_id=encode_id("ProcessorAccount", account.id),
            name=account.name,
            paid_on=GatewayPaidOn(row.paid_on),
            establishment_fee=Money.of(row.establishment_fee, row.fee_currency),
            commission_percent=format_percent(row.commission_basis_points),
            poll_cursor=row.poll_cursor,
            last_poll_at=row.last_poll_at,
            last_poll_seen=row.last_poll_seen or 0,
            last_poll_applied=row.last_poll_applied or 0,
            last_poll_error=row.last_poll_error,
            billed_class_ids=[encode_id("CustomerClass", i) for i in class_ids],
        )


@strawberry.type(description="A status a poll saw for a schedule, applied once.")
class GatewayStatusSeen:
    status: str
    status_date: date
    error_code: str | None
    outcome: str = strawberry.field(
        description="What applying it did: PENDING, COMPLETED, FAILED or FLAGGED."
    )
    times_seen: int = strawberry.field(description="How many polls reported it.")
    first_seen_at: datetime

    @classmethod
    def of(cls, row: StatusRow) -> GatewayStatusSeen:
        return cls(
            status=row.status,
            status_date=row.status_date,
            error_code=row.error_code,
            outcome=row.outcome,
            times_seen=row.times_seen,
            first_seen_at=row.first_seen_at,
        )


@strawberry.type(description="A one-off schedule kassa submitted to the gateway.")
class GatewaySchedule:
    external_identifier: str = strawberry.field(
        description="The key it was submitted under (the charge attempt's)."
    )
    schedule_id: str | None = strawberry.field(description="The gateway's id for it.")
    payment_id: strawberry.ID
    amount: Money
    due_date: date | None
    status: str = strawberry.field(
        description="SUBMITTED, UNKNOWN or REJECTED until the gateway reports, then its own "
        "status (Unattempted, Pending, Retry, InRetry, Cleared, Settled, Failed, Unbillable)."
    )
    error_code: str | None
    submitted_at: datetime
    history: list[GatewayStatusSeen]

    @classmethod
    def of(cls, row: ScheduleRow, history: list[StatusRow]) -> GatewaySchedule:
        return cls(
            external_identifier=row.external_identifier,
            schedule_id=row.schedule_id,
            payment_id=encode_id("Payment", row.payment_id),
            amount=Money.of(row.amount, row.currency),
            due_date=row.due_date,
            status=row.status,
            error_code=row.error_code,
            submitted_at=row.submitted_at,
            history=[GatewayStatusSeen.of(seen) for seen in history],
        )


@strawberry.type(description="A customer on-boarded at a direct-debit gateway.")
class GatewayEnrollment:
    customer_id: strawberry.ID
    customer_name: str
    account_reference: str = strawberry.field(description="The gateway's reference.")
    status: str = strawberry.field(description="AWAITING_METHOD, ACTIVE or STOPPED.")
    stop_code: str | None = strawberry.field(description="Why the gateway stopped debiting.")
    stop_message: str | None
    stopped_at: datetime | None
    schedules: list[GatewaySchedule]

    @classmethod
    def of(cls, view: EnrollmentView) -> GatewayEnrollment:
        row: EnrollmentRow = view.enrollment
        return cls(
            customer_id=encode_id("Customer", row.customer_id),
            customer_name=view.customer_name,
            account_reference=row.account_reference,
            status=row.status,
            stop_code=row.stop_code,
            stop_message=row.stop_message,
            stopped_at=row.stopped_at,
            schedules=[GatewaySchedule.of(s, h) for s, h in view.schedules],
        )


@strawberry.type(
    description="Whether the customer's class is billed by direct debit and what the gateway "
    "adds, shown before the customer commits (the rest is null when it is not)."
)
class DirectDebitOffer:
    billed_by_gateway: bool
    gateway: str | None = None
    establishment_fee: Money | None = None
    commission_percent: str | None = None
    status: str | None = strawberry.field(
        default=None,
        description="The customer's enrollment: null before on-boarding, else AWAITING_METHOD, "
        "ACTIVE or STOPPED.",
    )
    account_reference: str | None = None
    stop_message: str | None = None
    payment_method: PaymentMethod | None = strawberry.field(
        default=None,
        description="The gateway's account kept as the customer's payment method: null until "
        "the set-up is completed, and after a payment stop until it is replaced.",
    )

    @classmethod
    def of(cls, offer: Offer | None, method: MethodRow | None = None) -> DirectDebitOffer:
        if offer is None:
            return cls(billed_by_gateway=False)
        enrollment = offer.enrollment
        return cls(
            billed_by_gateway=True,
            gateway=offer.account.name,
            establishment_fee=Money.of(offer.establishment_fee, offer.fee_currency),
            commission_percent=format_percent(offer.commission_basis_points),
            status=None if enrollment is None else enrollment.status,
            account_reference=None if enrollment is None else enrollment.account_reference,
            stop_message=None if enrollment is None else enrollment.stop_message,
            payment_method=None if method is None else PaymentMethod.from_model(method),
        )


@strawberry.input
class SaveGatewaySettingsInput:
    processor_account_id: strawberry.ID
    paid_on: GatewayPaidOn
    establishment_fee: str = strawberry.field(description="A decimal string, 0 or more.")
    fee_currency: str
    commission_percent: str = strawberry.field(description="0 to 100, at most 2 decimals.")


@strawberry.input
class BillClassThroughGatewayInput:
    class_id: strawberry.ID
    processor_account_id: strawberry.ID | None = strawberry.field(
        default=None, description="A direct-debit gateway's account; null: no gateway."
    )


@strawberry.input
class StartDirectDebitInput:
    customer_id: strawberry.ID
    return_url: str = strawberry.field(description="Where the gateway's form sends them back.")


@strawberry.input
class CompleteDirectDebitInput:
    customer_id: strawberry.ID


@strawberry.type
class GatewaySettingsPayload:
    gateway_account: GatewayBillingAccount | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class BillClassThroughGatewayPayload:
    processor_account_id: strawberry.ID | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class StartDirectDebitPayload:
    form_url: str | None = None
    valid_to: datetime | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class CompleteDirectDebitPayload:
    payment_method_id: strawberry.ID | None = None
    account_reference: str | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class GatewayBillingQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The direct-debit gateway accounts you administer, with their settings, "
        "poll cursor and last poll (administrators).",
    )
    async def gateway_billing_accounts(self, info: Info) -> list[GatewayBillingAccount]:
        found = await resolve.gateway_accounts(info.context)
        return [GatewayBillingAccount.of(*each) for each in found]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Every customer on-boarded at a gateway, stopped ones first, with their "
        "schedules and the statuses the polls saw (administrators).",
    )
    async def gateway_enrollments(self, info: Info) -> list[GatewayEnrollment]:
        return [GatewayEnrollment.of(view) for view in await resolve.enrollments(info.context)]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Whether a customer's class is billed through a direct-debit gateway, "
        "with its establishment fee and commission (the customer and staff).",
    )
    async def direct_debit_offer(
        self, info: Info, customer_id: strawberry.ID
    ) -> DirectDebitOffer | None:
        found = await resolve.offer(info.context, customer_id)
        return None if found is None else DirectDebitOffer.of(*found)


@strawberry.type
class GatewayBillingMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Set which status counts as paid and the fee and commission customers are "
        "shown (administrators): NOT_A_GATEWAY, NEGATIVE_FEE, INVALID_CURRENCY, OUT_OF_RANGE.",
    )
    async def save_gateway_settings(
        self, info: Info, input: SaveGatewaySettingsInput
    ) -> GatewaySettingsPayload:
        result = await resolve.save_settings(info.context, input)
        if not isinstance(result, GatewaySettings):
            return GatewaySettingsPayload(errors=user_errors(result))
        found = {each[0].id: each for each in await resolve.gateway_accounts(info.context)}
        return GatewaySettingsPayload(
            gateway_account=GatewayBillingAccount.of(*found[result.processor_account_id])
        )

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Bill a customer class through a gateway account, or (null) no more "
        "(administrators): NOT_A_GATEWAY.",
    )
    async def bill_class_through_gateway(
        self, info: Info, input: BillClassThroughGatewayInput
    ) -> BillClassThroughGatewayPayload:
        result = await resolve.bill_class(info.context, input)
        if isinstance(result, UserError):
            return BillClassThroughGatewayPayload(errors=user_errors(result))
        return BillClassThroughGatewayPayload(
            processor_account_id=None if result is None else encode_id("ProcessorAccount", result)
        )

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="On-board the customer at its class's gateway (once) and open the "
        "gateway's form for a payment method: NOT_GATEWAY_BILLED.",
    )
    async def start_direct_debit(
        self, info: Info, input: StartDirectDebitInput
    ) -> StartDirectDebitPayload:
        result = await resolve.start(info.context, input)
        if not isinstance(result, FormStart):
            return StartDirectDebitPayload(errors=user_errors(result))
        return StartDirectDebitPayload(form_url=result.url, valid_to=result.valid_to)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Back from the gateway's form: keep the account as the default payment "
        "method (NO_PAYMENT_METHOD_YET when the form was not completed).",
    )
    async def complete_direct_debit(
        self, info: Info, input: CompleteDirectDebitInput
    ) -> CompleteDirectDebitPayload:
        result = await resolve.complete(info.context, input)
        if not isinstance(result, tuple):
            return CompleteDirectDebitPayload(errors=user_errors(result))
        method, reference = result
        return CompleteDirectDebitPayload(
            payment_method_id=encode_id("PaymentMethod", method.id), account_reference=reference
        )
