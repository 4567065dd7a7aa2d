"""Answer-choice logits in fp32 for a model that runs in bf16 or fp16.

A bf16 logit carries 8 significant bits: near 15 it steps by 0.0625, so the yes/no log-odds of two close
documents tie or swap by rounding, and which batch a prompt lands in moves them. The scorers read the logits
of a few tokens only (yes/no, A/B, passage labels). :class:`ChoiceHead` keeps the input of the model's output
head (the final hidden state at the kept positions) of each forward, per thread, and recomputes those few
logits from it in fp32: ``hidden · W[ids]ᵀ (+ b[ids])``, the head's own weights, upcast. The rest of the
vocabulary keeps the model's logits (they only enter the log-softmax normaliser, common to all choices).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


class ChoiceHead:
    """A forward pre-hook on the output head that keeps its input; :meth:`refine` recomputes chosen logits."""

    def __init__(self, head: Any, torch: Any):
        self.torch = torch
        self.weight, self.bias = head.weight, head.bias
        self._local = threading.local()
        self._handle = head.register_forward_pre_hook(self._keep)

    @classmethod
    def attach(cls, model: Any, torch: Any) -> ChoiceHead | None:
        """A ChoiceHead on ``model``'s output head, or None where it does not apply: fp32 weights (nothing to
        gain), a head that is not a plain linear layer (adapter-wrapped, quantised), or logits transformed after
        the head (Gemma 2's ``final_logit_softcapping``)."""
        get = getattr(model, "get_output_embeddings", None)
        head = get() if get is not None else None
        if not isinstance(head, torch.nn.Linear) or head.weight.dtype == torch.float32:
            return None
        config = getattr(model, "config", None)
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        if getattr(text, "final_logit_softcapping", None) or getattr(config, "final_logit_softcapping", None):
            return None
        return cls(head, torch)

    def _keep(self, module: Any, args: tuple) -> None:
        self._local.hidden = args[0]

    def take(self) -> Any:
        """The head input of this thread's last forward (and forget it)."""
        hidden = getattr(self._local, "hidden", None)
        self._local.hidden = None
        return hidden

    def refine(self, logits: Any, select: Callable[[Any], Any], ids: Sequence[int]) -> Any:
        """fp32 logits ``[rows, vocab]`` from the model's ``logits`` rows, with columns ``ids`` recomputed in fp32
        from the last forward's head input; ``select`` picks from that input the rows ``logits`` holds."""
        out = logits.float()
        hidden = self.take()
        if hidden is None or not ids:
            return out
        torch = self.torch
        idx = torch.tensor(sorted(set(ids)), device=out.device)
        exact = select(hidden).float() @ self.weight.index_select(0, idx).float().T
        if self.bias is not None:
            exact = exact + self.bias.index_select(0, idx).float()
        if out.data_ptr() == logits.data_ptr():  # already fp32: do not write into the model's output
            out = out.clone()
        out[:, idx] = exact
        return out
