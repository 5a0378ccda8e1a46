"""The one clock of the system.

In production "now" is the wall clock.  In test mode the test clock in ``clock_state`` is
"now" for everyone (API, bill run, jobs, the worker), in one of two modes:

* **frozen** (:func:`freeze`, :func:`stop`): "now" is a fixed instant until it is moved on;
  :func:`billing.jobs.advance_clock` moves it forward, running in time order every job
  that falls due on the way.  Tests and the demo's history use this.
* **running** (:func:`run`): "now" is the wall clock plus an offset, so time passes and work
  scheduled for later (a card payment's reconciliation five minutes on, a bill run at
  midnight) falls due by itself and the worker runs it.  The demo leaves the clock running.

Until it is first frozen the test clock is the wall clock, and that first freeze may set any
instant (a test's fixed day).  From then on it never goes back: freezing takes an instant
not before now, and starting to run continues from the frozen instant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import UserError
from billing.models import ClockState

_CLOCK_ROW = 1


def wall_now() -> datetime:
    """The wall clock (tests replace it to let time pass without sleeping)."""
    return datetime.now(UTC)


def _reading(frozen_at: datetime | None, offset_microseconds: int | None) -> datetime:
    if frozen_at is not None:
        return frozen_at
    return wall_now() + timedelta(microseconds=offset_microseconds or 0)


async def now(session: AsyncSession) -> datetime:
    """The current instant: the frozen test clock's, the wall clock's plus the running test
    clock's offset, or the wall clock's."""
    row = (
        await session.execute(
            select(ClockState.frozen_at, ClockState.offset_microseconds).where(
                ClockState.id == _CLOCK_ROW
            )
        )
    ).one_or_none()
    return wall_now() if row is None else _reading(row.frozen_at, row.offset_microseconds)


async def _state(session: AsyncSession) -> ClockState:
    """The clock's row, made on first use (running with no offset: the wall clock)."""
    state = await session.get(ClockState, _CLOCK_ROW)
    if state is None:
        state = ClockState(id=_CLOCK_ROW, frozen_at=None, offset_microseconds=None)
        session.add(state)
    return state


async def freeze(session: AsyncSession, at: datetime) -> None:
    """Stop the test clock at ``at``, which may not be before now."""
    if at.tzinfo is None:
        raise UserError("INVALID_TIME", "the time must include a UTC offset", "time")
    state = await _state(session)
    was_set = state.frozen_at is not None or state.offset_microseconds is not None
    if was_set and at < _reading(state.frozen_at, state.offset_microseconds):
        raise UserError("CLOCK_BACKWARDS", "the test clock only moves forward", "time")
    state.frozen_at = at.astimezone(UTC)
    state.offset_microseconds = None
    await session.flush()


async def stop(session: AsyncSession) -> datetime:
    """Freeze the test clock where it is now; returns that instant."""
    state = await _state(session)
    at = _reading(state.frozen_at, state.offset_microseconds)
    state.frozen_at = at
    state.offset_microseconds = None
    await session.flush()
    return at


async def run(session: AsyncSession) -> None:
    """Let the test clock run with wall time from where it stands (a frozen clock goes on from
    its instant; a running one keeps its offset)."""
    state = await _state(session)
    if state.frozen_at is not None:
        state.offset_microseconds = (state.frozen_at - wall_now()) // timedelta(microseconds=1)
        state.frozen_at = None
    await session.flush()


async def is_frozen(session: AsyncSession) -> bool:
    frozen = await session.scalar(select(ClockState.frozen_at).where(ClockState.id == _CLOCK_ROW))
    return frozen is not None
