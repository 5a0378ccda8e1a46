"""Where a fake is reached from outside, for the links and forms its pages and answers carry.

The demo serves each fake under ``/fakes/<name>`` of kassa's own address
(:mod:`processors.fakes.mount`); tests serve them at the root of a port of their own.  A link
written from ``request.base_url`` or as ``/path`` would leave the mount behind (Starlette keeps
a Mount's prefix in the scope's ``root_path`` only), sending the customer to kassa's 404.
"""

from __future__ import annotations

from starlette.requests import Request


def base(request: Request) -> str:
    """This fake's own address as the client reached it, its mount point included."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}{root}"
