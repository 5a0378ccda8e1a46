"""Billing periods on the customer's local calendar: DST, month ends, leap days, anchors."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import UserError
from billing.periods import (
    BillingPeriod,
    Period,
    add_days_local,
    due_date_for,
    local_date,
    local_midnight_utc,
    next_period,
    period_containing,
    validate_time_zone,
)

H = timedelta(hours=1)
ANY = date(2020, 1, 1)  # anchor for kinds that ignore it


def day_length(day: date, tz: str) -> timedelta:
    p = period_containing(BillingPeriod.DAILY, day, ANY)
    return p.end_utc(tz) - p.start_utc(tz)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- DST ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spring", "fall", "short", "long"),
    [
        ("America/New_York", date(2024, 3, 10), date(2024, 11, 3), 23 * H, 25 * H),
        ("Europe/Berlin", date(2024, 3, 31), date(2024, 10, 27), 23 * H, 25 * H),
        ("Australia/Lord_Howe", date(2024, 10, 6), date(2024, 4, 7), 23.5 * H, 24.5 * H),
        ("America/Santiago", date(2024, 9, 8), date(2024, 4, 6), 23 * H, 25 * H),
    ],
)
def test_daily_period_on_dst_days_is_short_or_long(
    tz: str, spring: date, fall: date, short: timedelta, long: timedelta
) -> None:
    assert day_length(spring, tz) == short
    assert day_length(fall, tz) == long
    assert day_length(spring + timedelta(days=1), tz) == 24 * H
    assert day_length(fall - timedelta(days=1), tz) == 24 * H


def test_new_york_midnights_across_spring_forward() -> None:
    assert local_midnight_utc(date(2024, 3, 10), "America/New_York") == utc(2024, 3, 10, 5)
    assert local_midnight_utc(date(2024, 3, 11), "America/New_York") == utc(2024, 3, 11, 4)


def test_berlin_fall_back_month_is_one_hour_longer() -> None:
    p = period_containing(BillingPeriod.MONTHLY, date(2024, 10, 15), ANY)
    assert p.start_utc("Europe/Berlin") == utc(2024, 9, 30, 22)
    assert p.end_utc("Europe/Berlin") == utc(2024, 10, 31, 23)
    assert p.end_utc("Europe/Berlin") - p.start_utc("Europe/Berlin") == 31 * 24 * H + H


def test_new_york_march_is_one_hour_shorter() -> None:
    p = period_containing(BillingPeriod.MONTHLY, date(2024, 3, 1), ANY)
    assert p.end_utc("America/New_York") - p.start_utc("America/New_York") == 31 * 24 * H - H


def test_lord_howe_half_hour_shift() -> None:
    assert local_midnight_utc(date(2024, 10, 6), "Australia/Lord_Howe") == utc(2024, 10, 5, 13, 30)
    assert local_midnight_utc(date(2024, 10, 7), "Australia/Lord_Howe") == utc(2024, 10, 6, 13)


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        # Clocks jump from 00:00 to 01:00: the day starts at the jump, local 01:00.
        ("America/Santiago", date(2024, 9, 8), utc(2024, 9, 8, 4)),
        ("Asia/Beirut", date(2024, 3, 31), utc(2024, 3, 30, 22)),
        # 23:30 -> 00:30: the gap straddles midnight, the day starts at local 00:30.
        ("America/Toronto", date(1919, 3, 31), utc(1919, 3, 31, 4, 30)),
    ],
)
def test_skipped_midnight_resolves_to_first_instant_of_the_day(
    tz: str, day: date, expected: datetime
) -> None:
    start = local_midnight_utc(day, tz)
    assert start == expected
    assert start.tzinfo is UTC
    assert local_date(start, tz) == day
    assert local_date(start - timedelta(seconds=1), tz) == day - timedelta(days=1)


def test_ambiguous_midnight_resolves_to_the_first_one() -> None:
    # Havana falls back from 01:00 to 00:00, so midnight happens twice on 3 Nov 2024.
    assert local_midnight_utc(date(2024, 11, 3), "America/Havana") == utc(2024, 11, 3, 4)
    assert day_length(date(2024, 11, 3), "America/Havana") == 25 * H


def test_day_skipped_entirely_is_an_empty_instant() -> None:
    # Samoa jumped across the date line: 30 Dec 2011 never happened in Apia.
    tz = "Pacific/Apia"
    assert day_length(date(2011, 12, 30), tz) == timedelta(0)
    assert local_midnight_utc(date(2011, 12, 31), tz) == utc(2011, 12, 30, 10)


def test_local_date_of_an_instant() -> None:
    instant = utc(2024, 3, 10, 4, 59)
    assert local_date(instant, "America/New_York") == date(2024, 3, 9)
    assert local_date(instant, "Asia/Tokyo") == date(2024, 3, 10)
    with pytest.raises(ValueError):
        local_date(datetime(2024, 3, 10), "UTC")


# --- calendar rules ----------------------------------------------------------------------


def test_monthly_follows_month_ends() -> None:
    assert period_containing(BillingPeriod.MONTHLY, date(2023, 2, 28), ANY) == Period(
        date(2023, 2, 1), date(2023, 3, 1)
    )
    assert period_containing(BillingPeriod.MONTHLY, date(2024, 2, 29), ANY) == Period(
        date(2024, 2, 1), date(2024, 3, 1)
    )
    assert period_containing(BillingPeriod.MONTHLY, date(2024, 12, 31), ANY) == Period(
        date(2024, 12, 1), date(2025, 1, 1)
    )


def test_daily_period_is_the_day() -> None:
    assert period_containing(BillingPeriod.DAILY, date(2024, 2, 29), ANY) == Period(
        date(2024, 2, 29), date(2024, 3, 1)
    )


def test_weekly_starts_on_anchor_weekday() -> None:
    anchor = date(2024, 1, 3)  # a Wednesday
    p = period_containing(BillingPeriod.WEEKLY, date(2024, 3, 4), anchor)  # a Monday
    assert p == Period(date(2024, 2, 28), date(2024, 3, 6))
    assert p.start.weekday() == anchor.weekday() == 2
    same_weekday = period_containing(BillingPeriod.WEEKLY, date(2024, 3, 6), anchor)
    assert same_weekday.start == date(2024, 3, 6)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 2, 1), Period(date(2024, 2, 1), date(2024, 2, 16))),
        (date(2024, 2, 15), Period(date(2024, 2, 1), date(2024, 2, 16))),
        (date(2024, 2, 16), Period(date(2024, 2, 16), date(2024, 3, 1))),
        (date(2024, 2, 29), Period(date(2024, 2, 16), date(2024, 3, 1))),
        (date(2023, 2, 28), Period(date(2023, 2, 16), date(2023, 3, 1))),
        (date(2024, 12, 31), Period(date(2024, 12, 16), date(2025, 1, 1))),
    ],
)
def test_semi_monthly_halves(day: date, expected: Period) -> None:
    assert period_containing(BillingPeriod.SEMI_MONTHLY, day, ANY) == expected


def test_anniversary_on_31st_across_a_leap_year() -> None:
    anchor = date(2024, 1, 31)
    p = period_containing(BillingPeriod.MONTHLY_ANNIVERSARY, anchor, anchor)
    starts = [p.start]
    for _ in range(13):
        p = next_period(BillingPeriod.MONTHLY_ANNIVERSARY, p, anchor)
        starts.append(p.start)
    assert starts == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
        date(2024, 6, 30),
        date(2024, 7, 31),
        date(2024, 8, 31),
        date(2024, 9, 30),
        date(2024, 10, 31),
        date(2024, 11, 30),
        date(2024, 12, 31),
        date(2025, 1, 31),
        date(2025, 2, 28),
    ]


def test_anniversary_before_the_anchor_day_belongs_to_last_month() -> None:
    anchor = date(2024, 1, 31)
    p = period_containing(BillingPeriod.MONTHLY_ANNIVERSARY, date(2024, 3, 30), anchor)
    assert p == Period(date(2024, 2, 29), date(2024, 3, 31))


def test_anniversary_on_29_february() -> None:
    anchor = date(2024, 2, 29)
    kind = BillingPeriod.MONTHLY_ANNIVERSARY
    feb_2025 = Period(date(2025, 2, 28), date(2025, 3, 29))
    assert period_containing(kind, date(2025, 2, 28), anchor) == feb_2025
    jan_2025 = Period(date(2025, 1, 29), date(2025, 2, 28))
    assert period_containing(kind, date(2025, 2, 27), anchor) == jan_2025
    assert period_containing(kind, date(2028, 2, 29), anchor).start == date(2028, 2, 29)
    assert period_containing(kind, date(2028, 2, 28), anchor).start == date(2028, 1, 29)


def test_period_contains_is_half_open() -> None:
    p = Period(date(2024, 2, 1), date(2024, 3, 1))
    assert p.contains(date(2024, 2, 1)) and p.contains(date(2024, 2, 29))
    assert not p.contains(date(2024, 3, 1)) and not p.contains(date(2024, 1, 31))


def test_empty_period_is_refused() -> None:
    with pytest.raises(ValueError):
        Period(date(2024, 1, 1), date(2024, 1, 1))


def test_due_date_counts_local_calendar_days() -> None:
    assert add_days_local(date(2024, 2, 28), 1) == date(2024, 2, 29)
    assert due_date_for(date(2024, 2, 15), 14) == date(2024, 2, 29)
    assert due_date_for(date(2024, 3, 1), 0) == date(2024, 3, 1)
    with pytest.raises(ValueError):
        due_date_for(date(2024, 3, 1), -1)


# --- time zone names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Europe/Berlin", "America/Santiago", "UTC", "Asia/Kolkata"])
def test_valid_time_zones_pass(name: str) -> None:
    assert validate_time_zone(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "local",
        "localtime",
        "../etc",
        "/etc/localtime",
        "Europe/Nowhere",
        "europe/berlin",
        "Factory",
    ],
)
def test_invalid_time_zone_is_a_user_error(name: str) -> None:
    with pytest.raises(UserError) as err:
        validate_time_zone(name)
    assert err.value.code == "INVALID_TIME_ZONE"
    assert err.value.field == "timeZone"


def test_conversions_refuse_invalid_time_zones() -> None:
    with pytest.raises(UserError):
        local_midnight_utc(date(2024, 1, 1), "../etc/passwd")


# --- properties --------------------------------------------------------------------------

dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))
kinds = st.sampled_from(list(BillingPeriod))


@given(kind=kinds, day=dates, anchor=dates)
def test_period_containing_contains_the_day(kind: BillingPeriod, day: date, anchor: date) -> None:
    p = period_containing(kind, day, anchor)
    assert p.contains(day)
    assert p.start < p.end


@given(kind=kinds, day=dates, anchor=dates)
def test_consecutive_periods_are_contiguous_and_never_empty(
    kind: BillingPeriod, day: date, anchor: date
) -> None:
    p = period_containing(kind, day, anchor)
    for _ in range(3):
        q = next_period(kind, p, anchor)
        assert q.start == p.end
        assert q.start < q.end
        p = q


@given(day=dates, anchor=dates)
def test_anniversary_start_is_anchor_day_clamped_to_month(day: date, anchor: date) -> None:
    p = period_containing(BillingPeriod.MONTHLY_ANNIVERSARY, day, anchor)
    last_day = calendar.monthrange(p.start.year, p.start.month)[1]
    assert p.start.day == min(anchor.day, last_day)


DST_ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Beirut",
    "America/Havana",
    "Asia/Kolkata",
]


@given(day=dates, tz=st.sampled_from(DST_ZONES))
def test_local_midnight_is_the_first_instant_of_the_local_day(day: date, tz: str) -> None:
    start = local_midnight_utc(day, tz)
    assert local_date(start, tz) == day
    assert local_date(start - timedelta(seconds=1), tz) < day
