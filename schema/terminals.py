"""Cash terminal networks in the API: the administrators' copy of a network's daily
reconciliation (the networks themselves call ``/terminal/v1``, see ``docs/terminals.md``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from resolvers import terminals as resolve
from resolvers.context import Info
from schema.permissions import IsAuthenticated


@strawberry.type
class TerminalQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="A cash terminal network's reconciliation for one UTC day, as the network "
        "downloads it: CSV of every payment kassa credited through it that day "
        "(administrators of the network's owner; null for an account out of reach or not a "
        "terminal network's).",
    )
    async def terminal_reconciliation(
        self,
        info: Info,
        account_id: Annotated[
            strawberry.ID, strawberry.argument(description="The network's processor account.")
        ],
        date: date,
    ) -> str | None:
        return await resolve.reconciliation_of(info.context, account_id, date)
