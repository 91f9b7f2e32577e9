"""A4 label sheets as PDF, written page by page: the first page's bytes leave before the
second page is drawn, whatever the number of labels.

Pure functions from values to bytes -- no Flask, no database. The file is written here
directly (PDF 1.7, no reportlab canvas): a header; for each page its deflated content
stream and its page object; at the end the page tree, the embedded font subset (the glyphs
the pages used, :mod:`app.label_font`), the catalogue, the cross-reference table and the
trailer. A PDF may hold its objects in any order, so pages refer to the page tree and the
font by numbers fixed up front (:data:`_CATALOG` …), and the objects themselves follow.

Each label: the QR code (22 mm, vector rectangles from the module matrix) top left; the
product name (wrapped to 2 lines), ``LOT …`` and ``SN …`` (the serial in groups of four, as
people read it out) to its right; the GS1-128 barcode of the element string as vector bars
under it, with the element string under the bars. All text is in the one embedded font.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import BinaryIO

from app.label_font import DEFAULT_FONT, Embedding, load_face, stream
from app.labels import Label, dark_runs, gs1_128_modules, qr_matrix

__all__ = [
    "LABELS_PER_PAGE",
    "grouped_serial",
    "iter_label_sheet_pdf",
    "label_sheet_pdf",
    "write_label_sheet_pdf",
]

MM = 72 / 25.4
A4 = (210 * MM, 297 * MM)
SHEET_COLUMNS = 2
SHEET_ROWS = 6
LABELS_PER_PAGE = SHEET_COLUMNS * SHEET_ROWS
CELL_W = A4[0] / SHEET_COLUMNS  # 105 mm
CELL_H = A4[1] / SHEET_ROWS  # 49.5 mm
MARGIN = 3 * MM  # inside each cell
QR_SIZE = 22 * MM  # symbol without quiet zone; the cell margin + gaps give >= 4 modules
TEXT_GAP = 4 * MM  # between QR and the text block beside it
BAR_TOP_GAP = 3 * MM  # between QR and bars
BAR_HEIGHT = 12 * MM
BAR_X_MAX = 0.33 * MM  # GS1-128 X dimension range used on the sheet
BAR_X_MIN = 0.17 * MM  # below this (message too long for the width) the bars are omitted
BAR_QUIET = 10  # quiet zone in X on each side, inside the cell width
NAME_SIZE = 9
SMALL_SIZE = 7.5
HRI_SIZE = 6.5

# Object numbers fixed before the first page: pages are numbered from _FIRST_PAGE on (two
# objects each: content, page), the font's objects after the last page.
_CATALOG, _PAGES, _INFO, _RESOURCES = 1, 2, 3, 4
_FIRST_PAGE = 5
_FONT_NAME = "F1"


def grouped_serial(serial: str) -> str:
    """The serial in groups of four (``2KQH 6T3F PQBY RCWX``): how people read and type it."""
    return " ".join(serial[i : i + 4] for i in range(0, len(serial), 4))


def _f(v: float) -> str:
    """Compact PDF number."""
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _qr_ops(uri: str, x: float, top: float, size: float) -> str:
    """PDF operators filling the dark modules of ``uri``'s QR code, top-left corner at
    (x, top), ``size`` points wide.  One ``re`` per horizontal run, one ``f`` in total; the CTM
    maps 1 unit to 1 module with y pointing down, so all rectangle numbers are integers."""
    matrix = qr_matrix(uri)
    m = size / len(matrix)
    ops = [f"q {_f(m)} 0 0 {_f(-m)} {_f(x)} {_f(top)} cm"]
    for y, row in enumerate(matrix):
        ops.extend(f"{x0} {y} {n} 1 re" for x0, n in dark_runs(row))
    ops.append("f Q")
    return "\n".join(ops)


def _bar_ops(modules: str, x: float, y: float, xdim: float, height: float) -> str:
    """PDF operators filling the bars of a '1'/'0' module pattern; 1 unit = 1 module wide and
    the full bar height tall."""
    ops = [f"q {_f(xdim)} 0 0 {_f(height)} {_f(x)} {_f(y)} cm"]
    ops.extend(f"{m.start()} 0 {m.end() - m.start()} 1 re" for m in re.finditer("1+", modules))
    ops.append("f Q")
    return "\n".join(ops)


class _Page:
    """One page's content stream, drawn label by label in one font."""

    def __init__(self, font: Embedding) -> None:
        self.font = font
        self.ops: list[str] = []

    def text(self, x: float, y: float, text: str, size: float) -> None:
        self.ops.append(
            f"BT /{_FONT_NAME} {_f(size)} Tf {_f(x)} {_f(y)} Td {self.font.show(text)} Tj ET"
        )

    def fitted(
        self, x: float, y: float, text: str, size: float, width: float, *, centred: bool = False
    ) -> None:
        """One line of text, its size reduced if needed so it is at most ``width`` wide."""
        w = self.font.width(text, size)
        if w > width:
            size *= width / w
            w = width
        self.text(x - w / 2 if centred else x, y, text, size)

    def lines(self, text: str, size: float, width: float, max_lines: int) -> list[str]:
        """Greedy character wrap (works for CJK without spaces); ellipsis on overflow."""
        measure = self.font.width
        lines: list[str] = []
        rest = text.strip()
        while rest and len(lines) < max_lines:
            last = len(lines) == max_lines - 1
            if measure(rest, size) <= width:
                lines.append(rest)
                break
            suffix = "…" if last else ""
            lo, hi = 1, len(rest)  # binary search: longest prefix (+ suffix) that fits
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if measure(rest[:mid] + suffix, size) <= width:
                    lo = mid
                else:
                    hi = mid - 1
            lines.append(rest[:lo] + suffix)
            rest = rest[lo:].lstrip()
        return lines

    def label(self, label: Label, x0: float, y0: float) -> None:
        """Draw one label in the cell whose bottom-left corner is (x0, y0)."""
        top = y0 + CELL_H - MARGIN
        qr_x = x0 + MARGIN + 2 * MM
        self.ops.append(_qr_ops(label.uri, qr_x, top, QR_SIZE))

        # Text block right of the QR code: product name (<= 2 lines), lot, serial.
        tx = qr_x + QR_SIZE + TEXT_GAP
        tw = x0 + CELL_W - MARGIN - tx
        ty = top - NAME_SIZE
        for line in self.lines(label.product_name, NAME_SIZE, tw, 2):
            self.text(tx, ty, line, NAME_SIZE)
            ty -= NAME_SIZE * 1.25
        ty -= 2
        self.fitted(tx, ty, f"LOT {label.lot}", SMALL_SIZE, tw)
        serial = f"SN {grouped_serial(label.serial)}"
        self.fitted(tx, ty - SMALL_SIZE * 1.3, serial, SMALL_SIZE, tw)

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
            self.ops.append(_bar_ops(modules, x0 + (CELL_W - bar_w) / 2, bar_y, xdim, BAR_HEIGHT))
        else:  # no valid / fitting symbol: the QR code (Digital Link) carries the same data
            bar_y = bar_top - HRI_SIZE
        hri_y = bar_y - HRI_SIZE - 1
        self.fitted(x0 + CELL_W / 2, hri_y, label.element_string, HRI_SIZE, avail, centred=True)

    def content(self) -> bytes:
        return "\n".join(self.ops).encode("ascii")


class _Writer:
    """Numbered objects written in sequence, their offsets kept for the cross-reference."""

    def __init__(self) -> None:
        self.offsets: dict[int, int] = {}
        self.position = 0

    def raw(self, data: bytes) -> bytes:
        self.position += len(data)
        return data

    def obj(self, number: int, body: bytes) -> bytes:
        self.offsets[number] = self.position
        return self.raw(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def xref_and_trailer(self) -> bytes:
        start, size = self.position, max(self.offsets) + 1
        rows = [b"xref\n0 %d\n0000000000 65535 f \n" % size]
        for n in range(1, size):
            offset = self.offsets.get(n)
            rows.append(
                b"%010d 00000 n \n" % offset if offset is not None else b"0000000000 65535 f \n"
            )
        rows.append(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (size, _CATALOG, _INFO, start)
        )
        return self.raw(b"".join(rows))


def iter_label_sheet_pdf(
    labels: Iterable[Label],
    progress: Callable[[int], None] | None = None,
    *,
    font_path: str = DEFAULT_FONT,
) -> Iterator[bytes]:
    """The A4 label sheet PDF of ``labels``, in pieces: the header, then each page as soon as
    it is drawn (12 labels, :data:`LABELS_PER_PAGE`), then the font subset and the file's
    tail. ``labels`` is consumed lazily, one page at a time; ``progress(n_done)`` is called
    after each page with the cumulative label count.

    The barcode is OMITTED (only the element string text is printed) when the element string
    is not a valid GS1-128 message -- e.g. more than 48 data characters -- or would need
    X < 0.17 mm; the QR code always carries the full Digital Link."""
    font = Embedding(load_face(font_path))
    out = _Writer()
    yield out.raw(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    # The font's objects come after the last page; the pages share one resource dictionary
    # whose font number is known only then, so the dictionary is written at the end too.
    it = iter(labels)
    done, kids = 0, []
    number = _FIRST_PAGE
    while True:
        page_labels = list(islice(it, LABELS_PER_PAGE))
        if not page_labels and kids:
            break
        page = _Page(font)
        for i, label in enumerate(page_labels):
            row, col = divmod(i, SHEET_COLUMNS)
            page.label(label, col * CELL_W, A4[1] - (row + 1) * CELL_H)
        content, page_obj = number, number + 1
        number += 2
        kids.append(page_obj)
        chunk = out.obj(content, stream(page.content()))
        chunk += out.obj(
            page_obj,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Resources %d 0 R "
            b"/Contents %d 0 R >>"
            % (_PAGES, _f(A4[0]).encode(), _f(A4[1]).encode(), _RESOURCES, content),
        )
        yield chunk
        if not page_labels:  # a PDF needs at least one page: an empty sheet has one blank
            break
        done += len(page_labels)
        if progress is not None:
            progress(done)
    font_first = number
    tail = [
        out.obj(
            _PAGES,
            b"<< /Type /Pages /Count %d /Kids [%s] >>"
            % (len(kids), " ".join(f"{k} 0 R" for k in kids).encode()),
        ),
        out.obj(_RESOURCES, b"<< /Font << /%s %d 0 R >> >>" % (_FONT_NAME.encode(), font_first)),
        out.obj(_CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % _PAGES),
        out.obj(_INFO, b"<< /Title (Labels) /Producer (tracecore label sheet) >>"),
    ]
    tail += [out.obj(n, body) for n, body in font.objects(font_first)]
    tail.append(out.xref_and_trailer())
    yield b"".join(tail)


def write_label_sheet_pdf(
    labels: Iterable[Label],
    out: BinaryIO,
    progress: Callable[[int], None] | None = None,
    *,
    font_path: str = DEFAULT_FONT,
) -> int:
    """Write the label sheet of ``labels`` to ``out`` as it is drawn; return the number of
    labels (:func:`iter_label_sheet_pdf`)."""
    counted = [0]

    def count(n: int) -> None:
        counted[0] = n
        if progress is not None:
            progress(n)

    for chunk in iter_label_sheet_pdf(labels, count, font_path=font_path):
        out.write(chunk)
    return counted[0]


def label_sheet_pdf(
    labels: Iterable[Label],
    *,
    progress: Callable[[int], None] | None = None,
    font_path: str = DEFAULT_FONT,
) -> bytes:
    """:func:`write_label_sheet_pdf` into memory; returns the PDF bytes."""
    buf = io.BytesIO()
    write_label_sheet_pdf(labels, buf, progress, font_path=font_path)
    return buf.getvalue()
