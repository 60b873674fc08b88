"""Shared fixtures: tiny random-weight models built from configs, and the real data beside the repo.

Tests never download: models come from configs (or the packaged MiniLM), data from `../shared/data`
(skipped with the reason on a user's clone that lacks it) or from files the repo carries.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"

requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"needs the real datasets in {SHARED_DATA} (present in CI, absent from a user's clone)",
)


@pytest.fixture(scope="session")
def minilm_tokenizer():
    """The packaged MiniLM WordPiece tokenizer: real vocabulary, no download."""
    from transformers import AutoTokenizer

    from hfkdq.resources import packaged_minilm_path

    return AutoTokenizer.from_pretrained(str(packaged_minilm_path()))


def tiny_bert_config(num_labels: int = 3, num_layers: int = 4, hidden_size: int = 32, heads: int = 4, **kwargs):
    """A BERT config small enough to train in seconds, with the MiniLM vocabulary size."""
    from transformers import BertConfig

    id2label = {i: f"L{i}" for i in range(num_labels)}
    return BertConfig(
        vocab_size=30522,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=128,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        **kwargs,
    )
