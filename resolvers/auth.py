"""Signing in and out; forgotten passwords."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing import clock, mailer, password_resets, sign_in_throttle, user_sessions
from billing.access import Viewer
from billing.errors import UserError
from billing.models import User
from billing.user_sessions import StartedSession
from resolvers import sessions
from resolvers.context import Context
from schema.relay import decode_optional_id

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from schema.auth import (
        RequestPasswordResetInput,
        ResetPasswordInput,
        SignInInput,
        SignOutEverywhereInput,
    )

#: The portal page a reset link opens (``portals.auth_pages``), under the public URL.
PASSWORD_RESET_PATH = "/portal/password-reset/"

#: One answer for an unknown address, a wrong password and a locked user, so the answer
#: never tells an attacker which addresses exist.
INVALID_CREDENTIALS = UserError(
    "INVALID_CREDENTIALS",
    f"wrong e-mail address or password (after {sign_in_throttle.MAX_FAILURES} failed "
    f"attempts sign-in pauses for "
    f"{int(sign_in_throttle.LOCK_DURATION.total_seconds() // 60)} minutes)",
)


async def sign_in(ctx: Context, input: SignInInput) -> tuple[str, Viewer] | UserError:
    """Check the credentials (the failure counts are committed either way) and start a
    session.  The token is returned for API clients and set as the session cookie for
    browsers.
    """
    address = sessions.client_address(ctx.request)

    async def check(session: AsyncSession) -> tuple[User, StartedSession] | None:
        now = clock.wall_now()
        user = await sign_in_throttle.sign_in(session, input.email, input.password, address, now)
        return (
            None if user is None else (user, await user_sessions.start_session(session, user, now))
        )

    result = await ctx.attempt(check)
    if result is None:
        return INVALID_CREDENTIALS
    if isinstance(result, UserError):
        return result
    user, started = result
    token = sessions.issue_session_token(ctx.settings, user, started)
    if ctx.response is not None:
        sessions.set_session_cookie(ctx.response, token, ctx.settings)
    return token, sessions.viewer_for_user(user)


async def sign_out(ctx: Context) -> UserError | None:
    """End the session the request came with (cookie or bearer token) and drop the cookie."""
    token = None if ctx.request is None else sessions.credentials(ctx.request)
    read = None if token is None else sessions.read_session_token(ctx.settings, token)
    if read is not None:
        started, _ = read
        ended = await ctx.attempt(
            lambda session: user_sessions.end_session(session, started.session_id, started.secret)
        )
        if isinstance(ended, UserError):
            return ended
    if ctx.response is not None:
        sessions.clear_session_cookie(ctx.response, ctx.settings)
    return None


async def sign_out_everywhere(ctx: Context, input: SignOutEverywhereInput) -> int | UserError:
    """End every session of a user (oneself unless ``userId`` names another); how many."""

    async def end(session: AsyncSession) -> int:
        user_id = decode_optional_id(input.user_id, "User", "userId")
        return await user_sessions.end_every_session(session, ctx.viewer, user_id)

    return await ctx.attempt(end)


def _reset_mail_body(link: str) -> str:
    hours = int(password_resets.TOKEN_MAX_AGE.total_seconds() // 3600)
    return (
        "Someone, probably you, asked to reset the password of your kassa sign-in.\n\n"
        f"Choose a new password here (the link works once, for {hours} hour):\n\n{link}\n\n"
        "If it was not you, ignore this mail: your password stays as it is.\n"
    )


async def request_password_reset(
    ctx: Context, input: RequestPasswordResetInput
) -> UserError | None:
    """Mail a reset link if the address has a user; the answer is the same when it has not."""
    found = await ctx.attempt(
        lambda session: password_resets.start_reset(session, ctx.settings.secret_key, input.email)
    )
    if isinstance(found, UserError):
        return found
    if found is not None:
        link = f"{ctx.settings.public_url}{PASSWORD_RESET_PATH}{found.token}"
        mailer.send_soon(
            ctx.settings,
            mailer.compose(
                ctx.settings, found.email, "Reset your kassa password", _reset_mail_body(link)
            ),
        )
    return None


async def reset_password(ctx: Context, input: ResetPasswordInput) -> UserError | None:
    """Set the new password; the link, and every session made before, stop working."""
    result = await ctx.attempt(
        lambda session: password_resets.reset_password(
            session, ctx.settings.secret_key, input.token, input.new_password, clock.wall_now()
        )
    )
    return result if isinstance(result, UserError) else None
