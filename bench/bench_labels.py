"""Benchmark label rendering on one core.

    python bench/bench_labels.py [--count N]

Measures, in one process, labels per second for:

* ``naive``: ``qrcode.make(uri)`` saved as PNG (qrcode scores all 8 mask patterns) -- baseline;
* ``qr_png``: :func:`app.labels.qr_png` (fixed mask, Pillow rendering from the matrix);
* ``gs1_128_png``: :func:`app.labels.gs1_128_png` (python-barcode ImageWriter);
* ``pdf_sheet``: :func:`app.label_sheet.write_label_sheet_pdf` (QR + GS1-128 + text per label);
* ``first byte``: seconds until the first page of a ``--first-byte-count`` sheet (100,000
  labels by default) is out of :func:`app.label_sheet.iter_label_sheet_pdf`.

Prints a table and one ``RESULT name=value`` line per figure for scripts.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import qrcode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.label_sheet import iter_label_sheet_pdf, write_label_sheet_pdf
from app.labels import Label, gs1_128_png, qr_png


def labels(n: int) -> Iterator[Label]:
    """Realistic, distinct labels: 13-digit GTIN, 8-char lot, 16-char serial."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    for i in range(n):
        serial = "".join(
            alphabet[(i * 7919 + k * 31 + (i >> k)) % len(alphabet)] for k in range(16)
        )
        lot = f"L{2026 + i % 3}{'ABC'[i % 3]}-{i % 10}"
        yield Label(
            uri=f"https://trace.example.cn/01/06901234567892/10/{lot}/21/{serial}",
            element_string=f"(01)06901234567892(10){lot}(21){serial}",
            product_name=f"有机大米 {i % 10 + 1}kg",
            lot=lot,
            serial=serial,
        )


def rate(n: int, fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def bench_naive(items: list[Label]) -> None:
    for label in items:
        buf = io.BytesIO()
        qrcode.make(label.uri).save(buf)


def bench_qr_png(items: list[Label]) -> None:
    for label in items:
        qr_png(label.uri)


def bench_gs1_png(items: list[Label]) -> None:
    for label in items:
        gs1_128_png(label.element_string)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="labels for the PDF sheet")
    parser.add_argument(
        "--image-count", type=int, default=None, help="labels for the per-image benchmarks"
    )
    parser.add_argument(
        "--first-byte-count", type=int, default=100_000, help="labels of the first-byte sheet"
    )
    args = parser.parse_args(argv)
    n_img = args.image_count or max(1, min(args.count, 500))
    items = list(labels(n_img))
    bench_qr_png(items[:20])  # warm-up: imports, qrcode's precomputed blanks, fonts

    results: dict[str, tuple[int, float]] = {}
    results["naive_qrcode_make_png"] = (n_img, rate(n_img, lambda: bench_naive(items)))
    results["qr_png"] = (n_img, rate(n_img, lambda: bench_qr_png(items)))
    results["gs1_128_png"] = (n_img, rate(n_img, lambda: bench_gs1_png(items)))
    sink = io.BytesIO()
    results["pdf_sheet"] = (
        args.count,
        rate(args.count, lambda: write_label_sheet_pdf(labels(args.count), sink)),
    )

    t0 = time.perf_counter()
    pieces = iter_label_sheet_pdf(labels(args.first_byte_count))
    next(pieces), next(pieces)  # the header, then the first page
    first_byte_s = time.perf_counter() - t0
    pieces.close()

    base = results["naive_qrcode_make_png"][1]
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, single process / single core")
    print(f"{'benchmark':<24} {'labels':>7} {'labels/s':>10} {'vs naive':>9}")
    for name, (n, r) in results.items():
        print(f"{name:<24} {n:>7} {r:>10.1f} {r / base:>8.2f}x")
    print(f"pdf size: {len(sink.getvalue()) / 1024:.0f} KiB for {args.count} labels")
    print(f"first page of a {args.first_byte_count}-label sheet after {first_byte_s:.3f} s")
    print(f"RESULT first_page_s={first_byte_s:.3f}")
    for name, (_n, r) in results.items():
        print(f"RESULT {name}_labels_per_s={r:.1f}")
        print(f"RESULT {name}_ratio_vs_naive={r / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
