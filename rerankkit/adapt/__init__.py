"""Adapting a reranker to a collection without its queries or judgments.

    rerankkit adapt CONFIG.yaml

DUQGen (Chandradevan, Dhole & Agichtein, NAACL 2024): embed the target collection, cluster it with k-means,
sample documents across clusters in proportion to their size (closer to the centroid = likelier), generate
one query per document with a few-shot prompt, mine hard negatives with the first-stage retriever, and
fine-tune the reranker with LoRA (:mod:`rerankkit.train`). With a ``teacher`` section the same queries are
labelled by a teacher's ranking of their first-stage candidates instead (distillation). Evaluation queries are
never trained on (by id or text); training documents judged for them are counted, or refused on request.
"""

from .config import AdaptConfig, adapt_config_from_dict, load_adapt_config
from .pipeline import adapt, check_config

__all__ = ["AdaptConfig", "adapt", "adapt_config_from_dict", "check_config", "load_adapt_config"]
