"""Invoice PDFs: what they show, when the job renders them, and the signed download link.

The PDFs are read back with pypdf, so every assertion is about the text a customer sees.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pypdf import PdfReader
from sqlalchemy import select

from billing import invoice_pdfs, jobs
from billing.db import Database
from billing.invoice_pdf_layout import DocumentLine, InvoiceDocument, render_invoice_pdf
from billing.invoice_pdfs import RENDER_JOB, invoice_document, schedule_pdf_rendering
from billing.invoices import void_invoice
from billing.letterheads import LetterheadDetails
from billing.models import Invoice, InvoiceKind, InvoicePdf, InvoiceStatus, Job, JobStatus
from billing.pdf_fonts import pdf_text
from resolvers.invoice_pdf_links import invoice_pdf_token
from schema.relay import encode_id
from settings import Settings
from tests.factories import (
    Party,
    admin_viewer,
    invoices_of,
    issue_invoice,
    make_charge_at,
    make_reseller,
    new_party,
    pay_cash,
)
from tests.graphql_support import Api, api_key
from tests.portal_support import Browser

pytest_plugins = ["tests.graphql_fixtures", "tests.portal_fixtures"]

MARCH_2 = datetime(2026, 3, 2, 9, tzinfo=UTC)
MARCH_10 = datetime(2026, 3, 10, 18, tzinfo=UTC)
MARCH_12 = datetime(2026, 3, 12, 12, tzinfo=UTC)
APRIL_1 = datetime(2026, 4, 1, 1, tzinfo=UTC)  # just after March closes at UTC midnight
APRIL_2 = datetime(2026, 4, 2, 12, tzinfo=UTC)
INVOICE_PDF_QUERY = "query($id: ID!) { invoice(id: $id) { number pdfUrl } }"


def text_of(pdf: bytes) -> str:
    """The PDF's text, every page, as pypdf extracts it."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


async def march_invoice(db: Database, **customer: Any) -> tuple[Party, Invoice]:
    """A March invoice from the bill run: an opening balance, two charges, a payment in the
    period (which the new invoice then takes as credit: PARTIALLY_PAID)."""
    party = await new_party(
        db,
        opening_balance=500,
        address="12 Marina Road\nLagos",
        email="billing@example.com",
        **customer,
    )
    async with db.transaction() as session:
        await make_charge_at(session, party.account, 1234, MARCH_2, "Calls to mobiles")
        await make_charge_at(session, party.account, 766, MARCH_10, "Data bundle 5 GB")
        await pay_cash(session, party.customer, 300, received_at=MARCH_12)
    await jobs.advance_clock(db, APRIL_1)
    [invoice] = await invoices_of(db, party.id)
    return party, invoice


async def stored_pdf(db: Database, invoice_id: int) -> InvoicePdf | None:
    async with db.session() as session:
        return await session.scalar(select(InvoicePdf).where(InvoicePdf.invoice_id == invoice_id))


async def run_render_job(db: Database) -> None:
    """Ask for a render pass explicitly and run it (as any status change would)."""
    async with db.transaction() as session:
        await schedule_pdf_rendering(session, APRIL_2)
    await jobs.run_due(db)


def document(**changes: Any) -> InvoiceDocument:
    """A realistic document, to render without a database."""
    base = InvoiceDocument(
        invoice_id=1,
        letterhead=LetterheadDetails(None, "Lagos Fibre"),
        customer_name="Ada Lovelace",
        customer_address="1 St James's Square\nLondon",
        customer_email="ada@example.com",
        number="INV-000042",
        kind=InvoiceKind.REGULAR,
        currency="NGN",
        period_start=date(2026, 3, 1),
        period_last_day=date(2026, 3, 31),
        issue_date=date(2026, 4, 1),
        due_date=date(2026, 4, 15),
        lines=(DocumentLine("+2348000000001", "Fibre 100 Mbit/s", date(2026, 3, 1), 1500000),),
        previous_balance=0,
        payments_in_period=0,
        total=1500000,
        balance_due=1500000,
        amount_paid=0,
        amount_due=1500000,
        status=InvoiceStatus.UNPAID,
    )
    return replace(base, **changes)


# --- what the PDF shows ----------------------------------------------------------------------


async def test_the_pdf_shows_parties_period_lines_figures_and_status(db: Database) -> None:
    party, invoice = await march_invoice(db, name="Chinua Achebe")
    stored = await stored_pdf(db, invoice.id)
    assert stored is not None, "the render job ran after the bill run"
    text = text_of(stored.content)

    assert "kassa" in text  # the provider's name (settings.provider_name) heads its invoices
    assert "Chinua Achebe" in text and "12 Marina Road" in text and "Lagos" in text
    assert invoice.number in text and "Regular" in text
    last_day = invoice.period_end - timedelta(days=1)  # the end is exclusive; print the last day
    assert f"{invoice.period_start:%d %b %Y} to {last_day:%d %b %Y}" in text
    assert f"Issue date {invoice.issue_date:%d %b %Y}" in text
    assert f"Due date {invoice.due_date:%d %b %Y}" in text
    assert "02 Mar 2026" in text and party.account.number in text
    assert "Calls to mobiles 12.34 USD" in text and "Data bundle 5 GB 7.66 USD" in text
    assert invoice.previous_balance == 500 and invoice.payments_in_period == 300
    assert "Previous balance 5.00 USD" in text
    assert "Payments received in the period -3.00 USD" in text
    assert "This period's charges 20.00 USD" in text
    assert "Balance as of this invoice 22.00 USD" in text
    assert "Paid on this invoice 3.00 USD" in text
    assert "Amount due 17.00 USD" in text
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID
    assert "Status PARTIALLY PAID" in text


async def test_a_resellers_invoice_carries_the_resellers_name(db: Database) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session, "Abuja Telecom Ltd")
    _, invoice = await march_invoice(db, reseller_id=reseller.id)
    async with db.session() as session:
        shown = await invoice_document(session, invoice.id)
    assert shown.letterhead == LetterheadDetails(reseller.id, "Abuja Telecom Ltd")
    assert "Abuja Telecom Ltd" in text_of(render_invoice_pdf(shown))


def test_a_paid_invoice_says_paid_and_nothing_due() -> None:
    text = text_of(
        render_invoice_pdf(document(status=InvoiceStatus.PAID, amount_paid=1500000, amount_due=0))
    )
    assert "PAID" in text and "PARTIALLY" not in text
    assert "Amount due 0.00 NGN" in text
    assert "Paid on this invoice 15000.00 NGN" in text


def test_names_print_in_their_own_script() -> None:
    """The font is embedded, so what pypdf reads back is what a reader shows."""
    names = (
        "Zoë Brontë",
        "Олена Коваленко",  # Cyrillic
        "Ελένη Παπαδοπούλου",  # Greek
        "Adébáyọ̀ Ọláńrewájú",  # Yoruba: a tone mark over a dotted vowel (two code points)
        "Nguyễn Thị Minh Khai",
        "Łukasz Żółć",
        "Nnamdi “Zik” Azikiwe – ₦",
    )
    for name in names:
        assert pdf_text(name) == name
        assert name in text_of(render_invoice_pdf(document(customer_name=name))), name


def test_what_the_font_lacks_is_spelled_with_base_letters_or_question_marks() -> None:
    assert pdf_text("李小龍") == "???"  # no CJK glyphs: never a broken render
    assert pdf_text("ｆｕｌｌ‑width") == "full-width"  # compatibility forms
    assert pdf_text("Line\nbreak\ttab") == "Line break tab"
    assert pdf_text("Ade\u0301") == "Adé"  # composed where Unicode has one character


def test_the_font_is_embedded_with_only_the_glyphs_used() -> None:
    pdf = PdfReader(io.BytesIO(render_invoice_pdf(document(customer_name="Олена"))))
    fonts: Any = pdf.pages[0]["/Resources"]["/Font"]  # type: ignore[index]
    embedded = {
        str(font["/BaseFont"]): font["/DescendantFonts"][0]["/FontDescriptor"]["/FontFile2"]
        for font in (ref.get_object() for ref in fonts.values())
    }
    assert {name.split("+")[1] for name in embedded} == {"DejaVuSansBook", "DejaVuSansBold"}
    for font_file in embedded.values():
        assert len(font_file.get_object().get_data()) < 40_000, "a subset, not the whole face"


def test_the_letterhead_heads_the_page_and_says_how_to_pay_while_something_is_due() -> None:
    letterhead = LetterheadDetails(
        None,
        "Lagos Fibre & Mobile Ltd",
        address="14 Adeola Odeku Street\nVictoria Island, Lagos",
        tax_id="12345678-0001",
        email="billing@lagosfibre.example",
        phone="+234 1 234 5678",
        website="lagosfibre.example",
        payment_instructions="Bank transfer to account 0123456789 at Example Bank, quoting "
        "the invoice number. Cash at any of our shops in Lagos, Abuja and Port Harcourt, "
        "Monday to Saturday.\nCards: in the customer portal.",
    )
    text = text_of(render_invoice_pdf(document(letterhead=letterhead)))
    for shown in (
        "Lagos Fibre & Mobile Ltd",
        "14 Adeola Odeku Street",
        "Victoria Island, Lagos",
        "Tax ID: 12345678-0001",
        "billing@lagosfibre.example",
        "+234 1 234 5678",
        "lagosfibre.example",
        "How to pay",
        "Bank transfer to account 0123456789 at Example Bank",
        "Cards: in the customer portal.",
    ):
        assert shown in text, shown
    assert "Port Harcourt" in text and "..." not in text, "long instructions wrap, uncut"
    paid = document(
        letterhead=letterhead, status=InvoiceStatus.PAID, amount_paid=1500000, amount_due=0
    )
    paid_text = text_of(render_invoice_pdf(paid))
    assert "How to pay" not in paid_text and "Tax ID: 12345678-0001" in paid_text


def test_a_void_invoice_says_when_and_why() -> None:
    void = document(
        status=InvoiceStatus.VOID,
        amount_due=0,
        void_reason="Billed twice for March: see INV-000043",
        voided_on=date(2026, 4, 3),
        letterhead=LetterheadDetails(None, "Lagos Fibre", payment_instructions="Pay us."),
    )
    text = text_of(render_invoice_pdf(void))
    assert (
        "This invoice was voided on 03 Apr 2026: Billed twice for March: see INV-000043"
        in " ".join(text.split())
    )
    assert "Nothing is due on it." in text and "How to pay" not in text


def test_a_long_bill_runs_onto_more_pages_with_every_line() -> None:
    lines = tuple(
        DocumentLine(f"+234800000{n:04d}", f"Call {n} to Ibadan", date(2026, 3, 1), 100 + n)
        for n in range(80)
    )
    pdf = render_invoice_pdf(document(lines=lines, total=sum(line.amount for line in lines)))
    text = text_of(pdf)
    assert page_count(pdf) == 3
    assert "page 3 of 3" in text
    assert text.count("Description") == 3  # the table heading is repeated on each page
    for n in range(80):
        assert f"Call {n} to Ibadan {(100 + n) / 100:.2f} NGN" in text


def test_a_long_description_is_cut_to_its_column() -> None:
    long = "Roaming data in Ghana " * 10
    text = text_of(
        render_invoice_pdf(
            document(lines=(DocumentLine("+2348000000001", long, date(2026, 3, 1), 1000),))
        )
    )
    assert "Roaming data in Ghana Roaming" in text and "..." in text
    assert long not in text


def test_the_same_document_renders_to_the_same_bytes() -> None:
    """So the stored SHA-256 is a stable ETag and re-rendering unchanged figures is harmless."""
    assert render_invoice_pdf(document()) == render_invoice_pdf(document())


# --- when the PDFs are rendered -------------------------------------------------------------


async def test_the_job_renders_after_the_bill_run_and_again_only_when_figures_change(
    db: Database,
) -> None:
    party, invoice = await march_invoice(db)
    first = await stored_pdf(db, invoice.id)
    assert first is not None and first.status_rendered == InvoiceStatus.PARTIALLY_PAID

    await run_render_job(db)  # nothing changed: nothing is rendered again
    again = await stored_pdf(db, invoice.id)
    assert again is not None and again.rendered_at == first.rendered_at
    assert again.sha256 == first.sha256

    async with db.transaction() as session:  # a second part payment: same status, less due
        await pay_cash(session, party.customer, 700)
    await jobs.run_due(db)
    partly = await stored_pdf(db, invoice.id)
    assert partly is not None and partly.status_rendered == InvoiceStatus.PARTIALLY_PAID
    assert "Amount due 10.00 USD" in text_of(partly.content)

    async with db.transaction() as session:
        await pay_cash(session, party.customer, 1000)
    await jobs.run_due(db)
    paid = await stored_pdf(db, invoice.id)
    assert paid is not None and paid.status_rendered == InvoiceStatus.PAID
    text = text_of(paid.content)
    assert "Status PAID" in text and "Amount due 0.00 USD" in text

    async with db.session() as session:
        pending = await session.scalar(
            select(Job).where(Job.kind == RENDER_JOB, Job.status == JobStatus.PENDING)
        )
    assert pending is None, "the job does not keep rescheduling itself"


async def test_a_void_invoice_is_rendered_again_as_void_with_its_reason(db: Database) -> None:
    _, invoice = await march_invoice(db)
    async with db.transaction() as session:
        voided = await void_invoice(session, admin_viewer(), invoice.id, "sold in error")
    assert voided.void_reason == "sold in error"
    await jobs.run_due(db)
    stored = await stored_pdf(db, invoice.id)
    assert stored is not None and stored.status_rendered == InvoiceStatus.VOID
    text = text_of(stored.content)
    assert "VOID" in text and "Amount due 0.00 USD" in text
    assert "This invoice was voided on 01 Apr 2026: sold in error" in text


async def test_the_job_works_through_a_large_bill_run_in_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    parties = [await new_party(db, name=f"Customer {n}") for n in range(3)]
    async with db.transaction() as session:
        for party in parties:
            await make_charge_at(session, party.account, 1000, MARCH_10)
    # Three invoices, two a run: the first run schedules the second.
    monkeypatch.setattr(invoice_pdfs, "RENDER_BATCH", 2)
    await jobs.advance_clock(db, APRIL_1)
    for party in parties:
        [invoice] = await invoices_of(db, party.id)
        assert await stored_pdf(db, invoice.id) is not None


# --- the signed link ----------------------------------------------------------------------


async def _pdf_url(api: Api, invoice: Invoice) -> str:
    data = await api.run(INVOICE_PDF_QUERY, {"id": encode_id("Invoice", invoice.id)})
    url: str = data["invoice"]["pdfUrl"]
    return url


async def test_the_signed_link_downloads_the_pdf(
    api: Api, http: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    _, invoice = await march_invoice(db)
    url = await _pdf_url(api, invoice)
    assert url.startswith(f"{settings.public_url}/documents/invoices/") and url.endswith(".pdf")

    response = await http.get(urlsplit(url).path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{invoice.number}.pdf"'
    )
    assert "no-store" in response.headers["cache-control"]
    stored = await stored_pdf(db, invoice.id)
    assert stored is not None and response.content == stored.content
    assert response.headers["etag"] == f'"{stored.sha256}"'


async def test_a_download_renders_what_the_job_has_not_caught_up_with(
    api: Api, http: httpx.AsyncClient, db: Database
) -> None:
    party, invoice = await march_invoice(db)
    async with db.transaction() as session:  # paid in full; the render job has not run yet
        await pay_cash(session, party.customer, 1700)
    response = await http.get(urlsplit(await _pdf_url(api, invoice)).path)
    assert response.status_code == 200
    assert "Status PAID" in text_of(response.content)
    stored = await stored_pdf(db, invoice.id)
    assert stored is not None and stored.status_rendered == InvoiceStatus.PAID


async def test_a_tampered_or_foreign_link_is_not_found(
    http: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    party = await new_party(db)
    invoice = await issue_invoice(db, party, 1000)
    good = invoice_pdf_token(settings, invoice.id)
    payload, stamp, signature = good.split(".")
    other_invoice = invoice_pdf_token(settings, invoice.id + 1)  # signed, but no such invoice
    tampered = [
        f"{invoice_pdf_token(settings, invoice.id + 1).split('.')[0]}.{stamp}.{signature}",
        f"{payload}.{stamp}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        invoice_pdf_token(settings.with_(secret_key="another installation"), invoice.id),
        "garbage",
        other_invoice,
    ]
    for token in tampered:
        response = await http.get(f"/documents/invoices/{token}.pdf")
        assert response.status_code == 404, token
        assert response.content == b"Not found."
    assert (await http.get(f"/documents/invoices/{good}.pdf")).status_code == 200


async def test_an_expired_link_is_refused(
    http: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    party = await new_party(db)
    invoice = await issue_invoice(db, party, 1000)

    class SixteenMinutesAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return super().get_timestamp() - 16 * 60

    old = URLSafeTimedSerializer(
        settings.secret_key, salt="invoice-pdf", signer=SixteenMinutesAgo
    ).dumps(invoice.id)
    response = await http.get(f"/documents/invoices/{old}.pdf")
    assert response.status_code == 410
    assert b"%PDF" not in response.content


async def test_only_those_who_may_see_an_invoice_get_a_link(
    http: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        ours, theirs = await make_reseller(session, "Ours"), await make_reseller(session, "Theirs")
    _, invoice = await march_invoice(db, reseller_id=ours.id)
    outsider = Api(http, await api_key(db, reseller_id=theirs.id))
    data = await outsider.run(INVOICE_PDF_QUERY, {"id": encode_id("Invoice", invoice.id)})
    assert data["invoice"] is None
    listed = await outsider.run("query { invoices(first: 10) { edges { node { pdfUrl } } } }")
    assert listed["invoices"]["edges"] == []
    insider = Api(http, await api_key(db, reseller_id=ours.id))
    assert (await _pdf_url(insider, invoice)).endswith(".pdf")


async def test_the_portal_invoice_page_links_to_the_pdf(
    signed_in: Browser, customer: Party, db: Database
) -> None:
    invoice = await issue_invoice(db, customer, 2500)
    page = (await signed_in.open(f"/portal/invoices/{encode_id('Invoice', invoice.id)}")).text
    link = re.search(r'<a href="([^"]+)" download>[^<]*PDF</a>', page)
    assert link is not None
    response = await signed_in.http.get(urlsplit(link.group(1)).path)
    assert response.status_code == 200
    assert invoice.number in text_of(response.content)
