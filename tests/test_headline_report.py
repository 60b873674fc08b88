"""The headline benchmark's report: targets judged from the figures, a hand-written analysis kept."""

import pytest
from conftest import import_script


@pytest.fixture(scope="module")
def report():
    return import_script("benchmarks/headline_report.py")


def _variant(name: str, metric: float, size: int, b1: float, b32: float) -> dict:
    return {
        "name": name,
        "metrics": {"f1": metric, "accuracy": metric},
        "size_bytes": size,
        "latency_ms": {"batch_1": b1, "batch_32": b32},
    }


def _payload(headline: dict) -> dict:
    variants = [
        _variant("teacher", 0.90, 400_000_000, 50.0, 1500.0),
        _variant("fp32", 0.88, 180_000_000, 15.0, 400.0),
        _variant("onnx-int8", 0.87, 30_000_000, 4.0, 120.0),
    ]
    stage = {
        "teacher": {"metrics": {"test": {"f1": 0.90}, "validation": {"accuracy": 0.90}}},
        "student": {"metrics": {"test": {"f1": 0.88}, "validation": {"accuracy": 0.88}}},
        "plain_student": {"metrics": {"test": {"f1": 0.86}, "validation": {"accuracy": 0.87}}},
        "quantization": {"main_metric": "f1", "eval_split": "test", "variants": variants},
    }
    return {
        "preset": {"name": "quick", "train": 24, "teacher_epochs": 1, "epochs": 1, "batch": 8},
        "teacher": "sentence-transformers/all-mpnet-base-v2",
        "environment": {
            "cpu": "x86_64",
            "cpu_flags": ["avx2"],
            "threads": 2,
            "git_commit": "0" * 40,
            "versions": {},
        },
        "headline": headline,
        "step_cost": {
            "seconds_per_step": {
                "plain": {"median_s": 1.0, "per_round_s": [1.0]},
                "kd_live": {"median_s": 1.4, "per_round_s": [1.4]},
            },
            "ratio_vs_plain": {"kd_live_vs_plain": {"mean": 1.4, "sd": 0.02}},
        },
        "stages": {"conll2003-L3": stage, "sst2-L3": stage},
    }


def test_each_target_is_judged_from_its_figure(report):
    table = report.headline_table({"speedup_b1": 12.5, "speedup_b32": 8.1, "size_ratio": 0.07})
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| `")}
    assert rows["speedup_b1"].endswith("| yes |")
    assert rows["speedup_b32"].endswith("| **no** |")
    assert rows["size_ratio"].endswith("| yes |")
    assert rows["ner_kd_gain"].endswith("| – |")  # not measured is neither met nor missed


def test_re_rendering_keeps_the_hand_written_analysis(report):
    first = report.render_report(_payload({"speedup_b1": 9.0}))
    edited = first + "\nThe 12-to-3 layer ratio caps the speed-up at 4x before int8.\n"
    again = report.render_report(_payload({"speedup_b1": 11.0}), previous=edited)
    assert "caps the speed-up at 4x" in again
    assert again.count(report.ANALYSIS_MARKER) == 1
    assert "| 11 |" in again and "| 9 |" not in again


def test_the_variant_table_gives_each_variant_its_speed_up_and_size_against_the_teacher(report):
    table = report.variants_table(_payload({})["stages"])
    int8_row = next(line for line in table.splitlines() if "| onnx-int8 |" in line)
    assert "12.50x" in int8_row  # 50 ms / 4 ms at batch 1
    assert "0.075" in int8_row  # 30 MB / 400 MB


def test_the_plot_is_written(report, tmp_path):
    path = report.plot_headline(_payload({}), tmp_path / "pareto.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_kd_gain_is_shown_per_seed_with_its_mean_and_spread(report):
    table = report.kd_seed_table(
        {
            "conll2003": {"seeds": [42, 43, 44], "gains": [0.93, 0.1, 1.4], "mean": 0.81, "sd": 0.66},
            "sst2": {"seeds": [42], "gains": [0.23], "mean": 0.23, "sd": None},
        }
    )
    rows = table.splitlines()[2:]
    assert rows[0] == "| CoNLL-2003 | 42, 43, 44 | +0.93, +0.10, +1.40 | +0.81 ± 0.66 |"
    assert rows[1].endswith("| +0.23 (one seed) |")
