"""Flagged payments: ``payments(flagged:)`` in the API and the administrators' "Payments to
look at" page, each within the caller's scope."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from billing import ledger
from billing.db import Database
from billing.models import Payment, Role
from schema.relay import decode_id, encode_id
from tests.factories import (
    admin_viewer,
    admin_with_login,
    make_account,
    make_customer,
    make_distributor,
    make_reseller,
    pay_cash,
    user_with_login,
)
from tests.graphql_support import Api, api_key, signed_in_api
from tests.portal_support import Browser, text_of
from tests.statements import statements

pytest_plugins = ["tests.portal_fixtures"]

PAYMENTS = """
query Flagged($flagged: Boolean, $reviewed: Boolean) {
  payments(first: 50, flagged: $flagged, flagReviewed: $reviewed) {
    edges { node { id flaggedReason } }
  }
}
"""


@dataclass(frozen=True)
class Payments:
    """Own: a provider's customer with a flagged and a plain payment; theirs: a reseller's
    customer with a flagged one."""

    reseller_id: int
    own_customer: int
    own_flagged: int
    own_plain: int
    theirs_flagged: int


async def flag(db: Database, payment_id: int, reason: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Payment).where(Payment.id == payment_id).values(flagged_reason=reason)
        )


async def payments(db: Database) -> Payments:
    async with db.transaction() as session:
        reseller = await make_reseller(session)
        own = await make_customer(session, name="Grace Hopper", email="grace@example.com")
        theirs = await make_customer(session, admin_viewer(reseller.id), name="Katherine Johnson")
        for customer in (own, theirs):
            await make_account(session, customer)
        own_flagged = await pay_cash(session, own, 1250)
        own_plain = await pay_cash(session, own, 700)
        theirs_flagged = await pay_cash(session, theirs, 990)
    await flag(db, own_flagged.id, "the notification said 12.00 <b>EUR</b>")
    await flag(db, theirs_flagged.id, "paid in NGN, the customer pays in USD")
    return Payments(reseller.id, own.id, own_flagged.id, own_plain.id, theirs_flagged.id)


async def listed(api: Api, flagged: bool | None, reviewed: bool | None = None) -> set[int]:
    data = await api.run(PAYMENTS, {"flagged": flagged, "reviewed": reviewed})
    return {decode_id(edge["node"]["id"], "Payment") for edge in data["payments"]["edges"]}


async def test_payments_filter_by_their_flag_within_the_callers_scope(
    browser: Browser, db: Database
) -> None:
    made = await payments(db)
    provider = Api(browser.http, await api_key(db))
    assert await listed(provider, True) == {made.own_flagged, made.theirs_flagged}
    assert await listed(provider, False) == {made.own_plain}
    assert await listed(provider, None) == {made.own_flagged, made.own_plain, made.theirs_flagged}
    reseller = Api(browser.http, await api_key(db, reseller_id=made.reseller_id))
    assert await listed(reseller, True) == {made.theirs_flagged}
    assert await listed(reseller, False) == set()

    email = await user_with_login(
        db, "grace@example.com", Role.CUSTOMER, customer_id=made.own_customer
    )
    customer = await signed_in_api(browser.http, email)
    assert await listed(customer, True) == {made.own_flagged}
    assert await listed(customer, False) == {made.own_plain}


async def test_a_distributor_may_not_filter_on_the_flag(browser: Browser, db: Database) -> None:
    """Whether a payment is flagged is the customer's books, which a distributor does not
    see: the filter is refused, not answered with a telling empty list."""
    await payments(db)
    async with db.transaction() as session:
        distributor = await make_distributor(session)
    email = await user_with_login(
        db, "kiosk@example.com", Role.DISTRIBUTOR, distributor_id=distributor.id
    )
    api = await signed_in_api(browser.http, email)
    for flagged in (True, False):
        answer = (await api.post(PAYMENTS, {"flagged": flagged})).json()
        assert answer["data"] is None
        assert [error["extensions"]["code"] for error in answer["errors"]] == ["FORBIDDEN"]
    assert (await api.run(PAYMENTS, {"flagged": None}))["payments"]["edges"] == []


async def test_the_page_lists_the_flagged_payments_an_administrator_may_see(
    browser: Browser, db: Database
) -> None:
    made = await payments(db)
    await browser.sign_in(await admin_with_login(db))
    page = await browser.open("/admin/flagged-payments")
    assert page.status_code == 200
    assert text_of(page.text, "flagged-title") == "2 flagged payments"
    rows = text_of(page.text, "flagged-payment-list")
    assert "Grace Hopper" in rows and "Katherine Johnson" in rows
    assert "12.50" in rows and "9.90" in rows and "7.00" not in rows  # the plain one is not
    assert "The notification said 12.00 <b>EUR</b>" in rows  # its words, escaped
    assert "<b>EUR</b>" not in page.text
    links = {href for href in _links(page.text) if href.startswith("/admin/customers/")}
    assert len(links) == 2
    assert '<a href="/admin/flagged-payments" aria-current="page">' in page.text  # navigation

    # A reseller's administrator sees its own customer's only.
    browser.http.cookies.clear()
    await browser.sign_in(
        await admin_with_login(db, "reseller-admin@example.com", reseller_id=made.reseller_id)
    )
    theirs = await browser.open("/admin/flagged-payments")
    assert text_of(theirs.text, "flagged-title") == "1 flagged payment"
    assert "Katherine Johnson" in theirs.text and "Grace Hopper" not in theirs.text


async def test_nothing_flagged_says_so_and_customers_are_kept_out(
    browser: Browser, db: Database, customer: object
) -> None:
    await browser.sign_in(await admin_with_login(db))
    page = await browser.open("/admin/flagged-payments")
    assert "Nothing to look at: no payment is flagged." in page.text
    browser.http.cookies.clear()
    await browser.sign_in()  # the customer fixture's login
    refused = await browser.http.get("/admin/flagged-payments", follow_redirects=False)
    assert refused.status_code in (303, 403)
    assert "flagged-payment-list" not in refused.text


def _links(html: str) -> list[str]:
    found: list[str] = []
    marker = 'href="'
    start = html.find(marker)
    while start != -1:
        end = html.index('"', start + len(marker))
        found.append(html[start + len(marker) : end])
        start = html.find(marker, end)
    return found


REVIEW = """
mutation Review($input: ReviewFlaggedPaymentInput!) {
  reviewFlaggedPayment(input: $input) {
    payment { id flagReviewedAt flagReviewNote flaggedReason }
    errors { field code }
  }
}
"""


async def review(api: Api, payment_id: int, note: str) -> dict[str, object]:
    data = await api.run(
        REVIEW, {"input": {"paymentId": encode_id("Payment", payment_id), "note": note}}
    )
    payload: dict[str, object] = data["reviewFlaggedPayment"]
    return payload


async def waiting(api: Api, reviewed: bool) -> set[int]:
    """Flagged payments not yet reviewed (or, with ``reviewed``, those reviewed)."""
    return await listed(api, None, reviewed)


async def test_staff_review_a_flagged_payment_once_within_their_scope(
    browser: Browser, db: Database
) -> None:
    made = await payments(db)
    provider = Api(browser.http, await api_key(db))
    assert await waiting(provider, False) == {made.own_flagged, made.theirs_flagged}
    assert await waiting(provider, True) == set()
    async with db.session() as session:
        balances_before = await ledger.verify_balances(session)

    done = await review(provider, made.own_flagged, "  The bank sent 12.50 after all.  ")
    assert done["errors"] == []
    payment = done["payment"]
    assert isinstance(payment, dict)
    assert payment["flagReviewNote"] == "The bank sent 12.50 after all."
    assert payment["flagReviewedAt"] is not None
    assert payment["flaggedReason"] == "the notification said 12.00 <b>EUR</b>"  # kept
    assert await waiting(provider, False) == {made.theirs_flagged}
    assert await waiting(provider, True) == {made.own_flagged}
    assert await listed(provider, True) == {made.own_flagged, made.theirs_flagged}  # still flagged

    refusals = {
        "again": (made.own_flagged, "Twice"),
        "plain": (made.own_plain, "Nothing to see"),
        "empty note": (made.theirs_flagged, "   "),
        "long note": (made.theirs_flagged, "x" * 501),
    }
    codes = {}
    for name, (payment_id, note) in refusals.items():
        answer = await review(provider, payment_id, note)
        assert answer["payment"] is None
        codes[name] = answer["errors"]
    assert codes == {
        "again": [{"field": "paymentId", "code": "ALREADY_REVIEWED"}],
        "plain": [{"field": "paymentId", "code": "NOT_FLAGGED"}],
        "empty note": [{"field": "note", "code": "REQUIRED"}],
        "long note": [{"field": "note", "code": "TOO_LONG"}],
    }
    assert await waiting(provider, False) == {made.theirs_flagged}  # nothing half-written

    # A reseller reviews its own customer's, and hears NOT_FOUND for the provider's.
    reseller = Api(browser.http, await api_key(db, reseller_id=made.reseller_id))
    unseen = await review(reseller, made.own_flagged, "Not mine")
    assert unseen["errors"] == [{"field": "paymentId", "code": "NOT_FOUND"}]
    assert (await review(reseller, made.theirs_flagged, "Refunded by the bank"))["errors"] == []
    assert await waiting(reseller, True) == {made.theirs_flagged}
    # Reviewing moves no money.
    async with db.session() as session:
        assert await ledger.verify_balances(session) == balances_before == []


async def test_a_customer_and_a_distributor_may_not_review(browser: Browser, db: Database) -> None:
    made = await payments(db)
    email = await user_with_login(
        db, "grace@example.com", Role.CUSTOMER, customer_id=made.own_customer
    )
    customer = await signed_in_api(browser.http, email)
    variables = {"input": {"paymentId": encode_id("Payment", made.own_flagged), "note": "Fine"}}
    answer = (await customer.post(REVIEW, variables)).json()
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["FORBIDDEN"]
    browser.http.cookies.clear()
    async with db.transaction() as session:
        distributor = await make_distributor(session)
    email = await user_with_login(
        db, "kiosk@example.com", Role.DISTRIBUTOR, distributor_id=distributor.id
    )
    kiosk = await signed_in_api(browser.http, email)
    answer = (await kiosk.post(PAYMENTS, {"reviewed": False})).json()
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["FORBIDDEN"]
    provider = Api(browser.http, await api_key(db))
    assert await waiting(provider, True) == set()


async def test_the_page_marks_a_payment_reviewed_and_lists_it_apart(
    browser: Browser, db: Database
) -> None:
    made = await payments(db)
    await browser.sign_in(await admin_with_login(db))
    await browser.open("/admin/flagged-payments")
    own = encode_id("Payment", made.own_flagged)

    refused = await browser.submit("/admin/flagged-payments/review", {"paymentId": own, "note": ""})
    assert refused.status_code == 422
    assert "Note" in " ".join(refused.text.split()) and 'role="alert"' in refused.text
    assert text_of(refused.text, "flagged-title") == "2 flagged payments"

    with statements(db) as seen:
        done = await browser.submit(
            "/admin/flagged-payments/review", {"paymentId": own, "note": "Refunded <i>by hand</i>"}
        )
    # Who the visitor is: asked by the page's first operation, and again after the mutation
    # (a mutation may sign the visitor in or out), not by every operation.
    assert sum("user_sessions" in statement for statement in seen) == 2
    assert done.status_code == 200
    assert text_of(done.text, "notice") == "Marked as reviewed."
    assert text_of(done.text, "flagged-title") == "1 flagged payment"
    assert "Grace Hopper" not in text_of(done.text, "flagged-payment-list")

    page = await browser.open("/admin/flagged-payments?reviewed=1")
    assert text_of(page.text, "flagged-title") == "1 reviewed payment"
    rows = text_of(page.text, "flagged-payment-list")
    assert "Grace Hopper" in rows and "Katherine Johnson" not in rows
    assert "Refunded <i>by hand</i>" in rows and "<i>by hand</i>" not in page.text  # escaped
    assert 'action="/admin/flagged-payments/review"' not in page.text  # nothing left to mark

    # Without the CSRF token the form is refused and nothing changes.
    forged = await browser.http.post(
        "/admin/flagged-payments/review",
        data={"paymentId": encode_id("Payment", made.theirs_flagged), "note": "Forged"},
    )
    assert forged.status_code == 403
    provider = Api(browser.http, await api_key(db))
    assert await waiting(provider, False) == {made.theirs_flagged}
