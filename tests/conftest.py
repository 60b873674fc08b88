"""Shared fixtures: tiny random-weight models built from configs, and the real data beside the repo.

Tests never download: models come from configs (or the packaged MiniLM), data from `../shared/data`
(skipped with the reason on a user's clone that lacks it) or from files the repo carries.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch
from packaging.version import Version

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# One torch thread per test process: on a shared 2-core machine, two threads per tiny matmul
# oversubscribe the cores and make the suite ~10x slower.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


def import_script(relative_path: str):
    """A repository script (a recipe, a benchmark) as a module, so its functions run in-process."""
    path = REPO_ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"needs the real datasets in {SHARED_DATA} (present in CI, absent from a user's clone)",
)


def onnx_extra_installed() -> bool:
    """Whether the ONNX extra (optimum-onnx, onnx, onnxruntime) is installed beside a transformers it supports.

    Read from package metadata and import specs, never by importing: collecting tests must not pay
    for (or crash in) optimum's import, e.g. under a transformers release optimum-onnx does not support
    (optimum-onnx 0.1 stops at 4.57). onnxruntime is looked up by module because its distribution may
    be named onnxruntime-gpu.
    """
    try:
        importlib.metadata.version("optimum-onnx")
        transformers_version = Version(importlib.metadata.version("transformers"))
    except importlib.metadata.PackageNotFoundError:
        return False
    supported = transformers_version < Version("4.58")
    return supported and all(
        importlib.util.find_spec(module) is not None for module in ("onnx", "onnxruntime")
    )


requires_onnx = pytest.mark.skipif(
    not onnx_extra_installed(),
    reason="needs the ONNX extra: pip install 'hfkdq[onnx]' (transformers <4.58)",
)


@pytest.fixture(scope="session")
def minilm_tokenizer():
    """The packaged MiniLM WordPiece tokenizer: real vocabulary, no download."""
    from transformers import AutoTokenizer

    from hfkdq.resources import packaged_minilm_path

    return AutoTokenizer.from_pretrained(str(packaged_minilm_path()))


def tiny_bert_config(
    num_labels: int = 3, num_layers: int = 4, hidden_size: int = 32, heads: int = 4, **kwargs
):
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


def ner_files(source: str) -> dict[str, str]:
    """CoNLL files of a named source: 'btc' (embedded in the package) or 'conll2003' (../shared/data)."""
    if source == "btc":
        from hfkdq.resources import btc_files

        return btc_files()
    return {
        split: str(SHARED_DATA / "conll2003" / f"{split}.txt") for split in ("train", "validation", "test")
    }


NER_SOURCES = [
    pytest.param("btc", id="btc-embedded"),
    pytest.param("conll2003", id="conll2003-shared", marks=requires_shared_data),
]


def tiny_ner_task(tokenizer, source: str = "btc", train_sentences: int = 64, eval_sentences: int = 32):
    """A `TaskData` over the first sentences of a real NER corpus, tokenized with the real WordPiece."""
    from hfkdq.tasks.ner import NerDataArguments, build_ner_task

    files = ner_files(source)
    data_args = NerDataArguments(
        train_file=files["train"],
        validation_file=files["validation"],
        test_file=files["test"],
        max_seq_length=48,
        max_train_samples=train_sentences,
        max_eval_samples=eval_sentences,
    )
    return build_ner_task(data_args, tokenizer)


def tiny_token_models(label_names, teacher_width: int = 64, student_width: int = 32, seed: int = 0):
    """A 4-layer random teacher and a 2-layer narrower student for the same labels."""
    import torch
    from transformers import BertForTokenClassification

    torch.manual_seed(seed)
    teacher_config = tiny_bert_config(num_labels=len(label_names), num_layers=4, hidden_size=teacher_width)
    student_config = tiny_bert_config(num_labels=len(label_names), num_layers=2, hidden_size=student_width)
    for config in (teacher_config, student_config):
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: i for i, name in enumerate(label_names)}
    return BertForTokenClassification(teacher_config), BertForTokenClassification(student_config)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, minilm_tokenizer) -> Path:
    """A tiny random BERT encoder *without* a task head, saved like a Hub checkpoint.

    Recipes fine-tune such a teacher first, exactly as they do the packaged MiniLM base.
    """
    from transformers import BertModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-teacher")
    config = tiny_bert_config(num_labels=2, num_layers=4, hidden_size=64)
    BertModel(config).save_pretrained(path)
    minilm_tokenizer.save_pretrained(path)
    return path


class ForwardCounter:
    """Counts forward passes of a module (a teacher), to assert when it runs and when it must not."""

    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(self._count)

    def _count(self, *_):
        self.calls += 1


TINY_WORDS = ("jean", "claude", "dupont", "found", "montpellier", "paris", "in", "the", "una", "ffa", "ble")


def tiny_wordpiece_tokenizer(lowercase: bool, id_offset: int = 0):
    """A fast BERT-style WordPiece tokenizer over a tiny vocabulary, built offline with `tokenizers`.

    Every ASCII letter and digit is a piece (alone and as a ``##`` continuation), so any word splits;
    whole words differ between the cased and the uncased vocabulary, so the two split the same words
    differently. ``id_offset`` shifts every id (as MPNet's vocabulary is BERT-uncased's shifted by 4).
    """
    import string

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [
        *(f"[unused{index}]" for index in range(id_offset)),
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    ]
    characters = string.ascii_lowercase + string.digits + ("" if lowercase else string.ascii_uppercase)
    words = (
        [*TINY_WORDS, "##pel", "##lier", "mont"]
        if lowercase
        else ["Jean", "Paris", "Mont", "##pellier", "the"]
    )
    pieces = [*characters, *(f"##{c}" for c in characters), *string.punctuation, *words]
    vocab = {token: index for index, token in enumerate(dict.fromkeys([*specials, *pieces]))}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
