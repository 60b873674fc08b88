"""Helpers shared by the quantization tests (no tests here): tiny saved students and held-out inputs.

Widths are 64 because bitsandbytes' CPU 4-bit kernel needs in_features divisible by 64; the real
MiniLM vocabulary (30522) keeps the packaged tokenizer usable, which makes the embedding matrix the
largest tensor, so size checks below look at the Linear layers (what every backend quantizes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from conftest import tiny_bert_config
from datasets import Dataset

TEXTS = [
    "The European Commission met in Brussels on Tuesday.",
    "hello world",
    "Barack Obama visited Paris with Angela Merkel last spring.",
    "I can't believe the match last night, what a goal!",
    "Apple and Microsoft reported earnings.",
    "the quick brown fox jumps over the lazy dog",
    "New York is bigger than Boston.",
    "ok",
]


def save_tiny_model(
    directory: Path,
    tokenizer,
    head: str = "sequence",
    hidden_size: int = 64,
    num_labels: int = 3,
    seed: int = 0,
) -> Path:
    """A random 2-layer BERT with a classification head, saved with the real tokenizer."""
    from transformers import BertForSequenceClassification, BertForTokenClassification

    torch.manual_seed(seed)
    config = tiny_bert_config(num_labels=num_labels, num_layers=2, hidden_size=hidden_size, heads=4)
    model_class = BertForTokenClassification if head == "token" else BertForSequenceClassification
    model = model_class(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def encode(tokenizer, texts=TEXTS) -> dict[str, torch.Tensor]:
    return dict(tokenizer(list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt"))


@torch.inference_mode()
def logits_of(model, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    """Logits on CPU as numpy, whatever device the model is on (bitsandbytes goes to CUDA when it can)."""
    from hfkdq.evaluation import model_device, model_input_names

    device = model_device(model)
    names = model_input_names(model)
    return model(**{k: v.to(device) for k, v in inputs.items() if k in names}).logits.float().cpu().numpy()


def agreement(
    reference: np.ndarray, candidate: np.ndarray, attention_mask: torch.Tensor | None = None
) -> float:
    """Argmax agreement; for token logits only over real (unpadded) tokens."""
    same = reference.argmax(-1) == candidate.argmax(-1)
    if reference.ndim == 3:
        same = same[attention_mask.numpy().astype(bool)]
    return float(same.mean())


def linear_weight_bytes(model, skip: str = "classifier") -> int:
    """fp32 bytes of the Linear weights a backend quantizes (all but the head)."""
    return sum(
        module.weight.numel() * 4
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.startswith(skip)
    )


def tokenized_dataset(tokenizer, head: str, num_labels: int = 3, texts=TEXTS, seed: int = 0) -> Dataset:
    """Unpadded tokenized examples with random labels (-100 on special tokens for token classification)."""
    generator = np.random.default_rng(seed)
    encoded = tokenizer(list(texts), truncation=True, max_length=64)
    if head == "token":
        labels = []
        for ids in encoded["input_ids"]:
            row = generator.integers(0, num_labels, len(ids)).tolist()
            row[0] = row[-1] = -100
            labels.append(row)
    else:
        labels = generator.integers(0, num_labels, len(texts)).tolist()
    return Dataset.from_dict({**encoded, "labels": labels})
