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


def _payload(headline: dict, finished=("conll2003-L3", "sst2-L3")) -> dict:
    variants = [
        _variant("teacher", 0.90, 400_000_000, 50.0, 1500.0),
        _variant("fp32", 0.88, 180_000_000, 15.0, 400.0),
        _variant("onnx-int8", 0.87, 30_000_000, 4.0, 120.0),
    ]
    stage = {
        "teacher": {
            "metrics": {"test": {"f1": 0.90}, "validation": {"accuracy": 0.90}},
            "learning_curve": [
                {"eval_f1": 0.7, "eval_accuracy": 0.8},
                {"eval_f1": 0.8, "eval_accuracy": 0.9},
            ],
            "still_improving": True,
            "chance": {"chance_level": 0.0},
        },
        "student": {"metrics": {"test": {"f1": 0.88}, "validation": {"accuracy": 0.88}}},
        "plain_student": {"metrics": {"test": {"f1": 0.86}, "validation": {"accuracy": 0.87}}},
        "quantization": {"main_metric": "f1", "eval_split": "test", "variants": variants},
    }
    figures = {
        "metric": 0.87,
        "retention": 0.9667,
        "speedup_b1": 12.5,
        "speedup_b32": 12.5,
        "size_ratio": 0.075,
    }
    return {
        "version": 2,
        "preset": {
            "name": "quick",
            "train": 24,
            "teacher_epochs": 1,
            "epochs": 1,
            "batch": 8,
            "transfer_ratio": 2,
        },
        "teacher": "sentence-transformers/all-mpnet-base-v2",
        "students": {"L3": "3 teacher layers", "minilm3": "3 layers of MiniLM-L6"},
        "environment": {
            "cpu": "x86_64",
            "cpu_flags": ["avx2"],
            "threads": 2,
            "git_commit": "0" * 40,
            "versions": {},
        },
        "headline": headline,
        "candidates": {"L3-kd": {"conll2003": figures, "sst2": figures}},
        "transfer_gains": {},
        "planned_stages": ["sst2-L3", "sst2-L3-transfer", "conll2003-L3", "conll2003-L3-transfer"],
        "finished_stages": list(finished),
        "stages": {name: stage for name in finished},
    }


def test_each_target_is_judged_from_its_figure(report):
    table = report.headline_table(
        {
            "best_student": "L3-kd",
            "best_speedup_b1": 15.5,
            "best_speedup_b32": 8.1,
            "fast_ner_retention": 0.95,
        }
    )
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| `")}
    assert rows["best_speedup_b1"].endswith("| yes |")
    assert rows["best_speedup_b32"].endswith("| **no** |")
    assert rows["fast_ner_retention"].endswith("| yes |")
    assert "| L3-kd |" in rows["best_student"], "a student is named, not judged"
    assert rows["ner_transfer_gain"].endswith("| – |")  # not measured is neither met nor missed


def test_the_pruning_keys_are_judged_too(report):
    table = report.headline_table({"pruned_speedup_vs_unpruned_b1": 1.13, "mixed_precision_found": True})
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| `")}

    assert rows["pruned_speedup_vs_unpruned_b1"].endswith("| 1.13 | >= 1.2 | **no** |")
    assert rows["mixed_precision_found"].endswith("| true | true | yes |")


def test_the_report_says_which_stages_finished_and_which_did_not(report):
    text = report.render_report(_payload({}))
    assert "Finished stages: sst2-L3, conll2003-L3." in text
    assert "Not run (yet): sst2-L3-transfer, conll2003-L3-transfer" in text


def test_re_rendering_keeps_the_hand_written_analysis(report):
    first = report.render_report(_payload({"best_speedup_b1": 9.0}))
    edited = first + "\nThe 12-to-3 layer ratio caps the speed-up at 4x before int8.\n"
    again = report.render_report(_payload({"best_speedup_b1": 11.0}), previous=edited)
    assert "caps the speed-up at 4x" in again
    assert again.count(report.ANALYSIS_MARKER) == 1
    assert "| 11 |" in again and "| 9 |" not in again


def test_the_student_table_gives_each_student_its_four_trainings_and_its_int8_retention(report):
    table = report.students_table(_payload({}))
    row = next(
        line for line in table.splitlines() if line.startswith("| CoNLL-2003 (test) | 3 teacher layers")
    )
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[2:5] == ["90.00", "86.00", "88.00"]  # teacher, plain, KD
    assert cells[5] == "–", "KD + transfer did not run"
    assert cells[6] == "87.00 (0.967)"
    assert cells[8] == "12.5x / 12.5x"
    assert "| not run |" in next(line for line in table.splitlines() if "MiniLM" in line)


def test_the_variant_table_gives_each_variant_its_speed_up_and_size_against_the_teacher(report):
    table = report.variants_table(_payload({})["stages"])
    int8_row = next(line for line in table.splitlines() if "conll2003-L3 (test) | onnx-int8 |" in line)
    assert "12.50x" in int8_row  # 50 ms / 4 ms at batch 1
    assert "0.075" in int8_row  # 30 MB / 400 MB


def test_the_speed_table_gives_each_timed_model_its_speed_up_against_its_tasks_teacher(report):
    speed = {
        "settings": {"rounds": 5, "repeats": {"b1": 10, "b32": 3}, "seq_len": 128},
        "threads": 2,
        "latency_ms": {
            "conll2003": {
                "teacher": {"b1": 60.0, "b32": 1800.0},
                "conll2003-minilm3": {"b1": 2.0, "b32": 45.0},
            }
        },
    }

    table = report.speed_table(speed)

    assert "5 interleaved rounds" in table and "2 torch threads" in table
    row = next(line for line in table.splitlines() if "| minilm3 |" in line)
    assert "30.00x" in row and "40.00x" in row
    assert report.speed_table(None).startswith("Not timed yet")
    assert "## Speed, side by side" in report.render_report(_payload({}) | {"speed": speed})


def test_the_plot_is_written_even_with_no_finished_stage(report, tmp_path):
    for finished in (("conll2003-L3", "sst2-L3"), ()):
        path = report.plot_headline(_payload({}, finished), tmp_path / "pareto.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_transfer_gain_is_shown_per_seed_with_its_mean_and_spread(report):
    table = report.transfer_gain_table(
        {
            "conll2003": {"student": "L3", "seeds": [42, 43], "gains": [2.5, 1.5], "mean": 2.0, "sd": 0.71},
            "sst2": {"student": "L3", "seeds": [42], "gains": [0.23], "mean": 0.23, "sd": None},
        }
    )
    rows = table.splitlines()[2:]
    assert rows[0] == "| CoNLL-2003 | L3 | 42, 43 | +2.50, +1.50 | +2.00 ± 0.71 |"
    assert rows[1].endswith("| +0.23 (one seed) |")


def test_the_report_says_whether_each_teacher_was_still_improving_at_its_last_epoch(report):
    table = report.teacher_table(_payload({}, ("conll2003-L3",))["stages"])
    rows = table.splitlines()[2:]
    assert rows[0] == "| CoNLL-2003 (test) | 90.00 | 2 | 2 | **yes** | 0.00 |"
    assert rows[1] == "| SST-2 (validation) | not run | | | | |"
