"""Partner API keys: listed, made (the token shown once) and revoked by the signed-in
people who manage them (:mod:`billing.api_keys`; ``docs/graphql.md``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from billing import models
from billing.errors import UserError
from resolvers import api_keys as resolve
from resolvers import distributors as resolve_distributors
from resolvers.context import Info
from schema.distributors import Distributor
from schema.errors import UserErrorType, user_errors
from schema.permissions import IsAuthenticated
from schema.relay import DEFAULT_PAGE_SIZE, Connection, encode_id, paginate


@strawberry.type(
    description="A partner's bearer key. It acts as an administrator of `resellerId` (the "
    "provider's when null), or, when it has a `distributor`, as that distributor; READ keys "
    "change nothing. The secret is shown once, by `createApiKey`."
)
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(
        description="The public part of the token (`kassa_<prefix>_…`), to tell keys apart."
    )
    scope: models.ApiKeyScope
    reseller_id: strawberry.ID | None
    created_at: datetime
    revoked_at: datetime | None = strawberry.field(description="Null while the key works.")
    distributor_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.ApiKey) -> ApiKey:
        return cls(
            id=encode_id("ApiKey", row.id),
            name=row.name,
            prefix=row.prefix,
            scope=row.scope,
            reseller_id=None if row.reseller_id is None else encode_id("Reseller", row.reseller_id),
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            distributor_pk=row.distributor_id,
        )

    @strawberry.field(description="The distributor the key acts as; null for a partner key.")
    async def distributor(self, info: Info) -> Distributor | None:
        if self.distributor_pk is None:
            return None
        row = await resolve_distributors.distributor_by_pk(info.context, self.distributor_pk)
        return None if row is None else Distributor.from_model(row)


@strawberry.input
class CreateApiKeyInput:
    name: str = strawberry.field(description="What the key is for (at most 100 characters).")
    scope: models.ApiKeyScope
    reseller_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A key of this reseller (the provider's administrators only; a "
        "reseller's staff always get their own reseller's).",
    )
    distributor_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A key that acts as this distributor (one its caller looks after; a "
        "distributor: itself, also when left out). Not with resellerId (ONE_OWNER).",
    )


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey | None = None
    token: str | None = strawberry.field(
        default=None,
        description="Send as `Authorization: Bearer <token>`. Shown this once: only a hash "
        "is kept.",
    )
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class RevokeApiKeyInput:
    id: strawberry.ID


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class ApiKeyQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The API keys you manage, newest first, revoked ones included: the "
        "provider's administrators every key, a reseller's staff their reseller's and its "
        "distributors', a distributor its own. Signed-in users only, not API keys.",
    )
    async def api_keys(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        distributor_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only the keys acting as this distributor."),
        ] = None,
    ) -> Connection[ApiKey]:
        query = resolve.key_list(info.context, distributor_id)
        return await paginate(info, query, models.ApiKey.id, first, after, ApiKey.from_model)


@strawberry.type
class ApiKeyMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Make an API key; its token is in the payload, this once. Signed-in "
        "administrators and distributors only (see `apiKeys`).",
    )
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        result = await resolve.create_key(info.context, input)
        if isinstance(result, UserError):
            return CreateApiKeyPayload(errors=user_errors(result))
        key, token = result
        return CreateApiKeyPayload(api_key=ApiKey.from_model(key), token=token)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Stop a key you manage from working, at once; it stays listed as revoked.",
    )
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> RevokeApiKeyPayload:
        result = await resolve.revoke_key(info.context, input)
        if isinstance(result, UserError):
            return RevokeApiKeyPayload(errors=user_errors(result))
        return RevokeApiKeyPayload(api_key=ApiKey.from_model(result))
