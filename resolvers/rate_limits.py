"""A sliding-window request limit per key, held in the process (the cash terminal API's per
network limit, :mod:`resolvers.terminals`).

Why in memory: the limit guards the server against a client that calls too often, so it must
cost less than the request it refuses — no database round trip, nothing written.  Each kassa
process counts on its own, so behind N processes a client gets up to N times the limit; an
installation that needs one global figure sets it at its reverse proxy as well.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

#: The window the limit is counted over.
WINDOW_SECONDS = 60.0


class SlidingWindow:
    """At most ``limit`` admissions per key in any :data:`WINDOW_SECONDS`; ``clock`` is
    monotonic seconds (a test passes its own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[object, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: object, limit: int) -> int:
        """Count one request for ``key``: 0 when admitted, else the whole seconds until one
        would be (what ``Retry-After`` says).  A limit of 0 or less admits everything."""
        if limit <= 0:
            return 0
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - WINDOW_SECONDS:
                seen.popleft()
            if len(seen) >= limit:
                return max(1, math.ceil(seen[0] + WINDOW_SECONDS - now))
            seen.append(now)
            return 0
