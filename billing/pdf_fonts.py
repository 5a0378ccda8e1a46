"""The typeface of invoice PDFs: DejaVu Sans, embedded, so names print in their own script.

The PDF core fonts (Helvetica and its kin) draw only Windows-1252: a customer called
Олена Коваленко or Ἀριστοτέλης would get question marks.  DejaVu Sans (a free font, its
licence in ``billing/fonts/LICENSE``) covers Latin with every diacritic (Vietnamese,
Yoruba, Polish …), Greek, Cyrillic, Armenian and Georgian.  fpdf2 embeds the glyphs a PDF
uses, nothing more, so a reader needs no font installed and prints what we drew.

fpdf2 parses the font file and cuts the embedded subset out of it for every PDF, at a cost
that grows with the file, so the faces in ``billing/fonts/`` are DejaVu Sans 2.37 reduced to
the blocks in :data:`BLOCKS` and without the kerning and OpenType layout tables fpdf2 does
not use: a third of the glyphs, half the time per PDF (``docs/benchmarks.md``).
``python -m billing.pdf_fonts [DIR]`` makes them again from DejaVu's own files (Debian's
``fonts-dejavu-core`` by default).

Not covered: Chinese, Japanese and Korean, and the right-to-left scripts (which would need
bidirectional shaping as well as glyphs).  A character the faces lack is spelled with its
base letter when it has one, else "?", so a name never breaks a render.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache
from pathlib import Path

from fontTools import subset  # type: ignore[import-untyped]  # (fontTools has no hints)
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from fpdf import FPDF

FONT_DIR = Path(__file__).resolve().parent / "fonts"
#: The family name the layout sets (``pdf.set_font(FAMILY, style, size)``).
FAMILY = "DejaVuSans"
#: fpdf2 style → (DejaVu's file, the reduced face kept here): regular and bold are all an
#: invoice uses.
FACES = {
    "": ("DejaVuSans.ttf", "DejaVuSans-invoices.ttf"),
    "B": ("DejaVuSans-Bold.ttf", "DejaVuSans-Bold-invoices.ttf"),
}
#: The Unicode blocks the reduced faces keep (first and last code point).
BLOCKS = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x024F),  # Latin-1 Supplement, Latin Extended-A and -B
    (0x0250, 0x02FF),  # IPA Extensions, Spacing Modifier Letters (ʻokina, ˈ)
    (0x0300, 0x036F),  # Combining Diacritical Marks (tone marks over Yoruba's ẹ and ọ)
    (0x0370, 0x03FF),  # Greek and Coptic
    (0x0400, 0x052F),  # Cyrillic and Cyrillic Supplement
    (0x0530, 0x058F),  # Armenian
    (0x10A0, 0x10FF),  # Georgian
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese, Yoruba ẹ ọ ṣ)
    (0x1F00, 0x1FFF),  # Greek Extended (polytonic)
    (0x2000, 0x206F),  # General Punctuation
    (0x20A0, 0x20CF),  # Currency Symbols (₦ ₵ ₴ ₹ …)
    (0x2100, 0x214F),  # Letterlike Symbols (№, ℅)
)
#: Tables fpdf2 neither reads nor embeds without text shaping (which invoices do not use).
_UNUSED_TABLES = ["kern", "GPOS", "GSUB", "GDEF", "FFTM", "hdmx", "MATH"]

#: Stand-ins for characters with no decomposition, tried before "?" when a face lacks one.
_LOOKALIKES = str.maketrans({"\u2011": "-", "\u2212": "-"})


def add_fonts(pdf: FPDF) -> None:
    """Make :data:`FAMILY` (regular and bold) available to ``pdf``."""
    for style, (_, face) in FACES.items():
        pdf.add_font(FAMILY, style, FONT_DIR / face)


@cache
def covered() -> frozenset[int]:
    """The code points every face draws (read once per process)."""
    faces = [set(TTFont(FONT_DIR / face, lazy=True).getBestCmap()) for _, face in FACES.values()]
    return frozenset(set.intersection(*faces))


def pdf_text(text: str) -> str:
    """``text`` as the faces can draw it, on one line.

    Composed (NFC), so a letter with its accent is one glyph where Unicode has one; control
    characters (a newline in a description) become spaces, since every cell is one line; a
    character the faces lack is spelled with its base letter, or "?".
    """
    text = unicodedata.normalize("NFC", text)
    fonts = covered()
    if all(ord(char) in fonts and char.isprintable() for char in text):
        return text
    spelled = []
    for char in text.translate(_LOOKALIKES):
        if not char.isprintable():
            spelled.append(" ")
        elif ord(char) in fonts:
            spelled.append(char)
        else:
            base = "".join(
                part
                for part in unicodedata.normalize("NFKD", char)
                if not unicodedata.combining(part) and ord(part) in fonts
            )
            spelled.append(base or "?")
    return "".join(spelled)


def reduce_face(source: Path, target: Path) -> None:
    """Write ``source`` (a DejaVu Sans file) to ``target`` with :data:`BLOCKS` only."""
    options = subset.Options(
        notdef_outline=True,
        recommended_glyphs=True,
        layout_features=[],
        glyph_names=True,  # fpdf2 subsets by glyph name: stored names save making them up
        name_IDs=["*"],
        name_languages=["*"],
    )
    options.drop_tables += _UNUSED_TABLES
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[code for first, last in BLOCKS for code in range(first, last + 1)])
    subsetter.subset(font)
    subset.save_font(font, str(target), options)


def main(argv: list[str]) -> None:
    """Make the reduced faces from the DejaVu files in ``argv[0]`` (or Debian's)."""
    source = Path(argv[0] if argv else "/usr/share/fonts/truetype/dejavu")
    for original, face in FACES.values():
        reduce_face(source / original, FONT_DIR / face)
        print(f"{FONT_DIR / face}: {(FONT_DIR / face).stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
