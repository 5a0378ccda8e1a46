"""Distributors over GraphQL (issue 10): sales and payment commissions with the issue's
numbers and others, the credit limit and its warning, voids, scoping, and bad input refused
with nothing written.  The ledger check after every test (``conftest.py``) is ``kassa
check``, distributor books included."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from billing.db import Database
from billing.models import LedgerAccount, LedgerAccountKind, LedgerTransaction, OutboxMessage
from tests.factories import make_reseller
from tests.graphql_support import Api, api_key, signed_in_api, table_contents

pytest_plugins = ["tests.graphql_fixtures"]

PASSWORD = "distributor password"
DISTRIBUTOR_FIELDS = """id name currency salesCommission paymentCommission
    creditLimit { amount } balance { amount } availableCredit { amount }
    commissionThisPeriod { amount } warningThreshold { amount } warningThresholdPercent
    overWarningThreshold statisticsEmail accountingEmail"""
TRANSACTIONS = """transactions(first: 100) { totalCount edges { node {
    kind amount { amount } commission { amount } gross { amount } paymentId
    customer { id } } } }"""


async def create_distributor(api: Api, **fields: Any) -> dict[str, Any]:
    payload = await api.mutate(
        "createDistributor",
        {"name": "Corner Shop", "currency": "USD", "creditLimit": "1000.00", **fields},
        f"distributor {{ {DISTRIBUTOR_FIELDS} }}",
    )
    assert payload["errors"] == [], payload["errors"]
    distributor: dict[str, Any] = payload["distributor"]
    return distributor


async def distributor_with_login(
    api: Api, http: httpx.AsyncClient, email: str = "shop@example.com", **fields: Any
) -> tuple[dict[str, Any], Api]:
    """A distributor made by ``api``'s administrator, and the API signed in as it."""
    made = await create_distributor(
        api, login={"email": email, "password": PASSWORD, "language": "en"}, **fields
    )
    return made, await signed_in_api(http, email, PASSWORD)


async def me(api: Api) -> dict[str, Any]:
    """The signed-in distributor as ``viewer.distributor`` sees it, with its transactions."""
    data = await api.run(
        f"{{ viewer {{ distributor {{ {DISTRIBUTOR_FIELDS} {TRANSACTIONS} }} }} }}"
    )
    found: dict[str, Any] = data["viewer"]["distributor"]
    return found


async def new_customer(api: Api, key: str | None = None, **fields: Any) -> dict[str, Any]:
    payload = await api.mutate(
        "createCustomer",
        {"name": "End User", "currency": "USD", **fields}
        | ({} if key is None else {"idempotencyKey": key}),
        "customer { id balance { amount } availableFunds { amount } }",
    )
    assert payload["errors"] == [], payload["errors"]
    customer: dict[str, Any] = payload["customer"]
    return customer


async def record_cash(api: Api, customer_id: str, amount: str, key: str) -> dict[str, Any]:
    return await api.mutate(
        "recordPayment",
        {
            "customerId": customer_id,
            "amount": amount,
            "currency": "USD",
            "method": "CASH",
            "idempotencyKey": key,
        },
        "payment { id status amount { amount } customer { id balance { amount } } }",
    )


async def preview(api: Api, customer_id: str, amount: str) -> dict[str, Any]:
    data = await api.run(
        """query($c: ID!, $a: String!) { distributorCommissionPreview(customerId: $c,
        amount: $a) { gross { amount } commission { amount } net { amount }
        exceedsCreditLimit } }""",
        {"c": customer_id, "a": amount},
    )
    found: dict[str, Any] = data["distributorCommissionPreview"]
    return found


def codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["errors"]]


# --- sales commission ------------------------------------------------------------------------


async def test_a_prepaid_customer_with_10_dollars_at_15_percent_charges_the_distributor_8_50(
    api: Api, http: httpx.AsyncClient
) -> None:
    _, shop = await distributor_with_login(api, http, salesCommission="15")
    customer = await new_customer(shop, "sale-1", openingBalance="-10.00")
    assert customer["balance"]["amount"] == "-10.00"
    mine = await me(shop)
    assert mine["balance"]["amount"] == "8.50"
    assert mine["availableCredit"]["amount"] == "991.50"
    assert mine["commissionThisPeriod"]["amount"] == "1.50"
    [sale] = [edge["node"] for edge in mine["transactions"]["edges"]]
    assert sale == {
        "kind": "SALE",
        "amount": {"amount": "8.50"},
        "commission": {"amount": "1.50"},
        "gross": {"amount": "10.00"},
        "paymentId": None,
        "customer": {"id": customer["id"]},
    }
    # A replay returns the same customer and sells nothing twice.
    again = await new_customer(shop, "sale-1", openingBalance="-10.00")
    assert again["id"] == customer["id"]
    assert (await me(shop))["balance"]["amount"] == "8.50"


async def test_a_postpaid_customer_with_nothing_opened_earns_no_commission(
    api: Api, http: httpx.AsyncClient
) -> None:
    _, shop = await distributor_with_login(api, http, salesCommission="15")
    customer = await new_customer(shop)
    assert customer["availableFunds"]["amount"] == "0.00"
    mine = await me(shop)
    assert mine["balance"]["amount"] == "0.00"
    assert mine["transactions"]["totalCount"] == 0


async def test_an_account_with_a_typed_in_number_and_opening_credit_is_a_sale(
    api: Api, http: httpx.AsyncClient
) -> None:
    _, shop = await distributor_with_login(api, http, salesCommission="12.5")
    customer = await new_customer(shop)
    payload = await shop.mutate(
        "createAccount",
        {
            "customerId": customer["id"],
            "number": "+1 555 0142",
            "product": "Prepaid mobile",
            "openingBalance": "-0.99",
            "idempotencyKey": "account-1",
        },
        "account { id number customer { balance { amount } } }",
    )
    assert payload["errors"] == []
    assert payload["account"]["number"] == "+1 555 0142"
    assert payload["account"]["customer"]["balance"]["amount"] == "-0.99"
    # 12.5 % of 0.99 is 0.12375: 0.12 kept, 0.87 owed.
    mine = await me(shop)
    assert mine["commissionThisPeriod"]["amount"] == "0.12"
    assert mine["balance"]["amount"] == "0.87"


async def test_assigning_a_distributor_sells_the_customers_opening_credit_once(
    api: Api, http: httpx.AsyncClient
) -> None:
    first, shop = await distributor_with_login(api, http, salesCommission="15")
    second = await create_distributor(api, name="Kiosk", salesCommission="15")
    customer = await new_customer(api, "opening", openingBalance="-10.00")
    for distributor in (first, second):
        payload = await api.mutate(
            "updateCustomer",
            {"id": customer["id"], "distributorId": distributor["id"]},
            "customer { id }",
        )
        assert payload["errors"] == []
    assert (await me(shop))["balance"]["amount"] == "8.50"
    found = await api.run(
        "query($id: ID!) { distributor(id: $id) { balance { amount } } }", {"id": second["id"]}
    )
    assert found["distributor"]["balance"]["amount"] == "0.00"


# --- payment commission ----------------------------------------------------------------------


async def test_10_dollars_collected_at_10_percent_lower_the_customer_10_and_charge_9(
    api: Api, http: httpx.AsyncClient
) -> None:
    _, shop = await distributor_with_login(api, http, paymentCommission="10")
    customer = await new_customer(shop)
    account = await api.mutate(
        "createAccount",
        {"customerId": customer["id"], "number": "555-1", "product": "Mobile"},
        "account { id }",
    )
    charge = await api.mutate(
        "postCharge",
        {
            "accountId": account["account"]["id"],
            "description": "Calls",
            "amount": "10.00",
            "currency": "USD",
            "idempotencyKey": "charge-1",
        },
        "charge { id }",
    )
    assert charge["errors"] == []
    invoice = await api.mutate(
        "closePeriodOutOfTurn",
        {"customerId": customer["id"]},
        "invoice { id outstanding { amount } }",
    )
    assert invoice["invoice"]["outstanding"]["amount"] == "10.00"
    shown = await preview(shop, customer["id"], "10")
    assert shown == {
        "gross": {"amount": "10.00"},
        "commission": {"amount": "1.00"},
        "net": {"amount": "9.00"},
        "exceedsCreditLimit": False,
    }
    paid = await record_cash(shop, customer["id"], "10.00", "cash-1")
    assert paid["errors"] == []
    assert paid["payment"]["customer"]["balance"]["amount"] == "0.00"
    settled = await shop.run(
        "query($id: ID!) { invoice(id: $id) { status outstanding { amount } } }",
        {"id": invoice["invoice"]["id"]},
    )
    assert settled["invoice"] == {"status": "PAID", "outstanding": {"amount": "0.00"}}
    mine = await me(shop)
    assert mine["balance"]["amount"] == shown["net"]["amount"]
    assert mine["commissionThisPeriod"]["amount"] == shown["commission"]["amount"]
    [collection] = [edge["node"] for edge in mine["transactions"]["edges"]]
    assert collection["kind"] == "COLLECTION"
    assert collection["paymentId"] == paid["payment"]["id"]


async def test_voiding_a_collection_takes_back_its_commission_in_the_same_transaction(
    api: Api, http: httpx.AsyncClient
) -> None:
    _, shop = await distributor_with_login(api, http, paymentCommission="10")
    customer = await new_customer(shop)
    paid = await record_cash(shop, customer["id"], "10.00", "cash-void")
    voided = await api.mutate(
        "voidPayment",
        {"paymentId": paid["payment"]["id"], "reason": "Wrong customer"},
        "payment { status }",
    )
    assert voided["errors"] == [] and voided["payment"]["status"] == "VOIDED"
    mine = await me(shop)
    assert mine["balance"]["amount"] == "0.00"
    assert mine["commissionThisPeriod"]["amount"] == "0.00"
    reversal = mine["transactions"]["edges"][0]["node"]
    assert reversal["kind"] == "REVERSAL"
    assert (reversal["amount"], reversal["commission"]) == (
        {"amount": "-9.00"},
        {"amount": "-1.00"},
    )
    assert reversal["paymentId"] == paid["payment"]["id"]
    refund = await api.mutate(
        "refundPayment",
        {"paymentId": paid["payment"]["id"], "reason": "x", "idempotencyKey": "refund-1"},
        "payment { id }",
    )
    assert codes(refund) == ["NOT_REFUNDABLE"]


async def test_a_distributor_sees_the_payments_it_recorded_and_no_others(
    api: Api, http: httpx.AsyncClient
) -> None:
    """Its own collections answer from ``payment``, ``payments`` and ``Customer.payments``
    with their commission; cash the provider took from the same customer is not listed and
    answers like a payment that does not exist."""
    _, shop = await distributor_with_login(api, http, paymentCommission="10")
    customer = await new_customer(shop)
    mine = await record_cash(shop, customer["id"], "10.00", "seen-1")
    staff = await record_cash(api, customer["id"], "3.00", "seen-by-staff")
    fields = (
        "id method amount { amount } status reference receivedAt distributorCommission { amount }"
    )
    listed = await shop.run(
        f"""query($c: ID!) {{ payments(first: 10) {{ totalCount edges {{ node {{ {fields} }} }} }}
        customer(id: $c) {{ payments {{ id }} }} }}""",
        {"c": customer["id"]},
    )
    assert listed["payments"]["totalCount"] == 1
    [node] = [edge["node"] for edge in listed["payments"]["edges"]]
    assert node["id"] == mine["payment"]["id"]
    assert (node["method"], node["amount"], node["distributorCommission"]) == (
        "CASH",
        {"amount": "10.00"},
        {"amount": "1.00"},
    )
    assert listed["customer"]["payments"] == [{"id": mine["payment"]["id"]}]
    one = "query($id: ID!) { payment(id: $id) { id } }"
    assert (await shop.run(one, {"id": mine["payment"]["id"]}))["payment"] is not None
    assert (await shop.run(one, {"id": staff["payment"]["id"]}))["payment"] is None
    everything = await api.run(
        "query($c: ID!) { payments(first: 10, customerId: $c) { totalCount } }",
        {"c": customer["id"]},
    )
    assert everything["payments"]["totalCount"] == 2
    card = (
        await shop.post(
            "query($id: ID!) { payment(id: $id) { id processor } }", {"id": mine["payment"]["id"]}
        )
    ).json()
    assert [e["extensions"]["code"] for e in card["errors"]] == ["FORBIDDEN"]


async def test_percentages_round_half_up_once_and_the_parts_add_up(
    api: Api, http: httpx.AsyncClient
) -> None:
    """12.5 % of 0.20 is 2.5 cents: 3 kept; 33.33 % of 100 JPY is 33.33 yen: 33 kept."""
    _, shop = await distributor_with_login(api, http, paymentCommission="12.5")
    customer = await new_customer(shop)
    assert await preview(shop, customer["id"], "0.20") == {
        "gross": {"amount": "0.20"},
        "commission": {"amount": "0.03"},
        "net": {"amount": "0.17"},
        "exceedsCreditLimit": False,
    }
    _, yen = await distributor_with_login(
        api, http, "yen@example.com", currency="JPY", creditLimit="100000", salesCommission="33.33"
    )
    await yen.mutate(
        "createCustomer",
        {"name": "Tanaka", "currency": "JPY", "openingBalance": "-100", "idempotencyKey": "jpy"},
        "customer { id }",
    )
    mine = await me(yen)
    assert (mine["balance"]["amount"], mine["commissionThisPeriod"]["amount"]) == ("67", "33")


# --- refusals ------------------------------------------------------------------------------


async def test_bad_rates_are_refused_and_nothing_is_written(api: Api, db: Database) -> None:
    before = await table_contents(db)
    for field, value, code in (
        ("salesCommission", "-1", "OUT_OF_RANGE"),
        ("salesCommission", "100.01", "OUT_OF_RANGE"),
        ("paymentCommission", "12.345", "TOO_MANY_DECIMALS"),
        ("paymentCommission", "1e1", "INVALID_PERCENT"),
        ("paymentCommission", "١٢", "INVALID_PERCENT"),
        ("warningThresholdAmount", "5.00", "ONE_WARNING_THRESHOLD"),
    ):
        extra = {"warningThresholdPercent": "80"} if field == "warningThresholdAmount" else {}
        payload = await api.mutate(
            "createDistributor",
            {"name": "Bad", "currency": "USD", field: value, **extra},
            "distributor { id }",
        )
        assert codes(payload) == [code], (field, value, payload)
    assert await table_contents(db) == before


async def test_past_the_credit_limit_a_sale_or_a_collection_is_refused_with_nothing_written(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    _, shop = await distributor_with_login(api, http, creditLimit="5.00", paymentCommission="10")
    customer = await new_customer(shop)
    before = await table_contents(db)
    sale = await shop.mutate(
        "createCustomer",
        {"name": "Big", "currency": "USD", "openingBalance": "-10.00", "idempotencyKey": "big"},
        "customer { id }",
    )
    assert codes(sale) == ["CREDIT_LIMIT_EXCEEDED"]
    assert (await preview(shop, customer["id"], "6.00"))["exceedsCreditLimit"] is True
    assert codes(await record_cash(shop, customer["id"], "6.00", "over")) == [
        "CREDIT_LIMIT_EXCEEDED"
    ]
    assert await table_contents(db) == before
    # 5.55 at 10 %: 5.00 owed, exactly the limit.
    assert (await record_cash(shop, customer["id"], "5.55", "fits"))["errors"] == []


async def test_another_currency_is_refused(api: Api, http: httpx.AsyncClient, db: Database) -> None:
    made, shop = await distributor_with_login(api, http)
    euro = await new_customer(api, currency="EUR")
    before = await table_contents(db)
    assigned = await api.mutate(
        "updateCustomer", {"id": euro["id"], "distributorId": made["id"]}, "customer { id }"
    )
    assert codes(assigned) == ["CURRENCY_MISMATCH"]
    created = await shop.mutate(
        "createCustomer", {"name": "Euro", "currency": "EUR"}, "customer { id }"
    )
    assert codes(created) == ["CURRENCY_MISMATCH"]
    assert await table_contents(db) == before


async def set_rate(api: Api, source: str, target: str, rate: str) -> dict[str, Any]:
    return await api.mutate(
        "setExchangeRate", {"from": source, "to": target, "rate": rate}, "exchangeRate { rate }"
    )


async def test_exchange_rates_are_exact_positive_decimals_set_by_the_provider(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session)
    theirs = Api(http, await api_key(db, reseller_id=reseller.id))
    before = await table_contents(db)
    for rate, code in (
        ("0", "OUT_OF_RANGE"),
        ("-1", "INVALID_RATE"),
        ("1e3", "INVALID_RATE"),
        ("+1.1", "INVALID_RATE"),
        ("١", "INVALID_RATE"),
        ("", "INVALID_RATE"),
        ("1.12345678901", "TOO_MANY_DECIMALS"),
        ("1000000", "OUT_OF_RANGE"),
    ):
        assert codes(await set_rate(api, "EUR", "USD", rate)) == [code], rate
    assert codes(await set_rate(api, "EUR", "eur", "1")) == ["SAME_CURRENCY"]
    assert codes(await set_rate(api, "EUR", "XXQ", "1")) == ["INVALID_CURRENCY"]
    refused = (
        await theirs.post(
            'mutation { setExchangeRate(input: {from: "EUR", to: "USD", rate: "1"}) { errors { code } } }'
        )
    ).json()
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    assert await table_contents(db) == before

    assert (await set_rate(api, " eur ", "USD", "1.08570"))["exchangeRate"] == {"rate": "1.0857"}
    assert (await set_rate(api, "EUR", "USD", "1.1"))["errors"] == []
    listed = await theirs.run("{ exchangeRates { from to rate } }")
    assert listed["exchangeRates"] == [{"from": "EUR", "to": "USD", "rate": "1.1"}]


async def test_across_currencies_each_side_moves_in_its_own_and_a_void_takes_back_the_same(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    """A USD distributor (15 % sales, 10 % payment commission) and a EUR customer, at
    1 EUR = 1.0857 USD: the docs' worked example."""
    assert (await set_rate(api, "EUR", "USD", "1.0857"))["errors"] == []
    _, shop = await distributor_with_login(
        api, http, salesCommission="15", paymentCommission="10", creditLimit="30.00"
    )
    customer = await new_customer(shop, "eur-sale", currency="EUR", openingBalance="-10.00")
    assert customer["balance"]["amount"] == "-10.00"
    mine = await me(shop)  # 10.00 EUR = 10.857 → 10.86 USD; 15 % is 1.629 → 1.63
    assert (mine["balance"]["amount"], mine["commissionThisPeriod"]["amount"]) == ("9.23", "1.63")

    shown = await shop.run(
        """query($c: ID!) { distributorCommissionPreview(customerId: $c, amount: "20.00") {
        paid { amount currency } exchangeRate gross { amount currency } commission { amount }
        net { amount } exceedsCreditLimit } }""",
        {"c": customer["id"]},
    )
    assert shown["distributorCommissionPreview"] == {
        "paid": {"amount": "20.00", "currency": "EUR"},
        "exchangeRate": "1.0857",
        "gross": {"amount": "21.71", "currency": "USD"},
        "commission": {"amount": "2.17"},
        "net": {"amount": "19.54"},
        "exceedsCreditLimit": False,
    }
    cash = {"customerId": customer["id"], "currency": "EUR", "method": "CASH"}
    fields = "payment { id amount { amount currency } distributorCommission { amount currency } }"
    over = await shop.mutate(
        "recordPayment", cash | {"amount": "22.00", "idempotencyKey": "x"}, fields
    )
    assert codes(over) == ["CREDIT_LIMIT_EXCEEDED"]  # in USD: 9.23 + 21.50 owed > 30.00
    paid = await shop.mutate(
        "recordPayment", cash | {"amount": "20.00", "idempotencyKey": "e"}, fields
    )
    assert paid["errors"] == []
    assert paid["payment"]["amount"] == {"amount": "20.00", "currency": "EUR"}
    assert paid["payment"]["distributorCommission"] == {"amount": "2.17", "currency": "USD"}
    mine = await me(shop)
    assert (mine["balance"]["amount"], mine["commissionThisPeriod"]["amount"]) == ("28.77", "3.80")
    collection = mine["transactions"]["edges"][0]["node"]
    assert (collection["gross"], collection["amount"]) == ({"amount": "21.71"}, {"amount": "19.54"})

    async with db.session() as session:
        conversion_books = await session.execute(
            select(LedgerAccount.currency, LedgerAccount.balance).where(
                LedgerAccount.kind == LedgerAccountKind.CONVERSION
            )
        )
        books = {currency: balance for currency, balance in conversion_books.all()}
        rates = (
            await session.scalars(
                select(LedgerTransaction.exchange_rate).where(
                    LedgerTransaction.exchange_rate.is_not(None)
                )
            )
        ).all()
    assert books == {"EUR": 3000, "USD": -(1086 + 2171)}
    assert rates == ["1.0857", "1.0857"]

    assert (await set_rate(api, "EUR", "USD", "2"))[
        "errors"
    ] == []  # later rates change nothing booked
    voided = await api.mutate(
        "voidPayment", {"paymentId": paid["payment"]["id"], "reason": "Wrong"}, "payment { status }"
    )
    assert voided["errors"] == []
    mine = await me(shop)
    assert (mine["balance"]["amount"], mine["commissionThisPeriod"]["amount"]) == ("9.23", "1.63")
    async with db.session() as session:
        reversal = await session.scalar(
            select(LedgerTransaction).where(LedgerTransaction.reverses_id.is_not(None))
        )
    assert reversal is not None and reversal.exchange_rate == "1.0857"


async def test_assigning_a_distributor_sells_opening_credit_of_another_currency_at_the_rate(
    api: Api, http: httpx.AsyncClient
) -> None:
    """The sale on assignment takes the credit back off the opening-balance book in euros
    and books the distributor's side in dollars; before a rate is set it is refused."""
    made, shop = await distributor_with_login(api, http, salesCommission="15")
    customer = await new_customer(api, "eur-opening", currency="EUR", openingBalance="-10.00")
    assign = {"id": customer["id"], "distributorId": made["id"]}
    refused = await api.mutate("updateCustomer", assign, "customer { id }")
    assert codes(refused) == ["CURRENCY_MISMATCH"]
    assert (await set_rate(api, "EUR", "USD", "1.0857"))["errors"] == []
    assigned = await api.mutate("updateCustomer", assign, "customer { balance { amount } }")
    assert assigned["errors"] == [] and assigned["customer"]["balance"]["amount"] == "-10.00"
    mine = await me(shop)
    assert (mine["balance"]["amount"], mine["commissionThisPeriod"]["amount"]) == ("9.23", "1.63")


async def test_a_distributor_touches_only_its_own_customers_and_changes_no_terms(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    made, shop = await distributor_with_login(api, http, paymentCommission="10")
    _, other = await distributor_with_login(api, http, "other@example.com")
    theirs = await new_customer(other)
    before = await table_contents(db)
    assert codes(await record_cash(shop, theirs["id"], "1.00", "foreign")) == ["NOT_FOUND"]
    account = await shop.mutate(
        "createAccount",
        {"customerId": theirs["id"], "number": "555-9", "product": "Mobile"},
        "account { id }",
    )
    assert codes(account) == ["NOT_FOUND"]
    found = await shop.post(
        'query($c: ID!) { distributorCommissionPreview(customerId: $c, amount: "1") { net { amount } } }',
        {"c": theirs["id"]},
    )
    assert found.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    for document, variables in (
        (
            "mutation($i: UpdateDistributorInput!) { updateDistributor(input: $i) { errors { code } } }",
            {"i": {"id": made["id"], "paymentCommission": "50"}},
        ),
        (
            "mutation($i: CreateDistributorInput!) { createDistributor(input: $i) { errors { code } } }",
            {"i": {"name": "Mine too", "currency": "USD"}},
        ),
        (
            "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { errors { code } } }",
            {"i": {"name": "X", "currency": "USD", "classId": "Q3VzdG9tZXJDbGFzczox"}},
        ),
        ("query { distributors { totalCount } }", {}),
    ):
        body = (await shop.post(document, variables)).json()
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    assert await table_contents(db) == before


async def test_a_resellers_administrators_manage_their_own_distributors_only(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        reseller_a = (await make_reseller(session, "A")).id
        reseller_b = (await make_reseller(session, "B")).id
    staff_a = Api(http, await api_key(db, reseller_id=reseller_a))
    staff_b = Api(http, await api_key(db, reseller_id=reseller_b))
    mine = await create_distributor(staff_a, name="A's shop")
    theirs = await create_distributor(staff_b, name="B's shop")
    listed = await staff_a.run("{ distributors(first: 100) { totalCount edges { node { id } } } }")
    assert [edge["node"]["id"] for edge in listed["distributors"]["edges"]] == [mine["id"]]
    found = await staff_a.run(
        "query($id: ID!) { distributor(id: $id) { id } }", {"id": theirs["id"]}
    )
    assert found == {"distributor": None}
    before = await table_contents(db)
    update = await staff_a.mutate(
        "updateDistributor", {"id": theirs["id"], "name": "Mine now"}, "distributor { id }"
    )
    payment = await staff_a.mutate(
        "recordDistributorPayment",
        {"distributorId": theirs["id"], "amount": "1.00", "idempotencyKey": "x"},
        "distributor { id }",
    )
    assert codes(update) == ["NOT_FOUND"] and codes(payment) == ["NOT_FOUND"]
    assert await table_contents(db) == before
    provider = await api.run("{ distributors(first: 100) { totalCount } }")
    assert provider["distributors"]["totalCount"] == 2


# --- payments to the provider and the warning ------------------------------------------------


async def test_a_payment_to_the_provider_lowers_the_balance_once_per_key(
    api: Api, http: httpx.AsyncClient
) -> None:
    made, shop = await distributor_with_login(api, http, salesCommission="15")
    await new_customer(shop, "sale", openingBalance="-100.00")
    pay = {"distributorId": made["id"], "amount": "50.00", "idempotencyKey": "pay-1"}
    selection = "distributor { balance { amount } } transaction { id kind amount { amount } }"
    first = await api.mutate("recordDistributorPayment", pay, selection)
    again = await api.mutate("recordDistributorPayment", pay, selection)
    assert first["errors"] == [] and first["transaction"] == again["transaction"]
    assert first["transaction"]["kind"] == "PAYMENT_TO_PROVIDER"
    assert first["transaction"]["amount"] == {"amount": "-50.00"}
    assert (await me(shop))["balance"]["amount"] == "35.00"
    reused = await api.mutate("recordDistributorPayment", {**pay, "amount": "5.00"}, selection)
    assert codes(reused) == ["IDEMPOTENCY_KEY_REUSED"]
    csv = await shop.run("{ viewer { distributor { transactionsCsv } } }")
    lines = csv["viewer"]["distributor"]["transactionsCsv"].splitlines()
    assert lines[0] == "date,kind,customer,description,gross,commission,amount,currency"
    assert [line.split(",")[1] for line in lines[1:]] == ["SALE", "PAYMENT_TO_PROVIDER"]
    sales = await shop.run(
        "{ viewer { distributor { transactions(kinds: [SALE]) { totalCount } } } }"
    )
    assert sales["viewer"]["distributor"]["transactions"]["totalCount"] == 1


async def test_the_credit_limit_warning_is_mailed_once_per_crossing(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    """90 % of a 1,000.00 limit: above 900.00 one mail; again only after going back below."""
    made, shop = await distributor_with_login(api, http, accountingEmail="books@shop.example")
    assert made["warningThreshold"]["amount"] == "900.00"

    async def warnings() -> int:
        async with db.session() as session:
            rows = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.to == "books@shop.example")
            )
            return len(rows.all())

    await new_customer(shop, "s1", openingBalance="-900.00")
    assert await warnings() == 0  # at the threshold is not above it
    await new_customer(shop, "s2", openingBalance="-50.00")
    assert await warnings() == 1 and (await me(shop))["overWarningThreshold"] is True
    await new_customer(shop, "s3", openingBalance="-10.00")
    assert await warnings() == 1
    paid = await api.mutate(
        "recordDistributorPayment",
        {"distributorId": made["id"], "amount": "100.00", "idempotencyKey": "down"},
        "distributor { overWarningThreshold }",
    )
    assert paid["distributor"] == {"overWarningThreshold": False}
    await new_customer(shop, "s4", openingBalance="-50.00")
    assert await warnings() == 2
