"""Loopback ports for servers a test starts, so runs side by side never fight over one."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nobody listens on now (the system's pick, so two runs differ)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
