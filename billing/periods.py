"""Billing periods, computed on the customer's local calendar.

A customer in Berlin billed "monthly" expects the period to turn over at *their* midnight on
the 1st, not at UTC midnight, so every rule here works on local :class:`~datetime.date`
values and only turns them into UTC instants at the edges (:meth:`Period.start_utc`,
:func:`local_midnight_utc`).  Working on dates keeps the calendar arithmetic exact; doing the
conversion once, through :mod:`zoneinfo`, is what keeps DST days at their real 23 or 25 hours.

Everything here is pure: no database, no clock, no I/O.  Periods are half-open
``[start, end)`` so that consecutive periods share a boundary and never overlap or leave gaps.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, available_timezones

from billing.errors import UserError

#: Names the tz database ships that are not real places: the host's own zone and a placeholder.
_NOT_CUSTOMER_ZONES = frozenset({"localtime", "posixrules", "Factory"})


class BillingPeriod(StrEnum):
    """How a customer's time is cut into billing periods."""

    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    SEMI_MONTHLY = "SEMI_MONTHLY"
    MONTHLY = "MONTHLY"
    MONTHLY_ANNIVERSARY = "MONTHLY_ANNIVERSARY"


@dataclass(frozen=True)
class Period:
    """Local days ``start`` (inclusive) to ``end`` (exclusive: the next period's first day).

    Dates, not instants, because the zone can change its rules (or the customer their zone)
    after the period was cut; the UTC edges are derived when they are needed.
    """

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty period {self.start}..{self.end}")

    def start_utc(self, tz: str) -> datetime:
        """The UTC instant at which the period begins in zone ``tz``."""
        return local_midnight_utc(self.start, tz)

    def end_utc(self, tz: str) -> datetime:
        """The UTC instant at which the period ends (and the next one begins) in zone ``tz``."""
        return local_midnight_utc(self.end, tz)

    def contains(self, day: date) -> bool:
        """Whether local date ``day`` falls inside the period."""
        return self.start <= day < self.end


def period_containing(kind: BillingPeriod, day: date, anchor: date) -> Period:
    """The period of ``kind`` that contains local date ``day``.

    ``anchor`` is the customer's billing anchor (usually the local date they signed up); it
    fixes the weekday of WEEKLY periods and the day of month of MONTHLY_ANNIVERSARY periods.
    The other kinds follow the plain calendar and ignore it.
    """
    match kind:
        case BillingPeriod.DAILY:
            return Period(day, day + timedelta(days=1))
        case BillingPeriod.WEEKLY:
            start = day - timedelta(days=(day.weekday() - anchor.weekday()) % 7)
            return Period(start, start + timedelta(days=7))
        case BillingPeriod.SEMI_MONTHLY:
            if day.day <= 15:
                return Period(day.replace(day=1), day.replace(day=16))
            return Period(day.replace(day=16), _first_of_next_month(day))
        case BillingPeriod.MONTHLY:
            return Period(day.replace(day=1), _first_of_next_month(day))
        case BillingPeriod.MONTHLY_ANNIVERSARY:
            this_month = _anniversary_in(day.year, day.month, anchor.day)
            if day >= this_month:
                nxt = _first_of_next_month(day)
                return Period(this_month, _anniversary_in(nxt.year, nxt.month, anchor.day))
            prev = day.replace(day=1) - timedelta(days=1)
            return Period(_anniversary_in(prev.year, prev.month, anchor.day), this_month)
    raise ValueError(f"unknown billing period {kind!r}")


def next_period(kind: BillingPeriod, period: Period, anchor: date) -> Period:
    """The period right after ``period``: it starts on the day ``period`` ends."""
    return period_containing(kind, period.end, anchor)


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date that an aware ``instant`` falls on in zone ``tz``.

    Naive datetimes are refused: guessing their zone is how billing days drift by one.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("local_date needs an aware datetime")
    return instant.astimezone(_zone(tz)).date()


@lru_cache(maxsize=65_536)
def local_midnight_utc(day: date, tz: str) -> datetime:
    """The UTC instant at which local date ``day`` begins in zone ``tz``.

    Cached: a bill run asks for the same few midnights for every customer in a zone.

    Usually local 00:00.  On a fall-back day where midnight happens twice, the first (fold=0)
    one.  Where DST skips midnight (America/Santiago, Asia/Beirut jump from 00:00 to 01:00),
    the day begins at the transition itself: the first instant whose local date is ``day``.
    """
    zone = _zone(tz)
    midnight = datetime.combine(day, time(), tzinfo=zone)
    candidate = midnight.astimezone(UTC)  # fold=0: the earlier reading of an ambiguous time
    if candidate.astimezone(zone).replace(tzinfo=None) == midnight.replace(tzinfo=None):
        return candidate
    # Midnight is in a gap.  fold=0 read it with the pre-transition offset, which lands at or
    # after the transition; fold=1 (post-transition offset) lands before it.  The day starts
    # at the transition, so bisect to the first whole second that is already on ``day``.
    low = midnight.replace(fold=1).astimezone(UTC)  # still the previous local day
    high = candidate  # already on ``day``
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) // 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).date() >= day:
            high = mid
        else:
            low = mid
    return high


def local_time_utc(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of wall-clock time ``at`` on local date ``day`` in zone ``tz``.

    Built from the local date and time (not midnight plus hours), so 09:00 stays 09:00 on
    the days DST starts and ends.  A time in a DST gap reads with the pre-gap offset (it
    lands just after the jump), one that happens twice is the first.
    """
    return datetime.combine(day, at, tzinfo=_zone(tz)).astimezone(UTC)


def add_days_local(day: date, n: int) -> date:
    """``day`` plus ``n`` calendar days: local dates have no DST, so this is plain arithmetic."""
    return day + timedelta(days=n)


def due_date_for(issue_date: date, payment_terms_days: int) -> date:
    """The local date an invoice issued on ``issue_date`` falls due under net-N terms.

    Counted in calendar days on the customer's calendar, so a DST change in between never
    moves the due date; "due" means due by the end of that local day.  The calendar step of
    :func:`billing.invoices.invoice_dates`, which is where an invoice's dates are set.
    """
    if payment_terms_days < 0:
        raise ValueError("payment terms cannot be negative")
    return add_days_local(issue_date, payment_terms_days)


def validate_time_zone(name: str) -> str:
    """Return ``name`` if it is an IANA zone a customer can live in, else a user error.

    Checked against the tz database's own list rather than by trying ``ZoneInfo(name)``, so
    that file paths (``"../etc"``), the host's ``"localtime"`` and other non-zones are refused
    without touching the file system.
    """
    if not isinstance(name, str) or name not in _known_zones():
        raise UserError("INVALID_TIME_ZONE", f"{name!r} is not an IANA time zone", "timeZone")
    return name


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_CUSTOMER_ZONES


def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(validate_time_zone(tz))


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _anniversary_in(year: int, month: int, anchor_day: int) -> date:
    """The anchor day in ``year``-``month``, clamped to the month's last day (31 → 30, 29)."""
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))
