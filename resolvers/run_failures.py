"""Run failures: the customers (and distributors) a batch run skipped."""

from __future__ import annotations

from sqlalchemy import Select

from billing import run_failures
from billing.models import RunFailure
from resolvers.context import Context
from schema.relay import decode_optional_id


def run_failure_list(
    ctx: Context, customer_id: str | None, include_resolved: bool
) -> Select[RunFailure]:
    return run_failures.failure_query(
        ctx.viewer,
        customer_id=decode_optional_id(customer_id, "Customer", "customerId"),
        include_resolved=include_resolved,
    )
