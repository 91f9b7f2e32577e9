"""Tests for app.labels: QR / GS1-128 images decode with a real decoder, label sheets render."""

import io
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import biip
import pytest
import zxingcpp
from PIL import Image, ImageDraw
from pypdf import PdfReader
from pypdf.generic import ContentStream

from app.label_sheet import (
    LABELS_PER_PAGE,
    grouped_serial,
    iter_label_sheet_pdf,
    label_sheet_pdf,
    write_label_sheet_pdf,
)
from app.labels import (
    Label,
    gs1_128_data,
    gs1_128_png,
    gs1_128_svg,
    qr_matrix,
    qr_png,
    qr_svg,
)

LABELS = [
    Label(
        uri="https://trace.example.cn/01/06901234567892/10/LOT2026A/21/ABCDEFGHJKMNPQRS",
        element_string="(01)06901234567892(10)LOT2026A(21)ABCDEFGHJKMNPQRS",
        product_name="有机大米 5kg",
        lot="LOT2026A",
        serial="ABCDEFGHJKMNPQRS",
    ),
    Label(  # GS1-allowed punctuation, percent-encoded in the Digital Link path
        uri="https://trace.example.cn/01/04012345123456/10/AB-12.3/21/A%2FB%2B7",
        element_string="(01)04012345123456(10)AB-12.3(21)A/B+7",
        product_name="Organic Green Tea 绿茶 250g",
        lot="AB-12.3",
        serial="A/B+7",
    ),
    Label(  # all-numeric lot/serial (Code 128 subset C), fixed-length AI 17 in the query string
        uri="https://id.example.com/01/16950123456783/10/2026031501/21/00123456?17=271231",
        element_string="(01)16950123456783(17)271231(10)2026031501(21)00123456",
        product_name="五常稻花香大米（一级）10kg 真空包装 礼盒装 限量版",
        lot="2026031501",
        serial="00123456",
    ),
    Label(  # lowercase, odd digit runs, '%' and '&' percent-encoded
        uri="https://trace.example.cn/01/00888888000011/10/b12345/21/Q%257%26z",
        element_string="(01)00888888000011(10)b12345(21)Q%7&z",
        product_name="Café 咖啡豆 1kg",
        lot="b12345",
        serial="Q%7&z",
    ),
]
IDS = [label.lot for label in LABELS]


def make_labels(n: int, produced: list[int] | None = None):
    """Generator of ``n`` distinct realistic labels; appends to ``produced`` as it yields."""
    for i in range(n):
        serial = f"SN{i:06d}X"
        lot = f"L-{i % 7}.{i % 3}"
        if produced is not None:
            produced.append(i)
        yield Label(
            uri=f"https://trace.example.cn/01/06901234567892/10/{lot}/21/{serial}",
            element_string=f"(01)06901234567892(10){lot}(21){serial}",
            product_name=f"有机大米 {i % 10 + 1}kg",
            lot=lot,
            serial=serial,
        )


# ---------------------------------------------------------------------------------------------
# helpers: decoding and honest rasterisation (no SVG/PDF rasteriser is installed in the venv)
# ---------------------------------------------------------------------------------------------


def decode(img: Image.Image, formats=None) -> list:
    if formats is None:
        return zxingcpp.read_barcodes(img)
    return zxingcpp.read_barcodes(img, formats=formats)


def rasterise_path(d: str, size: int, scale: int) -> Image.Image:
    """Fill an SVG path (absolute/relative M, H, V, L, h, v, l, Z) with Pillow."""
    img = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(img)
    tokens = re.findall(r"[MmHhVvLlZz]|-?\d+(?:\.\d+)?", d)
    x = y = 0.0
    poly: list[tuple[float, float]] = []
    i = 0
    cmd = ""
    while i < len(tokens):
        if tokens[i].isalpha():
            cmd = tokens[i]
            i += 1
            if cmd in "Zz":
                draw.polygon([(px * scale, py * scale) for px, py in poly], fill=0)
                x, y = poly[0]
                poly = []
                continue
        if cmd in "MmLl":
            nx, ny = float(tokens[i]), float(tokens[i + 1])
            i += 2
            x, y = (x + nx, y + ny) if cmd.islower() else (nx, ny)
            if cmd in "Mm":
                poly = []
        elif cmd in "Hh":
            x = x + float(tokens[i]) if cmd == "h" else float(tokens[i])
            i += 1
        elif cmd in "Vv":
            y = y + float(tokens[i]) if cmd == "v" else float(tokens[i])
            i += 1
        else:
            raise AssertionError(f"unsupported path command {cmd!r}")
        poly.append((x, y))
    return img


def png_module_matrix(png: bytes, box_size: int, border: int) -> list[list[bool]]:
    img = Image.open(io.BytesIO(png)).convert("L")
    n = img.width // box_size - 2 * border
    half = box_size // 2
    return [
        [
            img.getpixel(((c + border) * box_size + half, (r + border) * box_size + half)) < 128
            for c in range(n)
        ]
        for r in range(n)
    ]


def rasterise_pdf_page(pdf: bytes, page_no: int = 0, dpi: int = 300) -> Image.Image:
    """Render the filled rectangles of a PDF page (what the label sheet draws its codes with).

    Interprets the page's own content stream through pypdf: ``q``/``Q``/``cm`` for the CTM,
    ``re`` path construction and ``f``/``F``/``f*`` fills (always black: the sheet draws
    nothing else).  Text is not drawn.  Pixels whose centre lies inside a rectangle are
    painted black.
    """
    reader = PdfReader(io.BytesIO(pdf))
    page = reader.pages[page_no]
    pw, ph = float(page.mediabox.width), float(page.mediabox.height)
    s = dpi / 72
    img = Image.new("L", (round(pw * s), round(ph * s)), 255)
    draw = ImageDraw.Draw(img)
    ctm = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    stack = []
    path: list[tuple[float, float, float, float]] = []
    for operands, op in ContentStream(page.get_contents(), reader).operations:
        if op == b"q":
            stack.append(ctm)
        elif op == b"Q":
            ctm = stack.pop()
        elif op == b"cm":
            a, b, c, d, e, f = (float(v) for v in operands)
            ca, cb, cc, cd, ce, cf = ctm
            ctm = (
                a * ca + b * cc, a * cb + b * cd,
                c * ca + d * cc, c * cb + d * cd,
                e * ca + f * cc + ce, e * cb + f * cd + cf,
            )  # fmt: skip
        elif op == b"re":
            x, y, w, h = (float(v) for v in operands)
            ca, cb, cc, cd, ce, cf = ctm
            pts = [
                (ca * px + cc * py + ce, cb * px + cd * py + cf)
                for px, py in ((x, y), (x + w, y + h))
            ]
            path.append((*pts[0], *pts[1]))
        elif op in (b"f", b"F", b"f*"):
            for x0, y0, x1, y1 in path:
                left, right = sorted((round(x0 * s), round(x1 * s)))
                top, bottom = sorted((round((ph - y0) * s), round((ph - y1) * s)))
                if right > left and bottom > top:
                    draw.rectangle((left, top, right - 1, bottom - 1), fill=0)
            path = []
        elif op == b"n":
            path = []
    return img


# ---------------------------------------------------------------------------------------------
# QR code
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", LABELS, ids=IDS)
def test_qr_png_decodes_to_exact_uri(label):
    """Does every QR PNG decode (zxing-cpp) to exactly the Digital Link URI?"""
    results = decode(Image.open(io.BytesIO(qr_png(label.uri))))
    assert [(r.format, r.text, r.bytes) for r in results] == [
        (zxingcpp.BarcodeFormat.QRCode, label.uri, label.uri.encode())
    ]


@pytest.mark.parametrize("label", LABELS, ids=IDS)
def test_qr_png_error_correction_is_at_least_m(label):
    """Is the QR code's error correction level M or better?"""
    (result,) = decode(Image.open(io.BytesIO(qr_png(label.uri))))
    assert result.ec_level in {"M", "Q", "H"}


@pytest.mark.parametrize(("box_size", "border"), [(1, 4), (3, 0), (8, 4), (10, 6)])
def test_qr_png_size_follows_box_size_and_border(box_size, border):
    """Is the PNG exactly (modules + 2 * border) * box_size pixels square?"""
    uri = LABELS[0].uri
    n = len(qr_matrix(uri))
    img = Image.open(io.BytesIO(qr_png(uri, box_size=box_size, border=border)))
    assert img.size == ((n + 2 * border) * box_size,) * 2


@pytest.mark.parametrize("mask", range(8))
def test_qr_matrix_decodes_with_every_mask(mask):
    """Whatever fixed mask pattern is chosen, does the symbol still decode to the URI?"""
    uri = LABELS[1].uri
    matrix = qr_matrix(uri, mask_pattern=mask)
    n = len(matrix) + 8
    img = Image.new("L", (n, n), 255)
    img.putdata(
        [
            0 if 4 <= r < n - 4 and 4 <= c < n - 4 and matrix[r - 4][c - 4] else 255
            for r in range(n)
            for c in range(n)
        ]
    )
    img = img.resize((n * 6, n * 6), Image.Resampling.NEAREST)
    assert [r.text for r in decode(img)] == [uri]


@pytest.mark.parametrize("label", LABELS, ids=IDS)
def test_qr_svg_rasterised_decodes_to_exact_uri(label):
    """Does the SVG QR, rasterised from its own <rect>/<path> geometry, decode to the URI?"""
    root = ET.fromstring(qr_svg(label.uri))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    size = int(root.get("viewBox").split()[2])
    assert root.find("svg:rect", ns).get("fill") == "#fff"
    img = rasterise_path(root.find("svg:path", ns).get("d"), size, scale=8)
    assert [r.text for r in decode(img)] == [label.uri]


@pytest.mark.parametrize("label", LABELS, ids=IDS)
def test_qr_svg_modules_match_png_modules(label):
    """Do the SVG and the PNG encode the very same module matrix?"""
    root = ET.fromstring(qr_svg(label.uri, border=4))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    size = int(root.get("viewBox").split()[2])
    svg_img = rasterise_path(root.find("svg:path", ns).get("d"), size, scale=8)
    svg_modules = [
        [svg_img.getpixel((c * 8 + 4, r * 8 + 4)) < 128 for c in range(4, size - 4)]
        for r in range(4, size - 4)
    ]
    assert svg_modules == png_module_matrix(qr_png(label.uri, box_size=4, border=4), 4, 4)


# ---------------------------------------------------------------------------------------------
# GS1-128
# ---------------------------------------------------------------------------------------------


def test_gs1_128_data_is_raw_ai_data_with_fnc1_after_variable_length_ais():
    """Is python-barcode fed parenthesis-free AI data with FNC1 only after variable AIs?"""
    assert gs1_128_data("(01)16950123456783(17)271231(10)2026031501(21)00123456") == (
        "011695012345678317271231102026031501\xf12100123456"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "01069012345678921012",  # no parentheses
        "(01)06901234567891(10)X",  # wrong GTIN check digit
        "(01)0690123456789(10)X",  # GTIN too short
        "(10)LOT 1",  # space is outside CSET 82
        "(01)06901234567892(10)(21)X",  # empty value
        "(01)06901234567892(10)ABCDEFGHIJKLMNOPQRST(21)ABCDEFGHIJKLMNOPQRST",  # > 48 chars
    ],
)
def test_gs1_128_rejects_invalid_element_strings(bad):
    """Are malformed or over-long element strings refused with ValueError?"""
    with pytest.raises(ValueError):
        gs1_128_png(bad)


@pytest.mark.parametrize("label", LABELS, ids=IDS)
def test_gs1_128_png_decodes_as_gs1_element_string(label):
    """Does every GS1-128 PNG decode as Code 128 ]C1 GS1 content equal to the element string?"""
    results = decode(Image.open(io.BytesIO(gs1_128_png(label.element_string))))
    assert len(results) == 1
    (r,) = results
    assert r.format == zxingcpp.BarcodeFormat.Code128
    assert r.symbology_identifier == "]C1"
    assert r.content_type == zxingcpp.ContentType.GS1
    assert r.text == label.element_string  # zxing's HRI: AIs in parentheses
    raw = gs1_128_data(label.element_string).replace("\xf1", "\x1d").encode()
    assert r.bytes == raw  # raw content: FNC1 separators as GS (0x1D)


@pytest.mark.parametrize("label", LABELS, ids=IDS)
def test_gs1_128_png_parses_with_biip(label):
    """Does biip parse what zxing read into the right GTIN, lot and serial without error?"""
    (r,) = decode(Image.open(io.BytesIO(gs1_128_png(label.element_string))))
    parsed = biip.parse(r.symbology_identifier + r.bytes.decode("ascii"))
    assert parsed.gs1_message_error is None
    strings = parsed.gs1_message.element_strings
    assert strings.get(ai="01").gtin.value == label.element_string[4:18]
    assert strings.get(ai="10").value == label.lot
    assert strings.get(ai="21").value == label.serial


@pytest.mark.parametrize("label", LABELS, ids=IDS)
def test_gs1_128_svg_rasterised_decodes_and_shows_hri(label):
    """Does the GS1-128 SVG, rasterised from its bar rects, decode, and is its text the HRI?"""
    root = ET.fromstring(gs1_128_svg(label.element_string))
    px = 300 / 25.4
    width, height = (float(root.get(k).removesuffix("mm")) for k in ("width", "height"))
    img = Image.new("L", (round(width * px), round(height * px)), 255)
    draw = ImageDraw.Draw(img)
    for rect in root.iter("{http://www.w3.org/2000/svg}rect"):
        if "black" not in (rect.get("style") or ""):
            continue
        x, y, w, h = (
            float(rect.get(k).removesuffix("mm")) * px for k in ("x", "y", "width", "height")
        )
        draw.rectangle((round(x), round(y), round(x + w) - 1, round(y + h) - 1), fill=0)
    (r,) = decode(img)
    assert (r.symbology_identifier, r.text) == ("]C1", label.element_string)
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == [label.element_string]


# ---------------------------------------------------------------------------------------------
# PDF label sheet
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sheet_pdf() -> bytes:
    return label_sheet_pdf(LABELS)


def test_pdf_sheet_codes_decode_from_rasterised_vector_content(sheet_pdf):
    """Rasterising the page's vector rectangles at 300 dpi, do ALL QR codes and GS1-128s decode?"""
    page = rasterise_pdf_page(sheet_pdf, 0, dpi=300)
    results = decode(page)
    qr = sorted(r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode)
    bars = sorted(
        (r.symbology_identifier, r.text)
        for r in results
        if r.format == zxingcpp.BarcodeFormat.Code128
    )
    assert qr == sorted(label.uri for label in LABELS)
    assert bars == sorted(("]C1", label.element_string) for label in LABELS)


@pytest.mark.slow  # pdftoppm, a process
@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) not found")
def test_pdf_sheet_qr_codes_decode_after_pdftoppm(sheet_pdf, tmp_path):
    """Rendered by a real PDF renderer (poppler) at 300 dpi, do all QR codes decode to the URIs?"""
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(sheet_pdf)
    subprocess.run(
        ["pdftoppm", "-r", "300", "-f", "1", "-l", "1", "-png", str(pdf), str(tmp_path / "p")],
        check=True,
    )
    (png,) = tmp_path.glob("p*.png")
    results = decode(Image.open(png))
    qr = sorted(r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode)
    assert qr == sorted(label.uri for label in LABELS)
    bars = sorted(r.text for r in results if r.format == zxingcpp.BarcodeFormat.Code128)
    assert bars == sorted(label.element_string for label in LABELS)


@pytest.mark.parametrize("label", LABELS, ids=IDS)
def test_pdf_sheet_text_has_name_lot_serial_and_hri(sheet_pdf, label):
    """Does pypdf extract each label's product name (Chinese too), lot, serial and HRI?"""
    text = PdfReader(io.BytesIO(sheet_pdf)).pages[0].extract_text()
    assert "".join(label.product_name.split()) in "".join(text.split())
    assert f"LOT {label.lot}" in text
    assert f"SN {grouped_serial(label.serial)}" in text
    assert label.element_string in text


def test_pdf_sheet_omits_bars_that_cannot_be_gs1_128_but_keeps_qr_and_text():
    """When the element string is too long for GS1-128, is only its text printed (QR intact)?"""
    lot = serial = "ABCDEFGHIJKLMNOPQRST"
    label = Label(
        uri=f"https://trace.example.cn/01/06901234567892/10/{lot}/21/{serial}",
        element_string=f"(01)06901234567892(10){lot}(21){serial}",
        product_name="有机大米 5kg",
        lot=lot,
        serial=serial,
    )
    pdf = label_sheet_pdf([label])
    results = decode(rasterise_pdf_page(pdf))
    assert [(r.format, r.text) for r in results] == [(zxingcpp.BarcodeFormat.QRCode, label.uri)]
    assert label.element_string in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_pdf_streams_generator_page_by_page_with_progress():
    """Does a generator of 250 labels give ceil(250/per_page) pages, one progress call per page,
    with the generator only ever read up to the page being drawn?"""
    produced: list[int] = []
    calls: list[tuple[int, int]] = []
    out = io.BytesIO()
    count = write_label_sheet_pdf(
        make_labels(250, produced), out, progress=lambda n: calls.append((n, len(produced)))
    )
    pages = math.ceil(250 / LABELS_PER_PAGE)
    assert count == 250
    assert len(PdfReader(io.BytesIO(out.getvalue())).pages) == pages
    expected = [min(250, LABELS_PER_PAGE * (p + 1)) for p in range(pages)]
    assert calls == [(n, n) for n in expected]


def test_pdf_of_no_labels_is_a_valid_one_page_pdf():
    """Does an empty iterable still give a valid PDF (one blank page, no progress calls)?"""
    calls: list[int] = []
    pdf = label_sheet_pdf([], progress=calls.append)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    assert calls == []


def test_pdf_long_product_name_is_cut_to_two_lines_with_ellipsis():
    """Is an over-long product name wrapped to two lines and ended with an ellipsis?"""
    name = "五常稻花香大米" * 12
    label = LABELS[0]
    pdf = label_sheet_pdf([Label(label.uri, label.element_string, name, label.lot, label.serial)])
    lines = PdfReader(io.BytesIO(pdf)).pages[0].extract_text().splitlines()
    assert lines[2:4] == [f"LOT {label.lot}", f"SN {grouped_serial(label.serial)}"]  # 2 lines
    assert lines[1].endswith("…")
    assert name.startswith(lines[0] + lines[1][:-1])


def test_serial_is_printed_in_groups_of_four():
    """Is a 16-character serial printed as four groups of four, and a short one unpadded?"""
    assert grouped_serial("2KQH6T3FPQBYRCWX") == "2KQH 6T3F PQBY RCWX"
    assert grouped_serial("A/B+7") == "A/B+ 7"


@pytest.mark.slow  # pdffonts and pdftotext, processes
@pytest.mark.skipif(shutil.which("pdffonts") is None, reason="pdffonts (poppler-utils) not found")
def test_pdf_sheet_embeds_its_cjk_font_and_poppler_finds_the_product_name(sheet_pdf, tmp_path):
    """Does every font of the sheet travel in the file (a subset, with its Unicode map), so
    that poppler without any font pack still extracts the Chinese product name?"""
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(sheet_pdf)
    listing = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True)
    fonts = listing.stdout.splitlines()[2:]
    assert fonts, listing.stdout
    for row in fonts:
        name, *_, emb, sub, uni, _obj, _gen = row.split()
        assert (emb, sub, uni) == ("yes", "yes", "yes"), row
        assert re.fullmatch(r"[A-Z]{6}\+WenQuanYiMicroHei", name)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    for label in LABELS:
        assert "".join(label.product_name.split()) in "".join(text.split())


def test_pdf_sheet_streams_its_first_page_before_the_labels_after_it_are_drawn():
    """Does the first page reach the reader while later labels are still unmade (a streamed
    sheet: the first byte of 100,000 labels does not wait for the last)?"""
    produced: list[int] = []
    pieces = iter_label_sheet_pdf(make_labels(10 * LABELS_PER_PAGE, produced))
    header, first_page = next(pieces), next(pieces)
    assert header.startswith(b"%PDF-1.7")
    assert b"/Type /Page " in first_page
    assert len(produced) <= 2 * LABELS_PER_PAGE  # the first page's, and not many more
    rest = b"".join(pieces)
    assert len(produced) == 10 * LABELS_PER_PAGE
    whole = header + first_page + rest
    assert len(PdfReader(io.BytesIO(whole)).pages) == 10
