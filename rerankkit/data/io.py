"""Reading text files (plain or gzip) line by line; undecodable bytes are replaced and counted."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import DataNotFoundError, InputError

log = logging.getLogger(__name__)
_REPLACEMENT = "\ufffd"
_REPLACEMENT_BYTES = _REPLACEMENT.encode("utf-8")


def open_binary(path: str | Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, transparently decompressing ``.gz`` files."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            magic = f.read(2)
    except FileNotFoundError:
        raise DataNotFoundError(f"no such file: {p}") from None
    except IsADirectoryError:
        raise InputError(f"{p} is a folder, expected a file") from None
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rb")
    return open(p, "rb")


@dataclass
class DecodeStats:
    """How many byte sequences could not be decoded as UTF-8 (each became U+FFFD)."""

    replaced: int = 0
    lines: int = 0


def iter_lines(path: str | Path, stats: DecodeStats | None = None) -> Iterator[str]:
    """Yield the lines of ``path`` without their line ending (a last line without newline is kept).

    Bytes that are not valid UTF-8 are replaced by U+FFFD and counted in ``stats`` (and logged once
    per file), never raised.
    """
    st = stats if stats is not None else DecodeStats()
    before = st.replaced
    with open_binary(path) as f:
        for raw in f:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("utf-8", errors="replace")
                st.replaced += line.count(_REPLACEMENT) - raw.count(_REPLACEMENT_BYTES)
                st.lines += 1
            yield line.rstrip("\r\n")
    if st.replaced > before:
        log.warning("%s: replaced %d undecodable byte sequence(s) with U+FFFD", path, st.replaced - before)


def read_text(path: str | Path, stats: DecodeStats | None = None) -> str:
    """The whole file as text (newlines normalised to ``\\n``), with undecodable bytes replaced."""
    return "\n".join(iter_lines(path, stats))
