"""The administrators' Bitcoin page: the owner's wallet settings and its gap-limit figure,
and the flagged payments (below the minimum, reversed by a reorganisation) with a "credit by
hand" button for those below the minimum (``creditBitcoinPayment``).

It runs ``bitcoinWallet`` and ``setBitcoinWallet`` as the visitor, like every portal page,
so a reseller's administrators see and set their own settings only.  A key refused as a
secret (a private key or seed words) is never written back into the form: the page must
not hold a secret a moment longer than the request did.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, rendering
from portals.admin import STAFF
from portals.customer import ERRORS
from portals.forms import Form
from portals.graphql import Visitor
from portals.navigation import ADMIN_HOME
from portals.session import requires

BITCOIN_PATH = f"{ADMIN_HOME}/bitcoin"

WALLET = """
fragment Wallet on BitcoinWallet {
  network accountKey addressType minimumPayment { amount currency } confirmationsRequired
  rateSource fixedRates { currency price { amount } } priceEndpoints { currency url jsonPath }
  addressesAllocated unfundedAddresses warnings updatedAt
  flaggedPayments {
    customerId customerName
    payment {
      id txid vout amount { amount currency } value { amount currency } state flag
      confirmations firstSeenAt
    }
  }
}
"""
BITCOIN_WALLET = f"query AdminBitcoinWallet {{ bitcoinWallet {{ ...Wallet }} }}\n{WALLET}"
SET_BITCOIN_WALLET = f"""
mutation AdminSetBitcoinWallet($input: SetBitcoinWalletInput!) {{
  setBitcoinWallet(input: $input) {{ bitcoinWallet {{ ...Wallet }} {ERRORS} }}
}}
{WALLET}
"""

CREDIT_BITCOIN_PAYMENT = f"""
mutation AdminCreditBitcoinPayment($input: CreditBitcoinPaymentInput!) {{
  creditBitcoinPayment(input: $input) {{ bitcoinPayment {{ id state }} {ERRORS} }}
}}
"""

#: "" is the type the key's prefix implies.
ADDRESS_TYPES = (
    ("", "As the key says (zpub: native segwit, ypub: nested; xpub: native segwit)"),
    ("NATIVE_SEGWIT", "Native segwit (bc1q…, P2WPKH)"),
    ("NESTED_SEGWIT", "Nested segwit (3…, P2SH-P2WPKH)"),
    ("LEGACY", "Legacy (1…, P2PKH)"),
)
RATE_SOURCES = (("FIXED", "Fixed rates"), ("HTTP", "Price endpoints"))
FIELDS = (
    "accountKey",
    "addressType",
    "minimumPayment",
    "minimumPaymentCurrency",
    "confirmationsRequired",
    "rateSource",
    "fixedRates",
    "priceEndpoints",
)
#: Refusals of something secret: the form is drawn again without it.
SECRET_CODES = {"PRIVATE_KEY_REFUSED", "SEED_REFUSED"}


def _values(wallet: dict[str, Any]) -> dict[str, str]:
    """The settings as the form's text (rates one per line)."""
    minimum = wallet["minimumPayment"]
    return {
        "accountKey": wallet["accountKey"] or "",
        "addressType": wallet["addressType"] if wallet["accountKey"] else "",
        "minimumPayment": minimum["amount"],
        "minimumPaymentCurrency": minimum["currency"],
        "confirmationsRequired": str(wallet["confirmationsRequired"]),
        "rateSource": wallet["rateSource"],
        "fixedRates": "\n".join(
            f"{rate['currency']} {rate['price']['amount']}" for rate in wallet["fixedRates"]
        ),
        "priceEndpoints": "\n".join(
            f"{e['currency']} {e['url']} {e['jsonPath']}" for e in wallet["priceEndpoints"]
        ),
    }


def _lines(
    values: dict[str, str], name: str, parts: int, errors: dict[str, str]
) -> list[list[str]]:
    """The non-blank lines of a text area, each split into ``parts`` words (none, and an
    error beside the field, when a line is not)."""
    rows = [line.split() for line in values.get(name, "").splitlines() if line.strip()]
    if any(len(row) != parts for row in rows):
        rows = []
        errors[name] = (
            "one currency and price per line, like: USD 65000.00"
            if parts == 2
            else "one currency, address and JSON path per line, like: "
            "USD https://prices.example/btc data.amount"
        )
    return rows


def _input(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The mutation's input from the form, and the mistakes found before asking."""
    errors: dict[str, str] = {}
    source = forms.choice(values.get("rateSource"), tuple(v for v, _ in RATE_SOURCES))
    fixed = _lines(values, "fixedRates", 2, errors)
    endpoints = _lines(values, "priceEndpoints", 3, errors)
    data: dict[str, Any] = {
        "accountKey": values.get("accountKey", ""),
        "addressType": forms.choice(
            values.get("addressType"), tuple(v for v, _ in ADDRESS_TYPES[1:])
        ),
        "minimumPayment": values.get("minimumPayment", "").strip() or None,
        "minimumPaymentCurrency": values.get("minimumPaymentCurrency", "").strip() or "BTC",
        "confirmationsRequired": forms.whole_number(values, "confirmationsRequired", errors),
        "rateSource": source or "FIXED",
    }
    if data["rateSource"] == "FIXED":
        data["fixedRates"] = [{"currency": c, "price": p} for c, p in fixed]
    else:
        data["priceEndpoints"] = [{"currency": c, "url": u, "jsonPath": j} for c, u, j in endpoints]
    return data, errors


async def _page(
    request: Request,
    form: Form | None = None,
    done: str | None = None,
    wallet: dict[str, Any] | None = None,
    fragment: str = "bitcoin",
    credit: Form | None = None,
    credited: bool = False,
) -> Response:
    if wallet is None:
        wallet = (await graphql.execute(request, BITCOIN_WALLET))["bitcoinWallet"]
    form = form or Form(values=_values(wallet))
    credit = credit or Form()
    return rendering.render(
        request,
        "admin/bitcoin.html",
        {
            "wallet": wallet,
            "form": form,
            "done": done,
            "path": BITCOIN_PATH,
            "address_types": ADDRESS_TYPES,
            "rate_sources": RATE_SOURCES,
            "credit": credit,
            "credited": credited,
            # A fresh idempotency key per button: a double click credits once.
            "credit_keys": {
                row["payment"]["id"]: forms.new_key() for row in wallet["flaggedPayments"]
            },
            "credit_path": f"{BITCOIN_PATH}/credit",
            "customers_path": f"{ADMIN_HOME}/customers",
        },
        fragment=fragment,
        status_code=max(form.status_code, credit.status_code),
    )


@requires(*STAFF)
async def bitcoin_wallet(request: Request, visitor: Visitor) -> Response:
    """The owner's settings, the addresses handed out and the gap-limit figure."""
    return await _page(request)


@requires(*STAFF)
async def set_bitcoin_wallet(request: Request, visitor: Visitor) -> Response:
    values = await forms.read(request)
    data, errors = _input(values)
    if errors:
        return await _page(request, Form(values=values, errors=errors))
    payload = await graphql.mutate(request, SET_BITCOIN_WALLET, data)
    if payload["errors"]:
        if any(error["code"] in SECRET_CODES for error in payload["errors"]):
            values = {**values, "accountKey": ""}
        return await _page(request, Form.with_errors(values, payload["errors"], fields=FIELDS))
    return await _page(request, done="Saved.", wallet=payload["bitcoinWallet"])


@requires(*STAFF)
async def credit_bitcoin_payment(request: Request, visitor: Visitor) -> Response:
    """Credit a flagged payment below the minimum by hand; the list is drawn again."""
    values = await forms.read(request)
    payload = await graphql.mutate(
        request,
        CREDIT_BITCOIN_PAYMENT,
        {
            "bitcoinPaymentId": values.get("bitcoinPaymentId", ""),
            "idempotencyKey": forms.idempotency_key(values),
        },
    )
    if payload["errors"]:
        credit = Form.with_errors({}, payload["errors"], fields=())
        return await _page(request, fragment="flagged", credit=credit)
    return await _page(request, fragment="flagged", credited=True)


def routes() -> list[BaseRoute]:
    """The Bitcoin page (guarded by :func:`portals.routes`)."""
    return [
        Route(BITCOIN_PATH, bitcoin_wallet, methods=["GET"]),
        Route(BITCOIN_PATH, set_bitcoin_wallet, methods=["POST"]),
        Route(f"{BITCOIN_PATH}/credit", credit_bitcoin_payment, methods=["POST"]),
    ]
