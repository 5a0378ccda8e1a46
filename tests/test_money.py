"""Money rules: strict parsing, half-up rounding applied once, splits that add up exactly."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import UserError
from billing.money import (
    CURRENCY_DECIMALS,
    MAX_AMOUNT,
    allocate,
    apply_rate,
    convert,
    format_amount,
    parse_amount,
    parse_positive_amount,
    percent_split,
    validate_currency,
)

currencies = st.sampled_from(sorted(CURRENCY_DECIMALS))
amounts = st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT)
rates = st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False)


def test_parse_amount_reads_minor_units() -> None:
    assert parse_amount("12.50", "USD") == 1250
    assert parse_amount("12", "USD") == 1200
    assert parse_amount("1000", "JPY") == 1000
    assert parse_amount("0.00000001", "BTC") == 1
    assert parse_amount("1.234", "KWD") == 1234


@pytest.mark.parametrize("text", ["1.005", "0.001"])
def test_parse_amount_refuses_more_decimals_than_the_currency_has(text: str) -> None:
    with pytest.raises(UserError) as error:
        parse_amount(text, "USD")
    assert error.value.code == "TOO_MANY_DECIMALS"


@pytest.mark.parametrize("text", ["", "abc", "1,50", "1e3", "NaN", "Infinity", "1.", ".5", " "])
def test_parse_amount_refuses_what_is_not_a_decimal(text: str) -> None:
    with pytest.raises(UserError) as error:
        parse_amount(text, "USD")
    assert error.value.code == "INVALID_AMOUNT"


@pytest.mark.parametrize(
    "text",
    [
        "\u0661\u0662",  # Arabic-Indic ١٢, which int() and Decimal() read as 12
        "\u06f1\u06f2",  # Persian ۱۲
        "\uff11\uff12",  # full-width １２
        "1\uff0e50",  # a full-width point
        "1_000",
        "1 000",
        "12. 50",
        "1\u00a0000",  # a no-break space inside
        "\u200312",  # a Unicode space around it is not trimmed either
        "+5",
        "--5",
        "5-",
        "1e3",
        "1E-2",
        "0x10",
    ],
)
def test_amounts_are_ascii_digits_only(text: str) -> None:
    with pytest.raises(UserError) as error:
        parse_amount(text, "USD")
    assert error.value.code == "INVALID_AMOUNT"


def test_amount_grammar_keeps_what_it_always_took() -> None:
    """Digits, one point and up to the currency's decimals, a minus sign (the services
    decide where a negative amount is allowed), and a form field's stray spaces around it."""
    assert parse_amount(" 12.50\n", "USD") == 1250
    assert parse_amount("-0.01", "USD") == -1
    assert parse_amount("007", "JPY") == 7


@pytest.mark.parametrize("code", ["usd", "Usd", " USD "])
def test_currency_codes_are_upper_cased(code: str) -> None:
    assert validate_currency(code) == "USD"
    assert parse_amount("1.50", code) == 150


@pytest.mark.parametrize(
    "code",
    [
        "\u0131nr",  # dotless ı: "ınr".upper() == "INR"
        "\u017fek",  # long s: "ſek".upper() == "SEK"
        "\uff35\uff33\uff24",  # full-width ＵＳＤ
        "US D",
        "USDX",
        "US",
        "XXX",
        "",
    ],
)
def test_currency_codes_are_three_ascii_letters_of_a_known_currency(code: str) -> None:
    with pytest.raises(UserError) as error:
        validate_currency(code)
    assert error.value.code == "INVALID_CURRENCY"
    with pytest.raises(UserError) as error:
        parse_amount("1.00", code)
    assert error.value.code == "INVALID_CURRENCY"


def test_yen_has_no_decimals() -> None:
    with pytest.raises(UserError) as error:
        parse_amount("1.5", "JPY")
    assert error.value.code == "TOO_MANY_DECIMALS"


@pytest.mark.parametrize("text", ["0", "-5.00", "0.00"])
def test_positive_amount_refuses_zero_and_negative(text: str) -> None:
    with pytest.raises(UserError) as error:
        parse_positive_amount(text, "USD")
    assert error.value.code == "AMOUNT_NOT_POSITIVE"


def test_unknown_currency_is_a_user_error() -> None:
    with pytest.raises(UserError) as error:
        parse_amount("1.00", "XXX")
    assert error.value.code == "INVALID_CURRENCY"


def test_rate_rounds_half_up_once() -> None:
    assert apply_rate(5, "0.5") == 3  # 2.5 → 3
    assert apply_rate(15, "0.1") == 2  # 1.5 → 2
    assert apply_rate(-5, "0.5") == -3  # a tie rounds away from zero
    assert apply_rate(1000, "0.075") == 75


@given(amounts, currencies)
def test_format_then_parse_is_the_identity(minor: int, currency: str) -> None:
    assert parse_amount(format_amount(minor, currency), currency) == minor


@given(amounts, rates)
def test_rate_matches_decimal_half_up(minor: int, rate: Decimal) -> None:
    expected = (Decimal(minor) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert apply_rate(minor, rate) == int(expected)


@given(st.integers(min_value=0, max_value=10**15), rates)
def test_split_parts_add_up_to_the_whole(gross: int, rate: Decimal) -> None:
    net, part = percent_split(gross, rate)
    assert net + part == gross
    assert part == apply_rate(gross, rate)


@given(
    amounts,
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(
        lambda ws: sum(ws) > 0
    ),
)
def test_allocate_adds_up_and_stays_within_one_unit(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Decimal(total) * weight / weight_sum
        assert abs(Decimal(part) - exact) < 1


def test_convert_rounds_once_half_up_to_the_target_minor_unit() -> None:
    """``docs/distributors.md``: 10.00 EUR at 1.0857 is 10.857 USD → 10.86; across minor
    units, 1,000 JPY at 0.0062 is 6.20 USD and 1.00 USD at 155.5 is 155.5 → 156 JPY."""
    assert convert(1000, Decimal("1.0857"), "EUR", "USD") == 1086
    assert convert(2000, Decimal("1.0857"), "EUR", "USD") == 2171
    assert convert(1000, Decimal("0.0062"), "JPY", "USD") == 620
    assert convert(100, Decimal("155.5"), "USD", "JPY") == 156


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=10**8))
def test_convert_is_the_exact_product_rounded_half_up(minor: int, rate_units: int) -> None:
    rate = Decimal(rate_units).scaleb(-4)
    exact = Decimal(minor) * rate
    assert convert(minor, rate, "EUR", "USD") == int(exact.quantize(Decimal(1), ROUND_HALF_UP))
