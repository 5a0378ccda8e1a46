"""Settings from the environment, read once into an immutable object.

Everything configurable lives here so that ``create_app(settings)`` and the CLI get the same
values and tests can build their own without touching ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("var") / "kassa.db"
DEFAULT_PORT = 8000
#: Public, so it signs nothing that matters: production refuses it (:func:`start_problems`).
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-change-me"
MIN_SECRET_KEY_LENGTH = 32
#: Seals wallet settings at rest in development and the tests (:mod:`billing.secrets_at_rest`).
#: Public like the development secret, so production refuses to start without its own key.
DEVELOPMENT_ENCRYPTION_KEY = "dev-insecure-encryption-key-change-me"
#: 32 characters of ``secrets.token_urlsafe`` carry ~190 bits; HKDF stretches nothing, so a
#: short key would be a guessable one.
MIN_ENCRYPTION_KEY_LENGTH = 32
#: ``KASSA_BITCOIN_NETWORK``'s values (``billing.bitcoin.BitcoinNetwork``, lower-cased).
BITCOIN_NETWORKS = ("mainnet", "testnet", "signet", "regtest")


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def local_url(port: int) -> str:
    """Where a development server on this machine is reached."""
    return f"http://127.0.0.1:{port}"


def normalise_database_url(url: str) -> str:
    """Accept the usual ``postgresql://`` / ``sqlite:///`` forms and pick the async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=lambda: sqlite_url(DEFAULT_SQLITE_PATH))
    #: Signs session cookies and download links; must be set in production.
    secret_key: str = DEVELOPMENT_SECRET_KEY
    #: Seals secrets at rest — wallet account keys and price endpoints
    #: (:mod:`billing.secrets_at_rest`): any string of at least 32 random characters.  None
    #: is the public development key in development; outside development kassa refuses to
    #: start without one.
    encryption_key: str | None = None
    #: development: GraphiQL on, errors unmasked.
    environment: str = "development"
    #: The test clock may be moved through the API only when this is on.
    test_mode: bool = True
    graphiql: bool = True
    introspection: bool = True
    run_worker: bool = True
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2000
    #: The most nodes one operation may ask for (``schema.cost``: the product of ``first``
    #: down each path of lists, summed).
    max_query_cost: int = 50_000
    #: Queries in the subset ``schema.compiled`` supports run without graphql-core's
    #: executor (same resolvers, same rules); off: every operation runs through Strawberry.
    compiled_reads: bool = True
    #: Where outgoing mail (password reset links) is handed over: an SMTP server, which
    #: aiosmtplib upgrades with STARTTLS whenever the server offers it.
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "kassa@localhost"
    #: The address people reach kassa at, for links in e-mails and invoice PDF links.  A
    #: setting rather than the request's Host header, which an attacker chooses ("password
    #: reset poisoning").  In development it follows the port served; outside development it
    #: must be configured, and is empty (links relative) until it is.
    public_url: str = local_url(DEFAULT_PORT)
    #: The name at the head of the provider's own customers' invoice PDFs (a reseller's
    #: customers get the reseller's name).
    provider_name: str = "kassa"
    #: The processor new cards are tokenized with (``processors.registry`` names).
    card_processor: str = "simulator"
    #: How long a signed invoice PDF link (``Invoice.pdfUrl``) stays valid.
    pdf_link_seconds: int = 15 * 60
    #: "text" for a terminal, "json" (one object per line) for a log collector
    #: (:mod:`billing.logs`); JSON by default outside development.
    log_format: str = "text"
    #: The bearer token ``/metrics`` asks for.  Without one, ``/metrics`` is open in
    #: development and not served (404) anywhere else: its figures are the operator's.
    metrics_token: str | None = None
    #: The chain Bitcoin payments are taken on: mainnet, testnet, signet or regtest
    #: (``billing.bitcoin.BitcoinNetwork``).  Installation-wide, never an administrator's
    #: choice: test coins cost nothing, so a wallet on a test network must not be possible
    #: where payments are real.  Testnet by default in development, mainnet elsewhere.
    bitcoin_network: str = "testnet"
    #: The chain watcher the Bitcoin scan asks: "esplora", "core", "fake" (the demo's
    #: in-process fake chain, development only) or "" (none: payments are not detected).
    bitcoin_watcher: str = ""
    #: An Esplora server's API root, e.g. ``https://mempool.space/api`` or a self-hosted one.
    esplora_url: str | None = None
    #: A Bitcoin Core wallet's RPC URL (``http://127.0.0.1:8332/wallet/kassa``) and its
    #: RPC credentials.
    bitcoind_url: str | None = None
    bitcoind_user: str | None = None
    bitcoind_password: str | None = None
    #: Serve every payment system's fake under ``/fakes/<name>`` (the demo's processor
    #: accounts point there, so ``make run`` needs no internet).  Development (and the tests)
    #: only: :func:`start_problems` refuses it anywhere else.
    fake_processors: bool = False
    #: Where the fakes keep what must outlive a restart (the cards the demo stored): beside
    #: the SQLite database by default (:func:`default_fake_state_dir`).
    fake_state_dir: str = str(Path("var") / "fakes")
    #: Signed requests a cash terminal network may make per minute to ``/terminal/v1``
    #: (``KASSA_TERMINAL_RATE_LIMIT``; counted by each kassa process; 0: no limit).
    terminal_rate_limit: int = 120

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def fakes_allowed(self) -> bool:
        """Whether the payment systems' fakes may be served: in development and the tests."""
        return self.environment in ("development", "test")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def from_env(environ: Mapping[str, str] | None = None, port: int | None = None) -> Settings:
    """The settings ``environ`` (the process's environment) asks for.  ``port`` is the port
    ``kassa serve`` listens on (else ``PORT``, else 8000): in development, links point there
    unless ``KASSA_PUBLIC_URL`` says otherwise."""
    env = os.environ if environ is None else environ
    environment = env.get("KASSA_ENV", "development")
    development = environment == "development"
    url = env.get("KASSA_DATABASE_URL") or sqlite_url(DEFAULT_SQLITE_PATH)
    served_port = port if port is not None else int(env.get("PORT") or DEFAULT_PORT)
    public_url = env.get("KASSA_PUBLIC_URL") or (local_url(served_port) if development else "")
    return Settings(
        database_url=normalise_database_url(url),
        secret_key=env.get("KASSA_SECRET_KEY") or DEVELOPMENT_SECRET_KEY,
        encryption_key=env.get("KASSA_ENCRYPTION_KEY") or None,
        environment=environment,
        test_mode=_bool(env.get("KASSA_TEST_MODE"), development),
        graphiql=_bool(env.get("KASSA_GRAPHIQL"), development),
        introspection=_bool(env.get("KASSA_INTROSPECTION"), True),
        compiled_reads=_bool(env.get("KASSA_COMPILED_READS"), True),
        run_worker=_bool(env.get("KASSA_RUN_WORKER"), True),
        smtp_host=env.get("KASSA_SMTP_HOST") or Settings.smtp_host,
        smtp_port=int(env.get("KASSA_SMTP_PORT") or Settings.smtp_port),
        smtp_from=env.get("KASSA_SMTP_FROM") or Settings.smtp_from,
        public_url=public_url.rstrip("/"),
        provider_name=env.get("KASSA_PROVIDER_NAME") or Settings.provider_name,
        card_processor=env.get("KASSA_CARD_PROCESSOR") or Settings.card_processor,
        pdf_link_seconds=int(env.get("KASSA_PDF_LINK_SECONDS") or Settings.pdf_link_seconds),
        log_format=(env.get("KASSA_LOG_FORMAT") or ("text" if development else "json")).lower(),
        metrics_token=env.get("KASSA_METRICS_TOKEN") or None,
        bitcoin_network=(
            env.get("KASSA_BITCOIN_NETWORK") or ("testnet" if development else "mainnet")
        ).lower(),
        bitcoin_watcher=(env.get("KASSA_BITCOIN_WATCHER") or "").strip().lower(),
        esplora_url=env.get("KASSA_ESPLORA_URL") or None,
        bitcoind_url=env.get("KASSA_BITCOIND_URL") or None,
        bitcoind_user=env.get("KASSA_BITCOIND_USER") or None,
        bitcoind_password=env.get("KASSA_BITCOIND_PASSWORD") or None,
        fake_processors=_bool(env.get("KASSA_FAKE_PROCESSORS"), False),
        fake_state_dir=env.get("KASSA_FAKE_STATE_DIR") or default_fake_state_dir(url),
        terminal_rate_limit=int(
            env.get("KASSA_TERMINAL_RATE_LIMIT") or Settings.terminal_rate_limit
        ),
    )


def default_fake_state_dir(database_url: str) -> str:
    """``fakes/`` beside a SQLite database file, so the fakes' state lives and goes with the
    demo's data (and a command run elsewhere writes nothing into its working directory);
    ``var/fakes`` for a server database."""
    url = normalise_database_url(database_url)
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        return str(Path(url.removeprefix(prefix).split("?", 1)[0]).parent / "fakes")
    return Settings.fake_state_dir


#: ``KASSA_BITCOIN_WATCHER``'s values, and the setting each needs.
BITCOIN_WATCHERS = {
    "": None,
    "esplora": "KASSA_ESPLORA_URL",
    "core": "KASSA_BITCOIND_URL",
    "fake": None,
}


def _watcher_problems(settings: Settings) -> list[str]:
    """A misspelt watcher, or one without its address, would silently detect no payment."""
    watcher = settings.bitcoin_watcher
    if watcher not in BITCOIN_WATCHERS:
        return [
            f"KASSA_BITCOIN_WATCHER is {watcher!r}: use esplora, core or fake (development), "
            "or leave it empty"
        ]
    needed = BITCOIN_WATCHERS[watcher]
    given = {"esplora": settings.esplora_url, "core": settings.bitcoind_url}.get(watcher)
    if needed is not None and not given:
        return [f"KASSA_BITCOIN_WATCHER is {watcher}: set {needed} too"]
    if watcher == "fake" and not settings.development:
        return ["KASSA_BITCOIN_WATCHER=fake is the demo's fake chain: development only"]
    return []


def _encryption_key_problems(settings: Settings) -> list[str]:
    """Without its own key, production would seal wallet settings with the development key
    anyone can read here (or, had it no default, fail on the first wallet page); a short key
    can be guessed offline from one sealed value in a stolen backup."""
    key = settings.encryption_key
    if not key or key == DEVELOPMENT_ENCRYPTION_KEY:
        return [
            "KASSA_ENCRYPTION_KEY is not set (the development default is public): it seals "
            "wallet settings in the database; set it to a random value of at least "
            f"{MIN_ENCRYPTION_KEY_LENGTH} characters, kept apart from database backups, e.g. "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        ]
    if len(key) < MIN_ENCRYPTION_KEY_LENGTH:
        return [
            f"KASSA_ENCRYPTION_KEY is {len(key)} characters long: use at least "
            f"{MIN_ENCRYPTION_KEY_LENGTH}"
        ]
    return []


def start_problems(settings: Settings) -> list[str]:
    """Why ``kassa serve`` and ``kassa worker`` must not start with these settings (none in
    development).  Anyone can read the development secret in this repository and sign
    session tokens and invoice PDF links with it; a short one can be guessed; and without a
    public address, links in e-mails and PDF links cannot be made.  A misspelt Bitcoin
    network stops every start, development's too: it decides which keys are accepted."""
    problems = []
    if settings.bitcoin_network not in BITCOIN_NETWORKS:
        problems.append(
            f"KASSA_BITCOIN_NETWORK is {settings.bitcoin_network!r}: use one of "
            + ", ".join(BITCOIN_NETWORKS)
        )
    problems += _watcher_problems(settings)
    if settings.fake_processors and not settings.fakes_allowed:
        problems.append(
            "KASSA_FAKE_PROCESSORS is on: the payment systems' fakes are the demo's, "
            "development only (they approve any card and hand out their secrets)"
        )
    if settings.development:
        return problems
    if settings.secret_key == DEVELOPMENT_SECRET_KEY:
        problems.append(
            "KASSA_SECRET_KEY is not set (the development default is public): set it to a "
            f"random value of at least {MIN_SECRET_KEY_LENGTH} characters, e.g. the output "
            "of `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    elif len(settings.secret_key) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"KASSA_SECRET_KEY is {len(settings.secret_key)} characters long: use at least "
            f"{MIN_SECRET_KEY_LENGTH}"
        )
    problems += _encryption_key_problems(settings)
    if not settings.public_url:
        problems.append(
            "KASSA_PUBLIC_URL is not set: give the address people reach kassa at (such as "
            "https://billing.example.com), for the links in e-mails and invoice PDFs"
        )
    return problems
