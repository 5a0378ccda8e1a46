"""Cash slips (PayNearMe) for the API and their PDF download.

``Customer.cashSlip`` reads the customer's standing slip, ``requestCashSlip`` makes it on
first request (:func:`billing.cash_slips.request_slip`: the system is called outside any
transaction, so the mutation runs its own short transactions instead of
:meth:`~resolvers.context.Context.attempt`'s one).

The PDF is served, like invoice PDFs (:mod:`resolvers.invoice_pdf_links`), through a signed,
expiring link ``/documents/cash-slips/<token>.pdf``: the token is the customer's id signed
with the installation's secret key under its own salt, so an invoice token is no slip token.
The link is the permission; it lives ``settings.pdf_link_seconds``.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from billing import cash_slip_pdfs, cash_slips
from billing.db import Database
from billing.errors import NotFound, UserError
from billing.models import Customer, Reseller
from resolvers.context import Context
from settings import Settings

_SALT = "cash-slip-pdf"
CASH_SLIP_PDF_PATH = "/documents/cash-slips/{token}.pdf"


async def slip(ctx: Context, customer_id: int) -> cash_slips.SlipDetails | None:
    """The customer's slip; None before one was made (or out of scope)."""
    return await ctx.find(lambda session: cash_slips.slip_of(session, ctx.viewer, customer_id))


async def offered(ctx: Context, customer_id: int) -> bool:
    """Whether the customer can have a slip (False out of scope)."""
    found = await ctx.find(lambda session: cash_slips.offered(session, ctx.viewer, customer_id))
    return bool(found)


async def request_slip(ctx: Context, customer_id: int) -> cash_slips.SlipDetails | UserError:
    """Make (or find) the customer's slip; a refusal comes back as a value."""
    try:
        await cash_slips.request_slip(ctx.transaction, ctx.viewer, customer_id)
    except UserError as error:
        if isinstance(error, NotFound):
            error.field = "customerId"
        return error
    found = await slip(ctx, customer_id)
    assert found is not None
    return found


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def pdf_url(settings: Settings, customer_id: int) -> str:
    """The signed link to the customer's slip PDF (absolute under ``settings.public_url``)."""
    path = CASH_SLIP_PDF_PATH.format(token=_serializer(settings).dumps(customer_id))
    return settings.public_url.rstrip("/") + path


async def payee(session: AsyncSession, settings: Settings, customer_id: int) -> str:
    """Who the customer pays: its reseller, or the provider."""
    customer = await session.get(Customer, customer_id)
    reseller = (
        None
        if customer is None or customer.reseller_id is None
        else await session.get(Reseller, customer.reseller_id)
    )
    return reseller.name if reseller is not None else settings.provider_name


async def download_slip_pdf(request: Request) -> Response:
    """``GET /documents/cash-slips/<token>.pdf``: the slip's PDF, if the link is good (an
    expired one 410, anything else 404)."""
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.db
    try:
        customer_id = _serializer(settings).loads(
            request.path_params["token"], max_age=settings.pdf_link_seconds
        )
    except SignatureExpired:
        return PlainTextResponse("This link has expired; ask for a new one.", status_code=410)
    except BadSignature:
        customer_id = None
    if not isinstance(customer_id, int):
        return PlainTextResponse("Not found.", status_code=404)
    async with database.session() as session:
        details = await cash_slips.printable(session, customer_id)
        name = await payee(session, settings, customer_id)
    if details is None:
        return PlainTextResponse("Not found.", status_code=404)
    return Response(
        cash_slip_pdfs.render(details, name),
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'inline; filename="cash-slip.pdf"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def routes() -> list[BaseRoute]:
    return [Route(CASH_SLIP_PDF_PATH, download_slip_pdf, methods=["GET"])]
