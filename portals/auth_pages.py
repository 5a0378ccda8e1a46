"""Signing in and out, and resetting a forgotten password — the pages anyone may open.

Sign-in goes through the API's ``signIn`` (which counts failures and pauses signing in to
an address after five wrong passwords from one client); the page puts the token it answers
with into the session cookie, and sign-out ends that session with ``signOut``.  A reset is
asked for with ``requestPasswordReset``, which mails a link to
``/portal/password-reset/{token}``; that page sets the password with ``resetPassword``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portals import forms, graphql, htmx, rendering
from portals.forms import Form
from portals.navigation import home_for
from portals.session import SIGN_IN_PATH, safe_next
from resolvers import sessions

SIGN_IN = """
mutation PortalSignIn($input: SignInInput!) {
  signIn(input: $input) { token viewer { role } errors { field code message } }
}
"""

SIGN_OUT = """
mutation PortalSignOut { signOut { errors { field code message } } }
"""

REQUEST_PASSWORD_RESET = """
mutation PortalRequestPasswordReset($input: RequestPasswordResetInput!) {
  requestPasswordReset(input: $input) { errors { field code message } }
}
"""

RESET_PASSWORD = """
mutation PortalResetPassword($input: ResetPasswordInput!) {
  resetPassword(input: $input) { errors { field code message } }
}
"""

#: Notices the sign-in page shows, chosen by ``?notice=`` (never text from the address).
NOTICES = {
    "signed-out": "You have signed out.",
    "session-ended": "Your session has ended. Sign in again to carry on where you were.",
    "password-changed": "Your password has been changed. Sign in with the new one.",
}


def _sign_in_page(request: Request, form: Form, next_path: str, status_code: int = 200) -> Response:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return rendering.render(
        request,
        "sign_in.html",
        {"form": form, "next": next_path, "notice": notice},
        status_code=status_code,
    )


async def sign_in_form(request: Request) -> Response:
    """The sign-in form; someone already signed in goes straight on."""
    next_path = request.query_params.get("next", "")
    visitor = await graphql.visitor(request)
    if visitor.authenticated:
        return htmx.redirect(request, safe_next(next_path, home_for(visitor.role)))
    return _sign_in_page(request, Form(), next_path)


async def sign_in(request: Request) -> Response:
    """Check the credentials through the API; on success set the cookie and go to ``next``."""
    values = await forms.read(request)
    next_path = values.get("next", "")
    data = await graphql.execute(
        request,
        SIGN_IN,
        {
            "input": {
                "email": values.get("email", ""),
                "password": values.get("password", ""),
            }
        },
    )
    payload = data["signIn"]
    if payload["errors"]:
        # The password is never drawn back into the page.
        form = Form.with_errors(
            {"email": values.get("email", "")}, payload["errors"], fields=("email", "password")
        )
        return _sign_in_page(request, form, next_path, status_code=422)
    response = htmx.redirect(request, safe_next(next_path, home_for(payload["viewer"]["role"])))
    sessions.set_session_cookie(response, payload["token"], request.app.state.settings)
    return response


async def sign_out(request: Request) -> Response:
    """End the session server-side (its cookie stops working everywhere), drop the cookie."""
    await graphql.execute(request, SIGN_OUT)
    response = htmx.redirect(request, f"{SIGN_IN_PATH}?notice=signed-out")
    sessions.clear_session_cookie(response, request.app.state.settings)
    return response


async def password_reset_form(request: Request) -> Response:
    return rendering.render(request, "password_reset_request.html", {"form": Form()})


async def request_password_reset(request: Request) -> Response:
    """Ask the API to mail a link; the page says the same whether the address is known."""
    values = await forms.read(request)
    data = await graphql.execute(
        request, REQUEST_PASSWORD_RESET, {"input": {"email": values.get("email", "")}}
    )
    errors = data["requestPasswordReset"]["errors"]
    if errors:  # only a malformed address: that tells nothing about who has an account
        form = Form.with_errors(values, errors, fields=("email",))
        return rendering.render(
            request, "password_reset_request.html", {"form": form}, status_code=422
        )
    return rendering.render(request, "password_reset_request.html", {"form": Form(), "sent": True})


def _new_password_page(request: Request, form: Form, status_code: int = 200) -> Response:
    return rendering.render(
        request,
        "password_reset.html",
        {"form": form, "action": request.url.path},
        status_code=status_code,
    )


async def new_password_form(request: Request) -> Response:
    return _new_password_page(request, Form())


async def reset_password(request: Request) -> Response:
    """Set the new password with the link's token, then send the visitor to sign in."""
    values = await forms.read(request)
    password = values.get("newPassword", "")
    if password != values.get("confirmation", ""):
        form = Form(errors={"confirmation": "the two passwords are not the same"})
        return _new_password_page(request, form, status_code=422)
    data = await graphql.execute(
        request,
        RESET_PASSWORD,
        {
            "input": {
                "token": request.path_params["token"],
                "newPassword": password,
            }
        },
    )
    errors = data["resetPassword"]["errors"]
    if errors:
        form = Form.with_errors({}, errors, fields=("newPassword",))
        return _new_password_page(request, form, status_code=422)
    return htmx.redirect(request, f"{SIGN_IN_PATH}?notice=password-changed")


def routes() -> list[BaseRoute]:
    """Pages anyone may open (guarded by :func:`portals.routes`)."""
    return [
        Route("/portal/sign-in", sign_in_form, methods=["GET"]),
        Route("/portal/sign-in", sign_in, methods=["POST"]),
        Route("/portal/sign-out", sign_out, methods=["POST"]),
        Route("/portal/password-reset", password_reset_form, methods=["GET"]),
        Route("/portal/password-reset", request_password_reset, methods=["POST"]),
        Route("/portal/password-reset/{token}", new_password_form, methods=["GET"]),
        Route("/portal/password-reset/{token}", reset_password, methods=["POST"]),
    ]
