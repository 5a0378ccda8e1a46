"""QR codes of BIP21 payment URIs, as inline SVG (the ``qrcode`` package; no Pillow).

The SVG is one path with a white quiet zone, sized by a ``viewBox`` so the page scales it,
and carries no script or external reference: safe to inline under the portals' CSP.
"""

from __future__ import annotations

import qrcode
import qrcode.constants
import qrcode.image.svg

#: The four-module quiet zone the QR specification asks for: scanners need it.
BORDER = 4


def svg(data: str) -> str:
    """``data`` as an inline ``<svg>`` element (no XML declaration)."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=BORDER,
        image_factory=qrcode.image.svg.SvgPathFillImage,
    )
    code.add_data(data)
    code.make(fit=True)
    text = code.make_image().to_string(encoding="unicode")
    return str(text).split("?>", 1)[-1].strip()
