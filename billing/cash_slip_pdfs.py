"""A customer's cash slip as a one-page PDF (A6-ish, the size of a store receipt): the same
content as the portal's printable slip — the Code 128 barcode of the payment identifier with
the identifier printed under it, the customer's name, the amount due (or "Any amount"), where
to pay and how.  The barcode is drawn as filled rectangles (:func:`billing.barcodes.
draw_code128`), wide enough that a register's scanner reads it from a home printer.
"""

from __future__ import annotations

from fpdf import FPDF

from billing import money
from billing.barcodes import draw_code128
from billing.cash_slips import HOW_TO_PAY, SlipDetails, where_to_pay
from billing.pdf_fonts import FAMILY, add_fonts, pdf_text

#: Page size in millimetres: a half-letter card, portrait.
PAGE = (140.0, 216.0)
MARGIN = 12.0
BARCODE_HEIGHT = 28.0


def amount_text(details: SlipDetails) -> str:
    """The amount due as printed, or "Any amount" when nothing is due."""
    if details.amount_due is None:
        return "Any amount"
    return f"{money.format_amount(details.amount_due, details.currency)} {details.currency}"


def render(details: SlipDetails, payee: str) -> bytes:
    """The slip as PDF bytes; ``payee`` is who is paid (the provider or the reseller)."""
    pdf = FPDF(unit="mm", format=PAGE)
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    add_fonts(pdf)
    pdf.add_page()
    width = PAGE[0] - 2 * MARGIN
    pdf.set_font(FAMILY, "B", 15)
    pdf.cell(width, 8, pdf_text("Cash payment slip"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 9)
    pdf.cell(
        width, 5, pdf_text(f"Pay {payee} in cash with PayNearMe"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(4)
    code = details.slip.payment_identifier
    draw_code128(pdf, code, MARGIN, pdf.get_y(), width, BARCODE_HEIGHT)
    pdf.set_y(pdf.get_y() + BARCODE_HEIGHT + 1)
    pdf.set_font(FAMILY, "B", 12)
    pdf.cell(width, 6, pdf_text(code), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for label, value in (
        ("Customer", details.customer_name),
        ("Amount due", amount_text(details)),
    ):
        pdf.set_font(FAMILY, "", 9)
        pdf.cell(30, 6, pdf_text(label))
        pdf.set_font(FAMILY, "B", 11)
        pdf.cell(width - 30, 6, pdf_text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(width, 6, pdf_text("Where to pay"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 9)
    pdf.multi_cell(
        width,
        5,
        pdf_text(", ".join(where_to_pay(details.slip))),
        align="L",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(width, 6, pdf_text("How to pay"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 9)
    for number, step in enumerate(HOW_TO_PAY, 1):
        pdf.multi_cell(
            width, 5, pdf_text(f"{number}. {step}"), align="L", new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(2)
    pdf.set_font(FAMILY, "", 8)
    pdf.multi_cell(
        width,
        4,
        pdf_text(
            "This slip is yours for good: use it for every payment. Any amount you pay is "
            "credited to your account."
        ),
        align="L",
    )
    return bytes(pdf.output())
