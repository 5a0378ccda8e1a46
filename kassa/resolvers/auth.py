"""Signing in and out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kassa import auth
from kassa.billing import clock
from kassa.billing.access import Viewer
from kassa.billing.errors import UserError
from kassa.resolvers.context import Context

if TYPE_CHECKING:
    from kassa.schema.auth import SignInInput

#: One answer for an unknown address, a wrong password and a locked user, so the answer
#: never tells an attacker which addresses exist.
INVALID_CREDENTIALS = UserError(
    "INVALID_CREDENTIALS",
    f"wrong e-mail address or password (after {auth.MAX_FAILED_SIGN_INS} failed attempts "
    f"sign-in pauses for {int(auth.LOCK_DURATION.total_seconds() // 60)} minutes)",
)


async def sign_in(ctx: Context, input: SignInInput) -> tuple[str, Viewer] | UserError:
    """Check the credentials (the failure count is committed either way) and start a session.

    The token is returned for API clients and set as the session cookie for browsers.
    """
    user = await ctx.attempt(
        lambda session: auth.sign_in(session, input.email, input.password, clock.wall_now())
    )
    if user is None:
        return INVALID_CREDENTIALS
    if isinstance(user, UserError):
        return user
    token = auth.issue_session_token(ctx.settings, user)
    if ctx.response is not None:
        auth.set_session_cookie(ctx.response, token, ctx.settings)
    return token, auth.viewer_for_user(user)


def sign_out(ctx: Context) -> None:
    """Drop the session cookie.  A bearer session token simply expires with its age."""
    if ctx.response is not None:
        auth.clear_session_cookie(ctx.response, ctx.settings)
