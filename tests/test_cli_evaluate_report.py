"""`hfkdq evaluate` and `hfkdq report`, and the examples every verb's --help ends with.

`evaluate` must give the numbers `quantize` gave for the same directory and data (one evaluation path),
for fp32 and variant directories alike; `report` must re-render a quantization report unchanged from
its results.json, merge runs, and name the file that is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TEST_DATA, onnx_extra_installed, requires_onnx
from test_cli_quantize import BTC_LABELS, FAST, save_student

from hfkdq.commands.errors import EXIT_ERROR, EXIT_OK
from hfkdq.commands.main import VERBS, main
from hfkdq.report import merge_results

EVAL_FAST = ["--max_eval_samples", "24"]


@pytest.fixture(scope="module")
def quantized_run(tmp_path_factory, minilm_tokenizer) -> Path:
    """A tiny NER student quantized with torch-int8 and bnb-8bit (both core methods): student/, quantized/."""
    root = tmp_path_factory.mktemp("evaluate-report")
    save_student(root / "student", minilm_tokenizer, BTC_LABELS)
    status = main(
        [
            "quantize",
            str(root / "student"),
            "--methods",
            "torch-int8,bnb-8bit",
            "--output_dir",
            str(root / "quantized"),
        ]
        + FAST
    )
    assert status == EXIT_OK
    return root


def rows_by_name(results_path: Path) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(results_path.read_text())["variants"]}


# ---------------------------------------------------------------- evaluate


@pytest.mark.parametrize("method", ["fp32", "torch-int8", "bnb-8bit"])
def test_evaluate_gives_the_numbers_quantize_gave(quantized_run, method, tmp_path, capsys):
    capsys.readouterr()
    directory = quantized_run / ("student" if method == "fp32" else f"quantized/{method}")
    output = tmp_path / "metrics.json"
    status = main(["evaluate", str(directory), *EVAL_FAST, "--output", str(output)])
    assert status == EXIT_OK
    printed = capsys.readouterr().out.splitlines()
    record = json.loads(output.read_text())
    assert printed[0].startswith(f"{directory} ({method}, {record['device']}) on ner validation: 24 examples")
    assert printed[1].split()[0] == "f1", "the main metric is printed first"
    assert record["main_metric"] == "f1" and list(record["metrics"])[0] == "f1"
    assert (record["method"], record["eval_split"], record["eval_examples"]) == (method, "validation", 24)
    results = json.loads((quantized_run / "quantized" / "results.json").read_text())
    (measured,) = [
        row["metrics"]
        for row in results["variants"]
        if row["name"] == method and row["device"] == record["device"]
    ]
    assert record["metrics"] == pytest.approx(measured, abs=1e-12), "one evaluation path, same numbers"


def test_evaluate_another_split_and_a_data_dir(quantized_run, tmp_path, capsys):
    data_dir = tmp_path / "conll"
    data_dir.mkdir()
    (data_dir / "test.conll").write_text((TEST_DATA / "ner_tabs_iob2.conll").read_text())
    status = main(
        ["evaluate", str(quantized_run / "student"), "--data_dir", str(data_dir), "--eval_split", "test"]
    )
    assert status == EXIT_OK
    assert " on ner test: " in capsys.readouterr().out


def test_evaluate_a_regression_model_on_a_csv(minilm_tokenizer, tmp_path, capsys):
    student = save_student(tmp_path / "stsb", minilm_tokenizer, None, head="sequence")
    csv = str(TEST_DATA / "glue_stsb_tiny.csv")
    assert main(["evaluate", str(student), "--task", "stsb", "--eval_file", csv]) == EXIT_OK
    printed = capsys.readouterr().out.splitlines()
    assert " on stsb validation: 40 examples" in printed[0]
    assert printed[1].split()[0] == "combined_score"


@requires_onnx
def test_evaluate_an_onnx_variant(quantized_run, tmp_path, capsys):
    out = tmp_path / "q"
    assert (
        main(
            [
                "quantize",
                str(quantized_run / "student"),
                "--methods",
                "onnx-int8",
                "--output_dir",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(out / "onnx-int8"), *EVAL_FAST]) == EXIT_OK
    printed = capsys.readouterr().out.splitlines()
    assert "(onnx-int8, cpu)" in printed[0]
    f1 = float(printed[1].split()[1])
    assert f1 == pytest.approx(rows_by_name(out / "results.json")["onnx-int8"]["metrics"]["f1"], abs=5e-5)


@pytest.mark.skipif(onnx_extra_installed(), reason="checks the message shown when the ONNX extra is missing")
def test_evaluate_an_onnx_variant_without_the_extra_names_it(quantized_run, tmp_path, capsys):
    variant = tmp_path / "onnx-int8"
    variant.mkdir()
    for name in (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
    ):
        if (quantized_run / "student" / name).is_file():
            (variant / name).write_text((quantized_run / "student" / name).read_text())
    (variant / "hfkdq_quantization.json").write_text(
        json.dumps({"method": "onnx-int8", "backend": "onnxruntime", "head": "token"})
    )
    assert main(["evaluate", str(variant), *EVAL_FAST]) == EXIT_ERROR
    assert "pip install 'hfkdq[onnx]'" in capsys.readouterr().err


def test_evaluate_bad_inputs_exit_with_a_message(quantized_run, minilm_tokenizer, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing")]) == EXIT_ERROR
    assert "is not a directory" in capsys.readouterr().err

    sequence = save_student(tmp_path / "seq", minilm_tokenizer, ["negative", "positive"], head="sequence")
    assert main(["evaluate", str(sequence)]) == EXIT_ERROR
    assert "name its GLUE task (--task sst2" in capsys.readouterr().err

    assert main(["evaluate", str(quantized_run / "student"), "--eval_split", "nope"]) == EXIT_ERROR
    assert "No evaluation split 'nope'" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exited:  # argparse's own usage error: one line, exit 1 too
        main(["evaluate", str(sequence), "--max_eval_samples", "many"])
    assert exited.value.code == EXIT_ERROR


# ---------------------------------------------------------------- report


def test_report_re_renders_the_same_report(quantized_run, tmp_path, capsys):
    source = quantized_run / "quantized"
    capsys.readouterr()
    assert main(["report", str(source / "results.json"), "--output_dir", str(tmp_path / "again")]) == EXIT_OK
    assert (tmp_path / "again" / "REPORT.md").read_text() == (source / "REPORT.md").read_text()
    assert (tmp_path / "again" / "pareto.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert printed.startswith("| Variant | f1 |") and "| torch-int8 |" in printed


def row(name, f1, device="cpu", role="variant"):
    return {
        "name": name,
        "role": role,
        "device": device,
        "metrics": {"f1": f1},
        "size_bytes": 4_000_000 if name == "fp32" else 1_000_000,
        "param_memory_bytes": 4_000_000,
        "latency_ms": {"batch_1": 2.0, "batch_32": 20.0},
        "verification": None,
    }


def results_file(path: Path, model_dir: str, rows: list[dict], examples: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model_dir": model_dir, "main_metric": "f1", "reference": "fp32", "eval_examples": examples}
    path.write_text(json.dumps({**payload, "latency": {"repeats": 1}, "violations": [], "variants": rows}))
    return path


def test_report_merges_runs_of_one_student(tmp_path, capsys):
    cpu = results_file(
        tmp_path / "cpu.json", "s", [row("fp32", 0.80, role="student"), row("onnx-int8", 0.79)]
    )
    gpu = results_file(
        tmp_path / "gpu.json",
        "s",
        [
            row("fp32", 0.80, role="student"),
            row("fp32", 0.81, "cuda:0", "student"),
            row("bnb-8bit", 0.78, "cuda:0"),
        ],
    )
    assert main(["report", str(cpu), str(gpu), "--output_dir", str(tmp_path / "out")]) == EXIT_OK
    captured = capsys.readouterr()
    assert "fp32 on cpu from " in captured.err and "the earlier row is kept" in captured.err
    merged = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["name"], r["device"]) for r in merged["variants"]] == [
        ("fp32", "cpu"),
        ("onnx-int8", "cpu"),
        ("fp32", "cuda:0"),
        ("bnb-8bit", "cuda:0"),
    ]
    bnb = merged["variants"][3]
    assert bnb["deltas"]["metric_points"] == pytest.approx(-3.0), "against the fp32 row on its own device"
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "Merged from 2 results files" in report and report.count("(reference)") == 2


def test_report_keeps_two_students_apart(tmp_path):
    a = results_file(
        tmp_path / "a.json", "runs/a/student", [row("fp32", 0.80, role="student"), row("torch-int8", 0.70)]
    )
    b = results_file(
        tmp_path / "b.json",
        "runs/b/student",
        [row("fp32", 0.60, role="student"), row("torch-int8", 0.59)],
        40,
    )
    assert main(["report", str(a), str(b), "--output_dir", str(tmp_path / "out")]) == EXIT_OK
    merged = json.loads((tmp_path / "out" / "results.json").read_text())
    points = {f"{r['group']}/{r['name']}": r["deltas"]["metric_points"] for r in merged["variants"]}
    assert points["a/student/torch-int8"] == pytest.approx(-10.0)
    assert points["b/student/torch-int8"] == pytest.approx(-1.0), "b's variant against b's own fp32"
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "| a/student/torch-int8 |" in report and "| b/student/fp32 (reference) |" in report
    assert "different numbers of examples (24, 40)" in report


def test_a_single_results_file_is_rendered_unchanged():
    results = {"main_metric": "f1", "variants": [row("fp32", 0.5, role="student")]}
    assert merge_results([results]) is results


def test_report_refuses_runs_of_different_tasks(tmp_path, capsys):
    a = results_file(tmp_path / "a.json", "a", [row("fp32", 0.8, role="student")])
    b = tmp_path / "b.json"
    b.write_text(a.read_text().replace('"main_metric": "f1"', '"main_metric": "accuracy"'))
    assert main(["report", str(a), str(b), "--output_dir", str(tmp_path / "out")]) == EXIT_ERROR
    assert "rank by different metrics: f1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such results file"),
        ('{"main_metric": "f1", "variants": [', "is not valid JSON (line 1"),
        ('["not", "a", "dict"]', "is not a quantization results file"),
        ('{"main_metric": "f1", "variants": []}', "is not a quantization results file"),
        ('{"main_metric": "f1", "variants": [{"name": "fp32"}]}', "is not a quantization results file"),
        ('{"teacher": {}, "student": {}}', "looks like a distillation run's results.json"),
    ],
    ids=["missing", "malformed", "list", "no-rows", "row-without-metrics", "distillation-results"],
)
def test_report_names_the_bad_file(quantized_run, tmp_path, capsys, content, message):
    bad = tmp_path / "bad-results.json"
    if content is not None:
        bad.write_text(content)
    good = quantized_run / "quantized" / "results.json"
    status = main(["report", str(good), str(bad), "--output_dir", str(tmp_path / "out")])
    assert status == EXIT_ERROR
    error = capsys.readouterr().err
    assert error.startswith("hfkdq report: error: ") and str(bad) in error and message in error
    assert not (tmp_path / "out").exists(), "nothing is written when an input is bad"


# ---------------------------------------------------------------- every verb


def test_the_verbs_in_order():
    """--help lists the verbs in the order a student goes through them."""
    assert list(VERBS) == ["distill", "prune", "quantize", "evaluate", "report", "push"]


@pytest.mark.parametrize("verb", ["distill", "prune", "quantize", "evaluate", "report"])
def test_every_help_ends_with_examples(verb, capsys):
    with pytest.raises(SystemExit) as exited:
        main([verb, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    examples = text[text.index("Examples:") :]
    commands = [line.strip() for line in examples.splitlines() if line.strip().startswith("hfkdq ")]
    assert len(commands) >= 2 and all(line.startswith(f"hfkdq {verb} ") for line in commands)
    assert "\n  # " in examples, "line breaks kept (RawDescriptionHelpFormatter), each example explained"


@pytest.mark.parametrize("placement", ["before", "after"])
def test_the_traceback_is_shown_only_with_verbose(tmp_path, capsys, placement):
    missing = str(tmp_path / "missing")
    assert main(["evaluate", missing]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "rerun with --verbose" in err

    command = (
        ["--verbose", "evaluate", missing] if placement == "before" else ["evaluate", missing, "--verbose"]
    )
    with pytest.raises((ValueError, OSError), match="is not a directory"):
        main(command)
