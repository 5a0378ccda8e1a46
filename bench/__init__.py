"""Benchmarks: each prints its figures; latest results live in docs/benchmarks.md."""

import wallets
from processors import registry

# Every benchmark charges cards through billing, which asks the registry for processors.
registry.serve_billing()
wallets.serve_billing()
