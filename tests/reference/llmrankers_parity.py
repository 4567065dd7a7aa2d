"""Side by side: ielab/llm-rankers and rerankkit's PRP/setwise on the same model, candidates and settings.

Used by ``tests/reference/test_llmrankers_models.py`` (a small slice) and ``eval/fidelity_pairwise.py``
(the full comparison). The reference runs in a subprocess (``llmrankers_side.py``); rerankkit runs here.

Models: SmolLM2-135M-Instruct (the packaged one), a tiny random T5 whose SentencePiece tokenizer is trained
here on DL19 text and loaded through ``T5Tokenizer`` as the reference loads it, and a tiny random Llama with
SmolLM2's tokenizer. The two tiny models get larger output weights for the label tokens, so that their
greedy answers are often labels (and often not): both sides then sort on real decisions, not on ties.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
QUERY_TOKENS = 32  # the reference's --query_length in its published commands
PASSAGE_TOKENS = 128  # its --passage_length


@dataclass(frozen=True)
class Case:
    """One reference configuration: ``ranker`` pairwise|setwise, the reference's ``method`` name, its scoring."""

    name: str
    ranker: str
    method: str
    k: int = 10
    num_child: int = 2
    scoring: str = "generation"  # generation | likelihood (setwise only)

    def strategy_params(self, mode: str) -> dict[str, Any]:
        method = "sliding" if self.ranker == "pairwise" and self.method == "bubblesort" else self.method
        params = {"method": method, "k": self.k, "mode": mode, "ties": "incumbent",
                  "max_doc_tokens": PASSAGE_TOKENS, "max_query_tokens": QUERY_TOKENS}
        if self.ranker == "setwise":
            params["num_child"] = self.num_child
        return params


def cases(num_child: tuple[int, ...] = (2,), likelihood: bool = False, allpair: bool = True) -> list[Case]:
    out = [Case(f"prp-{m}", "pairwise", m) for m in (("allpair",) if allpair else ()) + ("heapsort", "bubblesort")]
    for c in num_child:
        for m in ("heapsort", "bubblesort"):
            out.append(Case(f"setwise-{m}-c{c}", "setwise", m, num_child=c))
            if likelihood:
                out.append(Case(f"setwise-{m}-c{c}-likelihood", "setwise", m, num_child=c, scoring="likelihood"))
    return out


# -- data and models ------------------------------------------------------------------------------
def dl19_items(queries: int, depth: int) -> list[tuple[Any, list[Any]]]:
    """The first ``queries`` DL19 queries with their BM25 top-``depth`` (passage text as rerankkit shows it)."""
    from rerankkit.data import load_dataset

    run = load_dataset("trec-dl-2019/passage").candidates("bm25").head(queries).top(depth)
    return [(r.query, [sd.doc for sd in r.docs]) for r in run.values()]


def build_tiny_t5(out: Path, seed: int = 0) -> Path:
    """A tiny random T5 with a SentencePiece tokenizer trained on DL19 queries and BM25 top-20 passages."""
    import sentencepiece as spm
    import torch
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    texts = []
    for query, docs in dl19_items(43, 20):
        texts.append(query.text)
        texts.extend(d.prompt_text() for d in docs)
    # every label the reference knows (A..W) must be one piece after a space, as in FLAN-T5's vocabulary: the
    # reference reads its label token ids off the last column of "<pad> Passage X" padded to the longest
    texts += [" ".join(f"Passage {chr(65 + i)}:" for i in range(23)) + " Output Passage A or Passage B: "
              "Output only the passage label of the most relevant passage:"] * 50
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=model, vocab_size=1000,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   character_coverage=1.0, num_threads=1, minloglevel=2)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spiece.model").write_bytes(model.getvalue())
    (out / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "eos_token": "</s>", "pad_token": "<pad>",
         "unk_token": "<unk>"}))
    tok = T5Tokenizer.from_pretrained(out)
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=len(tok), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False)
    cfg.architectures = ["T5ForConditionalGeneration"]
    model = T5ForConditionalGeneration(cfg)
    labels = [tok.convert_tokens_to_ids(f"▁{c}") for c in "ABC"]
    if len(set(labels)) < 3 or tok.unk_token_id in labels:
        raise RuntimeError("the tiny T5's vocabulary lacks a label piece")
    sample = dl19_items(6, 8)
    first = answer_states(model, tok, sample, True)
    favour(model, first, labels, seed)
    # after a label, the end of the answer: "Passage A" then </s> is the answer the reference's PRP accepts
    after = torch.cat([answer_states(model, tok, sample, True, after=f" {c}") for c in "ABC"])
    favour(model, after, [tok.eos_token_id], seed + 1, avoid=first, vary=0.0)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_llama(out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A tiny random Llama (model_type llama, as the reference requires) with SmolLM2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
                      tie_word_embeddings=False)
    cfg.architectures = ["LlamaForCausalLM"]
    model = LlamaForCausalLM(cfg)
    favour(model, answer_states(model, tok, dl19_items(6, 8), False), [tok.convert_tokens_to_ids(f"Ġ{c}") for c in "ABC"],
           seed)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def favour(model: Any, states: Any, rows: list[int], seed: int = 0, avoid: Any = None, vary: float = 2.0) -> None:
    """Rewrite the output weights of ``rows`` so that, at answer positions whose final hidden states are
    ``states`` [n, d], one of them is the greedy token for about half the prompts, and which one depends on
    the prompt: each row is the states' mean direction scaled to about the best other token's logit, plus a
    random direction across the states' spread (``vary`` times the spread of the best other logit).
    ``avoid``: states where the rows should not win (their mean direction is taken out)."""
    import torch

    w = model.get_output_embeddings().weight
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        h = states.float()
        mean = h.mean(0)
        if avoid is not None:
            other = avoid.float().mean(0)
            mean = mean - (mean @ other) / (other @ other) * other
        unit = mean / mean.norm()
        others = torch.ones(w.shape[0], dtype=torch.bool)
        others[rows] = False
        best_other = (h @ w[others].float().T).max(1).values
        ratio = best_other / (h @ unit)  # the level at which a row's logit equals the best other one
        level = 1.02 * (ratio.max() if vary == 0 else ratio.median()).item()  # vary=0: win everywhere
        spread = vary * max(best_other.std().item(), 0.1 * abs(best_other.median().item()))
        for r in rows:
            d = torch.randn(w.shape[1], generator=g)
            d -= (d @ unit) * unit
            d /= d.norm()
            w[r] = (level * unit + spread / max(((h - mean) @ d).std().item(), 1e-6) * d).to(w.dtype)


def answer_states(model: Any, tok: Any, items: list, seq2seq: bool, after: str = "") -> Any:
    """Final hidden states where the PRP and setwise prompts' answers start (T5: after the decoder prefix
    "Passage" plus ``after``; causal: after the chat template and " Passage:")."""
    import torch

    from rerankkit.prompts.template import load_template

    prp, setw = load_template("prp"), load_template("setwise")
    texts = []
    for query, docs in items:
        cut = [tok.convert_tokens_to_string(tok.tokenize(d.prompt_text())[:PASSAGE_TOKENS]) for d in docs]
        for i in range(0, len(cut) - 2, 2):
            texts.append(prp.fill("user", query=query.text, passage_a=cut[i], passage_b=cut[i + 1]))
            items3 = "\n\n".join(setw.fill("item", label=chr(65 + j), passage=cut[i + j]) for j in range(3))
            texts.append(setw.fill("user", query=query.text, passages=items3))
    out = []
    with torch.no_grad():
        for text in texts:
            if seq2seq:
                ids = tok(text, return_tensors="pt").input_ids
                dec = tok.encode("<pad> Passage" + after, add_special_tokens=False, return_tensors="pt")
                res = model(input_ids=ids, decoder_input_ids=dec, output_hidden_states=True)
                out.append(res.decoder_hidden_states[-1][0, -1])
            else:
                chat = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                               add_generation_prompt=True) + " Passage:"
                ids = tok(chat, add_special_tokens=False, return_tensors="pt").input_ids
                out.append(model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1])
    return torch.stack(out)


# -- the reference side# -- the reference side# -- the reference side ---------------------------------------------------------------------------
def run_reference(model_dir: Path, case_list: list[Case], items: list, threads: int | None = None,
                  python: str = sys.executable) -> dict:
    """llm-rankers on ``items`` for every case, in a subprocess (see ``llmrankers_side.py``)."""
    spec = {"model": str(model_dir), "cases": [asdict(c) for c in case_list], "threads": threads,
            "query_length": QUERY_TOKENS, "passage_length": PASSAGE_TOKENS,
            "items": [{"qid": q.qid, "query": q.text, "docs": [[d.docid, d.prompt_text()] for d in docs]}
                      for q, docs in items]}
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run([python, str(HERE / "llmrankers_side.py"), str(spec_path), str(out_path)],
                              env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"llm-rankers failed:\n{proc.stderr[-4000:]}")
        return json.loads(out_path.read_text())


# -- rerankkit's side -----------------------------------------------------------------------------
def strategy_for(case: Case, seq2seq: bool, mode: str) -> Any:
    from rerankkit.prompts.template import load_template
    from rerankkit.strategies import STRATEGIES

    template = ("prp" if case.ranker == "pairwise" else "setwise") + ("-flan" if seq2seq else "")
    return STRATEGIES.get(case.ranker)(load_template(template), case.strategy_params(mode))


def reference_label(case: Case, answer: str, size: int) -> int | None:
    """The index of the passage the reference's answer chose, or None for an answer it treats as unexpected."""
    if case.ranker == "pairwise":
        return {"Passage A": 0, "Passage B": 1}.get(answer)
    if len(answer) == 1 and "A" <= answer <= "W" and ord(answer) - ord("A") < size:
        return ord(answer) - ord("A")
    return None


def compare_case(case: Case, ref_queries: list[dict], items: list, backend: Any, seq2seq: bool,
                 modes: tuple[str, ...] = ("generate", "score"), ask_prompts: tuple[str, ...] = ("generate", "score"),
                 asker: Any = None) -> dict:
    """rerankkit on ``items`` in each mode, checked against the reference's run of ``case``.

    ``generate`` (``score`` for the reference's likelihood runs) is the mode whose whole run is compared: the
    same ranking and model calls = the reference's distinct prompts. Every mode is also compared prompt by
    prompt: for each prompt the reference asked, the model input's token ids, and (modes in ``ask_prompts``)
    rerankkit's decision on it, asked again (None where not asked). ``asker`` (default ``backend``) answers the
    model requests of both, e.g. ``backend`` behind an answer cache so the prompt-by-prompt check reuses the
    run's answers; token ids are always read from ``backend``'s own tokenizer.
    """
    from rerankkit.strategies.base import QueryContext
    from rerankkit.strategies.labels import best_label, read_answer
    from rerankkit.strategies.truncation import Truncator

    asker = backend if asker is None else asker
    full_mode = "score" if case.scoring == "likelihood" else "generate"
    report: dict[str, Any] = {"case": asdict(case), "modes": {}}
    for mode in modes:
        strat = strategy_for(case, seq2seq, mode)
        rankings = strat.rerank_many(asker, items)
        per_query = []
        for (query, docs), ranking, ref in zip(items, rankings, ref_queries):
            index = {d.docid: i for i, d in enumerate(docs)}
            ctx = QueryContext(backend, Truncator(backend, PASSAGE_TOKENS))
            judge = strat.judge(query, docs, ctx)
            asked = [k for k in ref["answers"] if len(k.split("\t")) >= 2]
            groups = [tuple(index[d] for d in k.split("\t")) for k in asked]
            requests = [judge.request(g) for g in groups]
            if mode not in ask_prompts:
                decisions = [None] * len(requests)
            elif mode == "score":
                decisions = [best_label(v) for v in asker.score(requests)]
            else:
                outs = asker.generate([r.prompt for r in requests], judge.max_new_tokens)
                decisions = [read_answer(judge.read, o.text, [chr(65 + j) for j in range(len(g))],
                                         judge.choices(len(g))[1], r.prompt.prefix)
                             for o, g, r in zip(outs, groups, requests)]
            want = [reference_label(case, ref["answers"][k], len(g)) for k, g in zip(asked, groups)]
            labelled = [i for i, w in enumerate(want) if w is not None]
            same_inputs = sum(_digest(backend, r.prompt, seq2seq) == ref["input_digests"][k]
                              for k, r in zip(asked, requests))
            per_query.append({
                "qid": query.qid, "ranking": ranking.docids, "ref_ranking": ref["ranking"],
                "same_ranking": ranking.docids == ref["ranking"],
                "same_top10": ranking.docids[:10] == ref["ranking"][:10],
                "model_calls": ranking.metadata["model_calls"], "ref_distinct_prompts": len(asked),
                "ref_degenerate_prompts": len(ref["answers"]) - len(asked), "ref_raw_prompts": ref["raw_prompts"],
                "unparsed": ranking.metadata.get("unparsed", 0),
                "prompts_same_decision": sum(d == w for d, w in zip(decisions, want)) if mode in ask_prompts else None,
                "prompts_labelled_by_ref": len(labelled),
                "labelled_same_decision": sum(decisions[i] == want[i] for i in labelled) if mode in ask_prompts else None,
                "prompts_same_input_ids": same_inputs, "unique_texts": ref["unique_texts"],
            })
        report["modes"][mode] = {"full_run_compared": mode == full_mode, "queries": per_query}
    return report


def _digest(backend: Any, prompt: Any, seq2seq: bool) -> str:
    """The same digest the reference side takes of the token ids its model reads (the encoder's, for T5)."""
    from rerankkit.backends.base import Prompt

    text = backend.tok.render(Prompt(prompt.messages)) if seq2seq else backend.render(prompt)
    ids = backend.encode(text)
    return hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()
