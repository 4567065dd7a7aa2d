"""Hostile files through every data reader: TREC topics/qrels/runs, candidate JSONL, BEIR JSONL and folders, configs.

Each test writes a file of valid lines mixed with malformed ones (bad columns, wrong JSON types, missing
fields, repeated ids or keys, NaN scores), optionally with a UTF-8 BOM, CRLF line ends and bytes that
are not UTF-8, and checks against a plain model of the format: the reader returns exactly the valid
records in order (nothing dropped; undecodable bytes replaced and counted), or raises an
:class:`InputError` / :class:`ConfigError` naming the file and the first bad line — never another exception.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import tomli_w
from hostile import hostile_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankkit import RerankkitError
from rerankkit.data import (
    DecodeStats,
    load_dataset,
    read_candidates,
    read_jsonl_corpus,
    read_qrels,
    read_run,
    read_topics,
)
from rerankkit.data.beir import read_queries_file
from rerankkit.errors import ConfigError, InputError
from rerankkit.registry import Registry

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))

# ids: no whitespace (TREC columns are whitespace separated), no BOM character
ID = st.text(st.characters(codec="utf-8", exclude_characters="\ufeff").filter(lambda c: not c.isspace()),
             min_size=1, max_size=8)
LINE_TEXT = hostile_text().map(lambda s: s.replace("\n", " "))  # one line (a lone "\r" stays inside it)
BAD_BYTES = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82", b"\x80\x80"])
_counter = iter(range(10**9))


def write(tmp: Path, lines: list[bytes], bom: bool, crlf: bool, suffix: str = ".txt") -> Path:
    p = tmp / f"f{next(_counter)}{suffix}"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (b"\r\n" if crlf else b"\n").join(lines))
    return p


def enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")  # a lone surrogate becomes bytes that are not UTF-8


def dec(b: bytes) -> str:
    return b.decode("utf-8", "replace").rstrip("\r\n")


def raises_at(path: Path, line: int):
    return pytest.raises(InputError, match=re.escape(f"{path}:{line}"))


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile-readers")


# ---------------------------------------------------------------------------------------------- TREC
TOPIC_ROWS = st.one_of(
    st.tuples(st.just("ok"), ID, LINE_TEXT),
    st.tuples(st.just("ok"), ID, st.tuples(LINE_TEXT, BAD_BYTES)),  # undecodable bytes inside the text
    st.tuples(st.just("notab"), LINE_TEXT.filter(lambda s: "\t" not in s and s.strip()), st.none()),
    st.tuples(st.just("noid"), st.just(""), LINE_TEXT),
    st.tuples(st.just("blank"), st.text(" \t\r", max_size=3), st.none()),
)


@FUZZ
@given(rows=st.lists(TOPIC_ROWS, max_size=8), bom=st.booleans(), crlf=st.booleans(), dup=st.booleans())
def test_topics(tmp, rows, bom, crlf, dup):
    if dup and any(r[0] == "ok" for r in rows):
        rows = [*rows, next(r for r in rows if r[0] == "ok")]
    lines, want, error, seen = [], [], None, {}
    for n, (kind, a, b) in enumerate(rows, 1):
        if kind in ("notab", "blank"):
            lines.append(enc(a))
        else:
            text = enc(b[0]) + b[1] if isinstance(b, tuple) else enc(b)
            lines.append(enc(a) + b"\t" + text)
        line = dec(lines[-1])
        if not line.strip() or error:
            continue
        qid, _, text = line.partition("\t")
        if kind in ("notab", "noid") or not qid.strip() or qid.strip() in seen:
            error = n
        else:
            seen[qid.strip()] = n
            want.append((qid.strip(), text.strip()))
    path = write(tmp, lines, bom, crlf)
    stats = DecodeStats()
    if error:
        with raises_at(path, error):
            read_topics(path, stats)
        return
    got = read_topics(path, stats)
    assert [(q.qid, q.text) for q in got] == want
    assert (stats.replaced > 0) == any(dec(ln) != ln.decode("utf-8", "ignore").rstrip("\r\n") for ln in lines)


QREL_ROWS = st.one_of(
    st.tuples(st.just("ok"), st.tuples(ID, ID, st.integers(-3, 4), st.sampled_from([" ", "\t", "  "]))),
    st.tuples(st.just("columns"), st.lists(ID, min_size=1, max_size=6).filter(lambda x: len(x) not in (3, 4))),
    st.tuples(st.just("grade"), st.tuples(ID, ID, st.sampled_from(["1.5", "x", "NaN", "", "1e3", "--1"]))),
)


@FUZZ
@given(rows=st.lists(QREL_ROWS, max_size=8), bom=st.booleans(), crlf=st.booleans(), header=st.booleans(),
       dup=st.booleans())
def test_qrels(tmp, rows, bom, crlf, header, dup):
    if dup and any(r[0] == "ok" for r in rows):
        rows = [*rows, next(r for r in rows if r[0] == "ok")]
    lines, want, error, seen = [], [], None, set()
    if header:
        lines.append(b"query-id\tcorpus-id\tscore")
    for kind, value in rows:
        if kind == "ok":
            q, d, g, sep = value
            lines.append(enc(sep.join([q, "0", d, str(g)])))
        elif kind == "columns":
            lines.append(enc(" ".join(value)))
        else:
            lines.append(enc(" ".join([value[0], "0", value[1], value[2]])))
        n = len(lines)
        if error:
            continue
        parts = dec(lines[-1]).split()
        # (an empty grade leaves three columns: BEIR's shape, with a grade that is not an integer)
        if kind in ("columns", "grade") or (parts[0], parts[2]) in seen:
            error = n
        else:
            seen.add((parts[0], parts[2]))
            want.append((parts[0], parts[2], int(parts[3])))
    path = write(tmp, lines, bom, crlf)
    if error:
        with raises_at(path, error):
            read_qrels(path)
        return
    assert [(q.qid, q.docid, q.relevance) for q in read_qrels(path)] == want


SCORES = st.floats(allow_nan=False, width=64).map(repr)
RUN_ROWS = st.one_of(
    st.tuples(st.just("ok"), st.tuples(st.sampled_from(["q1", "q2", "ü"]), ID, st.integers(0, 9), SCORES)),
    st.tuples(st.just("short"), st.lists(ID, min_size=1, max_size=4)),
    st.tuples(st.just("nan"), st.tuples(ID, ID, st.integers(0, 9), st.sampled_from(["nan", "NaN", "-nan"]))),
    st.tuples(st.just("word"), st.tuples(ID, ID, st.sampled_from(["one", "1.5x"]), SCORES)),
)


@FUZZ
@given(rows=st.lists(RUN_ROWS, max_size=10), bom=st.booleans(), crlf=st.booleans(), tag=st.booleans())
def test_runs(tmp, rows, bom, crlf, tag):
    lines, error, per_q = [], None, {}
    for n, (kind, v) in enumerate(rows, 1):
        if kind == "short":
            lines.append(enc(" ".join(v)))
        else:
            q, d, r, s = v
            lines.append(enc(" ".join([q, "Q0", d, str(r), s] + (["tag"] if tag else []))))
        if kind in ("short", "nan", "word") and error is None:
            error = n
        if kind == "ok":
            per_q.setdefault(q, []).append((float(s), r, n, d))
    dup_line = None  # a document repeated within a query is refused (at its second line)
    for items in per_q.values():
        seen = {}
        for _, _, n, d in items:
            if d in seen:
                dup_line = n if dup_line is None else min(dup_line, n)
            seen.setdefault(d, n)
    path = write(tmp, lines, bom, crlf)
    if error is not None or dup_line is not None:
        # reading stops at the first malformed line; repeated documents are found after the whole file
        with raises_at(path, error if error is not None else dup_line):
            read_run(path)
        return
    run = read_run(path)
    assert list(run) == list(per_q)
    for q, items in per_q.items():
        assert run[q].docids == [d for *_, d in sorted(items, key=lambda t: (-t[0], t[1], t[2]))]


# ---------------------------------------------------------------------------------------------- JSON
JSON_ID = st.one_of(ID, st.integers(-5, 10**6))
HIT = st.fixed_dictionaries({"docid": JSON_ID}, optional={
    "content": st.one_of(st.none(), hostile_text()), "title": st.one_of(st.none(), hostile_text(max_size=10)),
    "score": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-99, 99)),
    "rank": st.integers(), "extra": st.dictionaries(ID, st.integers(), max_size=2)})
RECORD = st.fixed_dictionaries({"query": hostile_text(), "hits": st.lists(HIT, max_size=4)},
                               optional={"qid": JSON_ID})
# (kind, a function making the bad record's text from a good record)
BAD_RECORDS = [
    ("not json", lambda r: "{" + json.dumps(r)),
    ("an array", lambda r: json.dumps([1])),  # first in a JSONL file, it makes the file read as one JSON array
    ("no hits", lambda r: json.dumps({"query": r["query"]})),
    ("query type", lambda r: json.dumps({**r, "query": 7})),
    ("docid type", lambda r: json.dumps({**r, "hits": [{"docid": None}]})),
    ("docid list", lambda r: json.dumps({**r, "hits": [{"docid": ["a"]}]})),
    ("docid bool", lambda r: json.dumps({**r, "hits": [{"docid": True}]})),
    ("content type", lambda r: json.dumps({**r, "hits": [{"docid": "a", "content": 5}]})),
    ("title type", lambda r: json.dumps({**r, "hits": [{"docid": "a", "title": {"x": 1}}]})),
    ("score text", lambda r: json.dumps({**r, "hits": [{"docid": "a", "score": "high"}]})),
    ("score nan", lambda r: json.dumps({**r, "hits": [{"docid": "a", "score": float("nan")}]})),
    ("score list", lambda r: json.dumps({**r, "hits": [{"docid": "a", "score": [1]}]})),
    ("hit type", lambda r: json.dumps({**r, "hits": ["a"]})),
    ("qid type", lambda r: json.dumps({**r, "qid": {"id": 1}})),
    ("repeated key", lambda r: json.dumps(r)[:-1] + ', "query": "again"}'),
    ("repeated docid", lambda r: json.dumps({**r, "hits": [{"docid": "a"}, {"docid": "a"}]})),
]


@FUZZ
@given(records=st.lists(RECORD, max_size=5), bad=st.one_of(st.none(), st.sampled_from(BAD_RECORDS)),
       at=st.integers(0, 5), bom=st.booleans(), crlf=st.booleans(), array=st.booleans())
def test_candidate_files(tmp, records, bad, at, bom, crlf, array):
    good = []
    for i, r in enumerate(records):  # unique qids and docids: repeats are tested as bad records
        r = {**r, "qid": f"q{i}", "hits": [{**h, "docid": f"d{j}"} for j, h in enumerate(r["hits"])]}
        good.append(json.loads(json.dumps(r)))  # what the JSON says ("\ud800" "\udc00" side by side are a pair)
    texts = [json.dumps(r) for r in good]  # ensure_ascii: lone surrogates travel as \\u escapes
    at = min(at, len(texts))
    if bad is not None:
        texts.insert(at, bad[1]({"query": "q", "hits": [], "qid": "bad"}))
    if array:
        path = write(tmp, [enc("[" + ",\n".join(texts) + "]")], bom, crlf, ".json")
    else:
        path = write(tmp, [enc(t) for t in texts], bom, crlf, ".jsonl")
    if bad is not None:
        with pytest.raises(InputError, match=re.escape(str(path))) as err:
            read_candidates(path)
        if not array and not (at == 0 and bad[0] == "an array"):  # JSONL errors name the line
            assert f"{path}:{at + 1}" in str(err.value)
        return
    run = read_candidates(path)
    assert list(run) == [r["qid"] for r in good]
    for r in good:
        ranking = run[r["qid"]]
        assert ranking.query.text == r["query"]
        assert ranking.docids == [h["docid"] for h in r["hits"]]
        assert [d.doc.text for d in ranking.docs] == [h.get("content") or "" for h in r["hits"]]


CORPUS_BAD = [
    ("not json", "{'_id': 'x'}"), ("an array", '["x"]'), ("no id", '{"text": "t"}'), ("id null", '{"_id": null}'),
    ("id float", '{"_id": 1.5}'), ("id list", '{"_id": ["a"]}'), ("text type", '{"_id": "a", "text": 3}'),
    ("title type", '{"_id": "a", "title": ["t"]}'), ("repeated key", '{"_id": "a", "text": "t", "_id": "b"}'),
    ("deep", '{"_id": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
]
DOC = st.fixed_dictionaries({"_id": JSON_ID}, optional={"text": st.one_of(st.none(), hostile_text()),
                                                        "title": st.one_of(st.none(), hostile_text(max_size=10)),
                                                        "metadata": st.dictionaries(ID, ID, max_size=2)})


@FUZZ
@given(docs=st.lists(DOC, max_size=6), bad=st.one_of(st.none(), st.sampled_from(CORPUS_BAD)), at=st.integers(0, 6),
       bom=st.booleans(), crlf=st.booleans())
def test_jsonl_corpus(tmp, docs, bad, at, bom, crlf):
    texts = [json.dumps(d) for d in docs]
    docs = [json.loads(t) for t in texts]  # what the JSON says ("\ud800" "\udc00" side by side are a pair)
    at = min(at, len(texts))
    if bad is not None:
        texts.insert(at, bad[1])
    path = write(tmp, [enc(t) for t in texts], bom, crlf, ".jsonl")
    if bad is not None:
        with raises_at(path, at + 1):
            list(read_jsonl_corpus(path))
        return
    got = list(read_jsonl_corpus(path))
    assert [(d.docid, d.text, d.title) for d in got] == [
        (str(d["_id"]), d.get("text") or "", d.get("title") or "") for d in docs]


@FEW
@given(qids=st.lists(ID, min_size=1, max_size=5), texts=st.data(), bom=st.booleans(), crlf=st.booleans())
def test_jsonl_queries_refuse_repeated_ids(tmp, qids, texts, bom, crlf):
    rows = [json.dumps({"_id": q, "text": texts.draw(hostile_text())}) for q in qids]
    qids = [json.loads(r)["_id"] for r in rows]
    path = write(tmp, [enc(r) for r in rows], bom, crlf, ".jsonl")
    if len(set(qids)) < len(qids):
        second = next(i for i, q in enumerate(qids) if q in qids[:i])
        with raises_at(path, second + 1):
            read_queries_file(path)
    else:
        assert [q.qid for q in read_queries_file(path)] == qids


@FEW
@given(corpus_bad=st.one_of(st.none(), st.sampled_from(CORPUS_BAD)), dup_doc=st.booleans(),
       qrels_bad=st.one_of(st.none(), st.sampled_from(["q1 d1", "q1 d1 high", "q1 0 d1 1\nq1 0 d1 2"])),
       bom=st.booleans(), crlf=st.booleans())
def test_beir_folder(tmp, corpus_bad, dup_doc, qrels_bad, bom, crlf):
    folder = tmp / f"beir{next(_counter)}"
    (folder / "qrels").mkdir(parents=True)
    corpus = [json.dumps({"_id": f"d{i}", "title": "", "text": f"text {i}"}) for i in range(3)]
    if dup_doc:
        corpus.append(json.dumps({"_id": "d1", "text": "again"}))
    if corpus_bad:
        corpus.append(corpus_bad[1])
    write_to = {"corpus.jsonl": corpus, "queries.jsonl": [json.dumps({"_id": "q1", "text": "what"})],
                "qrels/test.tsv": ["query-id\tcorpus-id\tscore", *(qrels_bad or "q1\td1\t1").split("\n")]}
    for name, lines in write_to.items():
        (folder / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + (b"\r\n" if crlf else b"\n").join(
            enc(x) for x in lines))
    ds = load_dataset(str(folder))
    try:
        qs, qrels, lookup = ds.queries(), ds.qrels(), ds.doc_lookup()
    except InputError as exc:
        assert corpus_bad or dup_doc or qrels_bad, exc
        assert str(folder) in str(exc) or "local:" in str(exc)
        return
    assert not (corpus_bad or dup_doc or qrels_bad)
    assert [q.qid for q in qs] == ["q1"] and [(q.docid, q.relevance) for q in qrels] == [("d1", 1)]
    assert sorted(lookup) == ["d0", "d1", "d2"]


# ---------------------------------------------------------------------------------------------- configs
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text(max_size=12))
KEYS = st.one_of(st.sampled_from(["strategy", "template", "backend", "model", "params", "backend_options",
                                  "description", "name", "aliases", "k", "window"]), ID)
VALUES = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)


def _toml_safe(v):
    if v is None:
        return "none"
    if isinstance(v, str):
        return v.encode("utf-8", "replace").decode("utf-8")
    if isinstance(v, list):
        return [_toml_safe(x) for x in v]
    if isinstance(v, dict):
        return {str(k).encode("utf-8", "replace").decode(): _toml_safe(x) for k, x in v.items()}
    return v


@FUZZ
@given(table=st.dictionaries(KEYS, VALUES, max_size=6), raw=st.one_of(st.none(), hostile_text()),
       dup=st.booleans(), bom=st.booleans(), crlf=st.booleans())
def test_reranker_spec_and_preset_files(tmp, table, raw, dup, bom, crlf):
    from rerankkit.presets import register_presets
    from rerankkit.spec import RerankerSpec

    if raw is not None:
        text = raw
    else:
        text = tomli_w.dumps(_toml_safe(table))
        if dup and table:
            text += text.splitlines()[0] + "\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + enc(text.replace("\n", "\r\n") if crlf else text)
    spec_path = tmp / f"s{next(_counter)}.toml"
    spec_path.write_bytes(data)
    try:
        spec = RerankerSpec.load(spec_path)
    except RerankkitError as exc:
        assert isinstance(exc, ConfigError) and str(spec_path) in str(exc)
    else:
        assert spec.strategy and spec.template and spec.backend
        assert tomllib.loads(spec.to_toml())  # round-trips
    presets = tmp / f"p{next(_counter)}.toml"
    presets.write_bytes(b"[mine]\n" + data if raw is None else data)
    try:
        register_presets(presets, Registry("reranker preset"))
    except RerankkitError as exc:
        assert str(presets) in str(exc) or "spec" in str(exc)


CONFIG_KEYS = st.one_of(st.sampled_from(["datasets", "conditions", "measures", "defaults", "reranker", "retriever",
                                         "k", "depth", "preset", "output_dir", "max_steps", "lora", "r", "alpha",
                                         "negatives", "holdout_queries", "learning_rate", "objective", "name"]), ID)
CONFIG = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(CONFIG_KEYS, inner, max_size=4)), max_leaves=10)


@FUZZ
@given(doc=st.dictionaries(CONFIG_KEYS, CONFIG, max_size=6), raw=st.one_of(st.none(), hostile_text()),
       dup=st.booleans(), bom=st.booleans())
def test_bench_and_train_yaml_configs(tmp, doc, raw, dup, bom):
    import yaml

    from rerankkit.bench import load_config
    from rerankkit.train.config import load_train_config

    text = raw if raw is not None else yaml.safe_dump(_toml_safe(doc), allow_unicode=True)
    if dup and raw is None and doc:
        text += text.splitlines()[0] + "\n"
    path = tmp / f"c{next(_counter)}.yaml"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + enc(text))
    for load in (load_config, load_train_config):
        try:
            load(path)
        except RerankkitError as exc:
            assert str(path) in str(exc) or isinstance(exc, ConfigError), exc
