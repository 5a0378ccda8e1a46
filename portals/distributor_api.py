"""What every distributor page shares: the role, the distributor itself from ``viewer``,
and the commission previews shown under an amount as it is typed.

Commission is never computed in the portal: before a sale or a collection is saved, the
page asks the API what it would book (``salePreview``, ``distributorCommissionPreview``),
which is answered by the function that books it, so the preview and the booking agree.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from portals import graphql, rendering

DISTRIBUTOR = "DISTRIBUTOR"
#: Top-level codes that are not about the amount typed: a refusal, or a bug (no code).
_NOT_ABOUT_THE_AMOUNT = frozenset({"FORBIDDEN", "UNAUTHENTICATED", None})


def own(data: dict[str, Any]) -> dict[str, Any]:
    """The signed-in distributor from a ``viewer { distributor { … } }`` answer."""
    distributor: dict[str, Any] = graphql.found(data["viewer"]["distributor"])
    return distributor


async def preview(
    request: Request, document: str, variables: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """Ask the API what saving ``amount`` would book: its answer, or the API's words for an
    amount it refuses (``TOO_MANY_DECIMALS``, …); neither for an empty field."""
    if not str(variables.get("amount", "")).strip():
        return None, None
    try:
        return await graphql.execute(request, document, variables), None
    except graphql.OperationFailed as failure:
        if failure.codes & _NOT_ABOUT_THE_AMOUNT:
            raise
        return None, str(failure)


def preview_response(
    request: Request,
    kind: str,
    split: dict[str, Any] | None,
    problem: str | None,
    rate: str | None,
) -> Response:
    """The preview under an amount field (``distributor/preview.html``) on its own:
    ``kind`` is ``sale`` or ``payment``, ``split`` the API's ``DistributorCommission``,
    ``rate`` the commission percentage it applied."""
    return rendering.render(
        request,
        "distributor/preview.html",
        {"kind": kind, "split": split, "problem": problem, "rate": rate},
    )
