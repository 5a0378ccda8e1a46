"""Find a card processor by name.

Configuration names a processor (``"simulator"``, later the card-token processors); this module
turns the name into an instance.  The processors that ship with kassa are listed in
:func:`_builtin` and imported only when first asked for, so loading the registry does not load
every payment system's dependencies.  Anything else (an external payment module, a test
double) calls :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from billing import processing
from billing.errors import UserError
from billing.processing import CardProcessor

ProcessorFactory = Callable[..., CardProcessor]

_registered: dict[str, ProcessorFactory] = {}
#: Settings given to every instance of a processor, by name (see :func:`configure`).
_configured: dict[str, dict[str, object]] = {}


def _builtin() -> dict[str, ProcessorFactory]:
    """The processors that ship with kassa, by name."""
    from processors.simulator import SimulatorProcessor

    return {SimulatorProcessor.name: SimulatorProcessor}


def _factories() -> dict[str, ProcessorFactory]:
    return {**_builtin(), **_registered}


def register(name: str, factory: ProcessorFactory) -> None:
    """Make ``factory`` available as ``name``.

    Registering the same factory again is harmless (a module imported twice); a different
    factory under a taken name is refused, because two plug-ins silently fighting over one name
    would send charges to the wrong processor.
    """
    existing = _factories().get(name)
    if existing is not None and existing is not factory:
        raise ValueError(f"a processor named {name!r} is already registered")
    _registered[name] = factory


def configure(name: str, **config: object) -> None:
    """Give every later instance of processor ``name`` these settings (until changed again;
    no arguments clears them).  For a process's setup: a benchmark's simulated latency, the
    crash test's persistent simulator state."""
    if config:
        _configured[name] = dict(config)
    else:
        _configured.pop(name, None)


def get_processor(name: str, **config: object) -> CardProcessor:
    """A new instance of the processor called ``name``, built with its :func:`configure`
    settings overridden by ``config``.

    Instances are cheap and made per request; processors keep shared state themselves.
    """
    factory = _factories().get(name)
    if factory is None:
        raise UserError("UNKNOWN_PROCESSOR", f"no payment processor named {name!r}", "processor")
    return factory(**{**_configured.get(name, {}), **config})


def available() -> list[str]:
    """The names :func:`get_processor` accepts, sorted."""
    return sorted(_factories())


@dataclass(frozen=True, slots=True)
class RegistryDirectory:
    """This registry as the :class:`~billing.processing.ProcessorDirectory` billing asks.

    ``default_card_processor`` is checked when the directory is made, so a misspelt
    ``KASSA_CARD_PROCESSOR`` stops the start instead of the first card.
    """

    default_card_processor: str = "simulator"

    def __post_init__(self) -> None:
        if self.default_card_processor not in _factories():
            raise UserError(
                "UNKNOWN_PROCESSOR",
                f"no payment processor named {self.default_card_processor!r}",
                "processor",
            )

    def processor_named(self, name: str) -> CardProcessor:
        return get_processor(name)


def serve_billing(default_card_processor: str = "simulator") -> None:
    """Hand this registry to billing (:func:`billing.processing.use_directory`): called once
    by each entry point, before any card is tokenized or charged."""
    processing.use_directory(RegistryDirectory(default_card_processor))
