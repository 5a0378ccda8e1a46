"""The one GraphQL schema: each domain module's queries and mutations, composed.

:func:`build_schema` adds the protective extensions from the settings — depth, alias,
token and cost limits (:mod:`schema.cost`), parser and validation caches, one operation
named per request and introspection only for those who may read the schema
(:mod:`schema.request_rules`), internal errors masked outside development.  ``schema`` is
the schema built from default settings; its SDL is exported to ``schema/schema.graphql`` by
:func:`export_sdl` (``python -m schema``), and a test fails when the two drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from billing.logs import redact
from schema.accounts import AccountMutations, AccountQueries
from schema.api_keys import ApiKeyMutations, ApiKeyQueries
from schema.auth import AuthMutations, AuthQueries
from schema.bitcoin import BitcoinMutations, BitcoinQueries
from schema.cash_slips import CashSlipMutations
from schema.charges import ChargeMutations
from schema.clock import ClockMutations, ClockQueries
from schema.compiled import CompiledReads, PlanCache
from schema.cost import CostCache, QueryCostLimiter
from schema.customers import CustomerMutations, CustomerQueries
from schema.distributors import DistributorMutations, DistributorQueries
from schema.errors import DomainErrorCodes, is_internal
from schema.exchange_rates import ExchangeRateMutations, ExchangeRateQueries
from schema.gateway_billing import GatewayBillingMutations, GatewayBillingQueries
from schema.invoices import InvoiceMutations, InvoiceQueries
from schema.letterheads import LetterheadMutations, LetterheadQueries
from schema.lru import LeastRecentlyUsed
from schema.operation_metrics import OperationMetrics
from schema.payment_methods import PaymentMethodMutations
from schema.payments import PaymentMutations, PaymentQueries
from schema.prepared import PreparedReads
from schema.processor_accounts import ProcessorAccountMutations, ProcessorAccountQueries
from schema.redirect_payments import RedirectPaymentMutations, RedirectPaymentQueries
from schema.request_rules import (
    NulCharactersRefused,
    OperationNameRequired,
    SchemaVisibility,
    ValidationCache,
)
from schema.run_failures import RunFailureQueries
from schema.terminals import TerminalQueries
from settings import Settings

log = logging.getLogger("kassa.schema")

SDL_PATH = Path(__file__).resolve().parent / "schema.graphql"
#: Validation results kept (by query text and rules), as Strawberry's own cache kept them.
VALIDATIONS_KEPT = 128

Query = merge_types(
    "Query",
    (
        AuthQueries,
        CustomerQueries,
        AccountQueries,
        InvoiceQueries,
        PaymentQueries,
        ClockQueries,
        LetterheadQueries,
        RunFailureQueries,
        BitcoinQueries,
        DistributorQueries,
        ExchangeRateQueries,
        ApiKeyQueries,
        ProcessorAccountQueries,
        GatewayBillingQueries,
        RedirectPaymentQueries,
        TerminalQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AuthMutations,
        CustomerMutations,
        AccountMutations,
        ChargeMutations,
        InvoiceMutations,
        PaymentMutations,
        PaymentMethodMutations,
        ClockMutations,
        LetterheadMutations,
        BitcoinMutations,
        CashSlipMutations,
        DistributorMutations,
        ExchangeRateMutations,
        ApiKeyMutations,
        ProcessorAccountMutations,
        GatewayBillingMutations,
        RedirectPaymentMutations,
    ),
)


def _extensions(
    settings: Settings, costs: CostCache, prepared: PreparedReads | None
) -> list[Callable[[], SchemaExtension]]:
    """Extension factories (strawberry makes one set per request).

    The depth and alias rules are built once here, not per request: the validation cache
    is keyed by the rule classes, and a fresh class per request would never hit it.
    """
    limits = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    validations: LeastRecentlyUsed[tuple[str, Any], list[GraphQLError]] = LeastRecentlyUsed(
        VALIDATIONS_KEPT
    )
    extensions: list[Callable[[], SchemaExtension]] = [
        OperationMetrics,  # first in, last out: it counts the errors as the client sees them
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        ParserCache,
        lambda: AddValidationRules(limits),
        lambda: ValidationCache(validations),
        OperationNameRequired,  # after the validation cache, which it adds to
        NulCharactersRefused,  # likewise
        lambda: QueryCostLimiter(settings.max_query_cost, costs),  # after validation
        DomainErrorCodes,
        lambda: SchemaVisibility(settings),
    ]
    if prepared is not None:
        plans = PlanCache()  # shared by the requests, as the cost cache is
        extensions.append(lambda: CompiledReads(plans, prepared))  # after every rule
    if not settings.development:
        extensions.append(lambda: MaskErrors(should_mask_error=is_internal))
    return extensions


class KassaSchema(strawberry.Schema):
    #: Documents compiled reads have answered, for ``GraphQLEndpoint`` to answer again
    #: without Strawberry's view (:mod:`schema.prepared`); None with compiled reads off.
    prepared: PreparedReads | None = None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Redact card numbers and CVCs from every error, then log it without the query's text.

        Strawberry calls this once for every error, before extensions (and the response)
        see it, so this one place covers both the client and the log.  Its default logging
        quotes the query around the error, which may hold a card number typed into it.
        Only bugs are logged as errors (with their traceback); the caller's mistakes are
        routine and logged at INFO.
        """
        for error in errors:
            error.message = redact(error.message)
            if is_internal(error):
                log.error(
                    "GraphQL %s: %s", error.path, error.message, exc_info=error.original_error
                )
            else:
                log.info("GraphQL %s: %s", error.path, error.message)


def build_schema(settings: Settings) -> KassaSchema:
    costs = CostCache()  # shared by the requests, as the parser and validation caches are
    prepared = PreparedReads(settings.max_query_cost, costs) if settings.compiled_reads else None
    built = KassaSchema(
        query=Query,
        mutation=Mutation,
        extensions=_extensions(settings, costs, prepared),
    )
    built.prepared = prepared
    return built


schema = build_schema(Settings())


def export_sdl(path: Path = SDL_PATH) -> None:
    """Write the schema's SDL to ``path`` (the committed ``schema/schema.graphql``)."""
    path.write_text(str(schema) + "\n", encoding="utf-8")
