"""Letterheads: each owner's own, who may set which, what is refused, and that the owner's
invoice PDFs are drawn again with it (the PDFs are read back with pypdf)."""

from __future__ import annotations

import html
import io
from dataclasses import fields, replace
from datetime import UTC, datetime

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from billing import jobs
from billing.db import Database
from billing.errors import Forbidden, NotFound, UserError
from billing.letterheads import LetterheadDetails, LetterheadInput, get_letterhead, set_letterhead
from billing.models import InvoicePdf, Letterhead, Reseller, Role
from billing.users import create_user
from schema.relay import encode_id
from settings import Settings
from tests.factories import (
    admin_viewer,
    customer_viewer,
    customer_with_login,
    invoices_of,
    make_charge_at,
    make_reseller,
    new_party,
    reseller_viewer,
)
from tests.graphql_support import Api, api_key, row_counts
from tests.portal_support import Browser
from tests.portal_support import text_of as text_of_element

pytest_plugins = ["tests.graphql_fixtures", "tests.portal_fixtures"]

MARCH_10 = datetime(2026, 3, 10, 18, tzinfo=UTC)
APRIL_1 = datetime(2026, 4, 1, 1, tzinfo=UTC)

LAGOS = LetterheadInput(
    name="Lagos Fibre & Mobile Ltd",
    address="14 Adeola Odeku Street\nVictoria Island\nLagos",
    tax_id="12345678-0001",
    email="Billing@LagosFibre.example",
    phone="+234 1 234 5678",
    website="https://lagosfibre.example/billing",
    payment_instructions="Bank transfer to account 0123456789 at Example Bank,\n"
    "quoting the invoice number.",
)
LETTERHEAD_FIELDS = (
    "resellerId name address taxId email phone website paymentInstructions updatedAt"
)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def make_resellers(db: Database, *names: str) -> list[Reseller]:
    async with db.transaction() as session:
        return [await make_reseller(session, name) for name in names]


async def stored_pdf(db: Database, invoice_id: int) -> InvoicePdf:
    async with db.session() as session:
        found = await session.scalar(select(InvoicePdf).where(InvoicePdf.invoice_id == invoice_id))
    assert found is not None
    return found


# --- each owner's letterhead ----------------------------------------------------------------


async def test_an_owner_that_set_none_has_its_name_alone(db: Database, settings: Settings) -> None:
    [reseller] = await make_resellers(db, "Abuja Telecom")
    async with db.session() as session:
        provider = await get_letterhead(session, admin_viewer())
        theirs = await get_letterhead(session, admin_viewer(), reseller.id)
        own = await get_letterhead(session, reseller_viewer(reseller.id))
    assert provider == LetterheadDetails(None, settings.provider_name)
    assert theirs == own == LetterheadDetails(reseller.id, "Abuja Telecom")


async def test_a_letterhead_is_tidied_kept_and_revised_only_when_it_changes(db: Database) -> None:
    async with db.transaction() as session:
        first = await set_letterhead(
            session,
            admin_viewer(),
            LetterheadInput(
                name="  Lagos   Fibre\n& Mobile Ltd ",
                address="\n 14 Adeola Odeku Street \n\n\n Victoria Island\nLagos\n\n",
            ),
        )
    assert first.name == "Lagos Fibre & Mobile Ltd"
    assert first.address == "14 Adeola Odeku Street\n\nVictoria Island\nLagos"
    assert first.revision == 1 and first.tax_id is None

    async with db.transaction() as session:
        again = await set_letterhead(session, admin_viewer(), input_of(first))
        assert again.revision == 1, "the same details again: nothing changed"
        changed = await set_letterhead(session, admin_viewer(), LAGOS)
    assert changed.revision == 2
    assert changed.email == "billing@lagosfibre.example"


def input_of(details: LetterheadDetails) -> LetterheadInput:
    return LetterheadInput(**{f.name: getattr(details, f.name) for f in fields(LetterheadInput)})


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"name": "  "}, "REQUIRED", "name"),
        ({"name": "x" * 201}, "TOO_LONG", "name"),
        ({"address": "\n".join(f"line {n}" for n in range(6))}, "TOO_MANY_LINES", "address"),
        ({"tax_id": "1" * 51}, "TOO_LONG", "taxId"),
        ({"email": "billing at example"}, "INVALID_EMAIL", "email"),
        ({"phone": "call us"}, "INVALID_PHONE", "phone"),
        ({"website": "not a website"}, "INVALID_WEBSITE", "website"),
        ({"website": "mailto:billing@example.com"}, "INVALID_WEBSITE", "website"),
        ({"payment_instructions": "y" * 1001}, "TOO_LONG", "paymentInstructions"),
        (
            {"payment_instructions": "\n".join("step" for _ in range(11))},
            "TOO_MANY_LINES",
            "paymentInstructions",
        ),
    ],
)
async def test_bad_details_are_refused_and_nothing_is_written(
    db: Database, change: dict[str, str], code: str, field: str
) -> None:
    with pytest.raises(UserError) as refused:
        async with db.transaction() as session:
            await set_letterhead(session, admin_viewer(), replace(LAGOS, **change))
    assert (refused.value.code, refused.value.field) == (code, field)
    async with db.session() as session:
        assert await session.scalar(select(Letterhead)) is None


# --- who may set which ----------------------------------------------------------------------


async def test_the_provider_sets_any_letterhead_a_reseller_only_its_own(db: Database) -> None:
    ours, theirs = await make_resellers(db, "Ours", "Theirs")
    async with db.transaction() as session:
        provider = await set_letterhead(session, admin_viewer(), LAGOS)
        for_ours = await set_letterhead(
            session, admin_viewer(), LetterheadInput("Ours Ltd"), ours.id
        )
        own = await set_letterhead(
            session, reseller_viewer(theirs.id), LetterheadInput("Theirs Ltd")
        )
    assert (provider.reseller_id, provider.name) == (None, LAGOS.name)
    assert (for_ours.reseller_id, own.reseller_id) == (ours.id, theirs.id)

    for viewer in (reseller_viewer(theirs.id), admin_viewer(theirs.id)):
        with pytest.raises(NotFound) as refused:
            async with db.transaction() as session:
                await set_letterhead(session, viewer, LetterheadInput("Hijack"), ours.id)
        assert refused.value.field == "resellerId"
    async with db.transaction() as session:  # the reseller's own id is its own
        assert (
            await set_letterhead(
                session, reseller_viewer(ours.id), LetterheadInput("Ours plc"), ours.id
            )
        ).revision == 2
    async with db.session() as session:
        # A reseller reads only its own; the provider's staff read any.
        with pytest.raises(NotFound):
            await get_letterhead(session, reseller_viewer(theirs.id), ours.id)
        assert (await get_letterhead(session, admin_viewer(), ours.id)).name == "Ours plc"
        with pytest.raises(NotFound):
            await get_letterhead(session, admin_viewer(), ours.id + theirs.id + 1)


async def test_customers_read_their_owners_letterhead_and_set_none(db: Database) -> None:
    [reseller] = await make_resellers(db, "Abuja Telecom")
    party = await new_party(db, reseller_id=reseller.id)
    direct = await new_party(db)
    async with db.transaction() as session:
        await set_letterhead(session, admin_viewer(), LAGOS)
    async with db.session() as session:
        assert (await get_letterhead(session, customer_viewer(party.id))).name == "Abuja Telecom"
        assert (await get_letterhead(session, customer_viewer(direct.id))).name == LAGOS.name
    with pytest.raises(Forbidden):
        async with db.transaction() as session:
            await set_letterhead(session, customer_viewer(party.id), LetterheadInput("Mine"))


# --- over GraphQL -------------------------------------------------------------------------


async def test_set_and_read_over_graphql(http: httpx.AsyncClient, db: Database) -> None:
    [reseller] = await make_resellers(db, "Abuja Telecom")
    party = await new_party(db, reseller_id=reseller.id)
    partner = Api(http, await api_key(db, reseller_id=reseller.id))
    payload = await partner.mutate(
        "setLetterhead",
        {
            "name": "Abuja Telecom Ltd",
            "address": "Plot 5, Wuse II\nAbuja",
            "taxId": "NG-998877",
            "website": "abujatelecom.example",
            "paymentInstructions": "Pay at any Abuja Telecom shop.",
        },
        f"letterhead {{ {LETTERHEAD_FIELDS} }}",
    )
    assert payload["errors"] == []
    shown = payload["letterhead"]
    assert shown["resellerId"] == encode_id("Reseller", reseller.id)
    assert shown["address"] == "Plot 5, Wuse II\nAbuja" and shown["email"] is None
    assert shown["updatedAt"] is not None

    async with db.transaction() as session:
        await create_user(
            session, "ada@abuja.example", "a good password", Role.CUSTOMER, customer_id=party.id
        )
    signed_in = await Api(http).mutate(
        "signIn", {"email": "ada@abuja.example", "password": "a good password"}, "token"
    )
    customer = Api(http, signed_in["token"])
    header = await customer.run(f"query {{ letterhead {{ {LETTERHEAD_FIELDS} }} }}")
    assert header["letterhead"] == shown

    before = await row_counts(db)
    refused = await partner.mutate("setLetterhead", {"name": ""}, "letterhead { name }")
    assert refused == {
        "letterhead": None,
        "errors": [{"field": "name", "code": "REQUIRED", "message": "name is required"}],
    }
    assert await row_counts(db) == before


# --- the PDFs -------------------------------------------------------------------------------


async def test_a_new_letterhead_redraws_its_owners_pdfs_and_no_others(db: Database) -> None:
    [reseller] = await make_resellers(db, "Abuja Telecom")
    ours = await new_party(db, name="Олена Коваленко")
    theirs = await new_party(db, name="Adébáyọ̀ Ọláńrewájú", reseller_id=reseller.id)
    async with db.transaction() as session:
        await make_charge_at(session, ours.account, 1500, MARCH_10, "Fibre 100 Mbit/s")
        await make_charge_at(session, theirs.account, 2500, MARCH_10, "Mobile plan")
    await jobs.advance_clock(db, APRIL_1)
    [our_invoice] = await invoices_of(db, ours.id)
    [their_invoice] = await invoices_of(db, theirs.id)
    first = await stored_pdf(db, our_invoice.id)
    assert "Олена Коваленко" in text_of(first.content)
    assert first.letterhead_revision_rendered == 0
    their_first = await stored_pdf(db, their_invoice.id)

    async with db.transaction() as session:
        await set_letterhead(session, admin_viewer(), LAGOS)
    await jobs.run_due(db)
    redrawn = await stored_pdf(db, our_invoice.id)
    assert redrawn.letterhead_revision_rendered == 1
    text = text_of(redrawn.content)
    for shown in (
        "Lagos Fibre & Mobile Ltd",
        "14 Adeola Odeku Street",
        "Victoria Island",
        "Tax ID: 12345678-0001",
        "billing@lagosfibre.example",
        "+234 1 234 5678",
        "https://lagosfibre.example/billing",
        "How to pay",
        "Bank transfer to account 0123456789 at Example Bank,",
        "quoting the invoice number.",
        "Олена Коваленко",
    ):
        assert shown in text, shown
    untouched = await stored_pdf(db, their_invoice.id)
    assert untouched.rendered_at == their_first.rendered_at, "another owner's PDF is not redrawn"
    assert "Abuja Telecom" in text_of(untouched.content)

    async with db.transaction() as session:  # saved again unchanged: nothing to redraw
        await set_letterhead(session, admin_viewer(), LAGOS)
    await jobs.run_due(db)
    assert (await stored_pdf(db, our_invoice.id)).rendered_at == redrawn.rendered_at


# --- in the portal's header -----------------------------------------------------------------


@pytest.mark.parametrize("owner", ["reseller", "provider"])
async def test_the_portal_header_names_whoever_bills_the_visitor(
    browser: Browser, db: Database, owner: str
) -> None:
    """A reseller's customer sees the reseller's name, the provider's the provider's: the
    name their invoices print, never another owner's; signed out, the page names none."""
    abuja, _ = await make_resellers(db, "Abuja Telecom", "Kano Cable")
    async with db.transaction() as session:
        await set_letterhead(session, admin_viewer(), LAGOS)
    assert text_of_element((await browser.open("/portal/sign-in")).text, "biller") == "kassa"
    reseller_id = abuja.id if owner == "reseller" else None
    login = await customer_with_login(db, reseller_id=reseller_id)
    await browser.sign_in(login.email)
    page = (await browser.open("/portal")).text
    biller = "Abuja Telecom" if owner == "reseller" else LAGOS.name
    assert text_of_element(page, "biller") == biller
    assert f"· {html.escape(biller)}</title>" in page
