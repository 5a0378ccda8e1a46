"""QR codes of BIP21 payment URIs, as inline SVG (the ``qrcode`` package; no Pillow).

The SVG is one path with a white quiet zone, sized by a ``viewBox`` so the page scales it,
and carries no script or external reference: safe to inline under the portals' CSP.
"""

from __future__ import annotations

from functools import lru_cache

import qrcode
import qrcode.constants
import qrcode.image.svg

#: The four-module quiet zone the QR specification asks for: scanners need it.
BORDER = 4


@lru_cache(maxsize=256)
def svg(data: str) -> str:
    """``data`` as an inline ``<svg>`` element (no XML declaration).

    Remembered for the last few hundred URIs: drawing one costs ~10-15 ms of CPU, a third
    of a customer's dashboard render, and a customer's address (and so its URI) stays the
    same from one page view to the next.
    """
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=BORDER,
        image_factory=qrcode.image.svg.SvgPathFillImage,
    )
    code.add_data(data)
    code.make(fit=True)
    text = code.make_image().to_string(encoding="unicode")
    return str(text).split("?>", 1)[-1].strip()
