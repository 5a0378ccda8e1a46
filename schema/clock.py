"""The test clock (test mode only), as in Stripe's test clocks or Kill Bill's clock."""

from __future__ import annotations

from datetime import datetime

import strawberry

from billing.errors import UserError
from resolvers import clock as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.permissions import IsAuthenticated, TestModeOnly


@strawberry.type(
    description="The system's notion of now while testing: frozen at an instant, or running "
    "with wall time at an offset (the wall clock itself until first moved)."
)
class TestClock:
    now: datetime
    frozen: bool = strawberry.field(
        description="Stands still at now until moved; the opposite of running."
    )
    running: bool = strawberry.field(
        description="Moves with wall time, so scheduled work falls due by itself."
    )
    next_job_due_at: datetime | None

    @classmethod
    def from_reading(cls, reading: resolve.ClockReading) -> TestClock:
        return cls(
            now=reading.now,
            frozen=reading.frozen,
            running=not reading.frozen,
            next_job_due_at=reading.next_job_due_at,
        )


@strawberry.input
class AdvanceTestClockInput:
    to: datetime | None = strawberry.field(
        default=None,
        description="With a UTC offset; not before now.  Null: stay at now (to only start "
        "or stop the clock).",
    )
    running: bool | None = strawberry.field(
        default=None,
        description="Afterwards, run with wall time (true) or stay frozen (false); null "
        "keeps the clock as it was.",
    )


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
        "due on the way (bill runs, overdue marking, …), and leave it running or frozen.",
    )
    async def advance_test_clock(
        self, info: Info, input: AdvanceTestClockInput
    ) -> AdvanceTestClockPayload:
        result = await resolve.advance_test_clock(info.context, input.to, input.running)
        if isinstance(result, UserError):
            return AdvanceTestClockPayload(errors=user_errors(result))
        reading, ran = result
        return AdvanceTestClockPayload(test_clock=TestClock.from_reading(reading), jobs_run=ran)
