"""Signing in and out; forgotten passwords."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing import clock, mailer, password_resets
from billing.access import Viewer
from billing.errors import UserError
from resolvers import sessions
from resolvers.context import Context

if TYPE_CHECKING:
    from schema.auth import RequestPasswordResetInput, ResetPasswordInput, SignInInput

#: The portal page a reset link opens (``portals.auth_pages``), under the public URL.
PASSWORD_RESET_PATH = "/portal/password-reset/"

#: One answer for an unknown address, a wrong password and a locked user, so the answer
#: never tells an attacker which addresses exist.
INVALID_CREDENTIALS = UserError(
    "INVALID_CREDENTIALS",
    f"wrong e-mail address or password (after {sessions.MAX_FAILED_SIGN_INS} failed attempts "
    f"sign-in pauses for {int(sessions.LOCK_DURATION.total_seconds() // 60)} minutes)",
)


async def sign_in(ctx: Context, input: SignInInput) -> tuple[str, Viewer] | UserError:
    """Check the credentials (the failure count is committed either way) and start a session.

    The token is returned for API clients and set as the session cookie for browsers.
    """
    user = await ctx.attempt(
        lambda session: sessions.sign_in(session, input.email, input.password, clock.wall_now())
    )
    if user is None:
        return INVALID_CREDENTIALS
    if isinstance(user, UserError):
        return user
    token = sessions.issue_session_token(ctx.settings, user)
    if ctx.response is not None:
        sessions.set_session_cookie(ctx.response, token, ctx.settings)
    return token, sessions.viewer_for_user(user)


def sign_out(ctx: Context) -> None:
    """Drop the session cookie.  A bearer session token simply expires with its age."""
    if ctx.response is not None:
        sessions.clear_session_cookie(ctx.response, ctx.settings)


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
