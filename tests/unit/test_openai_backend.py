"""The openai backend's client side against a stub HTTP server on 127.0.0.1 (the I/O edge):
request bodies, retries and backoff, errors with the server's message, replies without log-probs,
bounded concurrency and partial results."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytest.importorskip("httpx")

from stub_openai import MODELS, YES_NO, chat, completion  # noqa: E402

from rerankkit.backends.base import Prompt, ScoreRequest  # noqa: E402
from rerankkit.backends.http import ServerError  # noqa: E402
from rerankkit.backends.openai_compat import OpenAIBackend  # noqa: E402
from rerankkit.errors import BackendError, CapabilityError, ConfigError  # noqa: E402

REQ = ScoreRequest(Prompt.user("Passage: p\nQuery: q"), ("Yes", "No", " yes", " no"))



def backend(url, **kw):
    kw.setdefault("backoff", 0.01)
    return OpenAIBackend("stub-model", base_url=url, **kw)


def by_path(**routes):
    def reply(path, body):
        for key, fn in routes.items():
            if path.rstrip("/").endswith(key.replace("__", "/")):
                return fn(body)
        return 404, {"error": {"message": f"no route {path}"}}, {}
    return reply


def test_chat_scores_by_text_without_a_tokenizer(stub):
    s = stub(by_path(chat__completions=lambda b: (200, chat(YES_NO, "Yes"), {}), tokenize=lambda b: (404, {}, {})))
    be = backend(s.url, tokenizer="server")
    got = be.score([REQ])[0]
    assert np.allclose(got, [YES_NO[c] for c in REQ.choices])
    path, body = s.bodies[-1]
    assert path == "/v1/chat/completions"
    assert body["max_tokens"] == 1 and body["temperature"] == 0.0 and body["logprobs"] is True
    assert body["top_logprobs"] == 10_000 and "logit_bias" not in body  # no token ids: no bias possible
    assert body["messages"] == [{"role": "user", "content": "Passage: p\nQuery: q"}]


def test_top_k_scoring_reads_the_top_list_as_is(stub):
    """FIRST's rule (rank_llm reads the top 30): one unbiased request; answers outside the list get -inf."""
    s = stub(by_path(chat__completions=lambda b: (200, chat(YES_NO, "Yes"), {}), tokenize=lambda b: (404, {}, {})))
    req = ScoreRequest(REQ.prompt, ("Yes", "No", "Maybe"), top_k=30)
    got = backend(s.url, tokenizer="server").score([req])[0]
    assert got[0] == pytest.approx(YES_NO["Yes"]) and got[1] == pytest.approx(YES_NO["No"])
    assert got[2] == float("-inf")
    (body,) = [b for path, b in s.bodies if path.endswith("chat/completions")]
    assert body["top_logprobs"] == 30 and "logit_bias" not in body


def test_missing_answer_logprob_is_an_error_not_a_score(stub):
    partial = {"Yes": -0.1, "Maybe": -3.0}
    s = stub(by_path(chat__completions=lambda b: (200, chat(partial, "Yes"), {}), tokenize=lambda b: (404, {}, {})))
    with pytest.raises(BackendError, match="no log-prob for answer token"):
        backend(s.url, tokenizer="server").score([REQ])
    floor = backend(s.url, tokenizer="server", missing_logprobs="floor").score([REQ])[0]
    assert floor[0] == pytest.approx(-0.1) and floor[1] == pytest.approx(-3.0)  # upper bound for the absent


@pytest.mark.parametrize("reply", [
    completion(None),  # no logprobs field at all
    completion({}),  # empty top list
    {"choices": []},
    {"choices": [{"text": "x", "logprobs": {"tokens": ["x"], "top_logprobs": [{"Yes": "nan"}]}}]},
    {"choices": [{"text": "x", "logprobs": {"tokens": ["x"], "top_logprobs": [{"Yes": 0.5, "No": -1}]}}]},
])
def test_replies_without_the_expected_logprobs_raise(stub, reply):
    s = stub(by_path(completions=lambda b: (200, reply, {}), tokenize=lambda b: (404, {}, {})))
    be = backend(s.url, tokenizer="server", endpoint="completions")
    with pytest.raises(BackendError):
        be.score([REQ])


def test_completion_request_uses_local_tokens_and_logit_bias(stub, smollm2_dir):
    s = stub(by_path(completions=lambda b: (200, completion(YES_NO), {})))
    be = backend(s.url, tokenizer=str(smollm2_dir))
    assert be.endpoint == "completions"
    be.score([REQ])
    _, body = s.bodies[-1]
    rendered = be.render(REQ.prompt)
    assert body["prompt"] == be.local.encode(rendered)  # token ids, rendered with the chat template here
    assert "<|im_start|>assistant" in rendered
    ids = [be.local.continuation_ids(rendered, c) for c in REQ.choices]
    assert all(len(i) == 1 for i in ids)
    assert body["logit_bias"] == {str(i[0]): 100.0 for i in ids}
    assert body["logprobs"] == 10_000 and body["max_tokens"] == 1


def test_auto_top_logprobs_falls_back_to_what_the_server_allows(stub):
    def reply(body):
        if body["logprobs"] > 20:
            return 400, {"error": {"message": f"Requested sample logprobs of {body['logprobs']}, which is greater "
                                              "than max allowed: 20"}}, {}
        return 200, completion(YES_NO), {}

    s = stub(by_path(completions=reply, tokenize=lambda b: (404, {}, {})))
    be = backend(s.url, tokenizer="server", endpoint="completions")
    assert np.allclose(be.score([REQ, REQ])[1], [YES_NO[c] for c in REQ.choices])
    assert be.top_k == 20 and s.bodies[-1][1]["logprobs"] == 20
    fixed = backend(s.url, tokenizer="server", endpoint="completions", top_logprobs=50)
    with pytest.raises(ServerError, match="greater than max allowed"):
        fixed.score([REQ])


def raw_server(logprobs_of, k_listed=None, post_bias=False, honour_bias=True):
    """A completions stub that lists the raw top ``k_listed`` (default: as asked) tokens plus the sampled one."""
    def reply(body):
        if isinstance(body["prompt"], list) and body.get("max_tokens") == 1 and "logprobs" not in body:
            return 200, completion({}), {}  # the token-id probe
        k = k_listed or body["logprobs"]
        bias = {int(t) for t in body.get("logit_bias", {})} if honour_bias else set()
        ranked = sorted(logprobs_of, key=lambda t: -logprobs_of[t][1])
        sampled = max((t for t in ranked if t in bias), key=lambda t: logprobs_of[t][1], default=ranked[0])
        text, lp = logprobs_of[sampled]
        if post_bias and bias:
            z = math.log(sum(math.exp(logprobs_of[t][1]) for t in bias))
            listed = sorted(bias, key=lambda t: -logprobs_of[t][1])[:k]
            return 200, completion({logprobs_of[t][0]: logprobs_of[t][1] - z for t in listed}, text), {}
        top = {logprobs_of[t][0]: logprobs_of[t][1] for t in ranked[:k]}
        top[text] = lp
        return 200, completion(top, text), {}
    return reply


def smol_ids(be, choices):
    rendered = be.render(REQ.prompt)
    return [be.local.continuation_ids(rendered, c)[0] for c in choices]


def test_answer_tokens_outside_the_top_list_are_asked_for_one_by_one(stub, smollm2_dir):
    probe = backend("http://127.0.0.1:1/v1", tokenizer=str(smollm2_dir), served_model="x")
    ids = smol_ids(probe, REQ.choices)
    table = {i: (c, YES_NO[c]) for i, c in zip(ids, REQ.choices)}
    table[999] = ("Maybe", math.log(0.5))  # a non-answer token ranked above most answers
    s = stub(by_path(completions=raw_server(table, k_listed=2)))
    be = backend(s.url, tokenizer=str(smollm2_dir), top_logprobs=2)
    got = be.score([REQ])[0]
    assert np.allclose(got, [YES_NO[c] for c in REQ.choices])  # exact raw values for every answer
    assert be.followups == 3  # the listed top-2 were "Yes" and "Maybe": the other three asked for
    singles = [b["logit_bias"] for _, b in s.bodies if len(b.get("logit_bias", {})) == 1]
    assert sorted(singles, key=str) == sorted([{str(i): 100.0} for i in ids[1:]], key=str)


def test_mixed_log_prob_scales_and_ignored_bias_are_errors(stub, smollm2_dir):
    probe = backend("http://127.0.0.1:1/v1", tokenizer=str(smollm2_dir), served_model="x")
    table = {i: (c, YES_NO[c]) for i, c in zip(smol_ids(probe, REQ.choices), REQ.choices)}
    table[999] = ("Maybe", math.log(0.5))
    for kw, msg in [({"post_bias": True}, "after logit_bias"), ({"honour_bias": False}, "ignored logit_bias")]:
        s = stub(by_path(completions=raw_server(table, k_listed=2, **kw)))
        with pytest.raises(BackendError, match=msg):
            backend(s.url, tokenizer=str(smollm2_dir), top_logprobs=2).score([REQ])
    # a post-bias server with a top list long enough for every answer is consistent: differences kept
    s = stub(by_path(completions=raw_server(table, k_listed=20, post_bias=True)))
    got = backend(s.url, tokenizer=str(smollm2_dir), top_logprobs=20).score([REQ])[0]
    want = np.array([YES_NO[c] for c in REQ.choices])
    assert np.allclose(got - got[0], want - want[0])


def test_servers_that_refuse_token_ids_get_text(stub, smollm2_dir):
    def reply(body):
        if isinstance(body["prompt"], list):
            return 422, {"detail": [{"msg": "Input should be a valid string"}]}, {}
        return 200, completion(YES_NO), {}

    s = stub(by_path(completions=reply))
    be = backend(s.url, tokenizer=str(smollm2_dir))
    be.score([REQ])
    assert s.bodies[-1][1]["prompt"] == be.render(REQ.prompt)
    assert len(s.bodies) == 2  # one probe, then text


def test_multi_token_answers_are_scored_token_by_token(stub, smollm2_dir):
    def reply(body):
        if "logit_bias" not in body:
            return 200, completion({}), {}  # the token-id probe
        (tid,) = body["logit_bias"]
        n = len(body["prompt"])
        # a raw-log-prob server: the biased token, and another token's higher raw value
        top = {"<other>": -0.1, be.local.token_text(int(tid)): -0.25 * (1 + int(tid) % 3)}
        return 200, {**completion(top), "usage": {"prompt_tokens": n, "completion_tokens": 1}}, {}

    s = stub(by_path(completions=reply))
    be = backend(s.url, tokenizer=str(smollm2_dir))
    req = ScoreRequest(Prompt.user("q"), ("Passage A", "Passage BB"))
    rendered = be.render(req.prompt)
    conts = [be.local.continuation_ids(rendered, c) for c in req.choices]
    assert min(len(c) for c in conts) > 1
    got = be.score([req])[0]
    assert np.allclose(got, [sum(-0.25 * (1 + t % 3) for t in c) for c in conts])
    base = be.local.encode(rendered)
    asked = [(b["prompt"], b["logit_bias"]) for _, b in s.bodies if "logit_bias" in b]
    want = [([*base, *c[:j]], {str(t): 100.0}) for c in conts for j, t in enumerate(c)]
    assert sorted(map(str, asked)) == sorted(map(str, want))  # prompt + earlier answer tokens, biased to the next


def test_token_by_token_refuses_post_bias_servers(stub, smollm2_dir):
    def reply(body):
        (tid,) = body.get("logit_bias") or {"0": 0}
        text = be.local.token_text(int(tid))
        return 200, {**completion({text: 0.0, "<other>": -100.0}, text), "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": 1}}, {}

    s = stub(by_path(completions=reply))
    be = backend(s.url, tokenizer=str(smollm2_dir))
    with pytest.raises(BackendError, match="after logit_bias"):
        be.score([ScoreRequest(Prompt.user("q"), ("Passage A", "Passage B"))])


def test_chat_cannot_prefill_unless_the_server_can(stub):
    s = stub(by_path(chat__completions=lambda b: (200, chat({" A": -0.2, " B": -1.7}), {}),
                     tokenize=lambda b: (404, {}, {})))
    req = ScoreRequest(Prompt.user("which?", prefix="Passage"), (" A", " B"))
    with pytest.raises(CapabilityError, match="pre-fills"):
        backend(s.url, tokenizer="server").score([req])
    got = backend(s.url, tokenizer="server", continue_final_message=True).score([req])[0]
    assert np.allclose(got, [-0.2, -1.7])
    body = s.bodies[-1][1]
    assert body["messages"][-1] == {"role": "assistant", "content": "Passage"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_retries_5xx_and_429_then_succeeds(stub):
    seen = {"n": 0}

    def flaky(body):
        seen["n"] += 1
        if seen["n"] == 1:
            return 503, {"error": {"message": "loading"}}, {}
        if seen["n"] == 2:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0.05"}
        return 200, completion(YES_NO), {}

    s = stub(by_path(completions=flaky, tokenize=lambda b: (404, {}, {})))
    be = backend(s.url, tokenizer="server", endpoint="completions")
    assert np.allclose(be.score([REQ])[0], [YES_NO[c] for c in REQ.choices])
    assert be.client.retries == 2


def test_client_errors_carry_the_servers_message_without_retrying(stub):
    s = stub(by_path(completions=lambda b: (400, {"error": {"message": "context length exceeded: 9000 > 2048"}}, {}),
                     tokenize=lambda b: (404, {}, {})))
    be = backend(s.url, tokenizer="server", endpoint="completions")
    with pytest.raises(ServerError, match="context length exceeded: 9000 > 2048") as info:
        be.generate([Prompt.user("hi")], 4)
    assert info.value.status == 400 and be.client.retries == 0


def test_timeouts_are_retried_then_reported(stub):
    s = stub(by_path(completions=lambda b: (200, completion(YES_NO), {}), tokenize=lambda b: (404, {}, {})),
             delay=0.5)
    be = backend(s.url, tokenizer="server", endpoint="completions", timeout=0.1, max_retries=2)
    t0 = time.perf_counter()
    with pytest.raises(ServerError, match="timeout"):
        be.generate([Prompt.user("hi")], 2)
    assert be.client.retries == 2 and time.perf_counter() - t0 < 5


def test_unreachable_server_fails_with_a_clear_error():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendError, match="cannot list the server's models"):
        OpenAIBackend("packaged:none", base_url=f"http://127.0.0.1:{port}", tokenizer="server", max_retries=1,
                      backoff=0.01)


def test_in_flight_requests_are_bounded_and_order_is_kept(stub):
    s = stub(by_path(completions=lambda b: (200, {"choices": [{"text": b["prompt"][-3:]}],
                                                   "usage": {"prompt_tokens": 3, "completion_tokens": 1}}, {}),
                     tokenize=lambda b: (404, {}, {})), delay=0.05)
    be = backend(s.url, tokenizer="server", endpoint="completions", max_concurrency=3)
    prompts = [Prompt.user(f"{i:03d}") for i in range(12)]
    out = be.generate(prompts, 2)
    assert [g.text for g in out] == [f"{i:03d}" for i in range(12)]
    assert 1 < s.max_in_flight <= 3


def test_sampling_settings_go_in_each_request(stub):
    from rerankkit.backends.base import Sampling

    bodies = []
    s = stub(by_path(completions=lambda b: bodies.append(b) or (200, {"choices": [{"text": "x"}]}, {}),
                     tokenize=lambda b: (404, {}, {})))
    be = backend(s.url, tokenizer="server", endpoint="completions")
    be.generate([Prompt.user("a"), Prompt.user("b")], 2, sampling=[Sampling(0.3, 0.8, 5), Sampling()])
    be.generate([Prompt.user("c")], 2)
    got = {b["prompt"]: (b["temperature"], b.get("top_p"), b.get("seed")) for b in bodies}
    assert got == {"a": (0.3, 0.8, 5), "b": (0.0, None, None), "c": (0.0, None, None)}


def test_failure_mid_batch_keeps_the_finished_results(stub):
    seen = {"n": 0}

    def reply(body):
        seen["n"] += 1
        if seen["n"] > 3:
            return 500, {"error": {"message": "crashed"}}, {}
        return 200, completion(YES_NO), {}

    s = stub(by_path(completions=reply, tokenize=lambda b: (404, {}, {})))
    be = backend(s.url, tokenizer="server", endpoint="completions", max_concurrency=1, max_retries=1)
    with pytest.raises(ServerError, match="crashed") as info:
        be.score([REQ] * 6)
    assert sorted(info.value.partial) == [0, 1, 2]
    assert np.allclose(info.value.partial[0], [YES_NO[c] for c in REQ.choices])


def test_embeddings_pool_per_token_vectors(stub):
    def emb(body):
        rows = [{"index": i, "embedding": [[1.0, 0.0], [0.0, 1.0]] if t == "a" else [3.0, 4.0]}
                for i, t in enumerate(body["input"])]
        return 200, {"data": rows}, {}

    s = stub(by_path(embeddings=emb))
    be = backend(s.url, tokenizer="server")
    v = be.embed(["a", ""])
    assert np.allclose(v, [[2 ** -0.5, 2 ** -0.5], [0.6, 0.8]], atol=1e-6)
    assert s.bodies[-1][1]["input"] == ["a", " "]


def test_inconsistent_batched_embeddings_are_sent_one_by_one(stub):
    def emb(body):  # like llama-cpp-python 0.3.36: inputs after the first of a batch come out wrong
        return 200, {"data": [{"index": i, "embedding": [len(t), 1.0 + i]} for i, t in enumerate(body["input"])]}, {}

    s = stub(by_path(embeddings=emb))
    be = backend(s.url, tokenizer="server")
    v = be.embed(["aaa", "b"])
    assert be.embed_batch_size == 1 and np.allclose(v[:, 0] / v[:, 1], [3, 1], atol=1e-5)


def test_consistent_batched_embeddings_stay_batched(stub):
    def emb(body):
        return 200, {"data": [{"index": i, "embedding": [len(t), 1.0]} for i, t in enumerate(body["input"])]}, {}

    s = stub(by_path(embeddings=emb))
    be = backend(s.url, tokenizer="server", embed_batch_size=4)
    v = be.embed(["aaa", "b", "cc", "dddd", "e"])
    assert np.allclose(v[:, 0] / v[:, 1], [3, 1, 2, 4, 1], atol=1e-5)
    assert [len(b["input"]) for _, b in s.bodies] == [2, 4, 1]  # the check, then batches of 4


def test_served_model_comes_from_the_server_for_local_models(stub, smollm2_dir):
    s = stub(by_path(models=lambda b: (200, MODELS, {})))
    be = OpenAIBackend(str(smollm2_dir), base_url=s.url.removesuffix("/v1"))
    assert be.served_model == "stub-model" and be.base_url == s.url and be.endpoint == "completions"


def test_configuration_errors(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIBackend("m", base_url="")
    with pytest.raises(ConfigError, match="base_url must look like"):
        OpenAIBackend("m", base_url="localhost")
    with pytest.raises(ConfigError, match="endpoint"):
        OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", endpoint="rest")


@pytest.mark.parametrize("kind", ["score", "generate"])
def test_cache_keeps_answers_finished_before_the_server_failed(stub, tmp_path, kind):
    from rerankkit.backends.cached import CachedBackend

    seen = {"n": 0, "down": True}

    def reply(body):
        seen["n"] += 1
        if seen["down"] and seen["n"] > 3:
            return 500, {"error": {"message": "crashed"}}, {}
        return 200, completion(YES_NO, text=body["prompt"][-3:]), {}

    s = stub(by_path(completions=reply, tokenize=lambda b: (404, {}, {})))
    inner = backend(s.url, tokenizer="server", endpoint="completions", max_concurrency=1, max_retries=1)
    cached = CachedBackend(inner, tmp_path / "c.sqlite", chunk=32)
    prompts = [Prompt.user(f"Passage: p{i:03d}") for i in range(6)]
    ask = ((lambda: cached.score([ScoreRequest(p, REQ.choices) for p in prompts])) if kind == "score"
           else (lambda: cached.generate(prompts, 2)))
    with pytest.raises(ServerError, match="crashed"):
        ask()
    assert len(cached.store) == 3  # the three finished answers are stored before the error surfaces
    seen["down"], before = False, seen["n"]
    out = ask()
    assert seen["n"] - before == 3 and cached.usage.cached_calls == 3  # only the unfinished three are asked
    if kind == "generate":
        assert [g.text for g in out] == [f"{i:03d}" for i in range(6)]
    else:
        assert all(np.allclose(o, [YES_NO[c] for c in REQ.choices]) for o in out)
