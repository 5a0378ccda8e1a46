"""Where each role goes: its home page and the links in its navigation bar.

One table per role (the API's ``Role`` values), so a new portal (administrators under
``/admin``, distributors) adds its rows here and every page's layout shows them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NavLink:
    label: str
    path: str

    def is_current(self, path: str, home: str) -> bool:
        """Whether the page at ``path`` belongs under this link (the home link only itself)."""
        if self.path == home:
            return path == home
        return path == self.path or path.startswith(self.path + "/")


CUSTOMER_HOME = "/portal"
ADMIN_HOME = "/admin"
#: The distributor portal (:mod:`portals.distributor`): its customers, figures and sign-up.
DISTRIBUTOR_HOME = "/distributor"

#: The page a role lands on after signing in.  Resellers are administrators of their own
#: customers: the API scopes what they see, the pages are the same.
HOME: dict[str, str] = {
    "CUSTOMER": CUSTOMER_HOME,
    "ADMIN": ADMIN_HOME,
    "RESELLER": ADMIN_HOME,
    "DISTRIBUTOR": DISTRIBUTOR_HOME,
}

_STAFF_NAVIGATION = (
    NavLink("Customers", ADMIN_HOME),
    NavLink("Review", f"{ADMIN_HOME}/review"),
    NavLink("Distributors", f"{ADMIN_HOME}/distributors"),
    NavLink("Classes", f"{ADMIN_HOME}/classes"),
    NavLink("Run problems", f"{ADMIN_HOME}/run-failures"),
    NavLink("Flagged payments", f"{ADMIN_HOME}/flagged-payments"),
    NavLink("Bitcoin", f"{ADMIN_HOME}/bitcoin"),
    NavLink("Payment systems", f"{ADMIN_HOME}/payment-systems"),
    NavLink("Direct debit", f"{ADMIN_HOME}/direct-debit"),
)

NAVIGATION: dict[str, tuple[NavLink, ...]] = {
    "CUSTOMER": (
        NavLink("Dashboard", CUSTOMER_HOME),
        NavLink("Invoices", "/portal/invoices"),
        NavLink("Payments", "/portal/payments"),
        NavLink("Accounts", "/portal/accounts"),
        NavLink("Cards", "/portal/payment-methods"),
        NavLink("Profile", "/portal/profile"),
    ),
    "ADMIN": _STAFF_NAVIGATION,
    "RESELLER": _STAFF_NAVIGATION,
    "DISTRIBUTOR": (
        NavLink("Customers", DISTRIBUTOR_HOME),
        NavLink("Transactions", f"{DISTRIBUTOR_HOME}/transactions"),
    ),
}


def home_for(role: str | None) -> str:
    """A role without a page of its own (none today) lands on the customer portal."""
    return HOME.get(role or "", CUSTOMER_HOME)
