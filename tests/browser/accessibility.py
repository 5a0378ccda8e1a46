"""``assert_accessible(page)``: axe-core's verdict on the page as it is now.

axe-core is vendored (``vendor/axe-core``, MPL-2.0) rather than fetched, because this
machine and CI reach no CDN, and a pinned copy keeps the verdict from changing under us.
Only violations of impact *serious* or *critical* fail a test: those stop a person from
using the page (no label on a field, no name on a button, unreadable contrast); *minor* and
*moderate* findings are best-practice advice and are returned for a test that wants them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")


@cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


async def axe_violations(page: Page, include: str | None = None) -> list[dict[str, Any]]:
    """Every violation axe-core finds on ``page`` (or inside the ``include`` selector).

    The script is evaluated through the DevTools protocol, not a ``<script>`` tag, so a
    page's Content-Security-Policy cannot block it; it is injected once per document.
    """
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(_axe_source() + "\n;undefined")
    violations: list[dict[str, Any]] = await page.evaluate(
        """async (include) => {
            const result = await window.axe.run(include ? document.querySelector(include)
                                                        : document,
                                                 {resultTypes: ["violations"]});
            return result.violations;
        }""",
        include,
    )
    return violations


def describe(violations: list[dict[str, Any]], url: str) -> str:
    """A report a person can act on: rule, impact, what it means, and each offending element."""
    lines = [f"{len(violations)} accessibility violation(s) on {url}:"]
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}"
            f" [{violation['helpUrl'].split('?')[0]}]"
        )
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            lines.append(f"    at {target}: {node['html'][:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", " ").strip()
            if summary:
                lines.append(f"      {summary[:400]}")
    return "\n".join(lines)


async def assert_accessible(page: Page, include: str | None = None) -> list[dict[str, Any]]:
    """Fail when axe-core finds a serious or critical violation; return the lesser ones."""
    violations = await axe_violations(page, include)
    failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    assert not failing, describe(failing, page.url)
    return violations
