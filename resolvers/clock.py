"""The test clock: read it, move it forward (running every job that falls due on the way)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, jobs
from billing.access import require_provider_admin
from billing.errors import UserError
from resolvers.context import Context


@dataclass(frozen=True, slots=True)
class ClockReading:
    now: datetime
    frozen: bool
    next_job_due_at: datetime | None


async def _reading(session: AsyncSession) -> ClockReading:
    return ClockReading(
        now=await clock.now(session),
        frozen=await clock.is_frozen(session),
        next_job_due_at=await jobs.next_due_at(session),
    )


async def test_clock(ctx: Context) -> ClockReading:
    return await ctx.read(_reading)


async def advance_test_clock(ctx: Context, to: datetime) -> tuple[ClockReading, int] | UserError:
    """Move the clock to ``to`` and return the new reading with how many jobs ran.

    Not one transaction: :func:`billing.jobs.advance_clock` commits each step and each
    job on its own, exactly as a worker would, so a failing job is retried later instead of
    undoing the jobs before it.
    """
    # The clock is the whole installation's: moving it runs every owner's jobs.
    require_provider_admin(ctx.viewer)
    if to.tzinfo is None:
        return UserError("INVALID_TIME", "the time must include a UTC offset", "to")
    now = await ctx.read(clock.now)
    if to < now:
        return UserError("CLOCK_BACKWARDS", "the test clock only moves forward", "to")
    ran = await jobs.advance_clock(ctx.db, to)
    return await ctx.read(_reading), ran
