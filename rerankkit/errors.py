"""Typed errors. Each one says what went wrong and what to do next."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class RerankkitError(Exception):
    """Base class of every error rerankkit raises on purpose."""


def close_matches(name: str, known: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """The entries of ``known`` that look most like ``name`` (for "did you mean ...?"): at most ``n``, each
    at least ``cutoff`` alike and nearly as alike as the best one."""
    scored = []
    for k in dict.fromkeys(known):
        m = difflib.SequenceMatcher(None, str(name), k)
        if m.real_quick_ratio() >= cutoff and m.quick_ratio() >= cutoff and (r := m.ratio()) >= cutoff:
            scored.append((r, k))
    scored.sort(key=lambda x: -x[0])
    return [k for r, k in scored[:n] if r >= scored[0][0] - 0.1]


def did_you_mean(suggestions: Sequence[str], known: Sequence[str] = (), label: str = "known") -> str:
    """``"; did you mean 'a', 'b'?"``, else ``"; known: a, b, ..."`` (the first 12), else ``""``."""
    if suggestions:
        return "; did you mean " + ", ".join(repr(s) for s in suggestions) + "?"
    if known:
        shown = sorted(known)[:12]
        return f"; {label}: " + ", ".join(shown) + (" ..." if len(known) > len(shown) else "")
    return ""


class UnknownNameError(RerankkitError, KeyError):
    """A name (preset, strategy, backend, template, dataset, ...) is not registered."""

    def __init__(self, kind: str, name: str, suggestions: Sequence[str] = (), known: Sequence[str] = ()):
        self.kind = kind
        self.name = name
        self.suggestions = list(suggestions)
        super().__init__(f"unknown {kind} {name!r}" + did_you_mean(self.suggestions, known))

    @classmethod
    def among(cls, kind: str, name: str, known: Sequence[str], n: int = 3) -> UnknownNameError:
        """The error for ``name`` not in ``known``, with the closest matches."""
        return cls(kind, name, close_matches(name, known, n), known)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class DuplicateNameError(RerankkitError, ValueError):
    """Two registrations claim the same name or alias."""


class MissingExtraError(RerankkitError, ImportError):
    """An optional dependency is not installed; names the pip extra that provides it."""

    def __init__(self, package: str, extra: str, purpose: str = ""):
        self.package = package
        self.extra = extra
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(
            f"the optional dependency {package!r} is not installed{what}; "
            f"install it with: pip install 'rerankkit[{extra}]'"
        )


class CapabilityError(RerankkitError, TypeError):
    """A strategy needs a backend capability that the chosen backend does not offer."""


class ParseError(RerankkitError, ValueError):
    """Model output could not be parsed (strategies repair and count instead of raising when they can)."""


class TemplateError(RerankkitError, ValueError):
    """A prompt template is malformed or does not fit the strategy's schema."""


class ConfigError(RerankkitError, ValueError):
    """A spec, preset, override or config file is invalid."""


class InputError(RerankkitError, ValueError):
    """Bad input from the caller (duplicate document ids, wrong types, ...)."""


class DataNotFoundError(RerankkitError, FileNotFoundError):
    """Benchmark data is missing; says where it looked and how to get it."""


class BackendError(RerankkitError, RuntimeError):
    """A backend failed (server error, missing log-probs, out of memory, ...)."""


class ClusterError(RerankkitError, RuntimeError):
    """A compute cluster cannot run the work: unreachable, too small, or its workers kept dying."""
