"""Bounds on a data file, checked before it is parsed: its header (CSV) or footer (Parquet) only.

A 28 MB CSV whose header holds a million columns took minutes and gigabytes to parse in full; its
column count is known after reading the header alone, and that is all these checks read. Each
returns the sentence of the refusal (naming the file, what was found, the bound and the setting
that raises it), or None; ``datasets.read_table`` raises it.
"""

from __future__ import annotations

from pathlib import Path

_CHUNK_BYTES = 1 << 16


def too_large(path: Path, found: str, limit: int, setting: str) -> str:
    """The refusal of a file over one of its bounds."""
    return (
        f"data file {path} is too large: {found}, the bound is {limit}. Use a smaller file, or "
        f"raise {setting} in the raw_dataset run config if the machine can hold it"
    )


def csv_columns_problem(path: Path, max_columns: int, delimiter: bytes = b",") -> str | None:
    """Count the header's fields chunk by chunk (a quoted field may hold the delimiter and line
    breaks) and stop at the header's end or as soon as the count passes ``max_columns``: at most
    one chunk past the bound is read, however long the header."""
    columns, quoted = 1, False
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            for index, part in enumerate(chunk.split(b'"')):
                if index > 0:
                    quoted = not quoted  # an escaped quote ("") toggles twice
                if quoted:
                    continue
                ends = [found for found in (part.find(b"\n"), part.find(b"\r")) if found >= 0]
                columns += part.count(delimiter, 0, min(ends) if ends else len(part))
                if ends:
                    return _too_many(path, columns, max_columns)
            if columns > max_columns:
                return _too_many(path, columns, max_columns)
    return _too_many(path, columns, max_columns)


def _too_many(path: Path, columns: int, max_columns: int) -> str | None:
    if columns <= max_columns:
        return None
    return too_large(
        path, f"more than {max_columns} columns in its header", max_columns, "max_columns"
    )


def parquet_problem(path: Path, max_columns: int, max_rows: int) -> str | None:
    """The column and row counts from the Parquet footer (no column data is read)."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    if metadata.num_columns > max_columns:
        found = f"{metadata.num_columns} columns"
        return too_large(path, found, max_columns, "max_columns")
    if metadata.num_rows > max_rows:
        return too_large(path, f"{metadata.num_rows} rows", max_rows, "max_rows")
    return None
