"""Wallets: payment by cryptocurrency, to begin with Bitcoin.

Empty until the Bitcoin issue fills it.  What will live here, and the rules it keeps:

* one receiving address per invoice or top-up, derived from the provider's extended public
  key (the private keys never reach kassa);
* a watcher that asks a block explorer (Esplora) or a Bitcoin Core node for payments to
  those addresses, and books each one once it has enough confirmations;
* like ``processors/``, this package implements interfaces that ``billing/`` defines and
  imports nothing of kassa but them and billing's value types (``tests/test_layers.py``).
"""
