"""The two training objectives, as functions of model outputs (torch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def yes_no_margin(torch: Any, last_logits: Any, pos_ids: Sequence[int], neg_ids: Sequence[int]) -> Any:
    """log p(yes variants) - log p(no variants) at the answer position: the pointwise relevance logit."""
    lp = torch.log_softmax(last_logits.float(), dim=-1)
    return torch.logsumexp(lp[:, list(pos_ids)], dim=-1) - torch.logsumexp(lp[:, list(neg_ids)], dim=-1)


def pointwise_loss(torch: Any, last_logits: Any, pos_ids: Sequence[int], neg_ids: Sequence[int], labels: Any) -> Any:
    """Binary cross-entropy on log p(yes variants) - log p(no variants) at the answer position."""
    s = yes_no_margin(torch, last_logits, pos_ids, neg_ids)
    return torch.nn.functional.binary_cross_entropy_with_logits(s, labels.float())


def contrastive_loss(torch: Any, margins: Any, group_sizes: Sequence[int]) -> Any:
    """Localized contrastive estimation (Gao, Dai and Callan, ECIR 2021) over yes/no margins.

    ``margins`` holds consecutive groups of ``group_sizes``; each group is one positive (first) and its
    query's hard negatives. Loss: mean over groups of the cross-entropy of the softmax over the group's
    margins with the positive as target, i.e. the model learns to rank within a query, not a label prior.
    """
    losses = []
    start = 0
    for n in group_sizes:
        grp = margins[start : start + n]
        losses.append(torch.logsumexp(grp, dim=0) - grp[0])
        start += n
    return torch.stack(losses).mean()


def grouped_ranknet_loss(torch: Any, margins: Any, group_sizes: Sequence[int]) -> Any:
    """:func:`ranknet_loss` over consecutive groups of pointwise relevance logits, each group in the order to
    learn (best first), averaged over groups: a pointwise model trained on a teacher's ranking, as RankGPT's
    permutation distillation trains a cross-encoder with RankNet (Sun et al., EMNLP 2023, §4)."""
    losses = []
    start = 0
    for n in group_sizes:
        losses.append(ranknet_loss(torch, margins[start : start + n], list(range(n))))
        start += n
    return torch.stack(losses).mean()


def ranknet_loss(torch: Any, id_logits: Any, target: Sequence[int]) -> Any:
    """Weighted RankNet over one window's identifier logits (FIRST, Reddy et al. 2024).

    ``id_logits[k]`` is the first-token logit of the k-th shown identifier; ``target`` lists shown
    positions best first. Each ordered pair (better at rank i, worse at rank j) contributes
    ``log(1 + exp(s_worse - s_better))`` weighted by ``1 / (i + j)`` (ranks from 1), which favours
    getting the top of the ranking right.
    """
    total = id_logits.new_zeros(())
    norm = 0.0
    for i in range(len(target)):
        for j in range(i + 1, len(target)):
            w = 1.0 / ((i + 1) + (j + 1))
            diff = id_logits[target[j]] - id_logits[target[i]]
            total = total + w * torch.nn.functional.softplus(diff)
            norm += w
    return total / max(norm, 1e-12)


def lm_loss(torch: Any, logits: Any, target_ids: Sequence[int]) -> Any:
    """Mean token cross-entropy of ``target_ids`` given logits at the positions that predict them."""
    t = torch.tensor(list(target_ids), device=logits.device)
    return torch.nn.functional.cross_entropy(logits.float(), t)
