"""Local fakes of the payment systems kassa speaks to: each serves the part of its system's real
HTTP API the adapter uses, for the tests and the demo, and imports nothing of ``billing``."""
