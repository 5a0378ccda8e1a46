"""The one clock of the system.

In production "now" is the wall clock.  In test mode a frozen instant in ``clock_state`` is
"now" for everyone (API, bill run, jobs), and :func:`billing.jobs.advance_clock` moves
it forward, running in time order every job that fell due on the way.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import UserError
from billing.models import ClockState

_CLOCK_ROW = 1


def wall_now() -> datetime:
    return datetime.now(UTC)


async def now(session: AsyncSession) -> datetime:
    """The current instant: the test clock's when one is frozen, the wall clock's otherwise."""
    frozen = await session.scalar(select(ClockState.frozen_at).where(ClockState.id == _CLOCK_ROW))
    return frozen if frozen is not None else wall_now()


async def freeze(session: AsyncSession, at: datetime) -> None:
    """Set the test clock to ``at`` (it may only move forward once set)."""
    if at.tzinfo is None:
        raise UserError("INVALID_TIME", "the time must include a UTC offset", "time")
    state = await session.get(ClockState, _CLOCK_ROW)
    if state is None:
        session.add(ClockState(id=_CLOCK_ROW, frozen_at=at.astimezone(UTC)))
    else:
        if state.frozen_at is not None and at < state.frozen_at:
            raise UserError("CLOCK_BACKWARDS", "the test clock only moves forward", "time")
        state.frozen_at = at.astimezone(UTC)
    await session.flush()


async def is_frozen(session: AsyncSession) -> bool:
    frozen = await session.scalar(select(ClockState.frozen_at).where(ClockState.id == _CLOCK_ROW))
    return frozen is not None
