"""The report: a markdown table with deltas vs the fp32 student on the same device, the JSON results,
a Pareto plot PNG."""

from __future__ import annotations

import json

import matplotlib
import pytest

from hfkdq.report import (
    _pareto_front,
    deltas,
    markdown_table,
    plot_pareto,
    reference_for,
    render_markdown,
    write_report,
)

MB = 1024 * 1024


def variant(name, f1, size_mb, latency_b1, latency_b32, agreement=None, role="variant", device="cpu"):
    return {
        "name": name,
        "role": role,
        "device": device,
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
        "latency": {"seq_len": 128, "repeats": 20, "warmup": 3, "torch_threads": 2},
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
    assert "| Param mem MB | Device | Latency b1 ms |" in lines[0]
    assert "Latency b1 ms" in lines[0] and "Latency b32 ms" in lines[0] and "Agreement" in lines[0]
    assert len(lines) == 2 + 3
    fp32, onnx, bnb = lines[2:]
    assert fp32.startswith("| fp32 (reference) | 0.8000 | – | 40.00 | 1.00× | 40.00 | cpu |")
    assert onnx.startswith(
        "| onnx-int8 | 0.7950 | -0.50 | 10.00 | 0.25× | 10.00 | cpu | 4.00 | 80.0 | 2.50× | 2.50× | 99.00% |"
    )
    assert "| -2.00 |" in bnb and "| 0.50× |" in bnb


@pytest.fixture
def two_devices(results):
    """bnb-4bit ran on CUDA, so the fp32 student was also measured there (faster than on the CPU)."""
    results["variants"].insert(1, variant("fp32", 0.801, 40.0, 2.0, 8.0, role="student", device="cuda:0"))
    results["variants"][-1]["device"] = "cuda:0"
    return results


def test_each_row_is_compared_with_the_fp32_reference_on_its_own_device(two_devices):
    cpu_fp32, cuda_fp32, onnx, bnb = two_devices["variants"]
    assert reference_for(onnx, two_devices["variants"]) is cpu_fp32
    assert reference_for(bnb, two_devices["variants"]) is cuda_fp32
    assert reference_for(cuda_fp32, two_devices["variants"]) is cuda_fp32
    rows = markdown_table(two_devices).splitlines()[2:]
    assert rows[0].startswith("| fp32 (reference) | 0.8000 | – | 40.00 | 1.00× | 40.00 | cpu | 10.00 |")
    assert rows[1].startswith("| fp32 (reference) | 0.8010 | – | 40.00 | 1.00× | 40.00 | cuda:0 | 2.00 |")
    assert "| cpu | 4.00 | 80.0 | 2.50× | 2.50× |" in rows[2]  # onnx-int8 vs fp32 on the CPU
    assert (
        "| -2.10 | 20.00 | 0.50× | 20.00 | cuda:0 | 20.00 | 400.0 | 0.10× | 0.02× |" in rows[3]
    )  # vs CUDA fp32


def test_a_row_without_a_same_device_reference_falls_back_to_the_primary_one(two_devices):
    """Old results.json files have no devices at all; a stray device has no reference of its own."""
    cpu_fp32 = two_devices["variants"][0]
    assert reference_for({"name": "x", "device": "mps:0"}, two_devices["variants"]) is cpu_fp32
    for row in two_devices["variants"]:
        del row["device"]
    assert reference_for(two_devices["variants"][3], two_devices["variants"]) is cpu_fp32
    assert reference_for(cpu_fp32, []) is None


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
    assert "on the row's Device" in text and "fp32 student on the same device" in text


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


def marker_pixels(path, color: str) -> tuple[int, int]:
    """Pixels of `color` (the points, the Pareto front) in the left (latency) and right (size) panel."""
    import matplotlib.colors
    import matplotlib.image

    image = matplotlib.image.imread(path)[..., :3]
    close = (abs(image - matplotlib.colors.to_rgb(color)) < 0.05).all(-1)
    middle = image.shape[1] // 2
    return int(close[:, :middle].sum()), int(close[:, middle:].sum())


def test_plot_of_several_devices_draws_points_and_fronts_in_both_panels(two_devices, tmp_path):
    path = plot_pareto(two_devices, tmp_path / "pareto.png")
    assert all(count > 20 for count in marker_pixels(path, "tab:blue")), "points in both panels"
    assert all(count > 20 for count in marker_pixels(path, "tab:red")), "a Pareto front in both panels"


def test_plot_without_latency_leaves_that_panel_empty_and_still_draws_the_size_panel(results, tmp_path):
    for row in results["variants"]:
        row["latency_ms"] = {}
    latency_points, size_points = marker_pixels(plot_pareto(results, tmp_path / "pareto.png"), "tab:blue")
    assert latency_points == 0 and size_points > 20
