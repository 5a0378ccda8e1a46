"""Downloads of invoice PDFs through signed, expiring links.

``Invoice.pdfUrl`` hands whoever may see an invoice a link
``/documents/invoices/<token>.pdf``: the token is the invoice's id signed with the
installation's secret key (itsdangerous, its own salt) and the time it was made.  The link
itself is the permission — it can be opened by a browser, a mail client or ``curl`` without
a session — so it is short-lived (``settings.pdf_link_seconds``, 15 minutes by default) and
says nothing but which invoice it is for.  A token that was tampered with, belongs to
another installation or names no invoice gets a bare 404; an expired one a 410, so the
visitor knows to ask for a fresh link.

The PDF served is the one kept in the database when it still shows the invoice's status and
payments; otherwise it is rendered on the spot (and kept), so a link never serves a PDF the
render job has not caught up with yet.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from billing import clock, invoice_pdfs
from billing.db import Database
from resolvers import cash_slips
from settings import Settings

_SALT = "invoice-pdf"
INVOICE_PDF_PATH = "/documents/invoices/{token}.pdf"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def invoice_pdf_token(settings: Settings, invoice_id: int) -> str:
    return _serializer(settings).dumps(invoice_id)


def invoice_pdf_url(settings: Settings, invoice_id: int) -> str:
    """The signed link to an invoice's PDF: absolute under ``settings.public_url`` (the
    configured address, never the request's Host header), relative when that is empty."""
    path = INVOICE_PDF_PATH.format(token=invoice_pdf_token(settings, invoice_id))
    return settings.public_url.rstrip("/") + path


class ExpiredLink(Exception):
    """The token was ours but is older than ``settings.pdf_link_seconds``."""


def invoice_id_from_token(settings: Settings, token: str) -> int | None:
    """The invoice a token names; None when it is not a token of ours.

    Raises :class:`ExpiredLink` when it was one but has run out.
    """
    try:
        invoice_id = _serializer(settings).loads(token, max_age=settings.pdf_link_seconds)
    except SignatureExpired as expired:
        raise ExpiredLink from expired
    except BadSignature:
        return None
    return invoice_id if isinstance(invoice_id, int) else None


def _pdf_response(pdf: invoice_pdfs.PdfFile) -> Response:
    """The PDF as an attachment named after the invoice, never cached by shared caches."""
    return Response(
        pdf.content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{pdf.number}.pdf"',
            "Cache-Control": "private, no-store",
            "ETag": f'"{pdf.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


async def download_invoice_pdf(request: Request) -> Response:
    """``GET /documents/invoices/<token>.pdf``: the invoice's PDF, if the link is good."""
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.db
    try:
        invoice_id = invoice_id_from_token(settings, request.path_params["token"])
    except ExpiredLink:
        return PlainTextResponse("This link has expired; ask for a new one.", status_code=410)
    if invoice_id is None:
        return PlainTextResponse("Not found.", status_code=404)
    async with database.session() as session:
        pdf = await invoice_pdfs.current_pdf(session, invoice_id)
    if pdf is None:
        async with database.transaction() as session:
            pdf = await invoice_pdfs.render_pdf_now(session, invoice_id, await clock.now(session))
    if pdf is None:
        return PlainTextResponse("Not found.", status_code=404)
    return _pdf_response(pdf)


def routes() -> list[BaseRoute]:
    return [
        Route(INVOICE_PDF_PATH, download_invoice_pdf, methods=["GET"]),
        # Cash slips' PDFs are documents behind signed links too (app.py mounts this list).
        *cash_slips.routes(),
    ]
