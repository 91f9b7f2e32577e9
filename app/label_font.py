"""The font a label sheet embeds: a TrueType CJK font (Debian's ``fonts-wqy-microhei`` by
default, ``LABEL_FONT``), measured here and embedded as a subset of the glyphs the sheet used.

Pure functions and values -- no Flask, no database. The font is a ``CIDFontType2`` under a
``Type0`` font with ``Identity-H`` encoding: each character the sheet shows gets the next
CID (1, 2, ...) the first time it is used, in the order used, and the subset written at the
end of the file holds exactly those glyphs with glyph ids equal to the CIDs
(``CIDToGIDMap /Identity``). Pages can therefore be written (and sent) before the subset is
known. A ``ToUnicode`` map lets viewers and ``pdftotext`` copy the text.

Parsing and subsetting use reportlab's TrueType reader (``TTFontFile``, the one reportlab's
own ``TTFont`` embeds with); its subset keeps the glyphs in the order of the characters
given, after ``.notdef``, which is what makes glyph id = CID here (:meth:`Embedding.objects`).
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from dataclasses import dataclass

from reportlab.pdfbase.ttfonts import TTFontFile

#: Debian's fonts-wqy-microhei (a TrueType collection; its first face, WenQuanYi Micro Hei).
DEFAULT_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


@dataclass(frozen=True)
class Face:
    """A parsed TrueType face: what measuring and subsetting need."""

    file: TTFontFile
    name: str
    #: unicode code point -> advance width, in thousandths of the font size.
    widths: dict[int, float]
    #: unicode code point -> glyph id in the whole font (0: no glyph).
    glyphs: dict[int, int]
    missing_width: float


@functools.lru_cache(maxsize=4)
def load_face(path: str = DEFAULT_FONT) -> Face:
    """The face at ``path`` (a .ttf, or the first face of a .ttc), parsed once per process
    (about half a second for a CJK font)."""
    try:
        file = TTFontFile(path, subfontIndex=0)
    except OSError as exc:
        raise FileNotFoundError(
            f"label font {path} not found: install Debian's fonts-wqy-microhei or set "
            "LABEL_FONT to a TrueType CJK font"
        ) from exc
    name = file.name.decode("latin-1") if isinstance(file.name, bytes) else str(file.name)
    return Face(file, name, file.charWidths, file.charToGlyph, float(file.defaultWidth))


class Embedding:
    """One document's use of a face: the CID of each character shown, in order of first use.

    :meth:`show` gives the hex string a ``Tj`` draws a text with; :meth:`width` measures a
    text; :meth:`objects` writes the font's PDF objects once every page is written."""

    def __init__(self, face: Face) -> None:
        self.face = face
        #: character -> 4 hex digits of its CID; characters without a glyph show CID 0.
        self._hex: dict[str, str] = {}
        #: glyph id in the whole font -> CID; and the first character of each CID, in order.
        self._cid_of_glyph: dict[int, int] = {}
        self._chars: list[str] = []

    def _cid(self, char: str) -> str:
        glyph = self.face.glyphs.get(ord(char), 0)
        if glyph == 0:
            hex_ = "0000"
        else:
            cid = self._cid_of_glyph.get(glyph)
            if cid is None:
                self._chars.append(char)
                cid = self._cid_of_glyph[glyph] = len(self._chars)
            hex_ = f"{cid:04X}"
        self._hex[char] = hex_
        return hex_

    def show(self, text: str) -> str:
        """``<…>``: the PDF string that shows ``text`` in this font."""
        known = self._hex
        return "<" + "".join(known.get(c) or self._cid(c) for c in text) + ">"

    def width(self, text: str, size: float) -> float:
        """The width of ``text`` at ``size`` points."""
        widths, missing = self.face.widths, self.face.missing_width
        return sum(widths.get(ord(c), missing) for c in text) * size / 1000

    def base_font(self) -> str:
        """The subset's PostScript name: a tag of six capitals (from the glyphs), ``+``, the
        face's name (PDF 32000-1, 9.6.4)."""
        digest = hashlib.sha1("".join(self._chars).encode()).digest()
        tag = "".join(chr(ord("A") + b % 26) for b in digest[:6])
        return f"{tag}+{self.face.name}"

    def objects(self, first: int) -> list[tuple[int, bytes]]:
        """The font's objects, numbered from ``first``: the Type0 font (``first``, what the
        pages refer to), its CIDFont, descriptor, embedded subset and ToUnicode map."""
        type0, cid_font, descriptor, font_file, to_unicode = range(first, first + 5)
        f, name = self.face.file, self.base_font()
        subset = f.makeSubset([ord(c) for c in self._chars])  # glyph n = the n-th character
        widths = " ".join(_num(self.face.widths.get(ord(c), 0)) for c in self._chars)
        bbox = " ".join(_num(v) for v in f.bbox)
        return [
            (
                type0,
                f"<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H "
                f"/DescendantFonts [{cid_font} 0 R] /ToUnicode {to_unicode} 0 R >>".encode(),
            ),
            (
                cid_font,
                f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} "
                "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                f"/FontDescriptor {descriptor} 0 R /DW {_num(self.face.missing_width)} "
                f"/W [1 [{widths}]] /CIDToGIDMap /Identity >>".encode(),
            ),
            (
                descriptor,
                f"<< /Type /FontDescriptor /FontName /{name} /Flags 4 /FontBBox [{bbox}] "
                f"/ItalicAngle {_num(f.italicAngle)} /Ascent {_num(f.ascent)} "
                f"/Descent {_num(f.descent)} /CapHeight {_num(f.capHeight)} "
                f"/StemV {_num(f.stemV)} /FontFile2 {font_file} 0 R >>".encode(),
            ),
            (font_file, stream(subset, {"Length1": str(len(subset))})),
            (to_unicode, stream(self._to_unicode(name).encode("ascii"))),
        ]

    def _to_unicode(self, name: str) -> str:
        """The CMap from CIDs back to the characters (in blocks of at most 100)."""
        lines = [
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
            f"/CIDSystemInfo << /Registry (Adobe) /Ordering ({name}) /Supplement 0 >> def",
            f"/CMapName /{name}-UTF16 def /CMapType 2 def",
            "1 begincodespacerange <0000> <FFFF> endcodespacerange",
        ]
        pairs = [
            f"<{cid:04X}> <{c.encode('utf-16-be').hex().upper()}>"
            for cid, c in enumerate(self._chars, start=1)
        ]
        for i in range(0, len(pairs), 100):
            block = pairs[i : i + 100]
            lines += [f"{len(block)} beginbfchar", *block, "endbfchar"]
        lines += ["endcmap CMapName currentdict /CMap defineresource pop end end"]
        return "\n".join(lines)


def stream(data: bytes, extra: dict[str, str] | None = None, *, compress: bool = True) -> bytes:
    """A PDF stream object's body: dictionary and data (deflated unless ``compress`` is off)."""
    entries = dict(extra or {})
    if compress:
        data = zlib.compress(data, 6)
        entries["Filter"] = "/FlateDecode"
    entries["Length"] = str(len(data))
    head = " ".join(f"/{k} {v}" for k, v in entries.items())
    return b"<< " + head.encode() + b" >>\nstream\n" + data + b"\nendstream"


def _num(v: float) -> str:
    """A compact PDF number."""
    return f"{v:.3f}".rstrip("0").rstrip(".") or "0"
