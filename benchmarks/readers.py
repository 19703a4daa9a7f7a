"""Benchmark of the XLSX engines behind ``app.importers.readers.XlsxReader``.

Generates a workbook of ``--rows`` people (8 columns: text, a date cell, a float, a boolean) with
xlsxwriter, then reads every row in a fresh subprocess per engine (so peak RSS is each engine's own):

- ``zip``: inflating the sheet XML from the zip and nothing else, the floor any reader sits on;
- ``calamine`` and ``openpyxl``: ``XlsxReader(engine=...).rows()``, i.e. the engine plus our cell-to-text
  conversion and header handling, which is what an import pays.

Reproduce: ``.venv/bin/python benchmarks/readers.py --rows 200000``

Figures (200,000 rows × 8 columns, 8.5 MB xlsx, 85 MB of sheet XML; 2-core box at a load average
around 1, 2026-11-23, after the calamine row-numbering fix and the cheaper ``_records``)::

    engine          rows  seconds    rows/s   x zip  peak RSS
    zip          200,000     0.17 1,171,296     1.0     22 MB
    calamine     200,000     3.54    56,435    20.8    239 MB
    openpyxl     200,000    18.54    10,788   108.6    117 MB

An earlier run on the same box under a load average of 4-5 gave calamine 21,753 rows/s (178 MB) and
openpyxl 3,017 rows/s (60 MB): compare figures only back to back. Where calamine's time goes on the
import benchmark's 200,000-row sheet (all text cells): ``get_sheet_by_name`` 1.5-2.1 s (the whole sheet,
+160 MB at the peak, +100 MB held), ``iter_rows()`` alone 0.1 s, our cell-to-text ``_records`` 0.20 s
and ``rows()`` (header split, dicts) 0.68 s per pass. Pure-Python streaming floors on that sheet, for
comparison: lxml ``iterparse`` building rows and nothing else 2.5 s, expat events alone 3.2 s, a regex
tokenising cells alone 2.3 s: none beats calamine's parse, so the streaming engine stays openpyxl.

calamine wins (the default for sheets up to ``ReaderLimits.in_memory_sheet_bytes``); openpyxl's
read-only mode is the streaming fallback for bigger sheets because its memory stays flat.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLUMNS = ["email", "first_name", "last_name", "title", "phone", "hired_on", "hours", "active"]


def generate(path: Path, rows: int) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("People")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, COLUMNS)
    start = dt.date(2020, 1, 1)
    for i in range(1, rows + 1):
        sheet.write_row(i, 0, [f"user{i}@example.com", f"First{i}", f"Last{i % 977}", "Engineer", f"+1555{i:07d}"])
        sheet.write_datetime(i, 5, dt.datetime.combine(start + dt.timedelta(days=i % 3000), dt.time()), date)
        sheet.write_number(i, 6, i * 0.25)
        sheet.write_boolean(i, 7, i % 2 == 0)
    book.close()


def measure(engine: str, path: Path) -> dict[str, float]:
    """Run in a child process: read everything once, return seconds, rows and peak RSS in MB."""
    started = time.perf_counter()
    rows = 0
    if engine == "zip":
        with zipfile.ZipFile(path) as archive, archive.open("xl/worksheets/sheet1.xml") as stream:
            tail = b""
            while chunk := stream.read(1 << 20):
                rows += (tail + chunk).count(b"</row>")
                tail = chunk[-5:]  # a tag split across chunks is counted once, in the next window
        rows -= 1  # the header row
    else:
        from app.importers.readers import ReaderLimits, XlsxReader

        reader = XlsxReader(path, ReaderLimits(), engine=engine)
        for _ in reader.rows("People"):
            rows += 1
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--measure", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "people.xlsx"
        generate(path, args.rows)
        with zipfile.ZipFile(path) as archive:
            xml_mb = archive.getinfo("xl/worksheets/sheet1.xml").file_size / 1e6
        size_mb = path.stat().st_size / 1e6
        print(f"{args.rows:,} rows × {len(COLUMNS)} columns: {size_mb:.1f} MB xlsx, {xml_mb:.0f} MB sheet XML")
        results = {}
        for engine in ["zip", "calamine", "openpyxl"]:
            out = subprocess.run([sys.executable, __file__, "--measure", engine, str(path)], check=True,
                                 capture_output=True, text=True).stdout
            results[engine] = json.loads(out)
        floor = results["zip"]["seconds"]
        print(f"{'engine':<10} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'x zip':>7} {'peak RSS':>9}")
        for engine, r in results.items():
            print(f"{engine:<10} {r['rows']:>9,} {r['seconds']:>8.2f} {r['rows'] / r['seconds']:>9,.0f} "
                  f"{r['seconds'] / floor:>7.1f} {r['rss_mb']:>6.0f} MB")


if __name__ == "__main__":
    main()
