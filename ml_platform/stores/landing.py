"""What a landing folder holds and how each file opens, within the spec's limits (platform-owned).

Exports arrive compressed (``export.csv.gz``), with other delimiters, beside notes and spreadsheets.
Every entry of a landing folder is one of three things, and none is passed over in silence:

- **read**: CSV, plain or compressed (``.csv.gz``, ``.csv.bz2``, ``.csv.xz``, ``.csv.zst``, or a
  ``.zip`` holding exactly one CSV), and Parquet with any codec;
- **ignored**, and listed as such in the snapshot's metadata: hidden entries (``.x``), entries an
  exporter marks as not for reading (``_SUCCESS``, ``_draft.csv``), files still being transferred
  (``.part``, ``.tmp``, ``.crdownload`` …), folders and links that lead nowhere;
- **refused by name**: anything else, with the formats that are read.

The spec's ``limits`` are checked before a file is read whole, from what costs nothing to learn (the
size on disk, a Parquet footer) or from one pass that streams through the decompressor ``CHUNK_BYTES``
at a time, counting bytes and lines, and stops as soon as a limit is passed: a gzip bomb is refused
after ``max_decompressed_bytes`` with one chunk in memory. The same pass reads the header, whose
delimiter is compared with the spec's.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ml_platform.errors import ContractViolation
from ml_platform.rules.contracts import delimiter_refusal, foreign_delimiter, limit_refusal
from ml_platform.rules.evidence import capped
from ml_platform.rules.spec import LandingLimits

CSV_FORMATS = {
    ".csv": None,
    ".csv.gz": "gzip",
    ".csv.bz2": "bzip2",
    ".csv.xz": "xz",
    ".csv.zst": "zstd",
    ".csv.zip": "zip",
    ".zip": "zip",
}
PARQUET_FORMATS = (".parquet", ".pq")
SUPPORTED = (*CSV_FORMATS, *PARQUET_FORMATS)
IN_TRANSFER = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart")
FORMAT_HINTS = {
    (".xlsx", ".xlsm", ".xls", ".ods"): "a spreadsheet: save it as CSV (UTF-8)",
    (".json", ".jsonl", ".ndjson"): "JSON: export it as CSV or Parquet",
    (".tsv", ".tab", ".txt"): "text that is not named as CSV: if it is comma-separated, name it .csv",
    (".tar", ".tgz", ".tar.gz", ".7z", ".rar"): "an archive: unpack its CSV or Parquet files into the folder",
    (".gz", ".bz2", ".xz", ".zst"): "a compressed file that is not a CSV: only .csv may be compressed",
}
CHUNK_BYTES = 1 << 20
TAIL_BYTES = 65536
DEFAULT_LIMITS = LandingLimits()


@dataclass(frozen=True)
class LandingFolder:
    """A landing folder's entries by what happens to them: read, ignored, refused."""

    files: tuple[Path, ...]
    ignored: tuple[str, ...]
    unsupported: tuple[str, ...]


@dataclass(frozen=True)
class CsvShape:
    """What one streamed pass learned of a CSV: its header line, size, line count and last bytes."""

    header: str
    bytes: int
    lines: int
    tail: bytes


def landing_format(name: str) -> str | None:
    """The supported format a file name ends with (``.csv.gz``, ``.parquet`` …), or None."""
    lowered = name.lower()
    return next((suffix for suffix in sorted(SUPPORTED, key=len, reverse=True) if lowered.endswith(suffix)), None)


def format_name(suffix: str) -> str:
    """A format as a message names it: "CSV", "gzip-compressed CSV", "Parquet"."""
    if suffix in PARQUET_FORMATS:
        return "Parquet"
    codec = CSV_FORMATS[suffix]
    return f"{codec}-compressed CSV" if codec else "CSV"


def survey(landing: Path) -> LandingFolder:
    """Sort a landing folder's entries into read, ignored and unsupported, by name."""
    if not landing.is_dir():
        return LandingFolder((), (), ())
    files, ignored, unsupported = [], [], []
    for path in sorted(landing.iterdir()):
        name = path.name
        if name.startswith((".", "_")) or name.lower().endswith(IN_TRANSFER):
            ignored.append(name)
        elif not path.is_file():  # a folder, or a link that does not resolve
            ignored.append(f"{name}/" if path.is_dir() else name)
        elif landing_format(name) is None:
            unsupported.append(name)
        else:
            files.append(path)
    return LandingFolder(tuple(files), tuple(ignored), tuple(unsupported))


def unsupported_refusal(names: tuple[str, ...] | list[str], landing: Path, role: str = "landing") -> str:
    """The refusal of files the platform does not read, naming each and what to do with it.

    ``role`` names the folder's use (landing, scoring, feedback): the formats are the same for all three.
    """
    hints = sorted(
        {hint for name in names for suffixes, hint in FORMAT_HINTS.items() if name.lower().endswith(suffixes)}
    )
    why = f" ({'; '.join(hints)})" if hints else ""
    return (
        f"{role} file(s) {capped(list(names))} in {landing} are not a supported {role} format{why}; supported: "
        f"{', '.join(SUPPORTED)}. Convert them, move them out of the folder, or prefix a name with '_' to keep "
        "that file there unread."
    )


def check_file_size(path: Path, limits: LandingLimits) -> None:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise ContractViolation(limit_refusal(path.name, limits, "max_file_bytes", size, "it is", at_least=False))


@contextmanager
def opened(path: Path, suffix: str) -> Iterator[BinaryIO]:
    """The file's CSV bytes, decompressed as they are read: never the whole file in memory."""
    codec = CSV_FORMATS[suffix]
    with ExitStack() as stack:
        if codec is None:
            yield stack.enter_context(path.open("rb"))
        elif codec == "gzip":
            yield stack.enter_context(gzip.open(path, "rb"))
        elif codec == "bzip2":
            yield stack.enter_context(bz2.open(path, "rb"))
        elif codec == "xz":
            yield stack.enter_context(lzma.open(path, "rb"))
        elif codec == "zstd":  # Arrow's codec: no extra package, unlike pandas' own .zst support
            import pyarrow as pa

            source = stack.enter_context(pa.OSFile(str(path)))
            yield stack.enter_context(pa.CompressedInputStream(source, "zstd"))
        else:
            archive = stack.enter_context(zipfile.ZipFile(path))
            yield stack.enter_context(archive.open(_only_csv_member(path, archive)))


def _only_csv_member(path: Path, archive: zipfile.ZipFile) -> str:
    members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX/")]
    if len(members) != 1 or not members[0].lower().endswith(".csv"):
        raise ContractViolation(
            f"landing file {path.name!r} is a zip archive holding {capped(members)} (expected exactly one .csv "
            "file). Unpack its files into the landing folder, or zip one CSV per archive."
        )
    return members[0]


def measure_csv(path: Path, suffix: str, limits: LandingLimits, delimiter: str) -> CsvShape:
    """Stream through a CSV once, refusing it as soon as it passes a limit or shows another delimiter.

    Rows are counted as lines after the header: a quoted value holding line breaks counts more than
    once, so the count errs on the side of the limit.
    """
    compressed = CSV_FORMATS[suffix] is not None
    size, lines, header, tail = 0, 0, None, b""
    with opened(path, suffix) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            size += len(chunk)
            lines += chunk.count(b"\n")
            tail = (tail + chunk)[-TAIL_BYTES:]
            if header is None:
                header = _header(path, chunk, limits, delimiter)
            if compressed and size > limits.max_decompressed_bytes:
                how = "it decompresses to"
                raise ContractViolation(limit_refusal(path.name, limits, "max_decompressed_bytes", size, how, True))
            if lines - 1 > limits.max_rows:
                how = "it holds (as lines after its header)"
                raise ContractViolation(limit_refusal(path.name, limits, "max_rows", lines - 1, how, True))
    rows = lines - 1 + (bool(tail) and not tail.endswith(b"\n"))
    if rows > limits.max_rows:
        raise ContractViolation(limit_refusal(path.name, limits, "max_rows", rows, "it holds", at_least=False))
    return CsvShape(header or "", size, lines, tail)


def _header(path: Path, chunk: bytes, limits: LandingLimits, delimiter: str) -> str:
    """The header line of a CSV's first chunk, checked for its delimiter and its number of columns."""
    header = chunk.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").rstrip(b"\r").decode("utf-8", "replace")
    found = foreign_delimiter(header, delimiter)
    if found is not None:
        raise ContractViolation(delimiter_refusal(path.name, found, delimiter, header))
    columns = len(next(csv.reader([header], delimiter=delimiter), []))
    if columns > limits.max_columns:
        at_least = b"\n" not in chunk
        how = "its header has"
        raise ContractViolation(limit_refusal(path.name, limits, "max_columns", columns, how, at_least))
    return header


def check_parquet(path: Path, limits: LandingLimits) -> None:
    """Refuse a Parquet file over a limit from its footer alone, before a page is decompressed."""
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(path)
    uncompressed = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    measured = (
        ("max_rows", metadata.num_rows, "its metadata lists"),
        ("max_columns", metadata.num_columns, "its metadata lists"),
        ("max_decompressed_bytes", uncompressed, "its metadata gives its uncompressed data as"),
    )
    for limit, observed, how in measured:
        if observed > getattr(limits, limit):
            raise ContractViolation(limit_refusal(path.name, limits, limit, observed, how, at_least=False))
