"""The report: a markdown table with deltas vs the fp32 student, the JSON results, a Pareto plot PNG."""

from __future__ import annotations

import json

import matplotlib
import pytest

from hfkdq.report import _pareto_front, deltas, markdown_table, plot_pareto, render_markdown, write_report

MB = 1024 * 1024


def variant(name, f1, size_mb, latency_b1, latency_b32, agreement=None, role="variant"):
    return {
        "name": name,
        "role": role,
        "metrics": {"f1": f1, "precision": f1},
        "size_bytes": int(size_mb * MB),
        "param_memory_bytes": int(size_mb * MB),
        "latency_ms": {"batch_1": latency_b1, "batch_32": latency_b32},
        "verification": None
        if agreement is None
        else {"prediction_agreement": agreement, "max_abs_logit_diff": 0.05},
    }


@pytest.fixture
def results():
    return {
        "model_dir": "outputs/student",
        "main_metric": "f1",
        "reference": "fp32",
        "eval_examples": 1001,
        "latency": {"seq_len": 128, "repeats": 20, "warmup": 3, "torch_threads": 2, "device": "cpu"},
        "max_metric_drop": None,
        "violations": [],
        "variants": [
            variant("fp32", 0.800, 40.0, 10.0, 200.0, role="student"),
            variant("onnx-int8", 0.795, 10.0, 4.0, 80.0, agreement=0.99),
            variant("bnb-4bit", 0.780, 20.0, 20.0, 400.0, agreement=0.97),
        ],
    }


def test_deltas_are_points_ratios_and_speedups(results):
    reference, onnx = results["variants"][0], results["variants"][1]
    assert deltas(onnx, reference, "f1") == pytest.approx(
        {
            "metric_points": -0.5,
            "size_ratio": 0.25,
            "memory_ratio": 0.25,
            "speedup_batch_1": 2.5,
            "speedup_batch_32": 2.5,
        }
    )


def test_table_has_one_row_per_variant_with_deltas_vs_fp32(results):
    lines = markdown_table(results).splitlines()
    assert lines[0].startswith("| Variant | f1 | Δ f1 (pts) | Size MB |")
    assert "Latency b1 ms" in lines[0] and "Latency b32 ms" in lines[0] and "Agreement" in lines[0]
    assert len(lines) == 2 + 3
    fp32, onnx, bnb = lines[2:]
    assert fp32.startswith("| fp32 (reference) | 0.8000 | – | 40.00 | 1.00× |")
    assert onnx.startswith(
        "| onnx-int8 | 0.7950 | -0.50 | 10.00 | 0.25× | 10.00 | 4.00 | 80.0 | 2.50× | 2.50× | 99.00% |"
    )
    assert "| -2.00 |" in bnb and "| 0.50× |" in bnb


def test_unmeasured_values_show_a_dash(results):
    results["variants"][2]["latency_ms"] = {}
    row = markdown_table(results).splitlines()[-1]
    assert row.count("–") >= 4


def test_report_names_violations_loudly(results):
    results["max_metric_drop"] = 1.0
    results["violations"] = [{"variant": "bnb-4bit", "drop_points": 2.0, "allowed": 1.0}]
    text = render_markdown(results)
    assert "FAILED: metric drop above 1.0 points" in text
    assert "`bnb-4bit` lost 2.00 points" in text
    assert "median of 20 runs after 3 warm-up" in text


def test_pareto_front_keeps_only_undominated_points():
    points = [(10.0, 0.80), (4.0, 0.795), (20.0, 0.78), (3.0, 0.70), (4.0, 0.60)]
    assert _pareto_front(points) == [3, 1, 0]


def test_write_report_writes_json_markdown_and_png_without_touching_the_backend(results, tmp_path):
    backend = matplotlib.get_backend()
    paths = write_report(results, tmp_path / "report")
    assert json.loads(paths["json"].read_text()) == results
    assert paths["markdown"].read_text().startswith("# Quantization report")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend


def test_plot_copes_with_missing_latency(results, tmp_path):
    for row in results["variants"]:
        row["latency_ms"] = {}
    path = plot_pareto(results, tmp_path / "pareto.png")
    assert path.stat().st_size > 0
