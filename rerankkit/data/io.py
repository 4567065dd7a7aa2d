"""Reading text files (plain or gzip) line by line; undecodable bytes are replaced and counted.

A UTF-8 byte-order mark at the start of a file is an encoding signature, not text: it is dropped
(``utf-8-sig``), so the first id of a file written by a Windows editor matches. ``CRLF`` line ends are
read as ``LF``. :func:`json_object` parses one JSON record and refuses duplicate keys.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import DataNotFoundError, InputError

log = logging.getLogger(__name__)
_REPLACEMENT = "\ufffd"
_REPLACEMENT_BYTES = _REPLACEMENT.encode("utf-8")
_BOM = b"\xef\xbb\xbf"


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
        for n, raw in enumerate(f):
            if n == 0 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
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


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)


def json_object(text: str, where: str, whole_file: bool = False) -> dict[str, Any]:
    """The JSON object in ``text``; anything else (bad JSON, another type, a repeated key) is an
    :class:`InputError` naming ``where`` (``file:line``; with ``whole_file``, the line of a syntax error
    is added to the file name)."""
    try:
        value = _DECODER.decode(text)
    except _DuplicateKey as exc:
        raise InputError(f"{where}: the key {exc.key!r} appears twice in one JSON object") from None
    except json.JSONDecodeError as exc:
        at = f"{where}:{exc.lineno}" if whole_file else where
        raise InputError(f"{at}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{where}: not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value
