"""The server-rendered portals: Starlette routes and Jinja2 templates over the GraphQL API.

``routes()`` is everything :func:`app.create_app` mounts: ``/`` (to the customer
portal), every portal page and action, and ``/static`` (CSS and the vendored htmx).  Each
page and action is wrapped in :class:`~portals.csrf.CSRFMiddleware` here, in one place,
so a new page cannot forget it: a portal adds its routes to :data:`PORTALS` and nothing else.

The rules every portal module keeps (``tests/test_portal_imports.py`` checks the first):

* no database, no ORM models: pages run GraphQL operations (:mod:`portals.graphql`);
* one template per page, with the parts htmx swaps as named blocks
  (:mod:`portals.rendering`);
* handlers declare who may use them with :func:`portals.session.requires`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from portals import (
    admin,
    admin_distributors,
    admin_invoice,
    auth_pages,
    bitcoin,
    cash_slip,
    classes,
    customer,
    direct_debit,
    direct_debit_setup,
    distributor,
    flagged_payments,
    payment_systems,
    redirect_pay,
    rendering,
    review,
    run_failures,
    terminal_reconciliation,
)
from portals.csrf import CSRFMiddleware
from portals.navigation import ADMIN_HOME, CUSTOMER_HOME, DISTRIBUTOR_HOME

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

#: Each portal's route table, in matching order.
PORTALS: tuple[Callable[[], list[BaseRoute]], ...] = (
    auth_pages.routes,
    customer.routes,
    cash_slip.routes,
    redirect_pay.routes,
    direct_debit_setup.routes,
    admin.routes,
    admin_invoice.routes,
    review.routes,
    run_failures.routes,
    flagged_payments.routes,
    classes.routes,
    admin_distributors.routes,
    bitcoin.routes,
    payment_systems.routes,
    direct_debit.routes,
    terminal_reconciliation.routes,
    distributor.routes,
)


async def to_portal(request: Request) -> Response:
    return RedirectResponse(CUSTOMER_HOME, status_code=303)


async def not_found(request: Request) -> Response:
    """Any other address under ``/portal`` or ``/admin``: the portal's own 404 page (after
    dropping a trailing slash, so ``/portal/`` is the dashboard)."""
    if request.url.path.endswith("/"):
        return RedirectResponse(request.url.path.rstrip("/"), status_code=303)
    return await rendering.error_page(request, 404)


def _guarded(route: BaseRoute) -> BaseRoute:
    assert isinstance(route, Route), "portal routes are plain Routes"
    return Route(
        route.path,
        route.endpoint,
        methods=list(route.methods or ()),
        name=route.name,
        middleware=[Middleware(CSRFMiddleware)],
    )


def routes() -> list[BaseRoute]:
    pages = [route for portal in PORTALS for route in portal()]
    pages += [
        Route(f"{home}/{{rest:path}}", not_found, methods=["GET"])
        for home in (CUSTOMER_HOME, ADMIN_HOME, DISTRIBUTOR_HOME)
    ]
    return [
        Route("/", to_portal, methods=["GET"]),
        *(_guarded(route) for route in pages),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
