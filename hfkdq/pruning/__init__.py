"""Structured FFN pruning that keeps a stock Hugging Face model.

    from hfkdq.pruning import prune_model
    report = prune_model(student, ffn_keep=0.5, dataset=train_features, data_collator=collator)
    student.save_pretrained("pruned")   # config.intermediate_size halved; loads with from_pretrained

Every layer keeps the same number of FFN neurons, chosen by importance on training batches
(`hfkdq.pruning.importance`), so the result is the same architecture with a smaller intermediate width:
Optimum exports it, `from_pretrained` loads it, the Hub serves it. Recovery (distillation from the same
teacher, from its logit cache when there is one) is `hfkdq.pruning.recovery`.

Why not a library (both tried on a tiny BERT, transformers 4.57.6 and 5.24.0): TextPruner 1.1.post2
(2023) prunes and reloads on 4.57, but on 5.24 fails with "'BertModel' object has no attribute
'prune_heads'" even when no head is pruned; it pins numpy<1.22, which would downgrade the numpy that
datasets needs, and knows no MPNet. Torch-Pruning 1.6.1 cuts the Linears on both stacks but leaves
`config.json` at the old width, so `from_pretrained` refuses the saved result on both. The pruning
itself is ~100 lines of index_select; the part that matters is keeping the config stock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import PreTrainedModel

from hfkdq.pruning.ffn import (
    PruningError,
    check_ffn_keep,
    find_ffn_blocks,
    intermediate_size_key,
    neurons_to_keep,
    prune_ffn,
    select_neurons,
)
from hfkdq.pruning.importance import IMPORTANCE_METHODS, check_importance, ffn_importance

PRUNING_CONFIG_KEY = "pruned_ffn"
"""Config field recording how a pruned model was made (read back by reports and the model card)."""

__all__ = [
    "IMPORTANCE_METHODS",
    "PRUNING_CONFIG_KEY",
    "PruningError",
    "check_ffn_keep",
    "check_importance",
    "ffn_importance",
    "find_ffn_blocks",
    "neurons_to_keep",
    "prune_ffn",
    "prune_model",
    "select_neurons",
]


def prune_model(
    model: PreTrainedModel,
    ffn_keep: float,
    dataset: Any = None,
    data_collator: Callable | None = None,
    *,
    importance: str = "taylor",
    max_samples: int | None = 512,
    batch_size: int = 16,
    seed: int = 42,
) -> dict[str, Any]:
    """Score, select and cut FFN neurons of `model` in place; return what was done (for results.json).

    Every check (the keep share, the importance method, the architecture) runs before any scoring.
    """
    check_importance(importance)
    blocks = find_ffn_blocks(model)
    width = blocks[0].width
    count = neurons_to_keep(ffn_keep, width)
    scores = ffn_importance(
        model,
        dataset,
        data_collator,
        method=importance,
        batch_size=batch_size,
        max_samples=max_samples,
        seed=seed,
    )
    kept = select_neurons(scores, count)
    prune_ffn(model, kept)
    record = {
        "ffn_keep": check_ffn_keep(ffn_keep),
        "importance": importance,
        "original_width": width,
        "width": count,
        "width_field": intermediate_size_key(model.config),
        "scored_examples": None
        if importance == "magnitude"
        else min(len(dataset), max_samples or len(dataset)),
    }
    setattr(model.config, PRUNING_CONFIG_KEY, record)
    return record | {"kept_neurons": kept}
