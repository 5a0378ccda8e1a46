"""The browser-test machinery itself: live server on the test database, axe-core, artifacts.

These run against pages that exist without the portals (``/healthz``, ``/graphql``) and
against HTML set straight into the page, so a broken fixture shows up here, plainly,
rather than as a confusing failure in a portal test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.async_api import Page

from billing.db import Database
from tests.browser.accessibility import assert_accessible, axe_violations
from tests.browser.conftest import REPO, LiveServer
from tests.factories import new_party
from tests.graphql_support import api_key


async def test_live_server_answers_the_browser(page: Page) -> None:
    response = await page.goto("/healthz")
    assert response is not None and response.status == 200
    assert '"status":"ok"' in (await page.inner_text("body")).replace(" ", "")


async def test_live_server_sees_the_test_database(page: Page, db: Database) -> None:
    """Rows the test writes through ``db`` are what the server reads, and vice versa."""
    party = await new_party(db, name="Grace Hopper")
    token = await api_key(db)
    response = await page.request.post(
        "/graphql",
        headers={"authorization": f"Bearer {token}"},
        data={"query": "{ customers(first: 5) { edges { node { name } } } }"},
    )
    assert response.ok, await response.text()
    names = [edge["node"]["name"] for edge in (await response.json())["data"]["customers"]["edges"]]
    assert names == ["Grace Hopper"], names
    assert party.customer.name == "Grace Hopper"


async def test_tables_start_empty_for_each_test(page: Page, db: Database) -> None:
    """The previous test's customer is gone: ``server`` empties the tables through ``db``."""
    token = await api_key(db)
    response = await page.request.post(
        "/graphql",
        headers={"authorization": f"Bearer {token}"},
        data={"query": "{ customers(first: 5) { totalCount } }"},
    )
    assert (await response.json())["data"]["customers"]["totalCount"] == 0


async def test_graphiql_is_served_to_a_browser(page: Page, server: LiveServer) -> None:
    """A browser asking for /graphql (Accept: text/html) gets the GraphiQL page, not JSON."""
    response = await page.goto("/graphql")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in (await page.content()).lower()


ACCESSIBLE = """<!doctype html><html lang="en"><head><title>Fine</title></head><body>
<main><h1>Pay an invoice</h1>
<form><label for="amount">Amount</label><input id="amount" name="amount">
<button type="submit">Pay</button></form></main></body></html>"""

INACCESSIBLE = """<!doctype html><html><head><title>Broken</title></head><body>
<main><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<input id="amount" name="amount"><button type="submit"></button></main></body></html>"""


async def test_assert_accessible_passes_a_clean_page(page: Page) -> None:
    await page.set_content(ACCESSIBLE)
    await assert_accessible(page)


async def test_assert_accessible_names_rule_and_element(page: Page) -> None:
    await page.set_content(INACCESSIBLE)
    with pytest.raises(AssertionError) as failure:
        await assert_accessible(page)
    message = str(failure.value)
    for rule in ("html-has-lang", "image-alt", "label", "button-name"):
        assert f"- {rule} (" in message, message
    assert "at button" in message and "at img" in message, message
    # A second run reuses the injected script rather than loading it again.
    assert {v["id"] for v in await axe_violations(page)} >= {"image-alt", "button-name"}


FAILING_TEST = """
from playwright.async_api import Page


async def test_fails_on_purpose(page: Page) -> None:
    await page.set_content("<h1>Nothing to see</h1>")
    assert await page.inner_text("h1") == "Something else"
"""


def test_a_failing_browser_test_leaves_a_screenshot(tmp_path: Path, server: LiveServer) -> None:
    """Run a deliberately failing browser test in a child pytest; its report names the folder
    with the screenshot, HTML and console, and the files are there.

    The failing test lives outside the repository, with this package's fixtures loaded as
    plugins, so nothing is ever written into the source tree.
    """
    test_file = tmp_path / "test_fails_on_purpose.py"
    test_file.write_text(FAILING_TEST)
    artifacts = tmp_path / "artifacts"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KASSA_TEST_DATABASE_URL", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")
    }
    env["KASSA_TEST_ARTIFACTS"] = str(artifacts)
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(REPO / "pyproject.toml"),
            "--rootdir",
            str(REPO),
            "-p",
            "tests.conftest",
            "-p",
            "tests.browser.conftest",
            str(test_file),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = child.stdout + child.stderr
    assert child.returncode == 1, output
    folders = list(artifacts.iterdir())
    assert len(folders) == 1, output
    folder = folders[0]
    assert f"browser test artifacts: {folder}" in output, output
    assert (folder / "screenshot.png").read_bytes().startswith(b"\x89PNG"), output
    assert "Nothing to see" in (folder / "page.html").read_text()
    assert (folder / "console.txt").exists()
