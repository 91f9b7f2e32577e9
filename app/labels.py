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
* Label sheets are A4 PDFs drawn with reportlab: QR codes and bars are emitted as vector
  rectangles straight from the module patterns, text uses the built-in CID font
  ``STSong-Light`` so Chinese product names render without embedding a font file.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import BinaryIO

import qrcode
from barcode import Gs1_128
from barcode.writer import ImageWriter, SVGWriter
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.pdfdoc import PDFArray, PDFDictionary, PDFName, PDFStream
from reportlab.pdfgen.canvas import Canvas

from tracecore.gs1 import GS1_CSET82, gtin_check_digit

__all__ = [
    "GS1_128_MAX_DATA_CHARS",
    "QR_MASK_PATTERN",
    "Label",
    "gs1_128_data",
    "gs1_128_modules",
    "gs1_128_png",
    "gs1_128_svg",
    "label_sheet_pdf",
    "qr_matrix",
    "qr_png",
    "qr_svg",
    "write_label_sheet_pdf",
]


@dataclass(frozen=True, slots=True)
class Label:
    """What is printed on one label."""

    uri: str  # GS1 Digital Link URI, encoded in the QR code
    element_string: str  # GS1 element string with parentheses, encoded as GS1-128
    product_name: str  # may contain Chinese
    lot: str
    serial: str


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


def _runs(row: Iterable[bool]) -> Iterator[tuple[int, int]]:
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
        for x, n in _runs(row):
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


# --------------------------------------------------------------------------------------------
# A4 label sheet
# --------------------------------------------------------------------------------------------

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"

SHEET_COLUMNS = 2
SHEET_ROWS = 6
LABELS_PER_PAGE = SHEET_COLUMNS * SHEET_ROWS
CELL_W = A4[0] / SHEET_COLUMNS  # 105 mm
CELL_H = A4[1] / SHEET_ROWS  # 49.5 mm
MARGIN = 3 * mm  # inside each cell
QR_SIZE = 22 * mm  # symbol without quiet zone; the cell margin + gaps give >= 4 modules
TEXT_GAP = 4 * mm  # between QR and the text block beside it
BAR_TOP_GAP = 3 * mm  # between QR and bars
BAR_HEIGHT = 12 * mm
BAR_X_MAX = 0.33 * mm  # GS1-128 X dimension range used on the sheet
BAR_X_MIN = 0.17 * mm  # below this (message too long for the width) the bars are omitted
BAR_QUIET = 10  # quiet zone in X on each side, inside the cell width
NAME_SIZE = 9
SMALL_SIZE = 7.5
HRI_SIZE = 6.5


def _ensure_fonts() -> None:
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def _f(v: float) -> str:
    """Compact PDF number (reportlab's pure-Python fp_str is slow)."""
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _qr_ops(uri: str, x: float, top: float, size: float) -> str:
    """PDF operators filling the dark modules of ``uri``'s QR code, top-left corner at
    (x, top), ``size`` points wide.  One ``re`` per horizontal run, one ``f`` in total; the CTM
    maps 1 unit to 1 module with y pointing down, so all rectangle numbers are integers."""
    matrix = qr_matrix(uri)
    m = size / len(matrix)
    ops = [f"q {_f(m)} 0 0 {_f(-m)} {_f(x)} {_f(top)} cm"]
    for y, row in enumerate(matrix):
        ops.extend(f"{x0} {y} {n} 1 re" for x0, n in _runs(row))
    ops.append("f Q")
    return "\n".join(ops)


def _bar_ops(modules: str, x: float, y: float, xdim: float, height: float) -> str:
    """PDF operators filling the bars of a '1'/'0' module pattern; 1 unit = 1 module wide and
    the full bar height tall."""
    ops = [f"q {_f(xdim)} 0 0 {_f(height)} {_f(x)} {_f(y)} cm"]
    ops.extend(f"{m.start()} 0 {m.end() - m.start()} 1 re" for m in re.finditer("1+", modules))
    ops.append("f Q")
    return "\n".join(ops)


def _fit_lines(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    """Greedy character wrap (works for CJK without spaces); ellipsis on overflow."""
    lines: list[str] = []
    rest = text.strip()
    while rest and len(lines) < max_lines:
        last = len(lines) == max_lines - 1
        if pdfmetrics.stringWidth(rest, font, size) <= width:
            lines.append(rest)
            break
        suffix = "…" if last else ""
        lo, hi = 1, len(rest)  # binary search: longest prefix (+ suffix) that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if pdfmetrics.stringWidth(rest[:mid] + suffix, font, size) <= width:
                lo = mid
            else:
                hi = mid - 1
        lines.append(rest[:lo] + suffix)
        rest = rest[lo:].lstrip()
    return lines


def _draw_fitted(
    canv: Canvas,
    x: float,
    y: float,
    text: str,
    font: str,
    size: float,
    width: float,
    *,
    centred: bool = False,
) -> None:
    """One line of text, font size reduced if needed so it is at most ``width`` wide."""
    w = pdfmetrics.stringWidth(text, font, size)
    if w > width:
        size *= width / w
        w = width
    canv.setFont(font, size)
    canv.drawString(x - w / 2 if centred else x, y, text)


def _draw_label(canv: Canvas, label: Label, x0: float, y0: float) -> None:
    """Draw one label in the cell whose bottom-left corner is (x0, y0)."""
    top = y0 + CELL_H - MARGIN
    qr_x = x0 + MARGIN + 2 * mm
    canv.addLiteral(_qr_ops(label.uri, qr_x, top, QR_SIZE))

    # Text block right of the QR code: product name (<= 2 lines), lot, serial.
    tx = qr_x + QR_SIZE + TEXT_GAP
    tw = x0 + CELL_W - MARGIN - tx
    ty = top - NAME_SIZE
    canv.setFont(CJK_FONT, NAME_SIZE)
    for line in _fit_lines(label.product_name, CJK_FONT, NAME_SIZE, tw, 2):
        canv.drawString(tx, ty, line)
        ty -= NAME_SIZE * 1.25
    ty -= 2
    _draw_fitted(canv, tx, ty, f"LOT {label.lot}", LATIN_FONT, SMALL_SIZE, tw)
    _draw_fitted(canv, tx, ty - SMALL_SIZE * 1.3, f"SN {label.serial}", LATIN_FONT, SMALL_SIZE, tw)

    # GS1-128 under the QR code, scaled to the cell width; HRI text under the bars.
    bar_top = top - QR_SIZE - BAR_TOP_GAP
    bar_y = bar_top - BAR_HEIGHT
    try:
        modules = gs1_128_modules(label.element_string)
    except ValueError:
        modules = ""
    avail = CELL_W - 2 * MARGIN
    xdim = min(BAR_X_MAX, avail / (len(modules) + 2 * BAR_QUIET)) if modules else 0.0
    if xdim >= BAR_X_MIN:
        bar_w = xdim * len(modules)
        canv.addLiteral(_bar_ops(modules, x0 + (CELL_W - bar_w) / 2, bar_y, xdim, BAR_HEIGHT))
    else:  # no valid / fitting symbol: the QR code (Digital Link) carries the same data
        bar_y = bar_top - HRI_SIZE
    hri_y = bar_y - HRI_SIZE - 1
    _draw_fitted(
        canv,
        x0 + CELL_W / 2,
        hri_y,
        label.element_string,
        LATIN_FONT,
        HRI_SIZE,
        avail,
        centred=True,
    )


def _compress_last_page(canv: Canvas) -> None:
    """Deflate the page just finished and drop its uncompressed stream.

    reportlab keeps every page's content stream as text until ``save()``; compressing at
    ``showPage`` time bounds memory to the compressed size of the output and skips reportlab's
    pure-Python ASCII85 filter.  Uses reportlab's document objects (stable since 3.x)."""
    page = canv._doc.Pages.pages[-1]
    stream = page.stream
    if not stream or page.Contents:
        return
    dictionary = PDFDictionary()
    dictionary["Filter"] = PDFArray([PDFName("FlateDecode")])
    page.Contents = PDFStream(
        dictionary=dictionary, content=zlib.compress(stream.encode("latin-1"), 6), filters=[]
    )
    page.stream = None


def write_label_sheet_pdf(
    labels: Iterable[Label],
    out: BinaryIO,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write an A4 label sheet PDF of ``labels`` to ``out``; return the number of labels.

    Layout: 2 columns x 6 rows of 105 x 49.5 mm labels per page (:data:`LABELS_PER_PAGE`).
    Each label: the QR code (22 mm, vector rectangles from the module matrix) top left; product
    name (``STSong-Light``, Chinese capable, wrapped to 2 lines), ``LOT …`` and ``SN …`` to its
    right; the GS1-128 barcode of the element string as vector bars under it, X dimension
    scaled to fit the label width (0.17-0.33 mm, ~0.2 mm for a GTIN + 8-char lot + 16-char
    serial) and the element string in parentheses form under the bars.  The barcode is
    OMITTED (only the element string text is printed) when the element string is not a valid
    GS1-128 message -- e.g. more than 48 data characters -- or would need X < 0.17 mm; the
    QR code always carries the full Digital Link.

    ``labels`` is consumed lazily, one page (12 labels) at a time; ``progress(n_done)`` is
    called after each page with the cumulative label count.  Page content is deflated as soon
    as a page is finished, so memory grows with the compressed PDF size, not the label count;
    reportlab assembles the file in ``save()``, so bytes reach ``out`` only at the end.
    """
    _ensure_fonts()
    canv = Canvas(out, pagesize=A4, pageCompression=0)
    canv.setTitle("Labels")
    it = iter(labels)
    done = 0
    while page := list(islice(it, LABELS_PER_PAGE)):
        for i, label in enumerate(page):
            row, col = divmod(i, SHEET_COLUMNS)
            _draw_label(canv, label, col * CELL_W, A4[1] - (row + 1) * CELL_H)
        canv.showPage()
        _compress_last_page(canv)
        done += len(page)
        if progress is not None:
            progress(done)
    if done == 0:
        canv.showPage()  # a PDF needs at least one page
    canv.save()
    return done


def label_sheet_pdf(
    labels: Iterable[Label], *, progress: Callable[[int], None] | None = None
) -> bytes:
    """:func:`write_label_sheet_pdf` into memory; returns the PDF bytes."""
    buf = io.BytesIO()
    write_label_sheet_pdf(labels, buf, progress)
    return buf.getvalue()
