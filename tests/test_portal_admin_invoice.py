"""The administrators' invoice page: what an administrator sees before approving or voiding
an invoice, the two actions, and the links that lead there from every list of invoices."""

from __future__ import annotations

from billing.db import Database
from schema.relay import encode_id
from tests.factories import (
    Party,
    admin_with_login,
    customer_class,
    issue_invoice,
    make_reseller,
    new_party,
    settle_in_cash,
)
from tests.portal_support import Browser, csrf_token, text_of

pytest_plugins = ["tests.portal_fixtures"]


def _path(invoice_id: int) -> str:
    return f"/admin/invoices/{encode_id('Invoice', invoice_id)}"


async def _held(db: Database) -> tuple[Party, int]:
    """A customer whose invoices closed early wait for review, and one such invoice."""
    class_id = await customer_class(db, "Reviewed", review=True)
    party = await new_party(db, class_id=class_id)
    invoice = await issue_invoice(db, party, 4000)
    return party, invoice.id


async def test_the_page_shows_lines_payments_attempts_history_and_the_pdf(
    admin: Browser, db: Database
) -> None:
    party = await new_party(db, name="Ada Lovelace", phone="+442079460001")
    invoice = await issue_invoice(db, party, 1230, 270, description="Calls in March")
    await settle_in_cash(db, party, 1000)

    page = await admin.open(_path(invoice.id))
    assert page.status_code == 200, page.text
    assert text_of(page.text, "invoice-status") == "Partially paid"
    assert "Calls in March" in text_of(page.text, "invoice-lines")
    assert "Cash" in text_of(page.text, "invoice-payments")
    assert text_of(page.text, "invoice-outstanding") == "5.00 USD"
    history = text_of(page.text, "invoice-history")
    assert "Issued" in history and "Partially paid" in history and "Payment" in history
    assert text_of(page.text, "next-attempt")  # says when the card is charged, or why not
    assert "/invoices/" in page.text and "Download the PDF" in page.text
    assert "Ada Lovelace" in page.text


async def test_every_invoice_number_links_to_its_page(admin: Browser, db: Database) -> None:
    party, held = await _held(db)
    queue = await admin.open("/admin/review")
    assert f'href="{_path(held)}"' in queue.text
    customer = await admin.open(f"/admin/customers/{encode_id('Customer', party.id)}")
    assert f'href="{_path(held)}"' in customer.text


async def test_an_invoice_waiting_for_review_is_approved_from_its_page(
    admin: Browser, db: Database
) -> None:
    _, held = await _held(db)
    page = await admin.open(_path(held))
    assert text_of(page.text, "invoice-status") == "Waiting for review"

    response = await admin.submit(f"{_path(held)}/approve", htmx=True)
    assert response.status_code == 200
    assert "<html" not in response.text  # only the invoice is swapped
    assert text_of(response.text, "invoice-done").startswith("Approved ")
    assert text_of(response.text, "invoice-status") == "Unpaid"
    assert f"{_path(held)}/approve" not in response.text  # nothing left to approve


async def test_voiding_takes_a_reason(admin: Browser, db: Database) -> None:
    party = await new_party(db)
    invoice = await issue_invoice(db, party, 2500)
    path = _path(invoice.id)
    await admin.open(path)

    refused = await admin.submit(f"{path}/void", {"reason": "  "}, htmx=True)
    assert refused.status_code == 422
    assert text_of(refused.text, "invoice-status") == "Unpaid"
    assert "f-reason-error" in refused.text

    response = await admin.submit(f"{path}/void", {"reason": "Billed twice"}, htmx=True)
    assert response.status_code == 200
    assert text_of(response.text, "invoice-done") == f"Voided {invoice.number}."
    assert text_of(response.text, "invoice-status") == "Void"
    assert text_of(response.text, "void-reason") == "Billed twice"
    assert "Voided" in text_of(response.text, "invoice-history")
    # A void invoice offers neither action again.
    assert f"{path}/void" not in response.text and f"{path}/approve" not in response.text


async def test_unknown_and_other_resellers_invoices_are_404_pages(
    browser: Browser, db: Database
) -> None:
    async with db.transaction() as session:
        reseller = await make_reseller(session)
    invoice = await issue_invoice(db, await new_party(db), 1000)  # the provider's customer
    await browser.sign_in(await admin_with_login(db, "staff@reseller.test", reseller.id))

    for path in (_path(invoice.id), "/admin/invoices/garbage", _path(invoice.id + 999)):
        page = await browser.open(path)
        assert page.status_code == 404, path
        assert "Page not found" in page.text
    page = await browser.open("/admin")
    for action in ("approve", "void"):
        response = await browser.http.post(
            f"{_path(invoice.id)}/{action}",
            data={"reason": "no", "csrf_token": csrf_token(page.text)},
        )
        assert response.status_code == 404, action


async def test_customers_may_not_open_it(signed_in: Browser, db: Database, customer: Party) -> None:
    invoice = await issue_invoice(db, customer, 1000)
    page = await signed_in.open(_path(invoice.id))
    assert page.status_code == 403


async def test_a_paid_invoice_keeps_its_own_figures_apart_from_the_accounts(
    admin: Browser, db: Database
) -> None:
    """ "Still to pay 0.00" is the invoice's; the balance on its issue day is the account's,
    under a heading of its own, so the two never read as one figure contradicting the other."""
    party = await new_party(db)
    await issue_invoice(db, party, 1500)
    paid = await issue_invoice(db, party, 700)
    await settle_in_cash(db, party, 2200)

    page = await admin.open(_path(paid.id))
    assert text_of(page.text, "invoice-status") == "Paid"
    assert text_of(page.text, "this-invoice-title") == "This invoice"
    assert text_of(page.text, "invoice-outstanding") == "0.00 USD"
    assert text_of(page.text, "account-title").startswith("The account on ")
    assert text_of(page.text, "invoice-balance") == "22.00 USD"
