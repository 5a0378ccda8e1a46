"""The simulator card processor, the card checks every processor shares, and the registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import UserError
from billing.processing import (
    CardDetails,
    CardProcessor,
    ChargeOutcome,
    ChargeRefused,
    ChargeRequest,
    IdempotencyConflict,
    ProcessorTimeout,
    card_brand,
    luhn_valid,
)
from processors import registry, simulator
from processors.simulator import SimulatorProcessor

APPROVE = "4242424242424242"
DECLINE = "4000000000000002"
INSUFFICIENT = "4000000000009995"
TIMEOUT = "4000000000000119"
TODAY = date(2025, 6, 15)


@pytest.fixture(autouse=True)
def clean_simulator() -> Iterator[None]:
    simulator.reset()
    yield
    simulator.reset()


@pytest.fixture
def processor() -> SimulatorProcessor:
    return SimulatorProcessor(today=lambda: TODAY)


def card(
    number: str = APPROVE, exp_month: int = 12, exp_year: int = 2030, cvc: str = "123"
) -> CardDetails:
    return CardDetails(number, exp_month, exp_year, cvc, holder="Ada")


async def charge(
    processor: CardProcessor, number: str, key: str = "attempt-1", amount: int = 1999
) -> ChargeRequest:
    """Tokenize ``number`` and build a charge request for it (not yet sent)."""
    token = await processor.tokenize(card(number))
    return ChargeRequest(token=token.token, amount=amount, currency="USD", idempotency_key=key)


# --- tokenize -------------------------------------------------------------------------------


async def test_tokenize_keeps_only_brand_last4_and_expiry(processor: SimulatorProcessor) -> None:
    token = await processor.tokenize(card("4242 4242 4242 4242"))
    assert token.token.startswith("sim_tok_")
    assert (token.brand, token.last4) == ("visa", "4242")
    assert (token.exp_month, token.exp_year) == (12, 2030)


async def test_tokens_are_unique_per_tokenization(processor: SimulatorProcessor) -> None:
    first = await processor.tokenize(card())
    second = await processor.tokenize(card())
    assert first.token != second.token


async def test_simulator_never_keeps_the_card_number_or_cvc(processor: SimulatorProcessor) -> None:
    token = await processor.tokenize(card(APPROVE, cvc="987"))
    assert APPROVE not in token.token and "987" not in token.token
    assert "4242" in token.token  # the last four digits, as every processor shows them


@pytest.mark.parametrize(
    ("details", "code", "field"),
    [
        (card("4242424242424241"), "INVALID_CARD_NUMBER", "cardNumber"),
        (card("4242"), "INVALID_CARD_NUMBER", "cardNumber"),
        (card("4242x24242424242"), "INVALID_CARD_NUMBER", "cardNumber"),
        (card(exp_month=5, exp_year=2025), "CARD_EXPIRED", "expiry"),
        (card(exp_month=13), "INVALID_EXPIRY", "expiry"),
        (card(exp_year=30), "INVALID_EXPIRY", "expiry"),
        (card(cvc="12"), "INVALID_CVC", "cvc"),
        (card(cvc="12a"), "INVALID_CVC", "cvc"),
        (card("378282246310005", cvc="123"), "INVALID_CVC", "cvc"),
    ],
)
async def test_invalid_cards_are_refused_without_echoing_the_card(
    processor: SimulatorProcessor, details: CardDetails, code: str, field: str
) -> None:
    with pytest.raises(UserError) as caught:
        await processor.tokenize(details)
    assert (caught.value.code, caught.value.field) == (code, field)
    for shown in (caught.value.message, str(caught.value), repr(caught.value)):
        assert details.number not in shown
        assert details.cvc not in shown


async def test_card_is_good_through_its_expiry_month(processor: SimulatorProcessor) -> None:
    token = await processor.tokenize(card(exp_month=6, exp_year=2025))
    assert token.exp_month == 6


async def test_amex_takes_a_four_digit_cvc(processor: SimulatorProcessor) -> None:
    token = await processor.tokenize(card("378282246310005", cvc="1234"))
    assert (token.brand, token.last4) == ("amex", "0005")


def test_card_details_repr_masks_number_and_hides_cvc() -> None:
    details = card(APPROVE, cvc="987")
    for shown in (repr(details), str(details), f"{details}"):
        assert APPROVE not in shown
        assert "987" not in shown
        assert "4242" in shown


def test_card_details_repr_of_a_short_number_shows_no_digits() -> None:
    assert "4242" not in repr(card("4242"))


# --- charge ---------------------------------------------------------------------------------


async def test_approve_card_succeeds(processor: SimulatorProcessor) -> None:
    result = await processor.charge(await charge(processor, APPROVE))
    assert result.status is ChargeOutcome.SUCCEEDED
    assert (result.processor_reference or "").startswith("sim_ch_")
    assert (result.decline_code, result.amount, result.currency) == (None, 1999, "USD")


async def test_any_other_luhn_valid_card_succeeds(processor: SimulatorProcessor) -> None:
    result = await processor.charge(await charge(processor, "5555555555554444"))
    assert result.status is ChargeOutcome.SUCCEEDED


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [(DECLINE, "card_declined"), (INSUFFICIENT, "insufficient_funds")],
)
async def test_decline_cards_decline_with_their_code(
    processor: SimulatorProcessor, number: str, decline_code: str
) -> None:
    result = await processor.charge(await charge(processor, number))
    assert result.status is ChargeOutcome.DECLINED
    assert result.decline_code == decline_code
    assert result.message


async def test_card_expiring_after_tokenization_is_declined(processor: SimulatorProcessor) -> None:
    request = await charge(processor, APPROVE)
    later = SimulatorProcessor(today=lambda: date(2031, 1, 1))
    result = await later.charge(request)
    assert (result.status, result.decline_code) == (ChargeOutcome.DECLINED, "expired_card")


async def test_timeout_card_raises_but_the_charge_went_through(
    processor: SimulatorProcessor,
) -> None:
    request = await charge(processor, TIMEOUT, key="attempt-timeout")
    with pytest.raises(ProcessorTimeout):
        await processor.charge(request)
    found = await processor.lookup("attempt-timeout")
    assert found is not None and found.status is ChargeOutcome.SUCCEEDED
    assert (found.amount, found.currency) == (1999, "USD")
    assert len(processor.charges()) == 1


async def test_replay_after_timeout_returns_the_booked_charge(
    processor: SimulatorProcessor,
) -> None:
    request = await charge(processor, TIMEOUT)
    with pytest.raises(ProcessorTimeout):
        await processor.charge(request)
    replay = await processor.charge(request)
    assert replay == await processor.lookup(request.idempotency_key)
    assert len(processor.charges()) == 1


async def test_replay_returns_the_first_result_and_charges_once(
    processor: SimulatorProcessor,
) -> None:
    request = await charge(processor, APPROVE)
    first = await processor.charge(request)
    again = await SimulatorProcessor(today=lambda: TODAY).charge(request)
    assert again == first
    assert processor.charges() == [first]


async def test_concurrent_replays_charge_once() -> None:
    slow = SimulatorProcessor(latency_ms=5, today=lambda: TODAY)
    request = await charge(slow, APPROVE)
    results = await asyncio.gather(*(slow.charge(request) for _ in range(10)))
    assert len({result.processor_reference for result in results}) == 1
    assert len(slow.charges()) == 1


async def test_declines_replay_too(processor: SimulatorProcessor) -> None:
    request = await charge(processor, DECLINE)
    assert await processor.charge(request) == await processor.charge(request)
    assert len(processor.charges()) == 1


@pytest.mark.parametrize("change", ["amount", "token", "currency"])
async def test_key_reused_for_a_different_charge_is_refused(
    processor: SimulatorProcessor, change: str
) -> None:
    request = await charge(processor, APPROVE)
    await processor.charge(request)
    other_token = (await processor.tokenize(card())).token
    different = {
        "amount": ChargeRequest(request.token, 2000, "USD", request.idempotency_key),
        "token": ChargeRequest(other_token, 1999, "USD", request.idempotency_key),
        "currency": ChargeRequest(request.token, 1999, "EUR", request.idempotency_key),
    }[change]
    with pytest.raises(IdempotencyConflict) as caught:
        await processor.charge(different)
    assert caught.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert len(processor.charges()) == 1


@pytest.mark.parametrize("amount", [0, -1])
async def test_non_positive_amount_is_refused(processor: SimulatorProcessor, amount: int) -> None:
    with pytest.raises(ChargeRefused) as caught:
        await processor.charge(await charge(processor, APPROVE, amount=amount))
    assert caught.value.code == "INVALID_AMOUNT"
    assert processor.charges() == []


async def test_unknown_token_is_refused(processor: SimulatorProcessor) -> None:
    with pytest.raises(ChargeRefused) as caught:
        await processor.charge(ChargeRequest("sim_tok_nope", 100, "USD", "k"))
    assert caught.value.code == "INVALID_TOKEN"


# --- lookup ---------------------------------------------------------------------------------


async def test_lookup_of_an_unseen_key_is_none(processor: SimulatorProcessor) -> None:
    assert await processor.lookup("never-sent") is None


async def test_lookup_returns_the_charge_result(processor: SimulatorProcessor) -> None:
    result = await processor.charge(await charge(processor, INSUFFICIENT))
    assert await processor.lookup("attempt-1") == result


# --- state sharing --------------------------------------------------------------------------


async def test_state_is_shared_by_instances_in_one_namespace() -> None:
    token = await SimulatorProcessor().tokenize(card())
    result = await SimulatorProcessor().charge(ChargeRequest(token.token, 500, "USD", "k"))
    assert result.status is ChargeOutcome.SUCCEEDED


async def test_namespaces_keep_separate_charges() -> None:
    token = await SimulatorProcessor(namespace="a").tokenize(card())
    await SimulatorProcessor(namespace="a").charge(ChargeRequest(token.token, 500, "USD", "k"))
    assert await SimulatorProcessor(namespace="b").lookup("k") is None


async def test_a_token_works_in_another_process() -> None:
    """``kassa demo`` stores cards that ``kassa serve`` charges: the token carries the card."""
    token = await SimulatorProcessor().tokenize(card(DECLINE))
    simulator.reset()  # as good as a fresh process
    result = await SimulatorProcessor().charge(ChargeRequest(token.token, 500, "USD", "k"))
    assert result.decline_code == "card_declined"


async def test_reset_forgets_everything(processor: SimulatorProcessor) -> None:
    await processor.charge(await charge(processor, APPROVE))
    simulator.reset()
    assert await processor.lookup("attempt-1") is None
    assert processor.charges() == []


# --- refund ---------------------------------------------------------------------------------


async def test_full_refund(processor: SimulatorProcessor) -> None:
    charged = await processor.charge(await charge(processor, APPROVE, amount=1000))
    assert charged.processor_reference is not None
    refund = await processor.refund(charged.processor_reference, 1000, "refund-1")
    assert refund.succeeded
    assert (refund.processor_reference or "").startswith("sim_re_")


async def test_partial_refunds_up_to_the_charged_amount(processor: SimulatorProcessor) -> None:
    charged = await processor.charge(await charge(processor, APPROVE, amount=1000))
    assert charged.processor_reference is not None
    assert (await processor.refund(charged.processor_reference, 400, "r1")).succeeded
    assert (await processor.refund(charged.processor_reference, 600, "r2")).succeeded
    over = await processor.refund(charged.processor_reference, 1, "r3")
    assert not over.succeeded and over.processor_reference is None


async def test_refund_of_more_than_was_charged_fails(processor: SimulatorProcessor) -> None:
    charged = await processor.charge(await charge(processor, APPROVE, amount=1000))
    assert charged.processor_reference is not None
    over = await processor.refund(charged.processor_reference, 1001, "r1")
    assert not over.succeeded
    assert (await processor.refund(charged.processor_reference, 1000, "r2")).succeeded


async def test_refund_replay_refunds_once(processor: SimulatorProcessor) -> None:
    charged = await processor.charge(await charge(processor, APPROVE, amount=1000))
    assert charged.processor_reference is not None
    first = await processor.refund(charged.processor_reference, 700, "r1")
    assert await processor.refund(charged.processor_reference, 700, "r1") == first
    assert (await processor.refund(charged.processor_reference, 300, "r2")).succeeded


async def test_refund_key_reused_for_a_different_refund_is_refused(
    processor: SimulatorProcessor,
) -> None:
    charged = await processor.charge(await charge(processor, APPROVE, amount=1000))
    assert charged.processor_reference is not None
    await processor.refund(charged.processor_reference, 100, "r1")
    with pytest.raises(IdempotencyConflict) as caught:
        await processor.refund(charged.processor_reference, 200, "r1")
    assert caught.value.code == "IDEMPOTENCY_KEY_REUSED"


async def test_refund_of_a_declined_or_unknown_charge_fails(processor: SimulatorProcessor) -> None:
    declined = await processor.charge(await charge(processor, DECLINE))
    assert declined.processor_reference is not None
    assert not (await processor.refund(declined.processor_reference, 1, "r1")).succeeded
    assert not (await processor.refund("sim_ch_nope", 1, "r2")).succeeded


async def test_refund_of_a_timed_out_charge_works_after_lookup(
    processor: SimulatorProcessor,
) -> None:
    with pytest.raises(ProcessorTimeout):
        await processor.charge(await charge(processor, TIMEOUT))
    found = await processor.lookup("attempt-1")
    assert found is not None and found.processor_reference is not None
    assert (await processor.refund(found.processor_reference, 1999, "r1")).succeeded


async def test_non_positive_refund_is_refused(processor: SimulatorProcessor) -> None:
    charged = await processor.charge(await charge(processor, APPROVE))
    assert charged.processor_reference is not None
    with pytest.raises(ChargeRefused) as caught:
        await processor.refund(charged.processor_reference, 0, "r1")
    assert caught.value.code == "INVALID_AMOUNT"


# --- card helpers ---------------------------------------------------------------------------


def reference_luhn(number: str) -> bool:
    """Luhn written the other way round: double every second digit counting from the left
    when the length is even, and compare the weighted digit sum."""
    if not number or not all(c in "0123456789" for c in number):
        return False
    parity = len(number) % 2
    total = 0
    for index, char in enumerate(number):
        value = int(char) * (2 if index % 2 == parity else 1)
        total += sum(int(d) for d in str(value))
    return total % 10 == 0


@given(st.text(alphabet="0123456789", min_size=1, max_size=25))
def test_luhn_valid_agrees_with_reference(number: str) -> None:
    assert luhn_valid(number) == reference_luhn(number)


@given(st.text(max_size=25))
def test_luhn_valid_rejects_anything_but_digits(text: str) -> None:
    assert luhn_valid(text) == reference_luhn(text)


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_every_payload_has_exactly_one_check_digit(payload: str) -> None:
    valid = [d for d in "0123456789" if luhn_valid(payload + d)]
    assert len(valid) == 1


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        (APPROVE, "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("371449635398431", "amex"),
        ("6011111111111117", "discover"),
        ("6445644564456445", "discover"),
        ("6500000000000002", "discover"),
        ("6759649826438453", "maestro"),
        ("6761000000000006", "maestro"),
        ("5018000000000009", "maestro"),
        ("6767700000000005", "maestro"),
        ("3566002020360505", "unknown"),
        ("", "unknown"),
    ],
)
def test_card_brand_by_prefix(number: str, brand: str) -> None:
    assert card_brand(number) == brand


# --- registry -------------------------------------------------------------------------------


def test_registry_knows_the_simulator() -> None:
    assert "simulator" in registry.available()
    processor = registry.get_processor("simulator", namespace="reg", latency_ms=0)
    assert isinstance(processor, SimulatorProcessor)
    assert processor.name == "simulator"


def test_registry_unknown_name_is_a_user_error() -> None:
    with pytest.raises(UserError) as caught:
        registry.get_processor("nope")
    assert caught.value.code == "UNKNOWN_PROCESSOR"


def test_registry_accepts_a_new_processor_but_not_a_clash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", {})
    registry.register("other", SimulatorProcessor)
    registry.register("other", SimulatorProcessor)
    assert {"other", "simulator"} <= set(registry.available())
    assert isinstance(registry.get_processor("other"), SimulatorProcessor)
    with pytest.raises(ValueError):
        registry.register("simulator", lambda **config: SimulatorProcessor(**config))
