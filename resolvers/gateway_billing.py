"""Direct-debit gateway billing: what administrators see of each gateway account (settings,
the poll's cursor and last poll) and of each on-boarded customer (account reference, payment
stop, schedules and the statuses the polls saw), and the customer's on-boarding step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import gateway_billing
from billing.errors import UserError
from billing.gateway_billing import FormStart, Offer, PaidOn, SettingsInput
from billing.models import (
    Customer,
    GatewayEnrollment,
    GatewaySchedule,
    GatewayScheduleStatus,
    GatewaySettings,
    PaymentMethod,
    ProcessorAccount,
)
from resolvers.context import Context
from schema.relay import decode_id

if TYPE_CHECKING:
    from schema.gateway_billing import (
        BillClassThroughGatewayInput,
        CompleteDirectDebitInput,
        SaveGatewaySettingsInput,
        StartDirectDebitInput,
    )


@dataclass(frozen=True)
class EnrollmentView:
    """One on-boarded customer with its schedules and each schedule's polled history."""

    enrollment: GatewayEnrollment
    customer_name: str
    schedules: list[tuple[GatewaySchedule, list[GatewayScheduleStatus]]]


async def gateway_accounts(
    ctx: Context,
) -> list[tuple[ProcessorAccount, GatewaySettings, list[int]]]:
    """Each gateway account the viewer administers, its settings and the classes it bills."""

    async def work(
        session: AsyncSession,
    ) -> list[tuple[ProcessorAccount, GatewaySettings, list[int]]]:
        found = await gateway_billing.gateway_accounts(session, ctx.viewer)
        classes = await gateway_billing.billed_classes(session, [a.id for a, _ in found])
        return [(account, row, classes[account.id]) for account, row in found]

    return await ctx.read(work)


async def enrollments(ctx: Context) -> list[EnrollmentView]:
    async def work(session: AsyncSession) -> list[EnrollmentView]:
        found = await gateway_billing.enrollments(session, ctx.viewer)
        names = dict(
            (
                await session.execute(
                    select(Customer.id, Customer.name).where(
                        Customer.id.in_([e.customer_id for e in found])
                    )
                )
            ).all()
        )
        schedules = await gateway_billing.schedules_of(session, [e.customer_id for e in found])
        history = await gateway_billing.history_of(
            session, [s.id for rows in schedules.values() for s in rows]
        )
        return [
            EnrollmentView(
                e,
                names[e.customer_id],
                [(s, history[s.id]) for s in schedules[e.customer_id]],
            )
            for e in found
        ]

    return await ctx.read(work)


async def offer(ctx: Context, customer_id: str) -> tuple[Offer | None, PaymentMethod | None] | None:
    """(the offer, or None when the class is not gateway-billed; the enrollment's payment
    method still in use, if any); None for a customer out of reach, answered as for one that
    does not exist."""

    async def work(session: AsyncSession) -> tuple[Offer | None, PaymentMethod | None]:
        customer = decode_id(customer_id, "Customer", "customerId")
        found = await gateway_billing.offer(session, ctx.viewer, customer)
        if found is None or found.enrollment is None:
            return found, None
        return found, await gateway_billing.method_in_use(session, found.enrollment)

    return await ctx.find(work)


async def save_settings(
    ctx: Context, input: SaveGatewaySettingsInput
) -> GatewaySettings | UserError:
    async def work(session: AsyncSession) -> GatewaySettings:
        return await gateway_billing.save_settings(
            session,
            ctx.viewer,
            decode_id(input.processor_account_id, "ProcessorAccount", "processorAccountId"),
            SettingsInput(
                PaidOn(input.paid_on.value),
                input.establishment_fee,
                input.fee_currency,
                input.commission_percent,
            ),
        )

    return await ctx.attempt(work)


async def bill_class(ctx: Context, input: BillClassThroughGatewayInput) -> int | UserError | None:
    async def work(session: AsyncSession) -> int | None:
        account_id = (
            None
            if input.processor_account_id is None
            else decode_id(input.processor_account_id, "ProcessorAccount", "processorAccountId")
        )
        return await gateway_billing.bill_class_through(
            session, ctx.viewer, decode_id(input.class_id, "CustomerClass", "classId"), account_id
        )

    return await ctx.attempt(work)


async def start(ctx: Context, input: StartDirectDebitInput) -> FormStart | UserError:
    async def work(session: AsyncSession) -> FormStart:
        return await gateway_billing.start_enrollment(
            session,
            ctx.viewer,
            decode_id(input.customer_id, "Customer", "customerId"),
            input.return_url,
        )

    return await ctx.attempt(work, "customerId")


async def complete(
    ctx: Context, input: CompleteDirectDebitInput
) -> tuple[PaymentMethod, str] | UserError:
    async def work(session: AsyncSession) -> tuple[PaymentMethod, str]:
        customer_id = decode_id(input.customer_id, "Customer", "customerId")
        method = await gateway_billing.complete_enrollment(session, ctx.viewer, customer_id)
        enrollment = await gateway_billing.enrollment_of(session, customer_id)
        assert enrollment is not None
        return method, enrollment.account_reference

    return await ctx.attempt(work, "customerId")
