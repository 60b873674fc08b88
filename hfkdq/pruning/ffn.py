"""Where each layer's feed-forward block is, and how to cut neurons out of it so the model stays stock.

A BERT-style layer's FFN is two `nn.Linear`s: *up* (hidden -> intermediate, followed by the activation)
and *down* (intermediate -> hidden). FFN neuron ``i`` is row ``i`` of up (weight and bias) and column
``i`` of down. Removing the same number of neurons from every layer leaves a model that differs from the
original only in its config's intermediate width, so `save_pretrained` / `from_pretrained`, Optimum's
ONNX export and the Hub treat it as any other checkpoint of its architecture.

The layers are found by shape, not by name (`hfkdq.students.find_layer_list`); in every BERT-style block
the feed-forward pair is the block's last two Linears (after the attention's), checked by shape: up from
the hidden to the intermediate width, down back. Position, not shape alone, because a pruned FFN can be as
wide as the hidden state, and then query/key/value match the shapes too. That covers BERT,
RoBERTa, XLM-R, ELECTRA, MPNet (``intermediate_size``) and DistilBERT (``hidden_dim``) without a
per-family table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel

from hfkdq.students import find_layer_list

INTERMEDIATE_SIZE_KEYS = ("intermediate_size", "hidden_dim")
"""Config fields holding the FFN width: BERT-family and MPNet, then DistilBERT."""


class PruningError(ValueError):
    """A model or setting the FFN pruner cannot work with; the message names the fix."""


@dataclass(frozen=True)
class FfnBlock:
    """One layer's feed-forward block: the Linear into the intermediate width and the one out of it."""

    layer: int
    up: nn.Linear
    down: nn.Linear

    @property
    def width(self) -> int:
        return self.up.out_features


def intermediate_size_key(config) -> str:
    """The config field that holds the FFN width, or a `PruningError` naming the supported ones."""
    for key in INTERMEDIATE_SIZE_KEYS:
        if isinstance(getattr(config, key, None), int):
            return key
    raise PruningError(
        f"{type(config).__name__} has none of the FFN width fields {', '.join(INTERMEDIATE_SIZE_KEYS)}: "
        "FFN pruning supports BERT-style encoders (BERT, RoBERTa, XLM-R, ELECTRA, MPNet, DistilBERT)"
    )


def find_ffn_blocks(model: PreTrainedModel) -> list[FfnBlock]:
    """Every layer's (up, down) pair, in layer order; a clear error when a layer has no such pair."""
    width = getattr(model.config, intermediate_size_key(model.config))
    hidden = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.dim
    _, layers = find_layer_list(model)
    blocks = []
    for index, layer in enumerate(layers):
        linears = [module for module in layer.modules() if isinstance(module, nn.Linear)]
        up, down = (linears[-2], linears[-1]) if len(linears) >= 2 else (None, None)
        if up is None or (up.in_features, up.out_features, down.in_features, down.out_features) != (
            hidden,
            width,
            width,
            hidden,
        ):
            found = [f"{m.in_features}->{m.out_features}" for m in linears[-2:]]
            raise PruningError(
                f"layer {index} of {type(model).__name__} does not end in a feed-forward block "
                f"{hidden}->{width}->{hidden} (its last Linears: {', '.join(found) or 'none'}); FFN pruning "
                "supports BERT-style encoders"
            )
        blocks.append(FfnBlock(index, up, down))
    return blocks


def check_ffn_keep(ffn_keep: float) -> float:
    """`ffn_keep` as a float in (0, 1], the share of FFN neurons every layer keeps; else a one-line error."""
    try:
        value = float(ffn_keep)
    except (TypeError, ValueError):
        raise PruningError(f"--ffn_keep must be a number in (0, 1]; got {ffn_keep!r}") from None
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise PruningError(
            f"--ffn_keep must be a fraction in (0, 1] (the share of FFN neurons each layer keeps, e.g. 0.5); "
            f"got {ffn_keep!r}"
        )
    return value


def neurons_to_keep(ffn_keep: float, width: int) -> int:
    """How many of `width` neurons a layer keeps: `ffn_keep` x width, rounded half up; at least one."""
    keep = check_ffn_keep(ffn_keep)
    count = math.floor(keep * width + 0.5)
    if count < 1:
        raise PruningError(
            f"--ffn_keep {ffn_keep} keeps {keep * width:.2f} of {width} FFN neurons per layer, which rounds to "
            f"none; keep at least {1 / width:.6f} (one neuron)"
        )
    return count


def select_neurons(scores: torch.Tensor, count: int) -> list[list[int]]:
    """Per layer, the `count` highest-scoring neurons, in their original order (ties: the lower index).

    `scores` is (layers, width). Keeping the original order means keeping every neuron changes nothing.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be (layers, width); got shape {tuple(scores.shape)}")
    if not 1 <= count <= scores.shape[1]:
        raise PruningError(f"cannot keep {count} of {scores.shape[1]} FFN neurons per layer")
    kept = []
    for row in scores:
        # A stable sort on the negated scores ranks ties by index, so the choice is deterministic.
        order = torch.sort(-row.double(), stable=True).indices[:count]
        kept.append(sorted(order.tolist()))
    return kept


@torch.no_grad()
def prune_ffn(model: PreTrainedModel, kept: Sequence[Sequence[int]]) -> PreTrainedModel:
    """Cut every layer's FFN down to the neurons in `kept[layer]` (same count in each), in place.

    The kept neurons' weights are copied unchanged, so before any further training each kept neuron's
    activation is exactly what it was, and each FFN's output is the original minus the removed neurons'
    contributions. The config's width is updated: the result saves and loads as a stock model.
    """
    blocks = find_ffn_blocks(model)
    if len(kept) != len(blocks):
        raise PruningError(f"got neuron lists for {len(kept)} layers; the model has {len(blocks)}")
    counts = {len(indices) for indices in kept}
    if len(counts) != 1:
        raise PruningError(
            f"every layer must keep the same number of FFN neurons to stay a stock config; got {sorted(counts)}"
        )
    (count,) = counts
    for block, indices in zip(blocks, kept, strict=True):
        index = torch.as_tensor(list(indices), dtype=torch.long, device=block.up.weight.device)
        if count == 0 or len(set(indices)) != count or min(indices) < 0 or max(indices) >= block.width:
            raise PruningError(f"layer {block.layer}: neuron indices must be distinct, in [0, {block.width})")
        block.up.weight = nn.Parameter(block.up.weight.index_select(0, index).clone())
        if block.up.bias is not None:
            block.up.bias = nn.Parameter(block.up.bias.index_select(0, index).clone())
        block.up.out_features = count
        block.down.weight = nn.Parameter(block.down.weight.index_select(1, index).clone())
        block.down.in_features = count
    setattr(model.config, intermediate_size_key(model.config), count)
    return model
