"""Processor accounts: the payment systems an owner of customers has configured, the
processors installed, and whether a reseller's customers may fall back to the provider's.

Credentials are write-only: a processor account shows which credential names are set
(``credentialsSet``), never a value — not even to administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from billing.errors import UserError
from billing.payment_systems import Capability, MethodKind, Mode, ProcessorInfo
from billing.processor_accounts import AccountDetails
from resolvers import processor_accounts as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.money import Money
from schema.permissions import IsAuthenticated
from schema.relay import encode_id

strawberry.enum(Mode, name="ProcessorMode", description="TEST or LIVE: whether real money moves.")
strawberry.enum(
    MethodKind,
    name="MethodKind",
    description="A payment method a processor account offers: a card brand, ECHECK or "
    "DIRECT_DEBIT.",
)
strawberry.enum(
    Capability,
    name="ProcessorCapability",
    description="A flow a processor supports (TOKEN_CHARGE: charge a stored token server to "
    "server; NOTIFICATIONS: calls kassa back at /callbacks/{account}; …).",
)


@strawberry.type(description="A payment processor installed here (entry points kassa.processors).")
class Processor:
    name: str
    capabilities: list[Capability]
    method_kinds: list[MethodKind]

    @classmethod
    def of(cls, info: ProcessorInfo) -> Processor:
        return cls(
            name=info.name,
            capabilities=sorted(info.capabilities),
            method_kinds=sorted(info.method_kinds),
        )


@strawberry.type(
    description="A payment system an owner of customers (the provider or a reseller) has "
    "configured. Its credentials are never shown: credentialsSet names those that are set."
)
class ProcessorAccount:
    id: strawberry.ID
    reseller_id: strawberry.ID | None = strawberry.field(
        description="The reseller whose account this is; null for the provider's."
    )
    name: str
    processor: str
    mode: Mode
    base_url: str | None = strawberry.field(
        description="Where the processor's API is, when not its own address for the mode."
    )
    minimum_payments: list[Money] = strawberry.field(
        description="The currencies the account takes, each with the smallest payment taken."
    )
    method_kinds: list[MethodKind]
    enabled: bool
    credentials_set: list[str] = strawberry.field(
        description="The names of the credentials that are set; their values are never shown."
    )
    callback_path: str = strawberry.field(
        description="Where the processor sends its notifications (POST, on this server)."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, details: AccountDetails) -> ProcessorAccount:
        return cls(
            id=encode_id("ProcessorAccount", details.id),
            reseller_id=None
            if details.reseller_id is None
            else encode_id("Reseller", details.reseller_id),
            name=details.name,
            processor=details.processor,
            mode=details.mode,
            base_url=details.base_url,
            minimum_payments=[Money.of(amount, currency) for currency, amount in details.minimums],
            method_kinds=list(details.method_kinds),
            enabled=details.enabled,
            credentials_set=list(details.credentials_set),
            callback_path=f"/callbacks/{details.id}",
            created_at=details.created_at,
            updated_at=details.updated_at,
        )


@strawberry.input(description="One credential: its name (lower-case, digits, _) and value.")
class CredentialInput:
    name: str
    value: str = strawberry.field(description="An empty value removes the credential.")


@strawberry.input(description="A currency the account takes and its minimum payment.")
class MinimumPaymentInput:
    currency: str
    amount: str = strawberry.field(description="A decimal string, 0 or more.")


_CREDENTIALS = (
    "Write-only. Each replaces the credential of its name; an empty value removes one; one "
    "left out stays as it was."
)


@strawberry.input
class CreateProcessorAccountInput:
    reseller_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Whose account: a reseller (the provider's administrators only). "
        "Omitted: your own owner's.",
    )
    name: str
    processor: str = strawberry.field(description="An installed processor's name (processors).")
    mode: Mode = Mode.TEST
    credentials: list[CredentialInput] | None = strawberry.field(
        default=None, description=_CREDENTIALS
    )
    base_url: str | None = strawberry.field(
        default=None, description="https:// (http:// allowed in TEST mode)."
    )
    minimums: list[MinimumPaymentInput] = strawberry.field(description="At least one currency.")
    method_kinds: list[MethodKind] = strawberry.field(
        description="At least one; each one the processor can take."
    )
    enabled: bool = True


@strawberry.input(description="Every setting is replaced except credentials left out.")
class UpdateProcessorAccountInput:
    id: strawberry.ID
    name: str
    processor: str
    mode: Mode = Mode.TEST
    credentials: list[CredentialInput] | None = strawberry.field(
        default=None, description=_CREDENTIALS
    )
    base_url: str | None = None
    minimums: list[MinimumPaymentInput] = strawberry.field(description="At least one currency.")
    method_kinds: list[MethodKind] = strawberry.field(description="At least one.")
    enabled: bool = True


@strawberry.input
class DisableProcessorAccountInput:
    id: strawberry.ID


@strawberry.input
class SetProcessorFallbackInput:
    reseller_id: strawberry.ID | None = strawberry.field(
        default=None, description="Omitted: your own reseller."
    )
    allowed: bool = strawberry.field(
        description="Whether the reseller's customers may pay through the provider's "
        "processor accounts when none of the reseller's fits."
    )


@strawberry.type
class ProcessorAccountPayload:
    processor_account: ProcessorAccount | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class ProcessorFallbackPayload:
    falls_back_to_provider: bool | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


def _payload(result: AccountDetails | UserError) -> ProcessorAccountPayload:
    if isinstance(result, UserError):
        return ProcessorAccountPayload(errors=user_errors(result))
    return ProcessorAccountPayload(processor_account=ProcessorAccount.of(result))


_RESELLER = Annotated[
    strawberry.ID | None,
    strawberry.argument(description="Omitted: every owner you administer."),
]


@strawberry.type
class ProcessorAccountQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The processor accounts you administer, oldest first: the provider's "
        "administrators see every owner's, a reseller's staff their own (administrators only).",
    )
    async def processor_accounts(
        self, info: Info, reseller_id: _RESELLER = None
    ) -> list[ProcessorAccount]:
        found = await resolve.processor_accounts_of(info.context, reseller_id)
        return [ProcessorAccount.of(details) for details in found]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The payment processors installed, with what each can do "
        "(administrators only).",
    )
    def processors(self, info: Info) -> list[Processor]:
        return [Processor.of(found) for found in resolve.installed_processors(info.context)]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Whether a reseller's customers fall back to the provider's processor "
        "accounts (administrators; null for a reseller out of reach).",
    )
    async def processor_fallback(
        self,
        info: Info,
        reseller_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Omitted: your own.")
        ] = None,
    ) -> bool | None:
        return await resolve.processor_fallback(info.context, reseller_id)


@strawberry.type
class ProcessorAccountMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Configure a payment system for the provider or a reseller "
        "(administrators; a reseller's only its own). Nothing is saved unless every setting "
        "is valid: UNKNOWN_PROCESSOR, INVALID_CURRENCY, NEGATIVE_MINIMUM, REQUIRED, "
        "METHOD_NOT_SUPPORTED, INVALID_URL, NAME_TAKEN.",
    )
    async def create_processor_account(
        self, info: Info, input: CreateProcessorAccountInput
    ) -> ProcessorAccountPayload:
        return _payload(await resolve.create_processor_account(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Change a processor account's settings (credentials left out are kept).",
    )
    async def update_processor_account(
        self, info: Info, input: UpdateProcessorAccountInput
    ) -> ProcessorAccountPayload:
        return _payload(await resolve.update_processor_account(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Stop routing new payments to a processor account; its stored methods "
        "and payments keep it for lookups, refunds and callbacks.",
    )
    async def disable_processor_account(
        self, info: Info, input: DisableProcessorAccountInput
    ) -> ProcessorAccountPayload:
        return _payload(await resolve.disable_processor_account(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Let a reseller's customers pay through the provider's processor "
        "accounts when none of the reseller's fits, or stop it (NOT_A_RESELLER for the "
        "provider).",
    )
    async def set_processor_fallback(
        self, info: Info, input: SetProcessorFallbackInput
    ) -> ProcessorFallbackPayload:
        result = await resolve.set_processor_fallback(info.context, input)
        if isinstance(result, UserError):
            return ProcessorFallbackPayload(errors=user_errors(result))
        return ProcessorFallbackPayload(falls_back_to_provider=result)
