"""``GET``/``POST /callbacks/{account_id}``: where payment systems tell kassa what happened
(PayNearMe calls back with GET, its signed parameters in the query string).

The HTTP side of :mod:`billing.payment_notifications`: the raw request becomes an
:class:`~billing.payment_systems.IncomingRequest` (headers lower-cased, the body as bytes,
since the signature covers exactly those bytes), the account's processor — made with the
account's config, so with its signing secret — verifies and parses it, billing applies it
once, and the processor's :meth:`acknowledge` is the answer.

* an account that does not exist (or whose processor takes no callbacks): 404;
* a signature that does not verify, or cannot be checked (no secret configured): 401, nothing
  written, and a log line naming the account — never the body or its headers;
* a verified body that cannot be read: 400;
* a duplicate: acknowledged like the first, applied once;
* an AUTHORIZATION (PayNearMe asking before it takes cash) is answered with billing's decision
  (:func:`billing.payment_notifications.authorize`) through the processor's
  ``answer_authorization``; nothing is written.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from billing import clock, payment_notifications, processor_accounts
from billing.db import Database
from billing.payment_systems import (
    AuthorizingProcessor,
    ForgedNotification,
    IncomingRequest,
    NotificationKind,
    NotifiedProcessor,
)
from billing.processing import ProcessorError

log = logging.getLogger("kassa.callbacks")

CALLBACK_PATH = "/callbacks/{account_id:int}"
#: Larger bodies are no payment system's callback.
MAX_BODY = 1_000_000


async def receive_callback(request: Request) -> Response:
    """Verify, apply once, acknowledge (see the module's docstring)."""
    database: Database = request.app.state.db
    account_id: int = request.path_params["account_id"]
    body = await request.body()
    if len(body) > MAX_BODY:
        return PlainTextResponse("too large", status_code=413)
    incoming = IncomingRequest(
        method=request.method,
        path=request.url.path,
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        query=dict(request.query_params),
    )
    async with database.session() as session:
        account = await payment_notifications.account_by_id(session, account_id)
        if account is None:
            return PlainTextResponse("not found", status_code=404)
        processor = processor_accounts.make_processor(
            account.processor, processor_accounts.config_of(session, account)
        )
    if not isinstance(processor, NotifiedProcessor):
        return PlainTextResponse("not found", status_code=404)
    try:
        # In a thread: some systems verify by calling back (PayPal's verify-webhook-signature),
        # which must not hold up the event loop.
        notification = await asyncio.to_thread(processor.parse_notification, incoming)
    except ForgedNotification:
        log.warning("processor account %s: a callback with a bad signature refused", account_id)
        return PlainTextResponse("forged", status_code=401)
    except ProcessorError as error:
        log.warning("processor account %s: a callback not verifiable: %s", account_id, error.code)
        return PlainTextResponse("not verifiable", status_code=401)
    except (ValueError, KeyError, TypeError):
        log.warning("processor account %s: a verified callback could not be read", account_id)
        return PlainTextResponse("unreadable", status_code=400)
    if notification.kind == NotificationKind.AUTHORIZATION and isinstance(
        processor, AuthorizingProcessor
    ):
        async with database.session() as session:
            decision = await payment_notifications.authorize(session, account_id, notification)
        log.info(
            "processor account %s: authorization %s %s",
            account_id,
            notification.event_id,
            "accepted" if decision.accepted else "refused",
        )
        reply = processor.answer_authorization(notification, decision.accepted, decision.reason)
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type)
    async with database.transaction() as session:
        await payment_notifications.apply(
            session, account_id, notification, await clock.now(session)
        )
    reply = processor.acknowledge(notification)
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)


def routes() -> list[BaseRoute]:
    return [Route(CALLBACK_PATH, receive_callback, methods=["GET", "POST"])]
