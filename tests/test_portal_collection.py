"""Collection in the portals: a customer sees the card attempts on an invoice and when the
next one falls due; staff approve or void invoices waiting for review and edit the customer
classes whose rules decide all this."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from billing.collection_run import run_collection
from billing.db import Database
from billing.models import CardCharging, Invoice, InvoiceStatus
from schema.relay import encode_id
from tests.factories import (
    ADMIN_EMAIL,
    DECLINE,
    T0,
    customer_class,
    customer_with_login,
    invoices_of,
    issue_invoice,
    store_card,
)
from tests.portal_support import Browser, csrf_token, customer_api, form_fields, text_of

pytest_plugins = ["tests.portal_fixtures"]


# --- the customer's invoice page ------------------------------------------------------------


async def test_the_invoice_shows_its_card_attempts_and_the_next_one(
    browser: Browser, db: Database
) -> None:
    class_id = await customer_class(
        db, card_charging=CardCharging.ON_ISSUE, attempt_days_after_due=[0, 3]
    )
    party = await customer_with_login(db, class_id=class_id, auto_payment=True)
    await store_card(db, party, DECLINE)
    invoice = await issue_invoice(db, party, 2500)
    await run_collection(db, T0 + timedelta(minutes=2))

    await browser.sign_in()
    page = await browser.open(f"/portal/invoices/{encode_id('Invoice', invoice.id)}")
    assert page.status_code == 200
    attempts = text_of(page.text, "invoice-attempts")
    assert "16 Mar 2026 Failed 25.00 USD The card was declined" in attempts
    # Due 14 days after issue: attempts on the due date and three days after, at 09:00 UTC.
    assert "30 Mar 2026 Scheduled" in attempts and "2 Apr 2026 Scheduled" in attempts
    assert text_of(page.text, "next-attempt") == "Next attempt: 30 Mar 2026 09:00"
    api = await customer_api(browser)
    data = await api.run(
        "query($id: ID!) { invoice(id: $id) { nextAttemptAt } }",
        {"id": encode_id("Invoice", invoice.id)},
    )
    assert data["invoice"]["nextAttemptAt"].startswith("2026-03-30T09:00")


async def test_the_invoice_says_why_the_card_will_not_be_charged(
    browser: Browser, db: Database
) -> None:
    party = await customer_with_login(db)  # no class: cards are never charged
    invoice = await issue_invoice(db, party, 900)
    await browser.sign_in()
    page = await browser.open(f"/portal/invoices/{encode_id('Invoice', invoice.id)}")
    assert "not charged to a card automatically" in text_of(page.text, "next-attempt")


# --- the review queue --------------------------------------------------------------------------


async def _pending(db: Database, count: int) -> list[str]:
    """``count`` invoices of one customer waiting for review, as global ids."""
    class_id = await customer_class(db, "Reviewed", review=True)
    party = await customer_with_login(db, email="rev@example.com", class_id=class_id)
    for amount in range(count):
        await issue_invoice(db, party, 1000 + amount)
    made = await invoices_of(db, party.id)
    assert {invoice.status for invoice in made} == {InvoiceStatus.PENDING_REVIEW}
    return [encode_id("Invoice", invoice.id) for invoice in made]


async def test_staff_approve_several_invoices_at_once(admin: Browser, db: Database) -> None:
    first, second, _third = await _pending(db, 3)
    page = await admin.open("/admin/review")
    assert 'href="/admin/review" aria-current="page">Review</a>' in page.text
    assert "3 invoices waiting" in page.text
    response = await admin.http.post(
        "/admin/review",
        data={"csrf_token": csrf_token(page.text), "ids": [first, second], "action": "approve"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_token(page.text)},
    )
    assert response.status_code == 200, response.text
    assert text_of(response.text, "review-done").startswith("Approved ")
    assert "1 invoice waiting" in response.text and "<html" not in response.text
    statuses = await _statuses(db)
    assert sorted(statuses.values()) == ["PENDING_REVIEW", "UNPAID", "UNPAID"]


async def test_voiding_needs_a_reason_and_then_voids_all_ticked(
    admin: Browser, db: Database
) -> None:
    first, second = await _pending(db, 2)
    page = await admin.open("/admin/review")
    token = csrf_token(page.text)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    response = await admin.http.post(
        "/admin/review",
        headers=headers,
        data={"ids": [first, second], "action": "void", "reason": ""},
    )
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.text and "f-reason-error" in response.text
    assert response.text.count("checked") == 2  # the ticks stay for a second try
    assert sorted((await _statuses(db)).values()) == ["PENDING_REVIEW", "PENDING_REVIEW"]
    response = await admin.http.post(
        "/admin/review",
        headers=headers,
        data={"ids": [first, second], "action": "void", "reason": "Billed twice"},
    )
    assert response.status_code == 200
    assert text_of(response.text, "review-done").startswith("Voided ")
    assert "Nothing to review" in response.text
    assert sorted((await _statuses(db)).values()) == ["VOID", "VOID"]


async def test_approving_nothing_is_refused_in_place(admin: Browser, db: Database) -> None:
    await _pending(db, 1)
    page = await admin.open("/admin/review")
    response = await admin.submit("/admin/review", {"action": "approve"})
    assert response.status_code == 422 and "Name at least one invoice." in response.text
    assert page.status_code == 200


async def _statuses(db: Database) -> dict[int, str]:
    async with db.session() as session:
        rows = (await session.execute(select(Invoice.id, Invoice.status))).all()
    return {invoice_id: status.value for invoice_id, status in rows}


# --- customer classes ------------------------------------------------------------------------


async def test_a_class_is_created_and_edited_and_round_trips(admin: Browser, db: Database) -> None:
    await admin.open("/admin/classes")
    response = await admin.submit(
        "/admin/classes",
        {
            "name": "Business",
            "paymentTermsDays": "30",
            "gracePeriodDays": "10",
            "outOfTurnInvoices.cardCharging": "ON_DUE_DATE",
            "outOfTurnInvoices.attemptDaysAfterDue": "7, 0,3",
            "outOfTurnInvoices.reviewInvoices": "on",
        },
    )
    assert response.status_code == 200, response.text
    assert text_of(response.text, "class-done") == "Created Business."
    listed = text_of(response.text, "class-list")
    assert (
        "Business 30 days 10 days Card charged: Never (the customer pays) "
        "Card charged: On the due date; after due 0,3,7; reviewed"
    ) in listed
    path = response.text.split('href="/admin/classes/', 1)[1].split('"')[0]

    assert (await admin.open("/admin/classes/garbage")).status_code == 404
    page = await admin.open(f"/admin/classes/{path}")
    fields = form_fields(page.text, f"/admin/classes/{path}")
    assert fields["outOfTurnInvoices.attemptDaysAfterDue"] == "0,3,7"
    assert fields["outOfTurnInvoices.reviewInvoices"] == "on"
    assert "regularInvoices.reviewInvoices" not in fields
    response = await admin.submit(
        f"/admin/classes/{path}",
        {
            "regularInvoices.cardCharging": "ON_ISSUE",
            "regularInvoices.attemptDaysBeforeDue": "2",
            "gracePeriodDays": "5",
        },
        htmx=True,
    )
    assert response.status_code == 200 and "Saved." in response.text
    api = await customer_api(admin, ADMIN_EMAIL)
    data = await api.run("""{ customerClasses { edges { node {
        name gracePeriodDays regularInvoices { cardCharging attemptDaysBeforeDue reviewInvoices }
        outOfTurnInvoices { cardCharging attemptDaysAfterDue reviewInvoices } } } } }""")
    [node] = [edge["node"] for edge in data["customerClasses"]["edges"]]
    assert node == {
        "name": "Business",
        "gracePeriodDays": 5,
        "regularInvoices": {
            "cardCharging": "ON_ISSUE",
            "attemptDaysBeforeDue": [2],
            "reviewInvoices": False,
        },
        "outOfTurnInvoices": {
            "cardCharging": "ON_DUE_DATE",
            "attemptDaysAfterDue": [0, 3, 7],
            "reviewInvoices": True,
        },
    }


async def test_bad_class_input_is_shown_beside_its_field(admin: Browser, db: Database) -> None:
    await customer_class(db, "Plain")
    page = await admin.open("/admin/classes")
    path = page.text.split('href="/admin/classes/', 1)[1].split('"')[0]
    await admin.open(f"/admin/classes/{path}")
    response = await admin.submit(
        f"/admin/classes/{path}", {"regularInvoices.attemptDaysAfterDue": "0,x"}, htmx=True
    )
    assert response.status_code == 422
    assert text_of(response.text, "f-regularInvoices.attemptDaysAfterDue-error").startswith(
        "Enter whole numbers of days"
    )
    assert 'value="0,x"' in response.text
    # The API's own refusals land beside their fields too (days are at most a limit).
    response = await admin.submit(
        f"/admin/classes/{path}", {"outOfTurnInvoices.attemptDaysAfterDue": "100000"}, htmx=True
    )
    assert response.status_code == 422
    assert text_of(response.text, "f-outOfTurnInvoices.attemptDaysAfterDue-error").startswith(
        "Attempt days must be between 0 and"
    )
    # Days before the due date with charging on the due date would do nothing: refused.
    response = await admin.submit(
        f"/admin/classes/{path}",
        {
            "regularInvoices.cardCharging": "ON_DUE_DATE",
            "regularInvoices.attemptDaysBeforeDue": "3",
        },
        htmx=True,
    )
    assert response.status_code == 422
    assert text_of(response.text, "f-regularInvoices.attemptDaysBeforeDue-error").startswith(
        "Attempts before the due date need the card charged upon issue"
    )
    await admin.open("/admin/classes")
    response = await admin.submit(
        "/admin/classes", {"name": "X", "paymentTermsDays": "ten"}, htmx=True
    )
    assert response.status_code == 422
    assert text_of(response.text, "f-new-paymentTermsDays-error") == "Enter digits only."


async def test_a_customer_cannot_reach_the_collection_pages(
    signed_in: Browser, db: Database
) -> None:
    class_id = await customer_class(db, "Secret")
    token = csrf_token((await signed_in.open("/portal")).text)
    one = f"/admin/classes/{encode_id('CustomerClass', class_id)}"
    for path in ("/admin/review", "/admin/classes", one):
        response = await signed_in.http.get(path)
        assert response.status_code in (303, 403), path
        assert "Secret" not in response.text
        response = await signed_in.http.post(
            path,
            headers={"HX-Request": "true", "X-CSRF-Token": token},
            data={"name": "Mine", "action": "approve", "ids": "x"},
        )
        assert response.status_code == 403, path
    page = await signed_in.open("/portal")
    assert "/admin/review" not in page.text and "/admin/classes" not in page.text
