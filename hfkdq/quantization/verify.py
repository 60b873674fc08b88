"""Does the quantized variant still compute what the fp32 student computes? Logits side by side.

A task metric can hide compensating errors and needs labels; logit differences and argmax agreement
on held-out inputs show directly how far quantization moved the model. Token classification is
compared on real tokens only (attention mask 1): padding positions are never predictions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hfkdq.evaluation import Predictions, predict
from hfkdq.layout import VERIFICATION_FILE


def compare_predictions(reference: Predictions, candidate: Predictions) -> dict[str, Any]:
    """Max/mean absolute logit difference and prediction agreement of `candidate` vs `reference`.

    Agreement is the fraction of examples (sequence) or real tokens (token classification) whose argmax
    matches; it is None for a regression head (one output), where argmax means nothing.
    """
    ref, cand = reference.logits, candidate.logits
    if ref.shape != cand.shape:
        raise ValueError(
            f"Cannot compare logits of shape {cand.shape} with the reference's {ref.shape}: "
            "run both models on the same dataset with the same collator."
        )
    if ref.ndim == 3:
        mask = reference.attention_mask.astype(bool)
        ref_rows, cand_rows = ref[mask], cand[mask]
        unit = "tokens"
    else:
        ref_rows, cand_rows = ref, cand
        unit = "examples"
    diff = np.abs(ref_rows.astype(np.float64) - cand_rows.astype(np.float64))
    agreement = None
    if ref_rows.shape[-1] > 1:
        agreement = float(np.mean(ref_rows.argmax(-1) == cand_rows.argmax(-1)))
    return {
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "prediction_agreement": agreement,
        "compared": int(ref_rows.shape[0]),
        "compared_unit": unit,
    }


def verify(
    reference_model: Any,
    candidate_model: Any,
    dataset: Any,
    data_collator: Callable,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Run both models on `dataset` (held-out, tokenized) and compare their logits."""
    return compare_predictions(
        predict(reference_model, dataset, data_collator, batch_size),
        predict(candidate_model, dataset, data_collator, batch_size),
    )


def write_verification(
    variant_dir: str | Path, report: dict[str, Any], reference: str | Path | None = None
) -> Path:
    """Store the comparison as `verification.json` next to the variant's weights."""
    record = dict(report)
    if reference is not None:
        record["reference_model"] = str(Path(reference).resolve())
    path = Path(variant_dir) / VERIFICATION_FILE
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
