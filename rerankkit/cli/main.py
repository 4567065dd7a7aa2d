"""``rerankkit`` entry point. Each command module exposes ``register(subparsers)``; add yours to COMMANDS.

Every subcommand sets ``func(args) -> int``. Errors rerankkit raises on purpose (``RerankkitError``)
print as one line on stderr with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import RerankkitError

#: command modules (under ``rerankkit.cli``) in the order their commands appear in ``--help``
COMMANDS: list[str] = [
    "rerank",
    "evaluation",
    "presets",
    "prompt",
    "datasets",
    "doctor",
    "retrieval",
    "bench",
    "robustness",
    "serve",
    "train",
    "adapt",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerankkit", description="LLM-based retrieval and reranking: every modern reranking method behind one API."
    )
    parser.add_argument("--version", action="version", version=f"rerankkit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 command failed, 2 usage or rerankkit error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except RerankkitError as exc:
        msg = " ".join(str(exc).split())
        print(f"rerankkit: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rerankkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rerankkit list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
