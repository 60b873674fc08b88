"""Publish a run to the Hugging Face Hub: the fp32 student on `main`, each quantized variant on its own branch.

    from hfkdq.hub import push_to_hub, plan_push
    push_to_hub("outputs/ner-btc-minilm", "you/minilm-btc-student", max_metric_drop=1.0)

Layout (one repo, one card, one `model-index`): the fp32 student is on `main`; each variant is on a
branch named after its method (`onnx-int8`, `bnb-8bit`, ...), so it loads with
``ORTModelForTokenClassification.from_pretrained(repo_id, revision="onnx-int8")`` or, for bitsandbytes
(whose config.json carries the `quantization_config`), ``AutoModelFor...from_pretrained(repo_id,
revision="bnb-8bit")``. Branches rather than one repo per variant: the variants are versions of one
model, found from one page, and a variant cannot be published without the student it was made from.

Everything is checked before anything is uploaded: the repo id, the threshold, that the directory holds
a saved model, the quality gate, offline mode, the token. The exact file list of every revision is
printed before the first byte goes out.

One module per job, this package only re-exports:
- `layout`: what a run directory holds for a push, and what is never uploaded (`excluded_reason`);
- `card`: the model card;
- `plan`: every revision's file list, computed locally (`--dry_run`);
- `transport`: the Hub checks and commits (`push_to_hub`).
The gate that keeps variants back is `hfkdq.quality_gate`, the one `hfkdq quantize` applies.
The command line (`hfkdq push`) is `hfkdq.commands.push`.
"""

from __future__ import annotations

from hfkdq.hub.card import build_model_card
from hfkdq.hub.layout import RunLayout, check_repo_id, excluded_reason, find_layout
from hfkdq.hub.plan import PushPlan, RevisionUpload, plan_push
from hfkdq.hub.transport import HubPushError, PushResult, check_can_push, push_to_hub
from hfkdq.quality_gate import GateFailure, gate

__all__ = [
    "GateFailure",
    "HubPushError",
    "PushPlan",
    "PushResult",
    "RevisionUpload",
    "RunLayout",
    "build_model_card",
    "check_can_push",
    "check_repo_id",
    "excluded_reason",
    "find_layout",
    "gate",
    "plan_push",
    "push_to_hub",
]
