"""Find a payment processor by name.

Processors are found through Python entry points in the group ``kassa.processors``
(``importlib.metadata``), the built-ins included: kassa's own ``pyproject.toml`` declares
``simulator``, ``authorize_net``, ``stripe`` and ``external_module``, and a third party ships
another processor as a package that declares one more entry point — no change to kassa.

Entry points are loaded lazily, each on first use and on its own: a processor whose module is
missing or fails to import is left out (and :func:`load_problems` says why) while every other
one keeps working, so one broken plug-in never stops charging through the rest.  Test doubles
call :func:`register` instead.

Every processor class declares ``name``, ``capabilities`` (a frozenset of
:class:`billing.payment_systems.Capability`) and ``method_kinds``; made for a processor
account, its factory receives that account's :class:`~billing.payment_systems.ProcessorConfig`
as the keyword ``config``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from billing import payment_systems, processing
from billing.errors import UserError
from billing.payment_systems import ProcessorConfig, ProcessorInfo
from billing.processing import CardProcessor

log = logging.getLogger("kassa.processors.registry")

#: The entry-point group processors are declared in.
ENTRY_POINT_GROUP = "kassa.processors"

ProcessorFactory = Callable[..., CardProcessor]

_registered: dict[str, ProcessorFactory] = {}
#: Entry points loaded so far, and those that failed to load (name → why).
_loaded: dict[str, ProcessorFactory] = {}
_problems: dict[str, str] = {}
_lock = threading.Lock()
#: Settings given to every instance of a processor, by name (see :func:`configure`).
_configured: dict[str, dict[str, object]] = {}


def _declared() -> dict[str, EntryPoint]:
    """The entry points of the group, by name (the first one wins if two share a name)."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point)
    return found


def _load(name: str) -> ProcessorFactory | None:
    """Entry point ``name``'s factory, imported on first use; None when it is not declared
    or does not load (the reason is kept for :func:`load_problems` and logged once)."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        if name in _problems:
            return None
    point = _declared().get(name)
    if point is None:
        return None
    try:
        factory: ProcessorFactory = point.load()
    except Exception as error:  # a plug-in's import failure must not stop the others
        reason = f"{type(error).__name__}: {error}"
        with _lock:
            _problems[name] = reason
        log.warning("payment processor %r (%s) does not load: %s", name, point.value, reason)
        return None
    with _lock:
        _loaded[name] = factory
    return factory


def _factory(name: str) -> ProcessorFactory | None:
    return _registered.get(name) or _load(name)


def register(name: str, factory: ProcessorFactory) -> None:
    """Make ``factory`` available as ``name`` (for test doubles; packages use entry points).

    Registering the same factory again is harmless (a module imported twice); a different
    factory under a taken name is refused, because two plug-ins silently fighting over one name
    would send charges to the wrong processor.
    """
    existing = _factory(name)
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
    settings overridden by ``config`` (``config=ProcessorConfig(...)`` for an account).

    Instances are cheap and made per request; processors keep shared state themselves.
    """
    factory = _factory(name)
    if factory is None:
        raise UserError("UNKNOWN_PROCESSOR", f"no payment processor named {name!r}", "processor")
    return factory(**{**_configured.get(name, {}), **config})


def available() -> list[str]:
    """The names :func:`get_processor` accepts (every declared one that loads), sorted."""
    return sorted(n for n in {*_declared(), *_registered} if _factory(n) is not None)


def load_problems() -> dict[str, str]:
    """Declared processors that do not load, with why (after :func:`available` tried all)."""
    available()
    with _lock:
        return dict(_problems)


def describe(name: str) -> ProcessorInfo | None:
    """What processor ``name`` declares: its capabilities and method kinds; None if it is
    not installed or does not load."""
    factory = _factory(name)
    if factory is None:
        return None
    return ProcessorInfo(
        name=name,
        capabilities=frozenset(getattr(factory, "capabilities", frozenset())),
        method_kinds=frozenset(getattr(factory, "method_kinds", frozenset())),
    )


@dataclass(frozen=True, slots=True)
class RegistryDirectory:
    """This registry as billing's :class:`~billing.processing.ProcessorDirectory` and
    :class:`~billing.payment_systems.ProcessorCatalog`.

    ``default_card_processor`` is checked when the directory is made, so a misspelt
    ``KASSA_CARD_PROCESSOR`` stops the start instead of the first card.
    """

    default_card_processor: str = "simulator"

    def __post_init__(self) -> None:
        if _factory(self.default_card_processor) is None:
            raise UserError(
                "UNKNOWN_PROCESSOR",
                f"no payment processor named {self.default_card_processor!r}",
                "processor",
            )

    def processor_named(self, name: str) -> CardProcessor:
        return get_processor(name)

    def describe(self, name: str) -> ProcessorInfo | None:
        return describe(name)

    def installed(self) -> list[ProcessorInfo]:
        return [info for name in available() if (info := describe(name)) is not None]

    def processor_for(self, name: str, config: ProcessorConfig) -> CardProcessor:
        return get_processor(name, config=config)


def serve_billing(default_card_processor: str = "simulator") -> None:
    """Hand this registry to billing (:func:`billing.processing.use_directory` and
    :func:`billing.payment_systems.use_catalog`): called once by each entry point, before any
    card is tokenized or charged."""
    directory = RegistryDirectory(default_card_processor)
    processing.use_directory(directory)
    payment_systems.use_catalog(directory)
