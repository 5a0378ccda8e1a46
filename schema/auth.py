"""Who is calling (``viewer``), signing in and out, and resetting a forgotten password."""

from __future__ import annotations

from enum import Enum

import strawberry

from billing import models
from billing.access import ANONYMOUS
from billing.access import Viewer as ViewerModel
from billing.errors import UserError
from resolvers import auth as resolve
from resolvers import distributors as resolve_distributors
from resolvers.context import Info
from schema.distributors import Distributor
from schema.errors import UserErrorType, user_errors
from schema.permissions import IsAuthenticated
from schema.relay import encode_id

# The billing enums are the API's enums: registered here, then used as they are.
strawberry.enum(models.Role)
strawberry.enum(models.ApiKeyScope)


def _optional_id(type_name: str, pk: int | None) -> strawberry.ID | None:
    return None if pk is None else encode_id(type_name, pk)


@strawberry.enum(description="What kind of credential the caller sent.")
class ViewerKind(Enum):
    ANONYMOUS = "ANONYMOUS"
    USER = "USER"
    API_KEY = "API_KEY"


def _kind(viewer: ViewerModel) -> ViewerKind:
    if viewer.api_key_id is not None:
        return ViewerKind.API_KEY
    return ViewerKind.USER if viewer.authenticated else ViewerKind.ANONYMOUS


@strawberry.type(description="The caller: a signed-in user, a partner API key, or nobody.")
class Viewer:
    authenticated: bool
    kind: ViewerKind = strawberry.field(
        description="API_KEY for a partner key, which acts with `role` ADMIN of `resellerId` "
        "(the provider's when null), or a distributor's key with `role` DISTRIBUTOR of "
        "`distributorId`, within its `scope`; USER for a signed-in user."
    )
    role: models.Role | None = strawberry.field(
        description="The rights the caller acts with (a partner key: ADMIN; a "
        "distributor's key: DISTRIBUTOR)."
    )
    scope: models.ApiKeyScope = strawberry.field(description="READ for read-only API keys.")
    user_id: strawberry.ID | None
    api_key_id: strawberry.ID | None
    reseller_id: strawberry.ID | None
    customer_id: strawberry.ID | None
    distributor_id: strawberry.ID | None

    @classmethod
    def from_viewer(cls, viewer: ViewerModel) -> Viewer:
        return cls(
            authenticated=viewer.authenticated,
            kind=_kind(viewer),
            role=viewer.role,
            scope=viewer.scope,
            user_id=_optional_id("User", viewer.user_id),
            api_key_id=_optional_id("ApiKey", viewer.api_key_id),
            reseller_id=_optional_id("Reseller", viewer.reseller_id),
            customer_id=_optional_id("Customer", viewer.customer_id),
            distributor_id=_optional_id("Distributor", viewer.distributor_id),
        )

    @strawberry.field(
        description="The signed-in distributor itself: balance, credit, commission, "
        "transactions. Null for everyone else."
    )
    async def distributor(self, info: Info) -> Distributor | None:
        row = await resolve_distributors.own_distributor(info.context)
        return None if row is None else Distributor.from_model(row)


@strawberry.input
class SignInInput:
    email: str
    password: str


@strawberry.type
class SignInPayload:
    token: str | None = strawberry.field(
        default=None,
        description="Send as `Authorization: Bearer <token>`; browsers get it as a cookie.",
    )
    viewer: Viewer | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class SignOutPayload:
    viewer: Viewer
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class SignOutEverywhereInput:
    user_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The user whose sessions end: yourself when left out. Administrators "
        "may name the users they look after.",
    )


@strawberry.type
class SignOutEverywherePayload:
    sessions_ended: int | None = strawberry.field(
        default=None, description="How many sessions were still open."
    )
    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.input
class RequestPasswordResetInput:
    email: str


@strawberry.input
class ResetPasswordInput:
    token: str = strawberry.field(description="From the link in the reset mail.")
    new_password: str


@strawberry.type
class PasswordResetPayload:
    """Only errors: success is their absence."""

    errors: list[UserErrorType] = strawberry.field(default_factory=list)


@strawberry.type
class AuthQueries:
    @strawberry.field
    def viewer(self, info: Info) -> Viewer:
        return Viewer.from_viewer(info.context.viewer)


@strawberry.type
class AuthMutations:
    @strawberry.mutation(
        description="Five wrong passwords for one address within 15 minutes pause signing in "
        "to it for 15 minutes, from the client address they came from only."
    )
    async def sign_in(self, info: Info, input: SignInInput) -> SignInPayload:
        result = await resolve.sign_in(info.context, input)
        if isinstance(result, UserError):
            return SignInPayload(errors=user_errors(result))
        token, viewer = result
        return SignInPayload(token=token, viewer=Viewer.from_viewer(viewer))

    @strawberry.mutation(
        description="End the session the request came with (its cookie or bearer token stops "
        "working) and clear the session cookie."
    )
    async def sign_out(self, info: Info) -> SignOutPayload:
        errors = user_errors(await resolve.sign_out(info.context))
        return SignOutPayload(viewer=Viewer.from_viewer(ANONYMOUS), errors=errors)

    @strawberry.mutation(
        description="End every session of a user, on every device: your own, or (for "
        "administrators) a user's you look after.",
        permission_classes=[IsAuthenticated],
    )
    async def sign_out_everywhere(
        self, info: Info, input: SignOutEverywhereInput
    ) -> SignOutEverywherePayload:
        result = await resolve.sign_out_everywhere(info.context, input)
        if isinstance(result, UserError):
            return SignOutEverywherePayload(errors=user_errors(result))
        return SignOutEverywherePayload(sessions_ended=result)

    @strawberry.mutation(
        description="Mail a password reset link (valid for one hour, once) to the user with "
        "this address. The answer is the same whether or not there is one."
    )
    async def request_password_reset(
        self, info: Info, input: RequestPasswordResetInput
    ) -> PasswordResetPayload:
        return PasswordResetPayload(
            errors=user_errors(await resolve.request_password_reset(info.context, input))
        )

    @strawberry.mutation(
        description="Set a new password with the token from a reset link; the token then "
        "stops working, and so does every session made before."
    )
    async def reset_password(self, info: Info, input: ResetPasswordInput) -> PasswordResetPayload:
        return PasswordResetPayload(
            errors=user_errors(await resolve.reset_password(info.context, input))
        )
