"""Every payment system's fake, served beside kassa under ``/fakes/<name>`` for the demo
(``KASSA_FAKE_PROCESSORS=1``, which ``make run`` sets and production refuses), so the demo's
processor accounts work with no internet.

The fakes take their public test credentials (the module constants each fake declares, which
the demo's processor accounts are given).  Stripe's and Authorize.Net's keep their records in
JSON files under ``state_dir``: ``kassa demo`` stores cards through them (served by
:func:`serving` while it loads), and ``kassa serve`` charges those cards later.  Where a fake
delivers callbacks is read from ``state_dir/deliveries.json`` (fake name → URL), which
``kassa demo`` writes once it knows the processor accounts' ``/callbacks/{id}`` — the step a
merchant takes in each provider's dashboard.

Nothing here imports kassa's ``billing``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from processors.fakes import (
    authorize_net,
    debitsuccess,
    payarena,
    paynearme,
    paypal,
    remita,
    skrill,
    stripe,
)

#: The path the fakes are mounted under in kassa's app.
PREFIX = "/fakes"
#: Where a fake delivers its callbacks, by fake name (written by ``kassa demo``).
DELIVERIES_FILE = "deliveries.json"

Maker = Callable[[Path, str | None], ASGIApp]


def _stripe(state_dir: Path, deliver_to: str | None) -> ASGIApp:
    return stripe.FakeStripe(state_file=str(state_dir / "stripe.json"), webhook_url=deliver_to).app


def _authorize_net(state_dir: Path, deliver_to: str | None) -> ASGIApp:
    return authorize_net.FakeAuthorizeNet(state_file=str(state_dir / "authorize-net.json")).app


#: Each fake by the name it is mounted under.
FAKES: Mapping[str, Maker] = {
    "stripe": _stripe,
    "authorize-net": _authorize_net,
    "paypal": lambda _, url: paypal.FakePayPal(webhook_url=url).app,
    "skrill": lambda _, url: skrill.FakeSkrill(deliver=True).app,
    "payarena": lambda _, url: payarena.FakePayarena(callback_url=url).app,
    "remita": lambda _, url: remita.FakeRemita(notification_url=url).app,
    "paynearme": lambda _, url: paynearme.FakePayNearMe(callback_url=url or "").app,
    "debitsuccess": lambda state_dir, _: (
        debitsuccess.FakeDebitsuccess(state_file=str(state_dir / "debitsuccess.json")).app
    ),
}


def deliveries(state_dir: Path) -> dict[str, str]:
    """Where each fake delivers its callbacks (none before ``kassa demo`` wrote them)."""
    path = state_dir / DELIVERIES_FILE
    if not path.exists():
        return {}
    found: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return found


def save_deliveries(state_dir: Path, urls: Mapping[str, str]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / DELIVERIES_FILE).write_text(json.dumps(dict(urls), indent=2), encoding="utf-8")


def routes(state_dir: Path) -> list[Mount]:
    """``/fakes/<name>`` for every fake, their state kept in ``state_dir``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    urls = deliveries(state_dir)
    return [
        Mount(f"{PREFIX}/{name}", make(state_dir, urls.get(name))) for name, make in FAKES.items()
    ]


@contextmanager
def serving(state_dir: Path, port: int) -> Iterator[bool]:
    """The fakes alone on ``127.0.0.1:port`` while the block runs (for ``kassa demo``, which
    stores cards through them before ``kassa serve`` mounts them on that port).  Yields False
    and serves nothing when the port is taken: a running kassa serves them already."""
    import uvicorn

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            yield False
            return
    config = uvicorn.Config(
        Starlette(routes=routes(state_dir)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(200):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    if not server.started:
        raise RuntimeError(f"the payment fakes could not be served on port {port}")
    try:
        yield True
    finally:
        server.should_exit = True
        thread.join(timeout=10)
