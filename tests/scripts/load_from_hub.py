"""Run by tests/test_hub.py with HF_ENDPOINT set: load models back from the test Hub and from disk.

    python load_from_hub.py REPO_ID STUDENT_DIR [ONNX_REVISION ONNX_DIR]

Prints one JSON line: for each loaded pair, whether the Hub copy and the local copy give identical logits
on a few sentences. A separate process because huggingface_hub and transformers read HF_ENDPOINT and
offline mode when they are imported.
"""

import json
import sys

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

TEXTS = [
    "Barack Obama visited Paris with Angela Merkel.",
    "hello world",
    "Apple and Microsoft reported earnings.",
]


def logits(model, inputs) -> np.ndarray:
    with torch.inference_mode():
        return np.asarray(model(**inputs).logits)


def main(
    repo_id: str, student_dir: str, onnx_revision: str | None = None, onnx_dir: str | None = None
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(repo_id)
    inputs = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))
    remote = AutoModelForTokenClassification.from_pretrained(repo_id).eval()
    local = AutoModelForTokenClassification.from_pretrained(student_dir).eval()
    report = {"fp32_identical": bool(np.array_equal(logits(remote, inputs), logits(local, inputs)))}
    if onnx_revision:
        from optimum.onnxruntime import ORTModelForTokenClassification

        remote_onnx = ORTModelForTokenClassification.from_pretrained(repo_id, revision=onnx_revision)
        local_onnx = ORTModelForTokenClassification.from_pretrained(onnx_dir)
        remote_logits, local_logits = logits(remote_onnx, inputs), logits(local_onnx, inputs)
        report["onnx_identical"] = bool(np.array_equal(remote_logits, local_logits))
        report["onnx_class"] = type(remote_onnx).__name__
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
