"""How much each FFN neuron matters, scored on training batches before any neuron is cut.

Removing neuron i of a layer sets its activation a_i to 0. To first order (Taylor) the loss changes by
-sum_t a_{t,i} dL/da_{t,i} over the example's tokens t, so one forward and one backward pass over a few
hundred training examples score every neuron of every layer at once (Molchanov et al., 2019). Scores are
taken per example and then summed, so neurons that help some examples and hurt others do not cancel:

- ``taylor`` (default): sum over examples of |sum_t a g|, the expected loss change of removing the neuron;
- ``fisher``: sum over examples of (sum_t a g)^2, the diagonal Fisher of a neuron mask (Kwon et al., 2022);
- ``magnitude``: ||up row|| x ||down column||, weights only, no data (a baseline).

The loss is the model's own task loss on the gold labels (padding and ignored labels carry no gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from hfkdq.pruning.ffn import FfnBlock, PruningError, find_ffn_blocks

IMPORTANCE_METHODS = {
    "taylor": "sum over examples of |activation x gradient| (first-order loss change of removing the neuron)",
    "fisher": "sum over examples of (activation x gradient)^2 (Fisher information of a neuron mask)",
    "magnitude": "norm of the neuron's input row x norm of its output column (weights only, no data)",
}


def check_importance(method: str) -> str:
    if method not in IMPORTANCE_METHODS:
        raise PruningError(f"unknown --importance {method!r}; choose one of {', '.join(IMPORTANCE_METHODS)}")
    return method


def magnitude_scores(blocks: list[FfnBlock]) -> torch.Tensor:
    """(layers, width): the product of each neuron's input-row and output-column norms."""
    with torch.no_grad():
        return (
            torch.stack([block.up.weight.norm(dim=1) * block.down.weight.norm(dim=0) for block in blocks])
            .float()
            .cpu()
        )


def ffn_importance(
    model: torch.nn.Module,
    dataset: Any = None,
    data_collator: Callable | None = None,
    *,
    method: str = "taylor",
    batch_size: int = 16,
    max_samples: int | None = 512,
    seed: int = 42,
) -> torch.Tensor:
    """Score every FFN neuron of `model`: a (layers, width) float tensor, higher = more important.

    `dataset` holds tokenized, labelled training examples (input_ids, attention_mask, labels, ...) that
    `data_collator` pads; `max_samples` of them (drawn with `seed`) are scored. The model's weights,
    gradients and train/eval mode are left as they were.
    """
    check_importance(method)
    blocks = find_ffn_blocks(model)
    if method == "magnitude":
        return magnitude_scores(blocks)
    if dataset is None or data_collator is None or len(dataset) == 0:
        raise PruningError(
            f"--importance {method} scores neurons on labelled training examples, but none were given: "
            "pass training data (--train_file / --data_dir), or use --importance magnitude"
        )
    if max_samples is not None and len(dataset) > max_samples:
        dataset = dataset.shuffle(seed=seed).select(range(max_samples))
    inputs = [
        name
        for name in ("input_ids", "attention_mask", "token_type_ids", "labels")
        if name in dataset.column_names
    ]
    if "labels" not in inputs:
        raise PruningError("the training examples have no labels column: the task loss needs gold labels")
    loader = DataLoader(dataset.select_columns(inputs), batch_size=batch_size, collate_fn=data_collator)
    device = next(model.parameters()).device
    scores = torch.zeros(len(blocks), blocks[0].width, dtype=torch.float64)
    activations: list[torch.Tensor] = []

    def keep_activation(_module, args):
        activations.append(args[0])

    was_training = model.training
    requires_grad = {name: parameter.requires_grad for name, parameter in model.named_parameters()}
    handles = [block.down.register_forward_pre_hook(keep_activation) for block in blocks]
    model.eval()  # no dropout: score the network that will be pruned
    model.requires_grad_(True)  # the activations need a graph; autograd.grad leaves .grad untouched
    try:
        with torch.enable_grad():
            for batch in loader:
                activations.clear()
                batch = {name: value.to(device) for name, value in batch.items() if name in inputs}
                loss = model(**batch).loss
                gradients = torch.autograd.grad(loss, activations)
                for layer, (activation, gradient) in enumerate(zip(activations, gradients, strict=True)):
                    # (batch, tokens, width) -> one first-order loss change per example and neuron
                    per_example = (activation * gradient).flatten(1, -2).sum(1).double().cpu()
                    scores[layer] += (
                        per_example.abs().sum(0) if method == "taylor" else per_example.pow(2).sum(0)
                    )
    finally:
        for handle in handles:
            handle.remove()
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(requires_grad[name])
        model.train(was_training)
        activations.clear()
    return scores.float()
