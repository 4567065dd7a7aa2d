"""Typed errors. Each one says what went wrong and what to do next."""

from __future__ import annotations

from collections.abc import Sequence


class RerankkitError(Exception):
    """Base class of every error rerankkit raises on purpose."""


class UnknownNameError(RerankkitError, KeyError):
    """A name (preset, strategy, backend, template, dataset, ...) is not registered."""

    def __init__(self, kind: str, name: str, suggestions: Sequence[str] = (), known: Sequence[str] = ()):
        self.kind = kind
        self.name = name
        self.suggestions = list(suggestions)
        msg = f"unknown {kind} {name!r}"
        if self.suggestions:
            msg += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        elif known:
            shown = sorted(known)[:12]
            msg += "; known: " + ", ".join(shown) + (" ..." if len(known) > len(shown) else "")
        super().__init__(msg)

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
