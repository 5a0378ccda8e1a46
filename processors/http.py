"""What every adapter's HTTP calls share: one TLS context, and HTTPS for live accounts."""

from __future__ import annotations

import functools
import ssl

import httpx

from billing.payment_systems import Mode
from billing.processing import ProcessorError


@functools.cache
def tls() -> ssl.SSLContext:
    """The TLS context of every call, made once per process: making one loads the CA bundle,
    which costs more (~40-70 ms) than a call to a local fake, and is the same for every call."""
    return httpx.create_ssl_context()


def require_https(mode: Mode, url: str, system: str) -> None:
    """A live account's credentials and tokens never travel unencrypted: ``INSECURE_URL``
    before any call when ``url`` is not HTTPS (the scheme read as URLs read it, in any case)."""
    if mode is Mode.LIVE and httpx.URL(url).scheme != "https":
        raise ProcessorError("INSECURE_URL", f"a live {system} account is reached over HTTPS only")
