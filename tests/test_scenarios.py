"""Issue 4's scenarios, "invoices that collect themselves", end to end over GraphQL.

Each test drives the API only — a provider's partner key, the test clock (every job that
falls due on the way runs: bill run, collection run, overdue marking, suspension) — and a card
network's test cards.  Each runs once per network (:mod:`tests.processor_networks`): the
simulator, Stripe's fake and Authorize.Net's fake, the last two over HTTP through a processor
account.  ``docs/scenarios.md`` lists the same operations, step by step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from processors import registry
from processors.fakes.stripe import HANG_CARD
from tests import graphql_support as graphql
from tests.graphql_support import Api

if TYPE_CHECKING:  # imported by pytest as a plugin, which it rewrites only if not imported yet
    from tests.processor_networks import Network

pytest_plugins = ["tests.graphql_fixtures", "tests.processor_networks"]

INVOICE = """
    id kind status issueDate dueDate total { amount } amountPaid { amount }
    outstanding { amount } nextAttemptAt notChargedReason
    attempts { scheduledFor scheduledAt status amount { amount } declineCode
               processorResponse cancelReason payment { method amount { amount } } }
    statusChanges { fromStatus toStatus cause causedById }
    payments { amount { amount } payment { method } }
"""
CUSTOMER = f"""query($id: ID!) {{ customer(id: $id) {{
    status statusChanges {{ fromStatus toStatus cause causedById }}
    invoices(first: 10) {{ {INVOICE} }}
}} }}"""


# --- the operations every scenario uses ---------------------------------------------------


async def advance(api: Api, to: str) -> None:
    """``advanceTestClock``: move "now" to ``to``, running every job due on the way, and leave
    the clock frozen there so a scenario sees exact instants."""
    moved = await api.mutate("advanceTestClock", {"to": to, "running": False}, "testClock { now }")
    assert moved["errors"] == [], moved


async def create_class(api: Api, **fields: Any) -> str:
    made = await api.mutate(
        "createCustomerClass", {"name": "Scenario", **fields}, "customerClass { id }"
    )
    assert made["errors"] == [], made
    class_id: str = made["customerClass"]["id"]
    return class_id


async def create_customer(
    api: Api, class_id: str, card: str, time_zone: str = "UTC"
) -> tuple[str, str]:
    """A monthly customer on auto-payment with one account and a default card; returns the
    customer's and the account's ids."""
    customer = await graphql.create_customer(
        api,
        name="Grace Hopper",
        timeZone=time_zone,
        classId=class_id,
        autoPayment=True,
        billingPeriod="MONTHLY",
    )
    account = await graphql.create_account(api, customer["id"], f"ACC-{customer['id'][-6:]}")
    await add_card(api, customer["id"], card)
    return customer["id"], account["id"]


async def add_card(api: Api, customer_id: str, number: str) -> None:
    """A card made the customer's default, the one collection charges."""
    assert (await graphql.add_card(api, customer_id, number, make_default=True))["isDefault"]


async def post_charge(api: Api, account_id: str, amount: str, key: str) -> None:
    posted = await graphql.post_charge(api, account_id, amount, key, description="Fibre 500")
    assert posted["errors"] == [], posted


async def customer(api: Api, customer_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.run(CUSTOMER, {"id": customer_id}))["customer"]
    return found


async def only_invoice(api: Api, customer_id: str) -> dict[str, Any]:
    invoice: dict[str, Any]
    [invoice] = (await customer(api, customer_id))["invoices"]
    return invoice


def attempts(invoice: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (a["scheduledFor"], a["status"], (a["amount"] or {}).get("amount"), a["declineCode"])
        for a in invoice["attempts"]
    ]


def transitions(thing: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    return [(c["fromStatus"], c["toStatus"], c["cause"]) for c in thing["statusChanges"]]


# --- 1. a partial payment shrinks the charge ------------------------------------------------


async def test_1_a_wire_before_the_due_date_leaves_the_card_only_the_rest(
    api: Api, network: Network
) -> None:
    await advance(api, "2029-08-10T12:00:00Z")
    class_id = await create_class(
        api, paymentTermsDays=14, regularInvoices={"cardCharging": "ON_DUE_DATE"}
    )
    customer_id, account_id = await create_customer(api, class_id, network.approve, "Europe/London")
    await post_charge(api, account_id, "30.00", "s1-charge")

    await advance(api, "2029-09-05T10:00:00Z")  # the bill run issued August's invoice on 1 Sep
    invoice = await only_invoice(api, customer_id)
    assert (invoice["issueDate"], invoice["dueDate"], invoice["status"]) == (
        "2029-09-01",
        "2029-09-15",
        "UNPAID",
    )
    assert invoice["nextAttemptAt"] == "2029-09-15T08:00:00+00:00"  # 09:00 in London (BST)
    assert attempts(invoice) == [("2029-09-15", "SCHEDULED", None, None)]

    wire = await api.mutate(
        "recordPayment",
        {
            "customerId": customer_id,
            "amount": "20.00",
            "currency": "USD",
            "method": "WIRE",
            "idempotencyKey": "s1-wire",
            "reference": "Bank transfer 5 Sep",
        },
        "payment { id }",
    )
    assert wire["errors"] == []
    assert (await only_invoice(api, customer_id))["status"] == "PARTIALLY_PAID"

    await advance(api, "2029-09-15T12:00:00Z")
    invoice = await only_invoice(api, customer_id)
    assert invoice["status"] == "PAID" and invoice["outstanding"] == {"amount": "0.00"}
    assert attempts(invoice) == [("2029-09-15", "SUCCEEDED", "10.00", None)]
    assert invoice["attempts"][0]["payment"] == {"method": "CARD", "amount": {"amount": "10.00"}}
    assert network.charges() == ["10.00"]
    assert sorted((p["payment"]["method"], p["amount"]["amount"]) for p in invoice["payments"]) == [
        ("CARD", "10.00"),
        ("WIRE", "20.00"),
    ]
    assert transitions(invoice) == [
        (None, "UNPAID", "ISSUED"),
        ("UNPAID", "PARTIALLY_PAID", "PAYMENT"),
        ("PARTIALLY_PAID", "PAID", "PAYMENT"),
    ]


# --- 2. charge upon issue, a second attempt before the due date ----------------------------


async def test_2_a_failed_charge_upon_issue_is_retried_five_days_before_the_due_date(
    api: Api,
    network: Network,
) -> None:
    await advance(api, "2029-03-05T12:00:00Z")
    class_id = await create_class(
        api,
        paymentTermsDays=14,
        regularInvoices={"cardCharging": "ON_ISSUE", "attemptDaysBeforeDue": [5]},
    )
    customer_id, account_id = await create_customer(
        api, class_id, network.insufficient, "America/New_York"
    )
    await post_charge(api, account_id, "50.00", "s2-charge")

    await advance(api, "2029-04-01T12:00:00Z")  # March closed at midnight New York time
    invoice = await only_invoice(api, customer_id)
    assert (invoice["issueDate"], invoice["dueDate"], invoice["status"]) == (
        "2029-04-01",
        "2029-04-15",
        "UNPAID",
    )
    assert attempts(invoice) == [
        ("2029-04-01", "FAILED", "50.00", "insufficient_funds"),
        ("2029-04-10", "SCHEDULED", None, None),
    ]
    assert invoice["attempts"][0]["processorResponse"] == network.insufficient_words
    assert invoice["nextAttemptAt"] == "2029-04-10T13:00:00+00:00"  # 09:00 EDT

    # Told of the failure, the customer stores another card as the default.
    await add_card(api, customer_id, network.approve)
    await advance(api, "2029-04-10T18:00:00Z")
    invoice = await only_invoice(api, customer_id)
    assert invoice["status"] == "PAID"
    assert attempts(invoice) == [
        ("2029-04-01", "FAILED", "50.00", "insufficient_funds"),
        ("2029-04-10", "SUCCEEDED", "50.00", None),
    ]
    assert network.charges() == ["50.00", "50.00"]  # one declined, one approved


# --- 3. retries after the due date, overdue, suspension, reactivation ----------------------


async def test_3_a_declining_card_is_tried_on_due_plus_3_and_plus_7_then_suspension(
    api: Api,
    network: Network,
) -> None:
    await advance(api, "2029-08-10T12:00:00Z")
    class_id = await create_class(
        api,
        paymentTermsDays=14,
        gracePeriodDays=10,
        regularInvoices={"cardCharging": "ON_DUE_DATE", "attemptDaysAfterDue": [0, 3, 7]},
    )
    customer_id, account_id = await create_customer(api, class_id, network.decline)
    await post_charge(api, account_id, "30.00", "s3-charge")

    await advance(api, "2029-09-25T23:59:00Z")  # due 15 Sep; the grace period ends on the 25th
    state = await customer(api, customer_id)
    [invoice] = state["invoices"]
    assert invoice["status"] == "OVERDUE" and state["status"] == "ACTIVE"
    assert attempts(invoice) == [
        ("2029-09-15", "FAILED", "30.00", "card_declined"),
        ("2029-09-18", "FAILED", "30.00", "card_declined"),
        ("2029-09-22", "FAILED", "30.00", "card_declined"),
    ]
    assert invoice["nextAttemptAt"] is None

    await advance(api, "2029-09-30T12:00:00Z")
    state = await customer(api, customer_id)
    [invoice] = state["invoices"]
    assert state["status"] == "SUSPENDED"
    assert len(invoice["attempts"]) == 3 and len(network.charges()) == 3  # none after +7
    [suspension] = state["statusChanges"]
    assert (
        suspension["fromStatus"],
        suspension["toStatus"],
        suspension["cause"],
        suspension["causedById"],
    ) == ("ACTIVE", "SUSPENDED", "GRACE_PERIOD_EXCEEDED", invoice["id"])

    cash = await api.mutate(
        "recordPayment",
        {
            "customerId": customer_id,
            "amount": "30.00",
            "currency": "USD",
            "method": "CASH",
            "idempotencyKey": "s3-cash",
        },
        "payment { id }",
    )
    assert cash["errors"] == []
    state = await customer(api, customer_id)
    assert state["status"] == "ACTIVE" and state["invoices"][0]["status"] == "PAID"
    assert transitions(state) == [
        ("ACTIVE", "SUSPENDED", "GRACE_PERIOD_EXCEEDED"),
        ("SUSPENDED", "ACTIVE", "NOTHING_OVERDUE"),
    ]
    assert transitions(state["invoices"][0]) == [
        (None, "UNPAID", "ISSUED"),
        ("UNPAID", "OVERDUE", "DUE_DATE_PASSED"),
        ("OVERDUE", "PAID", "PAYMENT"),
    ]


# --- 4. two unpaid invoices, two charges ---------------------------------------------------


async def test_4_two_unpaid_invoices_are_charged_separately_each_for_its_own_amount(
    api: Api,
    network: Network,
) -> None:
    await advance(api, "2029-01-10T12:00:00Z")
    class_id = await create_class(
        api, paymentTermsDays=30, regularInvoices={"cardCharging": "ON_DUE_DATE"}
    )
    customer_id, account_id = await create_customer(api, class_id, network.approve)
    await post_charge(api, account_id, "12.00", "s4-january")
    await advance(api, "2029-02-10T12:00:00Z")
    await post_charge(api, account_id, "34.00", "s4-february")

    await advance(api, "2029-03-02T12:00:00Z")
    february, january = (await customer(api, customer_id))["invoices"]
    assert [
        (i["issueDate"], i["dueDate"], i["status"], i["total"]["amount"])
        for i in (january, february)
    ] == [
        ("2029-02-01", "2029-03-03", "UNPAID", "12.00"),
        ("2029-03-01", "2029-03-31", "UNPAID", "34.00"),
    ]

    await advance(api, "2029-03-03T12:00:00Z")  # January's due date: only its own amount
    february, january = (await customer(api, customer_id))["invoices"]
    assert (january["status"], february["status"]) == ("PAID", "UNPAID")
    assert network.charges() == ["12.00"]

    await advance(api, "2029-03-31T12:00:00Z")
    february, january = (await customer(api, customer_id))["invoices"]
    assert (january["status"], february["status"]) == ("PAID", "PAID")
    assert network.charges() == ["12.00", "34.00"]
    assert [attempts(i) for i in (january, february)] == [
        [("2029-03-03", "SUCCEEDED", "12.00", None)],
        [("2029-03-31", "SUCCEEDED", "34.00", None)],
    ]


# --- 5. review ---------------------------------------------------------------------------------


async def test_5_nothing_is_charged_before_approval_and_approved_invoices_on_their_due_date(
    api: Api,
    network: Network,
) -> None:
    await advance(api, "2029-08-10T12:00:00Z")
    class_id = await create_class(
        api,
        paymentTermsDays=14,
        regularInvoices={"cardCharging": "ON_DUE_DATE", "reviewInvoices": True},
    )
    approved_id, approved_account = await create_customer(api, class_id, network.approve)
    waiting_id, waiting_account = await create_customer(api, class_id, network.approve)
    await post_charge(api, approved_account, "30.00", "s5-approved")
    await post_charge(api, waiting_account, "40.00", "s5-waiting")

    await advance(api, "2029-09-10T12:00:00Z")
    invoice = await only_invoice(api, approved_id)
    assert (invoice["status"], invoice["attempts"], invoice["nextAttemptAt"]) == (
        "PENDING_REVIEW",
        [],
        None,
    )
    assert network.charges() == []

    approved = await api.mutate(
        "approveInvoices", {"ids": [invoice["id"]]}, "invoices { id status nextAttemptAt }"
    )
    assert approved == {
        "invoices": [
            {"id": invoice["id"], "status": "UNPAID", "nextAttemptAt": "2029-09-15T09:00:00+00:00"}
        ],
        "errors": [],
    }

    await advance(api, "2029-09-30T12:00:00Z")
    invoice = await only_invoice(api, approved_id)
    assert invoice["status"] == "PAID"
    assert attempts(invoice) == [("2029-09-15", "SUCCEEDED", "30.00", None)]
    assert transitions(invoice) == [
        (None, "PENDING_REVIEW", "ISSUED"),
        ("PENDING_REVIEW", "UNPAID", "APPROVED"),
        ("UNPAID", "PAID", "PAYMENT"),
    ]
    waiting = await only_invoice(api, waiting_id)  # never approved: never charged nor overdue
    assert (waiting["status"], waiting["attempts"]) == ("PENDING_REVIEW", [])
    assert network.charges() == ["30.00"]


# --- 6. out-of-turn invoices follow their own settings ---------------------------------------


async def test_6_an_out_of_turn_invoice_follows_the_out_of_turn_settings(
    api: Api, network: Network
) -> None:
    await advance(api, "2029-09-01T12:00:00Z")
    class_id = await create_class(
        api,
        paymentTermsDays=14,
        regularInvoices={"cardCharging": "ON_DUE_DATE"},
        outOfTurnInvoices={"paymentTermsDays": 0, "cardCharging": "ON_ISSUE"},
    )
    customer_id, account_id = await create_customer(api, class_id, network.approve)
    await post_charge(api, account_id, "25.00", "s6-early")
    await advance(api, "2029-09-10T12:00:00Z")
    closed = await api.mutate(
        "closePeriodOutOfTurn",
        {"customerId": customer_id},
        "invoice { id kind dueDate nextAttemptAt }",
    )
    assert closed["errors"] == []
    assert closed["invoice"]["kind"] == "OUT_OF_TURN"
    assert closed["invoice"]["dueDate"] == "2029-09-10"  # net 0, not the regular 14
    assert closed["invoice"]["nextAttemptAt"] == "2029-09-10T12:00:00+00:00"  # upon issue

    await advance(api, "2029-09-10T12:01:00Z")
    [out_of_turn] = (await customer(api, customer_id))["invoices"]
    assert out_of_turn["status"] == "PAID"
    assert attempts(out_of_turn) == [("2029-09-10", "SUCCEEDED", "25.00", None)]

    await post_charge(api, account_id, "15.00", "s6-regular")
    await advance(api, "2029-10-05T12:00:00Z")
    regular, _ = (await customer(api, customer_id))["invoices"]
    assert (regular["kind"], regular["dueDate"], regular["status"]) == (
        "REGULAR",
        "2029-10-15",
        "UNPAID",
    )  # regular terms: not charged upon issue
    assert attempts(regular) == [("2029-10-15", "SCHEDULED", None, None)]
    assert network.charges() == ["25.00"]


# --- a charge whose answer is lost is found again by its key (issue 12, over Stripe) ---------


@pytest.fixture
def short_stripe_calls() -> Iterator[None]:
    """Stripe calls that give up after a second and a half, untried again (ordinary calls to
    the local fake stay far below that on a loaded machine): the fake's hang card
    answers only after :data:`tests.processor_networks.HANG_SECONDS`."""
    registry.configure("stripe", timeout=1.5, max_retries=0)
    yield
    registry.configure("stripe")


@pytest.mark.parametrize("network", ["stripe"], indirect=True)
@pytest.mark.usefixtures("short_stripe_calls")
async def test_a_charge_whose_answer_is_lost_is_unknown_until_the_janitor_finds_it(
    api: Api, network: Network
) -> None:
    await advance(api, "2029-08-10T12:00:00Z")
    class_id = await create_class(
        api, paymentTermsDays=14, regularInvoices={"cardCharging": "ON_DUE_DATE"}
    )
    customer_id, account_id = await create_customer(api, class_id, HANG_CARD)
    await post_charge(api, account_id, "30.00", "lost-charge")

    await advance(api, "2029-09-15T09:01:00Z")  # charged at 09:00; Stripe's answer never came
    invoice = await only_invoice(api, customer_id)
    assert invoice["status"] == "UNPAID"
    assert attempts(invoice) == [("2029-09-15", "UNKNOWN", "30.00", None)]
    assert network.charges() == ["30.00"]  # Stripe did charge

    await advance(api, "2029-09-15T09:10:00Z")  # the janitor's first check, 5 minutes on
    invoice = await only_invoice(api, customer_id)
    assert invoice["status"] == "PAID"
    assert attempts(invoice) == [("2029-09-15", "SUCCEEDED", "30.00", None)]
    assert invoice["attempts"][0]["payment"] == {"method": "CARD", "amount": {"amount": "30.00"}}
    assert network.charges() == ["30.00"]  # found by its key, not charged again
    assert len(network.fake.payment_intents) == 1
