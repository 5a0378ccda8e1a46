"""Fixtures for the browser tests: a live server, Debian's Chromium, a fresh page per test.

How the pieces fit:

* **Skipping.** Without ``/usr/bin/chromium`` every test in this package is skipped with a
  reason saying so, and the run's summary repeats it in one plain line, so a green run
  cannot silently have left the browser out.  Playwright never downloads a browser here:
  it drives Debian's package (``apt-get install chromium``, which ``.ci/run`` does).
* **Live server.** One uvicorn server per session, in a background thread with its own
  event loop, serving ``create_app(settings)`` on a free ``127.0.0.1`` port.  It uses the
  very ``settings`` of ``tests/conftest.py`` (so the same SQLite file or private PostgreSQL
  database) with ``run_worker`` off, and opens its own engine in its own loop.  A thread
  rather than a subprocess keeps process-wide state shared with the test (the card
  simulator, which ``_fresh_simulator`` resets per test); a loop of its own means the
  server keeps answering while the test awaits the browser.  The ``server`` fixture depends
  on ``db``, so every browser test starts from empty tables like every other test.
* **Browser.** One Chromium per session, the ``chromium`` fixture (launching costs about a
  second; not called ``browser``, which is the portal tests' httpx client); each test gets a
  new context (its own cookies and storage) and page, with short timeouts so a missing
  element fails in seconds rather than hanging the suite.
* **Failure artifacts.** ``pytest_runtest_makereport`` keeps each phase's report on the
  item; the ``page`` fixture's teardown reads it and, when the test failed, saves a
  full-page screenshot, the page's HTML and the browser console into
  ``test-artifacts/<test>/`` (or ``$KASSA_TEST_ARTIFACTS``), prints the folder (shown in the
  failure report) and lists it again at the end of the run.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from app import create_app
from billing.db import Database
from settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
#: As this machine's notes require: no sandbox (we run as root), and no background
#: networking, whose connections the closed network would refuse many times over.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_REASON = "browser tests: skipped (no /usr/bin/chromium; apt-get install chromium)"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("KASSA_TEST_ARTIFACTS") or REPO / "test-artifacts")
#: Milliseconds Playwright waits for an element or a navigation before failing the test.
ACTION_TIMEOUT_MS = 10_000
BROWSER_DIR = Path(__file__).resolve().parent
# ``expect(...)`` retries for as long as an action may wait: two shared cores can be slow.
expect.set_options(timeout=ACTION_TIMEOUT_MS)

_reports = pytest.StashKey[dict[str, pytest.TestReport]]()
#: Folders of failure artifacts written in this run, listed again in the run's summary.
_saved: list[Path] = []
#: Whether this run collected browser tests and skipped them for want of Chromium.
_skipped_without_chromium = False


# --- skipping without Chromium --------------------------------------------------------------


def chromium_available() -> bool:
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


def _in_browser_package(item: pytest.Item) -> bool:
    return BROWSER_DIR in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip (visibly, with the reason) rather than error when Chromium is not installed.

    This hook sees every collected item, not only this package's, hence the path filter.
    """
    global _skipped_without_chromium
    if chromium_available():
        return
    for item in items:
        if _in_browser_package(item):
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
            _skipped_without_chromium = True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly that the browser was left out, and where failed tests left their pictures."""
    if _skipped_without_chromium:
        terminalreporter.write_line(SKIP_REASON)
    if _saved:
        terminalreporter.write_sep("-", "browser test artifacts (screenshot, HTML, console)")
        for folder in _saved:
            terminalreporter.write_line(str(folder))


# --- failure reports for the page fixture ---------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixture teardown knows whether the test failed
    (a fixture cannot otherwise tell)."""
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


def failed(node: pytest.Item) -> bool:
    """Whether the test's setup or body failed (as recorded by the hook above)."""
    reports = node.stash.get(_reports, {})
    return any(r.failed for when, r in reports.items() if when in ("setup", "call"))


def artifact_folder(item: pytest.Item) -> Path:
    """``test_portal_x.py::test_y[a]`` → ``test-artifacts/test_portal_x--test_y-a-``."""
    return ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{item.path.stem}--{item.name}")


async def save_artifacts(page: Page, folder: Path, console: list[str]) -> list[Path]:
    """Save what a person would look at first: the screen, the HTML behind it, the console.

    Each piece is tried on its own, so a page that crashed still leaves whatever it can.
    A previous failure's files are removed first, so the folder tells of this run only.
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    saved: list[Path] = []
    screenshot = folder / "screenshot.png"
    try:
        await page.screenshot(path=str(screenshot), full_page=True, timeout=5_000)
        saved.append(screenshot)
    except Exception as error:
        (folder / "screenshot-error.txt").write_text(f"{error}\n")
    try:
        html = folder / "page.html"
        html.write_text(f"<!-- {page.url} -->\n{await page.content()}")
        saved.append(html)
    except Exception as error:
        (folder / "page-error.txt").write_text(f"{error}\n")
    log = folder / "console.txt"
    log.write_text(f"url: {page.url}\n" + "".join(f"{line}\n" for line in console))
    saved.append(log)
    return saved


# --- the live server ------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveServer:
    """A running kassa: its address and the settings it was made with."""

    url: str
    settings: Settings


@pytest.fixture(scope="session")
def _live_server(settings: Settings, _schema: None) -> Iterator[LiveServer]:
    if not chromium_available():
        pytest.skip(SKIP_REASON)
    server_settings = settings.with_(run_worker=False)
    app = create_app(server_settings)
    # Binding the socket here (port 0) leaves no window for another process to take the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)  # in a thread it installs no signal handlers
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=serve, name="kassa-live-server", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started or errors or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    if not server.started:
        raise RuntimeError(f"the live server did not start: {errors or 'timed out'}")
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", settings=server_settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def server(_live_server: LiveServer, db: Database) -> LiveServer:
    """The live server, with the tables emptied for this test (through ``db``)."""
    return _live_server


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, driven by Playwright, for the whole session."""
    if not chromium_available():
        pytest.skip(SKIP_REASON)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(chromium: Browser, server: LiveServer) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) whose relative URLs go to the live server."""
    ctx = await chromium.new_context(
        base_url=server.url, locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    ctx.set_default_timeout(ACTION_TIMEOUT_MS)
    ctx.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A new tab; if the test fails, its screenshot, HTML and console go to test-artifacts/."""
    tab = await context.new_page()
    console: list[str] = []
    tab.on("console", lambda message: console.append(f"console.{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    tab.on(
        "requestfailed",
        lambda req: console.append(f"requestfailed: {req.method} {req.url} {req.failure}"),
    )
    yield tab
    if failed(request.node):
        folder = artifact_folder(request.node)
        await save_artifacts(tab, folder, console)
        _saved.append(folder)
        print(f"browser test artifacts: {folder}")
