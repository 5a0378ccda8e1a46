"""Code 128 barcodes (:mod:`billing.barcodes`) decode back to what they encode: the SVG's bars
and a PDF page drawn with them are rasterised and read with zxing-cpp, as a store's scanner
would read the printed slip."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import zxingcpp
from fpdf import FPDF
from PIL import Image

from billing.barcodes import QUIET_ZONE, bar_runs, code128_modules, code128_svg, draw_code128
from billing.errors import UserError

#: What PayNearMe's fake puts on a slip, a long digit run, and text with code-set switches.
SAMPLES = ["885085237034088", "12345678901234567890", "pnm_AB12-x 7"]
_SVG = "{http://www.w3.org/2000/svg}"


def _decoded(image: Image.Image) -> list[tuple[str, str]]:
    return [(found.text, found.format.name) for found in zxingcpp.read_barcodes(image)]


def _raster_svg(svg: str, scale: int = 3) -> Image.Image:
    """The SVG's white box and black bars painted pixel for pixel (the SVG is only
    rectangles: one white ``rect`` and one ``path`` of ``M x 0 h w v h h -w z`` bars)."""
    root = ET.fromstring(svg)
    _, _, width, height = (int(v) for v in root.attrib["viewBox"].split())
    background = root.find(f"{_SVG}rect")
    assert background is not None and background.attrib["fill"] == "#fff"
    image = Image.new("L", (width * scale, height * scale), 255)
    path = root.find(f"{_SVG}path")
    assert path is not None and path.attrib["fill"] == "#000"
    for x, w, h in re.findall(r"M(\d+) 0h(\d+)v(\d+)h-\2z", path.attrib["d"]):
        image.paste(0, (int(x) * scale, 0, (int(x) + int(w)) * scale, int(h) * scale))
    return image


@pytest.mark.parametrize("data", SAMPLES)
def test_the_svg_decodes_to_its_data(data: str) -> None:
    svg = code128_svg(data)
    assert _decoded(_raster_svg(svg)) == [(data, "Code128")]
    assert f'aria-label="Barcode {data}"' in svg
    assert "<text" not in svg  # the page prints the identifier beside the bars


def test_the_svg_keeps_the_quiet_zones_and_the_height() -> None:
    svg = code128_svg("12", height=30)
    root = ET.fromstring(svg)
    modules = code128_modules("12")
    assert root.attrib["viewBox"] == f"0 0 {len(modules) + 2 * QUIET_ZONE} 30"
    path = root.find(f"{_SVG}path")
    assert path is not None
    starts = [int(x) for x in re.findall(r"M(\d+) ", path.attrib["d"])]
    assert min(starts) == QUIET_ZONE  # no bar in the left quiet zone
    last_start, last_width = bar_runs(modules)[-1]
    assert QUIET_ZONE + last_start + last_width == len(modules) + QUIET_ZONE


def test_modules_and_runs_agree() -> None:
    modules = code128_modules("885085237034088")
    assert modules[:2] == [True, True] and modules[-2:] == [True, True]  # start … stop bars
    rebuilt = [False] * len(modules)
    for start, width in bar_runs(modules):
        rebuilt[start : start + width] = [True] * width
    assert rebuilt == modules
    assert bar_runs([False, True, True, False, True]) == [(1, 2), (4, 1)]


@pytest.mark.parametrize("data", ["", "naïve", "tab\there"])
def test_what_a_scanner_cannot_read_is_refused(data: str) -> None:
    with pytest.raises(UserError) as refused:
        code128_modules(data)
    assert refused.value.code == "INVALID_BARCODE_DATA"


def test_a_pdf_page_drawn_with_the_bars_decodes(tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler) is not installed")
    pdf = FPDF(unit="mm", format=(105, 148))
    pdf.add_page()
    draw_code128(pdf, SAMPLES[0], x=10, y=20, width=80, height=15)
    (tmp_path / "slip.pdf").write_bytes(bytes(pdf.output()))
    subprocess.run(
        ["pdftoppm", "-r", "300", "-gray", "-png", "-singlefile", "slip.pdf", "slip"],
        cwd=tmp_path,
        check=True,
    )
    with Image.open(tmp_path / "slip.png") as page:
        assert _decoded(page) == [(SAMPLES[0], "Code128")]
