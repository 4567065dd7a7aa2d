"""Fine-tuning rerankers with LoRA (peft): pointwise yes/no and FIRST-style listwise objectives.

    rerankkit train CONFIG.yaml

See :class:`TrainConfig` for the fields. Training never uses evaluation queries: a config whose training
split overlaps the evaluation split of the same dataset is refused with the overlap count.
"""

from .config import TrainConfig, load_train_config
from .trainer import train

__all__ = ["TrainConfig", "load_train_config", "train"]
