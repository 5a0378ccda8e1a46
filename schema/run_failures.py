"""Run failures: what a batch run could not do for one customer or (distributor billing)
one distributor.

A batch run skips a customer or distributor whose work fails and goes on with the others
(:mod:`billing.run_failures`); administrators see here what was skipped, why, and when it
is tried again.  Staff only, scoped like every list: a reseller's administrators see their
own customers' and distributors' failures.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from billing import models
from resolvers import run_failures as resolve
from resolvers.context import Info
from schema.customers import Customer
from schema.invoices import Invoice
from schema.permissions import IsAuthenticated
from schema.relay import DEFAULT_PAGE_SIZE, Connection, encode_id, paginate

if TYPE_CHECKING:
    from schema.distributors import Distributor

# The billing enum is the API's enum: registered here, then used as it is.
strawberry.enum(
    models.RunKind,
    name="RunKind",
    description="BILL_RUN: closing billing periods; COLLECTION: charging cards for invoices "
    "and booking the answers; DISTRIBUTOR_BILLING: closing distributors' billing periods.",
)


@strawberry.type(
    description="One customer's (or, for DISTRIBUTOR_BILLING, one distributor's) work that "
    "a run skipped: the others went on. The next run at or after nextRetryAt tries again; "
    "the first that gets through resolves it."
)
class RunFailure:
    id: strawberry.ID
    kind: models.RunKind
    code: str = strawberry.field(
        description="The error's code: a domain error's own (as in UserError.code), or "
        "INTERNAL_ERROR for a bug, whose details are in the server log."
    )
    message: str
    attempts: int = strawberry.field(description="How many runs have failed on it.")
    first_seen_at: datetime
    last_seen_at: datetime
    next_retry_at: datetime
    resolved_at: datetime | None
    customer_id: strawberry.Private[int | None]
    invoice_id: strawberry.Private[int | None]
    distributor_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.RunFailure) -> RunFailure:
        return cls(
            id=encode_id("RunFailure", row.id),
            kind=row.kind,
            code=row.code,
            message=row.message,
            attempts=row.attempts,
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
            next_retry_at=row.next_retry_at,
            resolved_at=row.resolved_at,
            customer_id=row.customer_id,
            invoice_id=row.invoice_id,
            distributor_id=row.distributor_id,
        )

    @strawberry.field(description="The customer it is about; null for distributor billing.")
    async def customer(self, info: Info) -> Customer | None:
        if self.customer_id is None:
            return None
        row = await info.context.loaders.customers.load(self.customer_id)
        assert row is not None  # listed only when its customer is in scope
        return Customer.from_model(row)

    @strawberry.field(description="The distributor whose billing failed (DISTRIBUTOR_BILLING).")
    async def distributor(
        self, info: Info
    ) -> Annotated[Distributor, strawberry.lazy("schema.distributors")] | None:
        from schema.distributors import Distributor  # a cycle: distributors show failures

        if self.distributor_id is None:
            return None
        row = await info.context.loaders.distributors.load(self.distributor_id)
        assert row is not None  # listed only when its distributor is in scope
        return Distributor.from_model(row)

    @strawberry.field(description="The invoice a collection failure is about, if any.")
    async def invoice(self, info: Info) -> Invoice | None:
        if self.invoice_id is None:
            return None
        row = await info.context.loaders.invoices.load(self.invoice_id)
        return None if row is None else Invoice.from_model(row)


@strawberry.type
class RunFailureQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Customers a bill run or collection run skipped, and distributors "
        "distributor billing skipped, newest first; staff only.",
    )
    async def run_failures(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        customer_id: strawberry.ID | None = None,
        include_resolved: Annotated[
            bool, strawberry.argument(description="Also those a later run got through.")
        ] = False,
    ) -> Connection[RunFailure]:
        query = resolve.run_failure_list(info.context, customer_id, include_resolved)
        return await paginate(
            info, query, models.RunFailure.id, first, after, RunFailure.from_model
        )
