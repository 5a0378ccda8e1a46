"""The test clock (test mode only), as in Stripe's test clocks or Kill Bill's clock."""

from __future__ import annotations

from datetime import datetime

import strawberry

from billing.errors import UserError
from resolvers import clock as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.permissions import IsAuthenticated, TestModeOnly


@strawberry.type(description="The system's notion of now while testing.")
class TestClock:
    now: datetime
    frozen: bool = strawberry.field(description="False until the clock is first moved.")
    next_job_due_at: datetime | None

    @classmethod
    def from_reading(cls, reading: resolve.ClockReading) -> TestClock:
        return cls(now=reading.now, frozen=reading.frozen, next_job_due_at=reading.next_job_due_at)


@strawberry.input
class AdvanceTestClockInput:
    to: datetime = strawberry.field(description="With a UTC offset; not before now.")


@strawberry.type
class AdvanceTestClockPayload:
    test_clock: TestClock | None = None
    jobs_run: int = 0
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class ClockQueries:
    @strawberry.field(permission_classes=[IsAuthenticated, TestModeOnly])
    async def test_clock(self, info: Info) -> TestClock:
        return TestClock.from_reading(await resolve.test_clock(info.context))


@strawberry.type
class ClockMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated, TestModeOnly],
        description="Move the test clock forward, running in time order every job that falls "
        "due on the way (bill runs, overdue marking, …).",
    )
    async def advance_test_clock(
        self, info: Info, input: AdvanceTestClockInput
    ) -> AdvanceTestClockPayload:
        result = await resolve.advance_test_clock(info.context, input.to)
        if isinstance(result, UserError):
            return AdvanceTestClockPayload(errors=user_errors(result))
        reading, ran = result
        return AdvanceTestClockPayload(test_clock=TestClock.from_reading(reading), jobs_run=ran)
