"""docs/terminals.md's examples, run as an integrator would run them (its tests and the demo's
check that the documentation pays)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parent.parent / "docs" / "terminals.md"


def doc_block(language: str, containing: str) -> str:
    """The documentation's first ``language`` code block that holds ``containing``."""
    blocks: list[str] = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)
    return next(block for block in blocks if containing in block)


async def documented_pay(
    kassa: str, network: int, secret: str, account: str | None = None
) -> dict[str, Any]:
    """The documentation's shell function and its *pay* line, run by ``bash`` against
    ``kassa`` for ``network`` signing with ``secret`` (and, when given, another customer's
    ``account`` than the documentation's); the JSON kassa answered."""
    command = next(
        line for line in DOC.read_text().splitlines() if line.startswith("terminal pay ")
    )
    if account is not None:
        documented = json.loads(command.removeprefix("terminal pay '").removesuffix("'"))
        command = command.replace(json.dumps(documented["account"]), json.dumps(account))
    environment = {**os.environ, "KASSA": kassa, "NETWORK": str(network), "SECRET": secret}
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-c", f"{doc_block('sh', 'terminal() {')}\n{command}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer
