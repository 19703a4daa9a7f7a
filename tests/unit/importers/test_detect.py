"""Refusals before parsing: wrong type behind a right extension, oversized files, decompression bombs."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from app.importers import ReaderError, ReaderLimits, open_reader

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
CSV = b"email,name\na@x.io,A\n"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("people.csv", PNG, "named like a CSV/TSV text file but its content is a PNG image"),
        ("people.csv", _zip({"a.txt": b"hi"}), "content is a zip archive that is not a spreadsheet"),
        ("people.xlsx", CSV, "named like an Excel workbook (.xlsx) but its content is a CSV/TSV text file"),
        ("people.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Excel 97-2003 (.xls)"),
        ("people.json", b"<people/>", "named like a JSON file but its content is an XML file"),
        ("people.xml", b'[{"a": 1}]', "named like an XML file but its content is a JSON file"),
        ("people.pdf", b"%PDF-1.7", "unsupported extension"),
        ("people.csv", b"", "the file is empty"),
    ],
)
def test_open_reader_refuses_content_that_does_not_match_the_name(write, name, content, message):
    with pytest.raises(ReaderError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        open_reader(write(name, content), name)


def test_open_reader_trusts_content_over_extension_case(write):
    assert open_reader(write("PEOPLE.CSV", CSV), "PEOPLE.CSV").headers(None) == ["email", "name"]


def test_open_reader_refuses_file_over_size_limit_up_front(write):
    with pytest.raises(ReaderError, match="the limit is 0.0 MB"):
        open_reader(write("people.csv", CSV), "people.csv", ReaderLimits(max_bytes=10))


def _workbook_with(tmp_path: Path, extra: dict[str, bytes]) -> Path:
    """A valid workbook with extra parts added, so only the bomb can be the reason for a refusal."""
    source = tmp_path / "base.xlsx"
    book = xlsxwriter.Workbook(str(source))
    book.add_worksheet().write_row("A1", ["email", "name"])
    book.close()
    target = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for member in original.infolist():
            out.writestr(member, original.read(member))
        for name, data in extra.items():
            out.writestr(name, data)
    return target


def test_open_reader_refuses_zip_bomb_by_ratio(tmp_path):
    bomb = _workbook_with(tmp_path, {"xl/media/zeros.bin": b"\x00" * (300 * 1024 * 1024)})  # ~300 KB on disk
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(ReaderError, match="expands 1,0[0-9]{2} times .*decompression bombs"):
        open_reader(bomb, "bomb.xlsx")


def test_open_reader_refuses_workbook_over_uncompressed_cap(tmp_path):
    bomb = _workbook_with(tmp_path, {"xl/media/zeros.bin": b"\x00" * (3 * 1024 * 1024)})
    with pytest.raises(ReaderError, match="would expand to more than 2 MB"):
        open_reader(bomb, "bomb.xlsx", ReaderLimits(max_uncompressed_bytes=2_000_000))


def test_open_reader_refuses_workbook_with_too_many_parts(tmp_path):
    bomb = _workbook_with(tmp_path, {f"xl/media/{i}.bin": b"" for i in range(50)})
    with pytest.raises(ReaderError, match="parts; the limit is 20"):
        open_reader(bomb, "bomb.xlsx", ReaderLimits(max_members=20))


def _understate_sizes(path: Path, member: str, declared: int) -> None:
    """Rewrite the central directory so ``member`` claims to inflate to ``declared`` bytes (a lying bomb)."""
    data = bytearray(path.read_bytes())
    position = data.find(b"PK\x01\x02")  # central directory headers: size at +24, name length at +28, name at +46
    while position != -1:
        length = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46 : position + 46 + length] == member.encode():
            struct.pack_into("<I", data, position + 24, declared)
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))


def test_open_reader_refuses_bomb_that_lies_about_its_size(tmp_path):
    bomb = _workbook_with(tmp_path, {"xl/media/zeros.bin": b"\x00" * (50 * 1024 * 1024)})
    _understate_sizes(bomb, "xl/media/zeros.bin", 1000)
    with zipfile.ZipFile(bomb) as archive:
        assert archive.getinfo("xl/media/zeros.bin").file_size == 1000  # the directory now passes the caps
    with pytest.raises(ReaderError, match="parts are not what they declare"):
        open_reader(bomb, "bomb.xlsx")

