"""Label rendering: QR codes (GS1 Digital Link), GS1-128 barcodes and A4 label sheets.

Pure functions from values to bytes -- no Flask, no database.

* QR codes are built with the ``qrcode`` library, error correction level M, version chosen
  automatically (``fit=True``) but with a FIXED mask pattern (:data:`QR_MASK_PATTERN`).  Letting
  ``qrcode`` score all 8 masks is by far the most expensive step (pure-Python penalty rules);
  the mask only affects how the symbol looks, any of the 8 masks yields a valid, decodable
  symbol.  PNG and SVG are rendered here from the module matrix (Pillow / hand-written SVG with
  one ``<path>`` whose sub-paths are merged horizontal runs of dark modules), which is both
  faster and smaller than ``qrcode``'s per-module image factories.
* GS1-128 barcodes are built with ``python-barcode``'s :class:`barcode.Gs1_128`.  It takes the
  raw AI data without parentheses; it prepends FNC1 (``"\\xf1"``) itself, and an FNC1 must be
  put after every variable-length AI that is followed by another AI (see
  :func:`gs1_128_data`).
* Label sheets (A4 PDFs, streamed page by page, with an embedded CJK font subset) are
  :mod:`app.label_sheet`; they draw the QR codes and bars from the module patterns here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import qrcode
from barcode import Gs1_128
from barcode.writer import ImageWriter, SVGWriter
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from tracecore.gs1 import GS1_CSET82, element_string, gtin_check_digit

__all__ = [
    "GS1_128_MAX_DATA_CHARS",
    "QR_MASK_PATTERN",
    "Label",
    "gs1_128_data",
    "gs1_128_modules",
    "gs1_128_png",
    "gs1_128_svg",
    "qr_matrix",
    "qr_png",
    "qr_svg",
]


@dataclass(frozen=True, slots=True)
class Label:
    """What is printed on one label."""

    uri: str  # GS1 Digital Link URI, encoded in the QR code
    element_string: str  # GS1 element string with parentheses, encoded as GS1-128
    product_name: str  # may contain Chinese
    lot: str
    serial: str


def batch_labels(
    uri_prefix: str, gtin: str, lot: str, product_name: str, serials: Iterable[str]
) -> Iterator[Label]:
    """The labels of a batch's serials: each serial's Digital Link (``uri_prefix`` + serial)
    and GS1 element string, with the product's name and the lot."""
    for serial in serials:
        yield Label(
            uri=uri_prefix + serial,
            element_string=element_string(gtin, lot, serial),
            product_name=product_name,
            lot=lot,
            serial=serial,
        )


# --------------------------------------------------------------------------------------------
# QR code
# --------------------------------------------------------------------------------------------

#: Mask pattern used for every QR code (0..7).  Fixed instead of qrcode's "evaluate all 8 masks
#: and keep the lowest penalty", which costs ~7x more time than everything else together.
QR_MASK_PATTERN = 0


def qr_matrix(uri: str, *, mask_pattern: int = QR_MASK_PATTERN) -> list[list[bool]]:
    """Module matrix of the QR code for ``uri`` (EC level M, smallest fitting version).

    Row-major, ``True`` = dark module, no quiet zone.
    """
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0, mask_pattern=mask_pattern)
    qr.add_data(uri)
    qr.make(fit=True)
    return qr.modules


_DARK_RUN = re.compile(rb"\x01+")


def dark_runs(row: Iterable[bool]) -> Iterator[tuple[int, int]]:
    """(start, length) of each run of dark modules in one row."""
    for m in _DARK_RUN.finditer(bytes(row)):
        start = m.start()
        yield start, m.end() - start


def qr_png(uri: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """PNG (1-bit) of the QR code for ``uri``; ``box_size`` pixels per module, ``border`` modules
    of quiet zone (the QR spec asks for at least 4)."""
    if box_size < 1 or border < 0:
        raise ValueError("box_size must be >= 1 and border >= 0")
    matrix = qr_matrix(uri)
    width = len(matrix) + 2 * border
    light_row = b"\xff" * width
    pad = b"\xff" * border
    rows = [light_row] * border
    rows.extend(pad + bytes(0 if dark else 255 for dark in row) + pad for row in matrix)
    rows.extend([light_row] * border)
    img = Image.frombytes("L", (width, width), b"".join(rows))
    if box_size != 1:
        img = img.resize((width * box_size, width * box_size), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.convert("1", dither=Image.Dither.NONE).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def qr_svg(uri: str, *, border: int = 4, module_mm: float = 0.5) -> bytes:
    """SVG of the QR code for ``uri``.

    Coordinates are in modules (``viewBox``), the physical size is ``module_mm`` per module.  A
    white background ``<rect>`` covers the whole symbol including the ``border``-module quiet
    zone; the dark modules are ONE ``<path>`` made of one rectangle sub-path per horizontal
    run of dark modules (``M x,y h w v 1 h -w z``).
    """
    matrix = qr_matrix(uri)
    size = len(matrix) + 2 * border
    parts = []
    for y, row in enumerate(matrix, start=border):
        for x, n in dark_runs(row):
            parts.append(f"M{x + border},{y}h{n}v1h-{n}z")
    phys = f"{size * module_mm:g}mm"
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{phys}" height="{phys}" '
        f'viewBox="0 0 {size} {size}" shape-rendering="crispEdges">'
        f'<rect x="0" y="0" width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(parts)}"/></svg>\n'
    )
    return svg.encode("ascii")


# --------------------------------------------------------------------------------------------
# GS1-128
# --------------------------------------------------------------------------------------------

#: GS1 General Specifications: at most 48 data characters per GS1-128 symbol (FNC1 separators
#: count, the leading FNC1, check character and start/stop do not).
GS1_128_MAX_DATA_CHARS = 48

_FNC1 = Gs1_128.FNC1_CHAR  # "\xf1", python-barcode's FNC1

# AIs whose first two digits are in this table have a predefined length (AI + data); every
# other AI is variable length and needs an FNC1 separator when another AI follows.
# (GS1 General Specifications, "Element strings with predefined length using GS1 AIs".)
_PREDEFINED_LENGTH = {
    "00": 20, "01": 16, "02": 16, "03": 16, "04": 18,
    "11": 8, "12": 8, "13": 8, "14": 8, "15": 8, "16": 8, "17": 8, "18": 8, "19": 8,
    "20": 4,
    "31": 10, "32": 10, "33": 10, "34": 10, "35": 10, "36": 10,
    "41": 16,
}  # fmt: skip
_CHECK_DIGIT_AIS = ("00", "01", "02")
_AI_PREFIX = re.compile(r"\((\d{2,4})\)")


def _parse_element_string(element_string: str) -> list[tuple[str, str]]:
    """``"(01)…(10)…"`` -> ``[("01", "…"), ("10", "…")]`` with validation.

    An AI is recognised as ``(`` + 2-4 digits + ``)``; CSET 82 allows parentheses inside data,
    but a value containing such a ``(NN)`` sequence cannot be told apart and is not supported.
    """
    matches = list(_AI_PREFIX.finditer(element_string))
    if not matches or matches[0].start() != 0:
        raise ValueError(f"not a GS1 element string with (AI) prefixes: {element_string!r}")
    pairs = []
    for m, nxt in zip(matches, [*matches[1:], None], strict=True):
        ai = m.group(1)
        value = element_string[m.end() : nxt.start() if nxt else len(element_string)]
        if not value or not set(value) <= GS1_CSET82:
            raise ValueError(f"AI ({ai}) has an empty value or characters outside GS1 CSET 82")
        fixed = _PREDEFINED_LENGTH.get(ai[:2])
        if fixed is not None and len(ai) + len(value) != fixed:
            raise ValueError(f"AI ({ai}) must have {fixed - len(ai)} characters, got {value!r}")
        if ai in _CHECK_DIGIT_AIS and not (
            value.isdigit() and gtin_check_digit(value[:-1]) == int(value[-1])
        ):
            raise ValueError(f"AI ({ai}) value {value!r} has a wrong check digit")
        pairs.append((ai, value))
    return pairs


def gs1_128_data(element_string: str) -> str:
    """Convert ``"(01)06901234567892(10)LOT2026A(21)ABC"`` to python-barcode's input.

    ``Gs1_128`` wants the concatenated AI data WITHOUT parentheses and WITHOUT the leading FNC1
    (it prepends ``"\\xf1"`` itself); a variable-length AI followed by another AI must be
    terminated by ``"\\xf1"``: ``"0106901234567892" "10LOT2026A\\xf1" "21ABC"``.

    Raises ``ValueError`` for malformed element strings (bad AI syntax, wrong fixed length,
    wrong GTIN/SSCC check digit, characters outside CSET 82) and for messages longer than
    :data:`GS1_128_MAX_DATA_CHARS`.
    """
    pairs = _parse_element_string(element_string)
    out = []
    for i, (ai, value) in enumerate(pairs):
        out.append(ai + value)
        if i < len(pairs) - 1 and ai[:2] not in _PREDEFINED_LENGTH:
            out.append(_FNC1)
    data = "".join(out)
    if len(data) > GS1_128_MAX_DATA_CHARS:
        raise ValueError(
            f"GS1-128 carries at most {GS1_128_MAX_DATA_CHARS} data characters, "
            f"{element_string!r} needs {len(data)}"
        )
    return data


def gs1_128_modules(element_string: str) -> str:
    """Bar pattern of the GS1-128 symbol, one ``'1'`` (bar) / ``'0'`` (space) per module, from
    start character to stop pattern, without quiet zones."""
    return Gs1_128(gs1_128_data(element_string)).build()[0]


# X dimension 0.254 mm = exactly 3 px at 300 dpi, so every module is a whole number of pixels.
_GS1_128_RASTER_OPTIONS = {
    "module_width": 0.254,
    "module_height": 12.7,
    "quiet_zone": 2.54,  # 10 X, the GS1-128 minimum
    "font_size": 8,
    "text_distance": 3.5,
    "dpi": 300,
}
_GS1_128_SVG_OPTIONS = {
    "module_width": 0.254,
    "module_height": 12.7,
    "quiet_zone": 2.54,
    "font_size": 8,
    "text_distance": 3.5,
}


def _gs1_128_render(element_string: str, writer, options: dict) -> bytes:
    code = Gs1_128(gs1_128_data(element_string), writer=writer)
    buf = io.BytesIO()
    # text= overrides python-barcode's default human-readable line (raw data with "ñ").
    code.write(buf, options=options, text=element_string)
    return buf.getvalue()


def gs1_128_png(element_string: str) -> bytes:
    """Greyscale PNG (300 dpi, X = 3 px) of the GS1-128 barcode of ``element_string`` (GS1
    element string with parentheses), with the element string as human-readable text under
    the bars."""
    return _gs1_128_render(element_string, ImageWriter(mode="L"), _GS1_128_RASTER_OPTIONS)


def gs1_128_svg(element_string: str) -> bytes:
    """SVG of the GS1-128 barcode of ``element_string`` (python-barcode's SVGWriter), with the
    element string as human-readable text under the bars."""
    return _gs1_128_render(element_string, SVGWriter(), _GS1_128_SVG_OPTIONS)
