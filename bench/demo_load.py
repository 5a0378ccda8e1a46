"""The demo loaded into a benchmark's scratch database, as ``kassa demo`` loads it.

The demo stores cards through the payment systems' fakes at its public address, so they are
served meanwhile (on a free loopback port, their state in a temporary folder) and the
database is handed a public URL pointing there.  Only the load needs them: the benchmarks
afterwards read and write the database alone.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from billing.db import Database
from billing.demo import DemoAccess, load_demo
from processors.fakes import mount


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def load_demo_with_fakes(db: Database) -> DemoAccess:
    """:func:`billing.demo.load_demo` into ``db``'s database, with the fakes served."""
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="kassa-bench-fakes-") as state,
        mount.serving(Path(state), port),
    ):
        settings = db.settings.with_(public_url=f"http://127.0.0.1:{port}", fake_state_dir=state)
        served = Database(settings)
        try:
            return await load_demo(served)
        finally:
            await served.dispose()
