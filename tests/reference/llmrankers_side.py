"""Run ielab/llm-rankers' PRP and setwise rankers on given candidates; write what they did as JSON.

Runs in its own process (llm-rankers seeds the global ``random`` on import and prints as it goes) and never
imports rerankkit. Usage: ``python llmrankers_side.py SPEC.json OUT.json`` where SPEC is
``{"model": folder, "cases": [{"name", "ranker": "pairwise"|"setwise", "method", "k", "num_child",
"scoring"}], "items": [{"qid", "query", "docs": [[docid, text], ...]}], "query_length", "passage_length",
"threads"}``. Queries and passages are cut with the ranker's own ``truncate``, as its run.py does.

The rankers run unmodified; their ``compare`` is wrapped (not edited) to record, per query, every
prompt's passages (as docids, in the order shown) and answer. Patches applied here, at run time, for
transformers 5 (llm-rankers 0.0.2 was written for transformers 4.31):

1. ``T5Tokenizer.batch_encode_plus`` no longer exists; the setwise ranker's constructor calls it for its
   label token ids. It is put back as the tokenizer's ``__call__`` (what it did).
2. PRP ``allpair`` works for T5 only: its batched loop passes ``decoder_input_ids`` to ``generate`` and
   compares the decoded *whole* sequence with "Passage A", which for a causal model includes the prompt.
   For a causal model (llama) every pair is asked through the ranker's own ``compare`` (its chat prompt,
   " Passage:", one generated token) and aggregated as its allpair code does: a win counts 1, a conflict
   0.5 to each, a stable sort by score, the top-k, then the rest in the original order.
3. Setwise ``bubblesort`` can reach a window with no passage (after a pass without any change its
   clipped top window is empty); ``likelihood`` scoring then fails (IndexError on an empty ranking of
   labels). Such a window is answered "A" (no change) without a model call; ``generation`` mode asks the
   model as it does.
4. Setwise ``bubblesort`` swaps the window's top with the passage at the answered label's offset even when
   that label lies beyond the window (a passage outside it moves, or IndexError at the bottom of the list).
   Such an answer is handed to it as unexpected (no change), as its ``heapsort`` treats it; the recorded
   answer is the model's.
"""

from __future__ import annotations

import json
import random
import sys
from itertools import combinations


def patch_transformers() -> None:
    from transformers import T5Tokenizer

    if not hasattr(T5Tokenizer, "batch_encode_plus"):  # patch 1
        T5Tokenizer.batch_encode_plus = lambda self, texts, **kw: self(texts, **kw)


def build(case: dict, model: str):
    import llmrankers.pairwise as pw
    import llmrankers.setwise as sw

    if case["ranker"] == "pairwise":
        return pw.PairwiseLlmRanker(model, None, "cpu", method=case["method"], k=case["k"])
    return sw.SetwiseLlmRanker(model, None, "cpu", num_child=case["num_child"], k=case["k"],
                               scoring=case["scoring"], method=case["method"])


def causal_allpair(ranker, query: str, docs: list) -> list:
    """Patch 2: PRP allpair for a causal model, through the ranker's own compare."""
    scores = {d.docid: 0.0 for d in docs}
    for d1, d2 in combinations(docs, 2):
        out = ranker.compare(query, [d1.text, d2.text])
        if out == ["Passage A", "Passage B"]:
            scores[d1.docid] += 1
        elif out == ["Passage B", "Passage A"]:
            scores[d2.docid] += 1
        else:
            scores[d1.docid] += 0.5
            scores[d2.docid] += 0.5
    ranked = sorted(scores, key=lambda d: -scores[d])[: ranker.k]
    return ranked + [d.docid for d in docs if d.docid not in set(ranked)]


def run_case(ranker, case: dict, items: list, qlen: int, plen: int) -> list[dict]:
    from llmrankers.rankers import SearchResult

    out = []
    for item in items:
        query = ranker.truncate(item["query"], qlen)
        docs = [SearchResult(docid=d, score=0.0, text=ranker.truncate(t, plen)) for d, t in item["docs"]]
        by_text: dict[str, str] = {}
        for d in docs:
            by_text.setdefault(d.text, d.docid)
        unique_texts = len(by_text) == len(docs)
        prompts: list[tuple[list[str], str]] = []  # (docids shown, answer), in the order asked
        inputs: list[list[int]] = []  # the token ids the model read, one row per prompt, in the same order
        inner = type(ranker).compare
        captured = capture(ranker, inputs)

        def compare(q, shown, inner=inner, prompts=prompts, by_text=by_text, inputs=inputs):
            if not shown and getattr(ranker, "scoring", "") == "likelihood":  # patch 3
                answer = "A"
                inputs.append([])
            else:
                answer = inner(ranker, q, shown)
            if case["ranker"] == "pairwise":  # two texts; the two prompts show them in both orders
                a, b = (by_text[t] for t in shown)
                prompts.extend([([a, b], answer[0]), ([b, a], answer[1])])
            else:
                prompts.append(([d.docid for d in shown], answer))
                outside = len(answer) == 1 and answer in ranker.CHARACTERS and ranker.CHARACTERS.index(answer) >= len(shown)
                if case["method"] == "bubblesort" and outside:  # patch 4
                    return "beyond the window"
            return answer

        ranker.compare = compare
        allpair_decoded: list[str] = []
        if case["ranker"] == "pairwise" and case["method"] == "allpair":
            if ranker.config.model_type == "t5":  # its own batched loop: record the decoded answers
                decode = ranker.tokenizer.batch_decode

                def batch_decode(seqs, *a, decode=decode, decoded=allpair_decoded, **kw):
                    texts = decode(seqs, *a, **kw)
                    decoded[:] = texts
                    return texts

                ranker.tokenizer.batch_decode = batch_decode
                ranking = [r.docid for r in ranker.rerank(query, docs)]
                del ranker.tokenizer.batch_decode
                for (d1, d2), o1, o2 in zip(combinations(docs, 2), allpair_decoded[0::2], allpair_decoded[1::2]):
                    prompts.extend([([d1.docid, d2.docid], o1), ([d2.docid, d1.docid], o2)])
            else:
                ranker.total_compare = 0
                ranking = causal_allpair(ranker, query, docs)
        else:
            ranking = [r.docid for r in ranker.rerank(query, docs)]
        del ranker.compare
        captured.undo()
        if len(inputs) != len(prompts):
            raise RuntimeError(f"{len(inputs)} model inputs recorded for {len(prompts)} prompts")
        answers: dict[str, str] = {}
        digests: dict[str, str] = {}
        for (shown, answer), ids in zip(prompts, inputs):
            key = "\t".join(shown)
            answers.setdefault(key, answer)
            digests.setdefault(key, ids_digest(ids))
        out.append({"qid": item["qid"], "query": query, "texts": {d.docid: d.text for d in docs},
                    "unique_texts": unique_texts, "ranking": ranking, "raw_prompts": len(prompts),
                    "answers": answers, "input_digests": digests})
    return out


def ids_digest(ids: list[int]) -> str:
    import hashlib

    return hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()


class capture:
    """Records the token ids each prompt gives the model (padding removed), by wrapping the model's
    ``generate`` (generation) or ``forward`` (likelihood) on the instance; ``undo()`` removes the wrapper."""

    def __init__(self, ranker, rows: list[list[int]]):
        self.llm = ranker.llm
        seq2seq = ranker.config.model_type == "t5"
        pad = ranker.tokenizer.pad_token_id
        self.name = "forward" if getattr(ranker, "scoring", "generation") == "likelihood" else "generate"
        inner = getattr(self.llm, self.name)

        def wrapped(*a, **kw):
            ids = kw.get("input_ids", a[0] if a else None)
            for row in ids.tolist():
                if seq2seq:  # right-padded
                    while row and row[-1] == pad:
                        row.pop()
                rows.append(row)
            return inner(*a, **kw)

        setattr(self.llm, self.name, wrapped)

    def undo(self) -> None:
        delattr(self.llm, self.name)


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    state = random.getstate()
    patch_transformers()
    import llmrankers.setwise  # noqa: F401  (seeds random on import)

    random.setstate(state)
    result: dict = {"cases": {}}
    rankers: dict[tuple, object] = {}
    for case in spec["cases"]:
        key = (case["ranker"], case.get("scoring"))
        ranker = rankers.get(key)
        if ranker is None:
            ranker = rankers[key] = build(case, spec["model"])
            if getattr(ranker.config, "model_type", "") == "t5":
                result["t5_decoder_input_ids"] = ranker.decoder_input_ids[0].tolist()
                if case["ranker"] == "setwise":
                    result["t5_target_token_ids"] = ranker.target_token_ids.tolist()
        ranker.method, ranker.k = case["method"], case["k"]
        if case["ranker"] == "setwise":
            ranker.num_child = case["num_child"]
        result["cases"][case["name"]] = run_case(ranker, case, spec["items"], spec["query_length"],
                                                 spec["passage_length"])
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
