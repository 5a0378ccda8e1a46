"""Code 128 barcodes of a cash slip's payment identifier, for the printable slip and its PDF.

A store's scanner reads the slip (PayNearMe's, :class:`billing.payment_systems.Slip`), so the
bars must be exactly Code 128 with its quiet zones.  The encoding (start code, the shortest mix
of code sets B and C, the check symbol, the stop pattern) comes from ``python-barcode``; this
module only turns its modules into what kassa draws:

* :func:`code128_svg` — inline SVG for the HTML slip and its print stylesheet.  No text is
  baked in: the page prints the identifier beside the bars in its own font, where it stays
  selectable and wraps with the layout.
* :func:`code128_modules` / :func:`bar_runs` — the same bars as modules, and as runs an fpdf2
  page draws with one ``rect`` each (:func:`draw_code128`).

Pure functions, no I/O.
"""

from __future__ import annotations

from html import escape

from barcode.codex import Code128  # type: ignore[import-untyped]
from fpdf import FPDF

from billing.errors import UserError

#: Blank modules either side of the bars: Code 128 needs at least ten.
QUIET_ZONE = 10
#: Default bar height in modules (about 15% of a typical identifier's width, readable by
#: hand-held scanners).
BAR_HEIGHT = 50


def code128_modules(data: str) -> list[bool]:
    """The bars of ``data`` as modules (True = black), without the quiet zones.

    Printable ASCII only, as slips carry: anything else is refused rather than encoded in a
    way a store's scanner might not read.
    """
    if not data or not data.isascii() or not data.isprintable():
        raise UserError(
            "INVALID_BARCODE_DATA", "a barcode needs printable ASCII characters", "data"
        )
    (pattern,) = Code128(data).build()
    return [module == "1" for module in pattern]


def bar_runs(modules: list[bool]) -> list[tuple[int, int]]:
    """The black runs of ``modules`` as ``(start, width)`` in modules, left to right."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, black in enumerate([*modules, False]):
        if black and start is None:
            start = index
        elif not black and start is not None:
            runs.append((start, index - start))
            start = None
    return runs


def code128_svg(data: str, *, height: int = BAR_HEIGHT) -> str:
    """``data`` as an inline ``<svg>`` in module units (scale it with CSS ``width``); white
    background and quiet zones included, ``aria-label`` naming the content."""
    modules = code128_modules(data)
    width = len(modules) + 2 * QUIET_ZONE
    bars = "".join(
        f"M{QUIET_ZONE + start} 0h{run}v{height}h-{run}z" for start, run in bar_runs(modules)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Barcode {escape(data)}" shape-rendering="crispEdges" '
        f'preserveAspectRatio="none">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<path d="{bars}" fill="#000"/></svg>'
    )


def draw_code128(pdf: FPDF, data: str, x: float, y: float, width: float, height: float) -> None:
    """Draw ``data``'s bars on ``pdf`` in the box at ``x``, ``y`` (page units), quiet zones
    inside the box, black on whatever the page has there (a slip's page is white)."""
    modules = code128_modules(data)
    module = width / (len(modules) + 2 * QUIET_ZONE)
    pdf.set_fill_color(0, 0, 0)
    for start, run in bar_runs(modules):
        pdf.rect(x + (QUIET_ZONE + start) * module, y, run * module, height, style="F")
