"""Processor accounts: what is accepted and refused (nothing written on a refusal), the
credentials sealed at rest and never shown, scope, and routing a customer to an account."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from billing.db import Database
from billing.errors import NotFound, UserError
from billing.models import ProcessorAccount
from billing.payment_systems import Capability, MethodKind, Mode
from billing.processor_accounts import (
    AccountInput,
    check_minimum,
    create_account,
    disable_account,
    list_accounts,
    route,
    set_fallback,
    update_account,
)
from tests.factories import admin_viewer, make_customer, make_reseller, reseller_viewer
from tests.graphql_support import Api, table_contents

pytest_plugins = ["tests.graphql_fixtures"]

SECRET = "whsec_do_not_show_me_42"

CARDS = (MethodKind.VISA, MethodKind.MASTERCARD)


def account_input(**fields: Any) -> AccountInput:
    given: dict[str, Any] = {
        "name": "Main cards",
        "processor": "simulator",
        "credentials": {"webhook_secret": SECRET},
        "minimums": [("USD", "1.00")],
        "method_kinds": CARDS,
        **fields,
    }
    return AccountInput(**given)


async def test_an_account_is_stored_with_its_credentials_sealed(db: Database) -> None:
    async with db.transaction() as session:
        made = await create_account(session, admin_viewer(), account_input())
    assert (made.name, made.processor, made.mode, made.enabled) == (
        "Main cards",
        "simulator",
        Mode.TEST,
        True,
    )
    assert made.minimums == (("USD", 100),)
    assert made.method_kinds == (MethodKind.MASTERCARD, MethodKind.VISA)
    assert made.credentials_set == ("webhook_secret",)
    assert SECRET not in repr(made)
    async with db.session() as session:
        raw = (await session.execute(text("SELECT * FROM processor_accounts"))).all()
    assert SECRET not in repr(raw)
    assert str(raw[0].credentials_sealed).startswith("v1.")


#: Each refused input, the field it changes and the code.
REFUSED = [
    pytest.param({"processor": "nope"}, "UNKNOWN_PROCESSOR", id="unknown processor"),
    pytest.param({"minimums": [("XXY", "1")]}, "INVALID_CURRENCY", id="unknown currency"),
    pytest.param({"minimums": [("USD", "-1.00")]}, "NEGATIVE_MINIMUM", id="negative minimum"),
    pytest.param({"minimums": [("USD", "1.001")]}, "TOO_MANY_DECIMALS", id="sub-cent minimum"),
    pytest.param({"minimums": [("USD", "1"), ("usd", "2")]}, "DUPLICATE_CURRENCY", id="twice"),
    pytest.param({"minimums": []}, "REQUIRED", id="no currency"),
    pytest.param({"method_kinds": ()}, "REQUIRED", id="no method"),
    pytest.param(
        {"method_kinds": (MethodKind.ECHECK,)}, "METHOD_NOT_SUPPORTED", id="echeck, no bank"
    ),
    pytest.param({"name": "  "}, "REQUIRED", id="no name"),
    pytest.param({"base_url": "ftp://x.example"}, "INVALID_URL", id="not http"),
    pytest.param(
        {"base_url": "http://fake.example", "mode": Mode.LIVE}, "INVALID_URL", id="live http"
    ),
    pytest.param({"credentials": {"Bad Name": "x"}}, "INVALID_CREDENTIAL_NAME", id="cred name"),
]


@pytest.mark.parametrize(("fields", "code"), REFUSED)
async def test_a_refused_account_writes_nothing(
    db: Database, fields: dict[str, Any], code: str
) -> None:
    async with db.transaction() as session:
        existing = await create_account(session, admin_viewer(), account_input(name="Other"))
    before = await table_contents(db)
    for attempt in ("create", "update"):
        with pytest.raises(UserError) as caught:
            async with db.transaction() as session:
                if attempt == "create":
                    await create_account(session, admin_viewer(), account_input(**fields))
                else:
                    await update_account(
                        session, admin_viewer(), existing.id, account_input(**fields)
                    )
        assert caught.value.code == code, attempt
        assert SECRET not in caught.value.message
        assert await table_contents(db) == before, attempt


async def test_a_name_is_unique_per_owner(db: Database) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session)
        await create_account(session, admin_viewer(), account_input())
        await create_account(session, admin_viewer(reseller.id), account_input())
    with pytest.raises(UserError) as caught:
        async with db.transaction() as session:
            await create_account(session, admin_viewer(), account_input())
    assert caught.value.code == "NAME_TAKEN"


async def test_an_update_keeps_credentials_left_blank_and_removes_emptied_ones(
    db: Database,
) -> None:
    async with db.transaction() as session:
        made = await create_account(
            session, admin_viewer(), account_input(credentials={"webhook_secret": SECRET, "a": "1"})
        )
        kept = await update_account(
            session, admin_viewer(), made.id, account_input(credentials=None, name="Renamed")
        )
        assert (kept.name, kept.credentials_set) == ("Renamed", ("a", "webhook_secret"))
        changed = await update_account(
            session, admin_viewer(), made.id, account_input(credentials={"a": "", "b": "2"})
        )
        assert changed.credentials_set == ("b", "webhook_secret")
        disabled = await disable_account(session, admin_viewer(), made.id)
        assert not disabled.enabled


async def test_each_owner_administers_its_own_accounts(db: Database) -> None:
    async with db.transaction() as session:
        ours = await make_reseller(session, "Ours")
        theirs = await make_reseller(session, "Theirs")
        provider = await create_account(session, admin_viewer(), account_input())
        own = await create_account(session, reseller_viewer(ours.id), account_input())
        other = await create_account(session, admin_viewer(), account_input(), theirs.id)
    async with db.transaction() as session:
        everyone = await list_accounts(session, admin_viewer())
        assert [a.id for a in everyone] == [provider.id, own.id, other.id]
        assert [a.reseller_id for a in everyone] == [None, ours.id, theirs.id]
        assert [a.id for a in await list_accounts(session, reseller_viewer(ours.id))] == [own.id]
        with pytest.raises(NotFound):
            await update_account(session, reseller_viewer(ours.id), other.id, account_input())
        with pytest.raises(NotFound):
            await disable_account(session, reseller_viewer(ours.id), provider.id)
        with pytest.raises(NotFound):
            await create_account(session, reseller_viewer(ours.id), account_input(), theirs.id)


async def test_routing_prefers_the_resellers_accounts_and_falls_back_only_if_allowed(
    db: Database,
) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session)
        provider_usd = await create_account(session, admin_viewer(), account_input(name="USD"))
        provider_eur = await create_account(
            session, admin_viewer(), account_input(name="EUR", minimums=[("EUR", "0")])
        )
        own = await create_account(session, reseller_viewer(reseller.id), account_input(name="Own"))
        direct = await make_customer(session)
        resold = await make_customer(session, admin_viewer(reseller.id))
        direct_eur = await make_customer(session, currency="EUR")

    async def routed(customer: Any, currency: str, kind: MethodKind | None = None) -> int | None:
        async with db.transaction() as session:
            account = await route(session, customer, currency, kind)
            return None if account is None else account.id

    assert await routed(direct, "USD", MethodKind.VISA) == provider_usd.id
    assert await routed(direct_eur, "EUR") == provider_eur.id
    assert await routed(resold, "USD", MethodKind.VISA) == own.id
    with pytest.raises(UserError) as caught:
        await routed(resold, "USD", MethodKind.AMEX)
    assert caught.value.code == "NO_PROCESSOR_ACCOUNT"
    with pytest.raises(UserError):
        await routed(resold, "EUR")
    async with db.transaction() as session:
        await set_fallback(session, reseller_viewer(reseller.id), None, True)
    assert await routed(resold, "EUR") == provider_eur.id
    assert await routed(resold, "USD", MethodKind.VISA) == own.id
    async with db.transaction() as session:
        await disable_account(session, admin_viewer(), own.id)
    assert await routed(resold, "USD", MethodKind.VISA) == provider_usd.id


async def test_without_any_account_routing_keeps_the_default_processor(db: Database) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session)
        await create_account(session, admin_viewer(), account_input())
        resold = await make_customer(session, admin_viewer(reseller.id))
        # The reseller has none and does not fall back: as before accounts existed.
        assert await route(session, resold, "USD", MethodKind.VISA) is None


async def test_accounts_that_cannot_store_cards_leave_cards_to_the_default_processor(
    db: Database,
) -> None:
    async with db.transaction() as session:
        await create_account(
            session,
            admin_viewer(),
            account_input(
                name="City Kiosks",
                processor="cash_terminal",
                credentials={"signing_secret": SECRET},
                method_kinds=[],
            ),
        )
        customer = await make_customer(session)
        # A terminal network takes no card: cards go where they went before accounts.
        assert await route(session, customer, "USD", MethodKind.VISA) is None
        terminal = await route(session, customer, "USD", None, Capability.INBOUND)
        assert terminal is not None and terminal.processor == "cash_terminal"


async def test_a_payment_below_the_minimum_is_refused(db: Database) -> None:
    async with db.transaction() as session:
        made = await create_account(session, admin_viewer(), account_input())
        account = await session.get(ProcessorAccount, made.id)
    check_minimum(account, 100, "USD")
    check_minimum(None, 1, "USD")
    with pytest.raises(UserError) as caught:
        check_minimum(account, 99, "USD")
    assert caught.value.code == "AMOUNT_BELOW_MINIMUM"
    assert "1.00 USD" in caught.value.message


# --- through GraphQL ------------------------------------------------------------------------

ACCOUNT_FIELDS = """processorAccount { id resellerId name processor mode baseUrl
    minimumPayments { amount currency } methodKinds enabled credentialsSet callbackPath }"""


async def test_graphql_creates_lists_and_never_shows_a_credential(api: Api, db: Database) -> None:
    given = {
        "name": "Cards",
        "processor": "simulator",
        "credentials": [{"name": "webhook_secret", "value": SECRET}],
        "minimums": [{"currency": "usd", "amount": "1.50"}],
        "methodKinds": ["VISA", "MAESTRO"],
    }
    payload = await api.mutate("createProcessorAccount", given, ACCOUNT_FIELDS)
    assert payload["errors"] == []
    made = payload["processorAccount"]
    assert made["minimumPayments"] == [{"amount": "1.50", "currency": "USD"}]
    assert (made["mode"], made["credentialsSet"], made["resellerId"]) == (
        "TEST",
        ["webhook_secret"],
        None,
    )
    assert made["callbackPath"].startswith("/callbacks/")
    listed = await api.run(f"{{ processorAccounts {{ {ACCOUNT_FIELDS.split('{', 1)[1]} }}")
    assert listed["processorAccounts"] == [made]
    processors = (await api.run("{ processors { name capabilities methodKinds } }"))["processors"]
    simulator = next(p for p in processors if p["name"] == "simulator")
    assert "TOKEN_CHARGE" in simulator["capabilities"] and "VISA" in simulator["methodKinds"]

    refused = await api.mutate(
        "updateProcessorAccount",
        {**given, "id": made["id"], "methodKinds": ["ECHECK"], "credentials": None},
        ACCOUNT_FIELDS,
    )
    assert refused["processorAccount"] is None
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [
        ("METHOD_NOT_SUPPORTED", "methodKinds")
    ]
    disabled = await api.mutate(
        "disableProcessorAccount", {"id": made["id"]}, "processorAccount { enabled }"
    )
    assert disabled["processorAccount"] == {"enabled": False}
    everything = json.dumps([payload, listed, refused, disabled])
    assert SECRET not in everything
