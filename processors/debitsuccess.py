"""Debitsuccess gateway billing: kassa keeps the balance and the schedule, Debitsuccess debits
the one-off schedules kassa submits (:class:`billing.payment_systems.ScheduleGateway`).

The adapter speaks Debitsuccess's Customer Services REST API (its local fake is
:mod:`processors.fakes.debitsuccess`, whose docstring lists the paths and where the
documentation is silent):

* :meth:`DebitsuccessProcessor.enroll` creates the customer, then a gateway account (no term,
  no recurring schedule) whose ``externalAccountReferenceNo`` is kassa's customer id; each is
  looked up by that reference first, so a retry after a lost answer makes no duplicate.
* :meth:`payment_form` asks for a one-time payment token; the customer enters the payment
  method on Debitsuccess's hosted form, so no account or card number reaches kassa.
* :meth:`charge` submits a one-off schedule under the request's idempotency key
  (``externalScheduleIdentifier``), for ``due_date`` and the amount, and answers SUBMITTED:
  the money moves days later and is learned by :meth:`payment_statuses`.  A payment stop
  raises :class:`~billing.payment_systems.ScheduleRefused`.  A lost answer (a timeout, a
  5xx) raises :class:`~billing.processing.ProcessorTimeout`: the schedule may exist, so the
  caller looks it up by the key (:meth:`lookup`) instead of submitting under a new one.  A
  409 (the identifier is taken) is the first submission's schedule, answered as SUBMITTED
  when it is the same amount — so a second submission can never make a second schedule.

Credentials: ``username`` and ``password`` (the web-service user Debitsuccess provides, sent
as HTTP Basic) and ``business_id``.  Amounts go out as decimal strings and are read as
:class:`~decimal.Decimal`, never as floats.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx

from billing.errors import UserError
from billing.money import format_amount, parse_amount
from billing.payment_systems import (
    MAX_POLL_DAYS,
    Capability,
    GatewayAccount,
    GatewayMethod,
    MethodKind,
    Mode,
    Payer,
    PaymentForm,
    ProcessorConfig,
    ScheduleRefused,
    ScheduleStatus,
)
from billing.processing import (
    CardDetails,
    CardToken,
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    IdempotencyConflict,
    ProcessorError,
    ProcessorTimeout,
    RefundResult,
)
from processors.http import require_https, tls

log = logging.getLogger("kassa.processors.debitsuccess")

#: Debitsuccess gives each client its server's address ("<ServerURL>" in its documentation);
#: these are where an account without ``base_url`` points.
LIVE_URL = "https://api.debitsuccess.com"
SANDBOX_URL = "https://uat-api.debitsuccess.com"
API_PATH = "/CustomerServices/v1.0"
#: The one currency a Debitsuccess business bills in is the account's; kassa's amounts are
#: turned into decimal strings with the currency's own decimals.
_METHOD_KINDS = {"BankAccount": "bank_account", "CreditCard": "card"}


class DebitsuccessProcessor:
    """Debitsuccess for one processor account (``config``); ``timeout`` is per HTTP call."""

    name = "debitsuccess"
    capabilities = frozenset(
        {Capability.SCHEDULES, Capability.STATUS_POLL, Capability.BANK_ACCOUNT}
    )
    method_kinds = frozenset({MethodKind.DIRECT_DEBIT})

    def __init__(self, *, config: ProcessorConfig | None = None, timeout: float = 30.0) -> None:
        self._config = config or ProcessorConfig()
        host = self._config.base_url or (
            LIVE_URL if self._config.mode is Mode.LIVE else SANDBOX_URL
        )
        self._api = host.rstrip("/") + API_PATH
        self._timeout = timeout

    # --- the HTTP call ---------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> tuple[int, dict[str, Any]]:
        """One API call: (status, JSON body) for a 2xx or a status in ``accept``.

        No answer, or a 5xx, is :class:`ProcessorTimeout` (the call may have been done); any
        other refusal a :class:`ProcessorError` with Debitsuccess's note.  Messages never
        quote the credentials."""
        require_https(self._config.mode, self._api, "Debitsuccess")
        auth = (self._config.secret("username"), self._config.secret("password"))
        try:
            async with httpx.AsyncClient(timeout=self._timeout, verify=tls(), auth=auth) as client:
                response = await client.request(method, self._api + path, json=body, params=params)
        except httpx.TransportError as error:
            log.warning("debitsuccess %s %s: no answer (%s)", method, path, type(error).__name__)
            raise ProcessorTimeout("Debitsuccess did not answer in time") from None
        if response.status_code >= 500:
            log.warning("debitsuccess %s %s: HTTP %s", method, path, response.status_code)
            raise ProcessorTimeout(f"Debitsuccess answered HTTP {response.status_code}")
        try:
            answer = response.json(parse_float=Decimal)
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if response.status_code < 300 or response.status_code in accept:
            return response.status_code, answer
        code, note = _note(answer)
        log.warning(
            "debitsuccess %s %s refused: HTTP %s %s", method, path, response.status_code, code
        )
        if response.status_code == 401:
            raise ProcessorError(
                "BAD_CREDENTIALS", "Debitsuccess refused the account's credentials"
            )
        raise ProcessorError("DEBITSUCCESS_REFUSED", f"Debitsuccess refused the request: {note}")

    # --- on-boarding ---------------------------------------------------------------------

    async def enroll(self, payer: Payer, starts: date) -> GatewayAccount:
        """The payer's customer and account at Debitsuccess, made once.

        Each is looked up by kassa's reference before it is made, and a duplicate account
        (409: a first try whose answer was lost made it) is fetched, so trying again after
        a timeout finishes the on-boarding instead of being refused or making twins."""
        reference = str(payer.customer_id)
        account = await self._find("accounts", "externalAccountReferenceNo", reference)
        if account is not None:
            return _enrolled(account)
        customer = await self._find("customers", "externalCustomerReference", reference)
        if customer is None:
            first, _, last = payer.name.strip().partition(" ")
            _, customer = await self._call(
                "POST",
                "/customers",
                body={
                    "firstName": first[:40],
                    "lastName": last[:40] or None,
                    "emailAddress": payer.email,
                    "externalCustomerReference": reference,
                },
            )
        status, account = await self._call(
            "POST",
            "/accounts",
            body={
                "customerId": customer["id"],
                "externalAccountReferenceNo": reference,
                "dateAccountStarted": starts.isoformat(),
                "term": 0,
                "termType": "Payments",
                "fixedTerm": False,
            },
            accept=(409,),
        )
        if status == 409:
            found = await self._find("accounts", "externalAccountReferenceNo", reference)
            if found is None:
                raise ProcessorError(
                    "DEBITSUCCESS_REFUSED",
                    "Debitsuccess has an account for this customer but does not show it",
                )
            account = found
        return _enrolled(account)

    async def _find(self, kind: str, key: str, reference: str) -> dict[str, Any] | None:
        """The business's first ``kind`` ("customers", "accounts") whose ``key`` is
        ``reference``, or None."""
        _, answer = await self._call(
            "GET",
            f"/businesses/{self._config.secret('business_id')}/{kind}",
            params={key: reference},
        )
        found = answer.get(kind) or []
        return found[0] if found and isinstance(found[0], dict) else None

    async def payment_form(self, account_id: str, return_url: str) -> PaymentForm:
        _, answer = await self._call(
            "POST",
            f"/accounts/{account_id}/paymentTokens",
            body={
                "payMethodType": "Both",
                "requestType": "UpdatePaymentDetail",
                "callbackUrl": return_url,
            },
        )
        valid_to = datetime.fromisoformat(str(answer["validTo"]).replace("Z", "+00:00"))
        return PaymentForm(str(answer["paymentFormUrl"]), valid_to.astimezone(UTC))

    async def payment_method(self, account_id: str) -> GatewayMethod | None:
        _, account = await self._call("GET", f"/accounts/{account_id}")
        method = account.get("paymentMethod")
        # Under a payment stop the method held is the one refused: none usable until the
        # customer enters a new one on the hosted form (which lifts the stop).
        if not isinstance(method, dict) or account.get("paymentStop"):
            return None
        return GatewayMethod(
            _METHOD_KINDS.get(str(method.get("type")), "bank_account"), str(method["last4"])
        )

    # --- schedules -----------------------------------------------------------------------

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Submit a one-off schedule; see the module docstring."""
        if request.due_date is None:
            raise ProcessorError("DUE_DATE_REQUIRED", "a one-off schedule needs its due date")
        status, answer = await self._call(
            "POST",
            f"/accounts/{request.token}/oneOffSchedules",
            body={
                "externalScheduleIdentifier": request.idempotency_key,
                "amount": format_amount(request.amount, request.currency),
                "dueDate": request.due_date.isoformat(),
                "description": request.description[:50],
            },
            accept=(409, 422),
        )
        if status == 422:
            code, note = _note(answer)
            raise ScheduleRefused(code, f"Debitsuccess refused the schedule: {note}")
        schedule = answer.get("oneOffSchedule", answer) if status == 409 else answer
        result = self._submitted(schedule, request.currency)
        if result.amount != request.amount:
            raise IdempotencyConflict(
                "IDEMPOTENCY_CONFLICT", "a schedule with another amount has this identifier"
            )
        return result

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The schedule submitted under ``idempotency_key`` (SUBMITTED: its outcome comes
        by the status poll), or None when Debitsuccess never made one."""
        _, answer = await self._call(
            "GET",
            f"/businesses/{self._config.secret('business_id')}/oneOffSchedules",
            params={"externalScheduleIdentifier": idempotency_key},
        )
        found = answer.get("oneOffSchedules") or []
        if not found:
            return None
        # The currency is not in the answer: a business bills in one, read by its decimals.
        return self._submitted(found[0], None)

    def _submitted(self, schedule: dict[str, Any], currency: str | None) -> ChargeResult:
        amount_text = str(schedule["amount"])
        return ChargeResult(
            ChargeOutcome.SUBMITTED,
            str(schedule["scheduleId"]),
            None,
            f"Debitsuccess will debit this on {schedule['dueDate']}.",
            _minor(amount_text, currency),
            currency or "",
        )

    async def payment_statuses(self, start: date, end: date) -> list[ScheduleStatus]:
        if start > end or (end - start).days > MAX_POLL_DAYS:
            raise ProcessorError(
                "POLL_RANGE", f"a status poll covers at most {MAX_POLL_DAYS} days, start first"
            )
        _, answer = await self._call(
            "GET",
            f"/businesses/{self._config.secret('business_id')}/paymentstatuses",
            params={
                "startDateTime": start.isoformat(),
                "endDateTime": end.isoformat(),
                "status": "All",
            },
        )
        return [
            ScheduleStatus(
                external_identifier=str(row["externalIdentifier"]),
                schedule_id=str(row["scheduleId"]),
                status=str(row["paymentStatus"]),
                status_date=date.fromisoformat(str(row["statusDate"])[:10]),
                amount=_minor(str(row["installment"]), None),
                error_code=row.get("errorCode") or None,
            )
            for row in answer.get("paymentSchedules") or []
        ]

    # --- what a gateway does not do ------------------------------------------------------

    async def tokenize(self, card: CardDetails) -> CardToken:
        raise UserError(
            "USE_HOSTED_FORM",
            "Debitsuccess takes payment details on its own form only",
            "paymentMethod",
        )

    async def refund(
        self, processor_reference: str, amount: int, idempotency_key: str
    ) -> RefundResult:
        return RefundResult(
            False, None, "Debitsuccess gateway payments are refunded outside kassa's API"
        )


def _enrolled(account: dict[str, Any]) -> GatewayAccount:
    return GatewayAccount(
        str(account["customerId"]), str(account["id"]), str(account["accountReferenceNo"])
    )


def _minor(amount: str, currency: str | None) -> int:
    """A decimal string in minor units: in ``currency``'s decimals, else in cents (every
    currency Debitsuccess bills in has two)."""
    return parse_amount(amount, currency or "NZD")


def _note(answer: dict[str, Any]) -> tuple[str, str]:
    """The first response note's (code, note)."""
    notes = answer.get("responseNotes") or [{}]
    first = notes[0] if isinstance(notes[0], dict) else {}
    return str(first.get("code") or "UNKNOWN"), str(first.get("note") or "no reason given")
