"""Fixtures for the reader tests: pure file handling, so no Flask app and no database.

``app_ctx`` is overridden with a no-op: the suite-wide autouse fixture would build the app and empty
tables around every example, which readers do not need and which hypothesis would repeat per example.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.importers import Reader, ReaderLimits, open_reader
from tests.peers import soffice_binary

# LibreOffice CSV import filter: comma, double quote, UTF-8 (76), start at row 1, columns 1-2 as text and
# the rest "standard" (ISO dates become date cells), English locale; the 13th token says whether "=..."
# cells become live formulas.
LO_FILTER = "CSV:44,34,76,1,1/2/2/2,1033,false,false,false,false,false,-1,{formulas}"


@pytest.fixture(autouse=True)
def app_ctx() -> Iterator[None]:
    yield


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes | str], Path]:
    """Write bytes (or UTF-8 text) to a named file in the test's directory and return its path."""

    def write_file(name: str, content: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write_file


@pytest.fixture
def read_all() -> Callable[..., tuple[Reader, list[tuple[int, dict[str, str]]]]]:
    """Open a file through ``open_reader`` (content sniffing included) and return the reader and all rows."""

    def read(path: Path, limits: ReaderLimits | None = None, **kwargs) -> tuple[Reader, list]:
        reader = open_reader(path, path.name, limits, **kwargs)
        return reader, list(reader.rows(None))

    return read


@pytest.fixture(scope="session")
def soffice(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path, str, bool], Path]:
    """Convert a CSV with real LibreOffice Calc (PEERS.md §5), one private profile for the session."""
    binary = soffice_binary()
    profile = tmp_path_factory.mktemp("lo-profile")

    def convert(source: Path, target: str, formulas: bool = False) -> Path:
        outdir = source.parent / f"lo-{target}"
        subprocess.run(
            [binary, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
             f"--infilter={LO_FILTER.format(formulas=str(formulas).lower())}",
             "--convert-to", target, "--outdir", str(outdir), str(source)],
            check=True, capture_output=True, timeout=120,
        )
        return outdir / f"{source.stem}.{target}"

    return convert
