"""The test clock: read it, move it forward (running every job that falls due on the way),
let it run with wall time or freeze it."""

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


async def advance_test_clock(
    ctx: Context, to: datetime | None, running: bool | None
) -> tuple[ClockReading, int] | UserError:
    """Move the clock to ``to`` (None: stay at now), then leave it running with wall time or
    frozen as ``running`` says (None: as it was); returns the new reading and how many jobs ran.

    The clock stands still while it is moved, so each job on the way runs at its own due
    time.  Not one transaction: :func:`billing.jobs.advance_clock` commits each step and
    each job on its own, exactly as a worker would, so a failing job is retried later
    instead of undoing the jobs before it.
    """
    # The clock is the whole installation's: moving it runs every owner's jobs.
    require_provider_admin(ctx.viewer)
    if to is not None and to.tzinfo is None:
        return UserError("INVALID_TIME", "the time must include a UTC offset", "to")
    if to is not None and to < await ctx.read(clock.now):
        return UserError("CLOCK_BACKWARDS", "the test clock only moves forward", "to")
    was_running = not await ctx.read(clock.is_frozen)
    stopped_at = await ctx.attempt(clock.stop)
    if isinstance(stopped_at, UserError):
        return stopped_at
    ran = await jobs.advance_clock(ctx.db, to or stopped_at)
    if was_running if running is None else running:
        started = await ctx.attempt(clock.run)
        if isinstance(started, UserError):
            return started
    return await ctx.read(_reading), ran
