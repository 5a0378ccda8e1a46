"""How an invoice PDF looks: what it shows (:class:`InvoiceDocument`) and how it is drawn.

:func:`render_invoice_pdf` draws a document with fpdf2 and touches nothing else (no
database), so it can run in a worker thread and be benchmarked alone (``bench/pdf.py``);
:mod:`billing.invoice_pdfs` gathers the documents, keeps the PDFs and runs the job.

The text is set in DejaVu Sans, embedded (:mod:`billing.pdf_fonts`), so names and
addresses print in their own script.  The head of the page is the owner's letterhead
(:class:`billing.letterheads.LetterheadDetails`); its payment instructions follow the
figures while something is still due, and a void invoice says when and why it was voided.
Money is formatted from integer minor units (:class:`billing.money.Money`); no float is
involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from fpdf import FPDF
from fpdf.fonts import TTFFont

from billing.models import InvoiceKind, InvoiceStatus
from billing.money import Money
from billing.pdf_fonts import FAMILY, add_fonts, pdf_text

if TYPE_CHECKING:  # at run time only a name here: letterheads reaches this module in turn
    from billing.letterheads import LetterheadDetails

# --- what the PDF shows -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """One charge on the invoice; ``service_date`` is the customer's local day."""

    account_number: str
    description: str
    service_date: date
    amount: int


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """Everything an invoice PDF shows, as plain values (amounts in minor units)."""

    invoice_id: int
    #: Who the invoice is from: the owner of the customer (the provider or a reseller).
    letterhead: LetterheadDetails
    customer_name: str
    customer_address: str | None
    customer_email: str | None
    number: str
    kind: InvoiceKind
    currency: str
    period_start: date
    #: The period's last day (an invoice's ``period_end`` is the exclusive day after).
    period_last_day: date
    issue_date: date
    due_date: date
    lines: tuple[DocumentLine, ...]
    previous_balance: int
    payments_in_period: int
    total: int
    balance_due: int
    amount_paid: int
    #: What is still to pay on this invoice: nothing once it is PAID or VOID.
    amount_due: int
    status: InvoiceStatus
    #: Why and when (the customer's local day) a VOID invoice was voided.
    void_reason: str | None = None
    voided_on: date | None = None


# --- drawing ------------------------------------------------------------------------------
#
# Everything is placed with fpdf2's low-level ``text``, ``line`` and ``rect`` through
# :func:`_put`: a ``cell`` costs ten times as much, and a bill has a hundred pieces of text.

DAY_FORMAT = "%d %b %Y"
_MARGIN = 15.0
_WIDTH = 210.0 - 2 * _MARGIN
_ROW = 6.0
#: The charges table: (heading, width in mm, alignment).
_COLUMNS = (
    ("Date", 26.0, "L"),
    ("Account", 38.0, "L"),
    ("Description", 86.0, "L"),
    ("Amount", 30.0, "R"),
)
#: Status colours (RGB): settled is green, trouble is red, the rest is ink.
_STATUS_COLOURS = {
    InvoiceStatus.PAID: (0, 128, 60),
    InvoiceStatus.OVERDUE: (190, 30, 30),
    InvoiceStatus.VOID: (190, 30, 30),
}
_INK = (20, 20, 20)
_MUTED = (100, 100, 100)
_RULE = (200, 200, 200)
_SHADE = (238, 238, 238)


def _day(value: date) -> str:
    return value.strftime(DAY_FORMAT)


def _status_label(status: InvoiceStatus) -> str:
    """``PARTIALLY_PAID`` → ``PARTIALLY PAID``; any status, present or future, prints."""
    return status.value.replace("_", " ")


def _widths(pdf: FPDF) -> dict[int, float]:
    """The current face's advance widths (thousandths of the font size) by code point."""
    font = pdf.current_font
    assert isinstance(font, TTFFont), "set with _style, an embedded face"
    return font.cw


def _width(pdf: FPDF, text: str) -> float:
    """How wide drawable ``text`` is in the current font, in mm.

    From the font's advance widths directly (per code point; combining marks have none):
    fpdf2's general ``get_string_width`` (bidi, shaping) costs more than drawing the text.
    """
    widths = _widths(pdf)
    return sum(widths[ord(char)] for char in text) * pdf.font_size_pt * 0.001 / pdf.k


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """``text`` made drawable and cut (with "...") to fit a box ``width`` mm wide."""
    text = pdf_text(text)
    room = width - 2 * pdf.c_margin
    if _width(pdf, text) <= room:
        return text
    room -= _width(pdf, "...")
    widths = _widths(pdf)
    scale = pdf.font_size_pt * 0.001 / pdf.k
    used = 0.0
    for cut, char in enumerate(text):
        used += widths[ord(char)] * scale
        if used > room:
            return text[:cut].rstrip() + "..."
    return text


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """``text`` broken into lines that fit ``width`` mm in the current font, at spaces;
    its own line breaks are kept (a blank line stays blank), a word too long is cut."""
    room = width - 2 * pdf.c_margin
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and _width(pdf, pdf_text(candidate)) > room:
                lines.append(line)
                candidate = word
            line = candidate
        lines.append(line)
    return lines


def _style(pdf: FPDF, size: float, bold: bool = False, colour: tuple[int, int, int] = _INK) -> None:
    pdf.set_font(FAMILY, "B" if bold else "", size)
    pdf.set_text_color(*colour)


def _put(
    pdf: FPDF, x: float, top: float, width: float, text: str, align: str = "L", height: float = _ROW
) -> None:
    """Draw ``text`` on one line in the box ``width`` × ``height`` at (``x``, ``top``),
    cut to fit, vertically centred, aligned left, right or centre (``L``, ``R``, ``C``)."""
    fitted = _fit(pdf, text, width)
    if align == "R":
        x += width - pdf.c_margin - _width(pdf, fitted)
    elif align == "C":
        x += (width - _width(pdf, fitted)) / 2
    else:
        x += pdf.c_margin
    pdf.text(x, top + (height + pdf.font_size * 0.7) / 2, fitted)


class _InvoicePage(FPDF):
    """A4 pages whose footer names the invoice and the page, for printed multi-page bills."""

    def __init__(self, number: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.number = number
        add_fonts(self)
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(auto=True, margin=20)

    def footer(self) -> None:
        # A cell, not _put: fpdf2 fills in the page count ({nb}) only in cells.
        _style(self, 8, colour=_MUTED)
        self.set_y(-14)
        self.cell(0, 5, f"Invoice {self.number} - page {self.page_no()} of {{nb}}", align="C")


def _pair(
    pdf: FPDF,
    label: str,
    value: str,
    x: float,
    label_width: float,
    value_width: float,
    bold: bool = False,
) -> None:
    """One "label  value" row of a details block at ``x``; moves down a row."""
    top = pdf.get_y()
    _style(pdf, 9, colour=_MUTED)
    _put(pdf, x, top, label_width, label, height=5)
    _style(pdf, 10 if bold else 9, bold=bold)
    _put(pdf, x + label_width, top, value_width, value, align="R", height=5)
    pdf.set_y(top + 5)


def _contacts(letterhead: LetterheadDetails) -> list[str]:
    return [c for c in (letterhead.email, letterhead.phone, letterhead.website) if c]


def _header(pdf: FPDF, document: InvoiceDocument) -> None:
    """The letterhead on the left (name, address, tax id, contact), the title and status on
    the right, and a rule under both."""
    letterhead = document.letterhead
    top = pdf.get_y()
    left = _WIDTH * 0.62
    _style(pdf, 16, bold=True)
    _put(pdf, _MARGIN, top, left, letterhead.name, height=9)
    _style(pdf, 20, bold=True)
    _put(pdf, _MARGIN + left, top, _WIDTH - left, "INVOICE", align="R", height=9)
    _style(pdf, 14, bold=True, colour=_STATUS_COLOURS.get(document.status, _INK))
    _put(pdf, _MARGIN + left, top + 9, _WIDTH - left, _status_label(document.status), "R", 8)

    y = top + 10
    _style(pdf, 9, colour=_MUTED)
    details = (letterhead.address or "").splitlines()
    if letterhead.tax_id:
        details.append(f"Tax ID: {letterhead.tax_id}")
    contacts = _contacts(letterhead)
    together = "   ".join(contacts)
    if _width(pdf, pdf_text(together)) <= left - 2 * pdf.c_margin:
        details.append(together)
    else:
        details.extend(contacts)
    for line in details:
        if line:
            _put(pdf, _MARGIN, y, left, line, height=4.5)
            y += 4.5
    y = max(y, top + 9 + 8) + 3
    pdf.set_draw_color(*_RULE)
    pdf.line(_MARGIN, y, _MARGIN + _WIDTH, y)
    pdf.set_y(y + 5)


def _void_notice(pdf: FPDF, document: InvoiceDocument) -> None:
    """A void invoice says so above everything else it shows, with when and why."""
    if document.status != InvoiceStatus.VOID:
        return
    when = f" on {_day(document.voided_on)}" if document.voided_on else ""
    reason = f": {document.void_reason}" if document.void_reason else "."
    _style(pdf, 10, bold=True, colour=_STATUS_COLOURS[InvoiceStatus.VOID])
    lines = _wrap(pdf, f"This invoice was voided{when}{reason} Nothing is due on it.", _WIDTH - 4)
    top = pdf.get_y()
    height = 5 * len(lines) + 4
    pdf.set_draw_color(*_STATUS_COLOURS[InvoiceStatus.VOID])
    pdf.set_line_width(0.4)
    pdf.rect(_MARGIN, top, _WIDTH, height)
    pdf.set_line_width(0.2)
    for n, line in enumerate(lines):
        _put(pdf, _MARGIN + 2, top + 2 + 5 * n, _WIDTH - 4, line, height=5)
    pdf.set_y(top + height + 6)


def _parties_and_dates(pdf: FPDF, document: InvoiceDocument) -> None:
    """Bill-to on the left, the invoice's number and dates on the right."""
    top = pdf.get_y()
    left = _WIDTH * 0.5
    _style(pdf, 9, colour=_MUTED)
    _put(pdf, _MARGIN, top, left, "Bill to", height=5)
    _style(pdf, 11, bold=True)
    _put(pdf, _MARGIN, top + 5, left, document.customer_name)
    y = top + 11
    _style(pdf, 9)
    address_lines = (document.customer_address or "").splitlines()
    for line in [*address_lines, document.customer_email or ""]:
        if line.strip():
            _put(pdf, _MARGIN, y, left, line.strip(), height=5)
            y += 5

    x = _MARGIN + left + 10
    kind = "Regular" if document.kind == InvoiceKind.REGULAR else "Closed early"
    for label, value in (
        ("Invoice number", document.number),
        ("Kind", kind),
        ("Issue date", _day(document.issue_date)),
        ("Due date", _day(document.due_date)),
        ("Period", f"{_day(document.period_start)} to {_day(document.period_last_day)}"),
    ):
        _pair(pdf, label, value, x, 30, _WIDTH - left - 40)
    pdf.set_y(max(y, pdf.get_y()) + 6)


def _table_heading(pdf: FPDF) -> None:
    top = pdf.get_y()
    pdf.set_fill_color(*_SHADE)
    pdf.rect(_MARGIN, top, _WIDTH, _ROW + 1, style="F")
    _style(pdf, 9, bold=True)
    x = _MARGIN
    for heading, width, align in _COLUMNS:
        _put(pdf, x, top, width, heading, align=align, height=_ROW + 1)
        x += width
    pdf.set_y(top + _ROW + 1)


def _lines(pdf: FPDF, document: InvoiceDocument) -> None:
    """The charges, with the heading repeated on every page the table runs onto."""
    _style(pdf, 11, bold=True)
    _put(pdf, _MARGIN, pdf.get_y(), _WIDTH, "Charges", height=7)
    pdf.set_y(pdf.get_y() + 7)
    _table_heading(pdf)
    if not document.lines:
        _style(pdf, 9, colour=_MUTED)
        _put(pdf, _MARGIN, pdf.get_y(), _WIDTH, "No charges in this period.")
        pdf.set_y(pdf.get_y() + _ROW)
    pdf.set_draw_color(*_RULE)
    _style(pdf, 9)
    for line in document.lines:
        if pdf.will_page_break(_ROW):
            pdf.add_page()
            _table_heading(pdf)
            _style(pdf, 9)
        top = pdf.get_y()
        x = _MARGIN
        texts = (
            _day(line.service_date),
            line.account_number,
            line.description,
            str(Money(line.amount, document.currency)),
        )
        for (_, width, align), text in zip(_COLUMNS, texts, strict=True):
            _put(pdf, x, top, width, text, align=align)
            x += width
        pdf.line(_MARGIN, top + _ROW, _MARGIN + _WIDTH, top + _ROW)
        pdf.set_y(top + _ROW)
    pdf.set_y(pdf.get_y() + 6)


def _summary(pdf: FPDF, document: InvoiceDocument) -> None:
    """The statement (how the balance came about), then what this invoice still asks for."""

    def money(minor: int) -> str:
        return str(Money(minor, document.currency))

    statement = (
        ("Previous balance", money(document.previous_balance)),
        ("Payments received in the period", money(-document.payments_in_period)),
        ("This period's charges", money(document.total)),
        ("Balance as of this invoice", money(document.balance_due)),
    )
    invoice = (
        ("Invoice total", money(document.total)),
        ("Paid on this invoice", money(document.amount_paid)),
    )
    due = (
        ("Amount due", money(document.amount_due)),
        ("Status", _status_label(document.status)),
    )
    if pdf.will_page_break(5 * (len(statement) + len(invoice) + len(due)) + 3):
        pdf.add_page()
    x = _MARGIN + _WIDTH - 100
    for label, value in statement:
        _pair(pdf, label, value, x, 60, 40)
    pdf.set_y(pdf.get_y() + 3)
    for label, value in invoice:
        _pair(pdf, label, value, x, 60, 40)
    for label, value in due:
        _pair(pdf, label, value, x, 60, 40, bold=True)


def _payment_instructions(pdf: FPDF, document: InvoiceDocument) -> None:
    """How to pay, from the letterhead: while something is due on the invoice."""
    instructions = document.letterhead.payment_instructions
    if not instructions or document.amount_due <= 0:
        return
    _style(pdf, 9)
    lines = _wrap(pdf, instructions, _WIDTH)
    pdf.set_y(pdf.get_y() + 8)
    if pdf.will_page_break(7 + 4.5 * len(lines)):
        pdf.add_page()
    _style(pdf, 11, bold=True)
    _put(pdf, _MARGIN, pdf.get_y(), _WIDTH, "How to pay", height=7)
    y = pdf.get_y() + 7
    _style(pdf, 9)
    for line in lines:
        _put(pdf, _MARGIN, y, _WIDTH, line, height=4.5)
        y += 4.5
    pdf.set_y(y)


def render_invoice_pdf(document: InvoiceDocument) -> bytes:
    """Draw ``document`` as an A4 PDF.  Pure: the same document always gives the same bytes.

    The PDF is dated at the issue date rather than at the render, which is what keeps it
    byte-for-byte stable across re-renders (and its SHA-256 a usable ETag).
    """
    pdf = _InvoicePage(pdf_text(document.number))
    pdf.set_title(pdf_text(f"Invoice {document.number}"))
    pdf.set_author(pdf_text(document.letterhead.name))
    pdf.set_creation_date(datetime.combine(document.issue_date, time(), tzinfo=UTC))
    pdf.add_page()
    _header(pdf, document)
    _void_notice(pdf, document)
    _parties_and_dates(pdf, document)
    _lines(pdf, document)
    _summary(pdf, document)
    _payment_instructions(pdf, document)
    return bytes(pdf.output())
