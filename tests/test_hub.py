"""`hfkdq push` against a real HTTP server (tests/hub_server.py) with the real `huggingface_hub` client.

Pushes run as `python -m hfkdq.cli push ...` subprocesses with HF_ENDPOINT pointing at the server and a
dummy HF_TOKEN: huggingface_hub reads the endpoint and offline mode when it is imported, so a fresh
process is the way to point it elsewhere (this test process runs with HF_HUB_OFFLINE=1). Bad input
that must fail before any network call is checked in-process, through `hfkdq.commands.main.main`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, onnx_extra_installed, requires_onnx, tiny_bert_config
from hub_server import HubServer

from hfkdq.commands import main as cli
from hfkdq.commands.errors import EXIT_ERROR, EXIT_METRIC_DROP
from hfkdq.hub import excluded_reason

ONNX = onnx_extra_installed()
REPO = "tester/tiny-ner-student"
DROPS = {"onnx-int8": 0.40, "torch-int8": 0.10, "bnb-8bit": 3.25}
"""Recorded metric drop (points) per variant: with --max_metric_drop 2, bnb-8bit is kept back."""


def tokenizer_files() -> set[str]:
    """What `save_pretrained` writes for the MiniLM tokenizer: transformers 5 no longer writes vocab.txt and
    special_tokens_map.json beside tokenizer.json."""
    import transformers

    files = {"tokenizer.json", "tokenizer_config.json"}
    return (
        files
        if int(transformers.__version__.split(".")[0]) >= 5
        else files | {"vocab.txt", "special_tokens_map.json"}
    )


TOKENIZER_FILES = tokenizer_files()
STUDENT_FILES = {"config.json", "model.safetensors"} | TOKENIZER_FILES
EXPECTED = {
    "main": {".gitattributes", "README.md", "results.json", "quantized_results.json", "pareto.png"}
    | STUDENT_FILES,
    "onnx-int8": {
        ".gitattributes",
        "README.md",
        "config.json",
        "hfkdq_quantization.json",
        "model.onnx",
        "ort_config.json",
    }
    | TOKENIZER_FILES,
    "torch-int8": {
        ".gitattributes",
        "README.md",
        "config.json",
        "hfkdq_quantization.json",
        "quantized_state_dict.pt",
    }
    | TOKENIZER_FILES,
}
JUNK = [
    "training_args.bin",
    "checkpoint-5/optimizer.pt",
    "checkpoint-5/model.safetensors",
    "optimizer.pt",
    "rng_state_0.pth",
    ".env",
    "hf_token.txt",
    "my-secret.yaml",
    "credentials.json",
    "id_rsa",
    "server.pem",
    "api.key",
    "cache-0001.arrow",
    "upload.lock",
    ".student.partial-abc12/model.safetensors",
    ".student.old-xyz/config.json",
]


def _write_quantized_results(quantized: Path, methods: list[str]) -> None:
    from hfkdq.report import write_report

    def row(name: str, role: str, f1: float, size: int, latency: float) -> dict:
        return {
            "name": name,
            "role": role,
            "method": "fp32" if role != "variant" else name,
            "path": str(quantized / name),
            "device": "cpu",
            "metrics": {"f1": f1},
            "size_bytes": size,
            "param_memory_bytes": size,
            "latency_ms": {"batch_1": latency, "batch_32": latency * 20},
            "verification": None,
        }

    rows = [
        row("fp32", "student", 0.7259, 8_000_000, 12.5),
        row("teacher", "teacher", 0.7372, 12_000_000, 29.1),
    ]
    rows += [row(m, "variant", 0.7259 - DROPS[m] / 100, 3_000_000, 7.3) for m in methods]
    for item in rows:
        item["deltas"] = {"metric_points": 100 * (item["metrics"]["f1"] - 0.7259)}
    results = {
        "model_dir": str(quantized.parent / "student"),
        "main_metric": "f1",
        "reference": "fp32",
        "eval_examples": 32,
        "latency": {"seq_len": 128, "batch_sizes": [1, 32], "repeats": 3, "warmup": 1, "torch_threads": 1},
        "max_metric_drop": None,
        "violations": [],
        "variants": rows,
    }
    write_report(results, quantized)


def _write_run_results(run: Path) -> None:
    from hfkdq.resources import btc_files

    results = {
        "task": {"head": "token", "labels": ["L0", "L1", "L2"], "main_metric": "f1"},
        "teacher": {
            "name_or_path": str(run / "teacher"),  # fine-tuned by the run: a local directory
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "num_parameters": 22_600_000,
            "num_layers": 6,
            "metrics": {"validation": {"f1": 0.7372}, "test": {"f1": 0.7604}},
        },
        "student": {
            "path": str(run / "student"),
            "num_parameters": 17_200_000,
            "num_layers": 2,
            "initialised_from_teacher_layers": [0, 2],
            "metrics": {"validation": {"f1": 0.7259}, "test": {"f1": 0.7165}},
        },
        "distillation": {"temperature": 2.0, "ce_weight": 1.0, "kd_weight": 1.0, "learning_rate": 5e-05},
        "data": {"files": btc_files()},
        "wall_time_s": 630.0,
    }
    (run / "results.json").write_text(json.dumps(results, indent=2))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, minilm_tokenizer) -> Path:
    """A recipe-shaped output: student/ (with training debris), teacher/, quantized/<method>/, results."""
    from transformers import BertForTokenClassification

    from hfkdq.quantization import quantize

    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    student = run / "student"
    BertForTokenClassification(tiny_bert_config(num_labels=3, num_layers=2, hidden_size=64)).save_pretrained(
        student
    )
    minilm_tokenizer.save_pretrained(student)
    for name in JUNK:
        (student / name).parent.mkdir(parents=True, exist_ok=True)
        (student / name).write_bytes(b"not for the Hub")
    (run / "teacher").mkdir()
    (run / "teacher" / "config.json").write_text("{}")
    (run / "teacher-cache").mkdir()
    methods = (["onnx-int8"] if ONNX else []) + ["torch-int8", "bnb-8bit"]
    for method in methods:
        quantize(student, method, run / "quantized" / method)
    _write_quantized_results(run / "quantized", methods)
    _write_run_results(run)
    return run


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf-home")


def hub_env(hub: HubServer, hf_home: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": "hf_dummy_test_token",
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(name, None)
    env.update(extra)
    return env


def push(hub, hf_home, run_dir, repo_id=REPO, *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hfkdq.cli", "push", str(run_dir), "--repo_id", repo_id, *flags]
    return subprocess.run(
        command, env=hub_env(hub, hf_home), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def expected(revision: str) -> set[str]:
    return EXPECTED[revision]


def published_revisions() -> list[str]:
    return ["main"] + (["onnx-int8"] if ONNX else []) + ["torch-int8"]


@pytest.fixture(scope="module")
def first_push(hub, hf_home, run_dir):
    """One gated push of the whole run: bnb-8bit (3.25 points lost) is kept back, the rest published."""
    result = push(hub, hf_home, run_dir, REPO, "--max_metric_drop", "2")
    return result


def test_gated_push_publishes_student_and_passing_variants_with_exact_files(hub, first_push):
    assert first_push.returncode == EXIT_METRIC_DROP, first_push.stderr
    assert "variant 'bnb-8bit' not pushed: lost 3.25 f1 points" in first_push.stderr
    assert "(allowed: 2.00)" in first_push.stderr
    repo = hub.state.repos[REPO]
    assert set(repo.branches) == set(published_revisions())  # no bnb-8bit branch
    for revision in published_revisions():
        assert set(hub.state.files(REPO, revision)) == expected(revision), revision
    # The file list was printed before the first commit, and the debris is listed as not uploaded.
    out = first_push.stdout
    assert out.index("revision 'main'") < out.index(f"{REPO}@main:")
    for name in (
        "training_args.bin",
        "checkpoint-5/optimizer.pt",
        ".env",
        "hf_token.txt",
        "id_rsa",
        "server.pem",
    ):
        assert f"not uploaded: {name}" in out
    uploaded = b"".join(b"".join(hub.state.files(REPO, r).values()) for r in published_revisions())
    assert b"not for the Hub" not in uploaded


def test_published_json_has_no_local_paths(hub, first_push, run_dir):
    metadata = json.loads(hub.state.files(REPO, "torch-int8")["hfkdq_quantization.json"])
    assert metadata["source_model"] == f"{REPO} (revision main)"
    assert metadata["method"] == "torch-int8"


def test_model_card(hub, first_push):
    from huggingface_hub import ModelCard

    text = hub.state.files(REPO, "main")["README.md"].decode()
    card = ModelCard(text)
    assert card.data.pipeline_tag == "token-classification"
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert [(r.dataset_split, r.metric_type, r.metric_value) for r in card.data.eval_results] == [
        ("validation", "f1", 0.7259),
        ("test", "f1", 0.7165),
    ]
    assert "model-index" in text
    assert "/tmp" not in text and "pytest-" not in text, "no local path is published in the card"
    assert "CC BY 4.0" in text and "Derczynski" in text and "@inproceedings" in text
    assert f"{hub.url}/{REPO}/resolve/main/pareto.png" in text
    assert f'AutoModelForTokenClassification.from_pretrained("{REPO}")' in text
    assert f'model = load_variant(snapshot_download("{REPO}", revision="torch-int8"))' in text
    assert "bnb-8bit: **not published**" in text
    assert "| `temperature` | 2.0 |" in text
    for name in ("fp32 student", "teacher", "torch-int8", "bnb-8bit"):
        assert f"| {name} |" in text
    if ONNX:
        assert f'ORTModelForTokenClassification.from_pretrained("{REPO}", revision="onnx-int8")' in text
    assert (
        hub.state.files(REPO, "torch-int8")["README.md"].decode().startswith(text)
    )  # same card + variant notes


def test_models_load_back_from_the_hub_with_identical_predictions(hub, hf_home, first_push, run_dir):
    script = REPO_ROOT / "tests" / "scripts" / "load_from_hub.py"
    args = [REPO, str(run_dir / "student")]
    if ONNX:
        args += ["onnx-int8", str(run_dir / "quantized" / "onnx-int8")]
    result = subprocess.run(
        [sys.executable, str(script), *args],
        env=hub_env(hub, hf_home),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["fp32_identical"] is True
    if ONNX:
        assert report == {
            "fp32_identical": True,
            "onnx_identical": True,
            "onnx_class": "ORTModelForTokenClassification",
        }


@requires_onnx
def test_onnx_variant_loads_with_optimum(hub, first_push):
    """(The identical-prediction check above covers the load; this names the ONNX requirement.)"""
    assert "model.onnx" in hub.state.files(REPO, "onnx-int8")


def test_second_push_commits_only_what_changed(hub, hf_home, run_dir, tmp_path):
    import shutil

    repo = "tester/update-me"
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert push(hub, hf_home, copy, repo, "--max_metric_drop", "2").returncode == EXIT_METRIC_DROP
    heads = dict(hub.state.repos[repo].branches)

    again = push(hub, hf_home, copy, repo, "--max_metric_drop", "2")
    assert again.returncode == EXIT_METRIC_DROP, again.stderr
    assert hub.state.repos[repo].branches == heads  # nothing changed: no commit anywhere

    results = json.loads((copy / "results.json").read_text())
    results["wall_time_s"] = 700.0  # not shown on the card: only results.json differs
    (copy / "results.json").write_text(json.dumps(results, indent=2))
    (copy / "student" / "hf_token.txt").write_text("changed, still never uploaded")
    update = push(hub, hf_home, copy, repo, "--max_metric_drop", "2")
    assert update.returncode == EXIT_METRIC_DROP, update.stderr
    latest = hub.state.history(repo, "main")[0]
    assert latest.changed == ["results.json"] and latest.deleted == []
    assert latest.sent == ["results.json"]  # unchanged files are not even re-sent
    assert latest.parent == heads["main"]
    assert {r: o for r, o in hub.state.repos[repo].branches.items() if r != "main"} == {
        r: o for r, o in heads.items() if r != "main"
    }


def test_dry_run_prints_the_plan_and_uploads_nothing(hub, hf_home, run_dir):
    before = len(hub.state.requests)
    result = push(hub, hf_home, run_dir, "tester/dry", "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "Dry run: nothing was uploaded." in result.stdout
    assert "    model.safetensors  (" in result.stdout
    assert len(hub.state.requests) == before and "tester/dry" not in hub.state.repos


@pytest.mark.parametrize("mode", ["500", "drop"])
def test_failed_upload_is_clear_and_a_retry_completes_it(hub, hf_home, run_dir, mode):
    repo = f"tester/flaky-{mode}"
    hub.state.fail_next("POST", rf"^/api/models/{repo}/commit/main$", mode)
    failed = push(hub, hf_home, run_dir / "student", repo)
    assert failed.returncode == EXIT_ERROR
    assert "pushing revision 'main' of " + repo in failed.stderr
    assert "Run the same command again" in failed.stderr
    assert "Traceback" not in failed.stderr
    if mode == "500":
        assert "500" in failed.stderr
    assert set(hub.state.files(repo, "main")) == {".gitattributes"}  # nothing half-committed

    retried = push(hub, hf_home, run_dir / "student", repo)
    assert retried.returncode == 0, retried.stderr
    assert set(hub.state.files(repo, "main")) == {".gitattributes", "README.md"} | STUDENT_FILES


# ----- bad input: fails before any network call -----------------------------------------------------
@pytest.fixture
def online(monkeypatch, tmp_path):
    """In-process: offline mode off, no stored token, and a Hub endpoint nothing listens on."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"), raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    status = cli.main(["push", *argv])
    captured = capsys.readouterr()
    return status, captured.err


def test_no_token_is_a_clear_error(online, capsys, run_dir):
    status, err = run_cli(capsys, str(run_dir), "--repo_id", REPO)
    assert status == EXIT_ERROR
    assert "no Hugging Face token" in err and "huggingface-cli login" in err and "HF_TOKEN" in err


def test_offline_mode_is_a_clear_error(online, monkeypatch, capsys, run_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status, err = run_cli(capsys, str(run_dir), "--repo_id", REPO, "--token", "hf_x")
    assert status == EXIT_ERROR
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in err


@pytest.mark.parametrize("repo_id", ["not a repo", "a/b/c", "-bad-/name", "name--x..y"])
def test_malformed_repo_id_is_a_clear_error(online, capsys, run_dir, repo_id):
    status, err = run_cli(capsys, str(run_dir), f"--repo_id={repo_id}", "--token", "hf_x")
    assert status == EXIT_ERROR
    assert f"{repo_id!r} is not a valid Hub repo id: expected 'namespace/name'" in err


def test_not_a_saved_model_is_a_clear_error(online, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    status, err = run_cli(capsys, str(tmp_path / "empty"), "--repo_id", REPO, "--token", "hf_x")
    assert status == EXIT_ERROR
    assert f"{tmp_path / 'empty'} is not a saved model: missing config.json" in err
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text("{}")
    status, err = run_cli(capsys, str(tmp_path / "no-weights"), "--repo_id", REPO, "--token", "hf_x")
    assert "is not a saved model: missing model.safetensors" in err
    (tmp_path / "run" / "quantized").mkdir(parents=True)
    (tmp_path / "run" / "results.json").write_text("{}")
    status, err = run_cli(capsys, str(tmp_path / "run"), "--repo_id", REPO, "--token", "hf_x")
    assert f"{tmp_path / 'run'} is not a saved model: missing student/config.json" in err


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_bad_threshold_is_refused(online, capsys, run_dir, value):
    """Refused while the flags are parsed, before the run is read: one line, exit status 1."""
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, str(run_dir), "--repo_id", REPO, "--token", "hf_x", f"--max_metric_drop={value}")
    assert exited.value.code == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "argument --max_metric_drop: must be a finite number >= 0" in err


@pytest.mark.parametrize(
    "path, reason",
    [
        ("tokenizer.json", None),
        ("tokenizer_config.json", None),
        ("special_tokens_map.json", None),
        ("added_tokens.json", None),
        ("model.safetensors", None),
        ("hf_token", "looks like a secret"),
        ("TOKEN.txt", "looks like a secret"),
        (".env.local", "looks like a secret"),
        ("credentials", "looks like a secret"),
        ("checkpoint-500/config.json", "training checkpoint"),
        ("teacher/model.safetensors", "the teacher is not published"),
        ("training_args.bin", "pickled training arguments (local paths; unpickling runs code)"),
        ("scheduler.pt", "scheduler state"),
        (".onnx-int8.partial-1x2/model.onnx", "hidden or staging directory"),
    ],
)
def test_excluded_reason(path, reason):
    assert excluded_reason(path) == reason


@pytest.mark.slow
def test_recipe_pushes_at_the_end_and_the_trainer_never_pushes(hub, hf_home, tiny_teacher_dir, tmp_path):
    """`--push_to_hub --hub_model_id` publishes through hfkdq.hub once the run is complete (card included).

    Without --quantize: the recipe's quantization step times every variant at batch 32, too slow here;
    the variant branches are covered by the pushes above.
    """
    from conftest import TEST_DATA

    output_dir = tmp_path / "run"
    repo = "tester/from-recipe"
    command = [sys.executable, "-m", "hfkdq.cli", "distill", "ner", str(TEST_DATA / "ner_recipe_tiny.yaml")]
    command += ["--teacher_name_or_path", str(tiny_teacher_dir), "--output_dir", str(output_dir)]
    command += ["--max_train_samples", "16", "--max_eval_samples", "8", "--hidden_weight", "0"]
    command += ["--attention_weight", "0", "--push_to_hub", "--hub_model_id", repo]
    result = subprocess.run(
        command, env=hub_env(hub, hf_home), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(hub.state.repos[repo].branches) == {"main"}
    assert (
        set(hub.state.files(repo, "main")) == {".gitattributes", "README.md", "results.json"} | STUDENT_FILES
    )
    # One commit, after training: no "Training in progress" or checkpoint commits from the Trainer.
    assert [commit.message for commit in hub.state.history(repo, "main")] == [
        "Upload with hfkdq push",
        "initial commit",
    ]
    card = hub.state.files(repo, "main")["README.md"].decode()
    assert "Broad Twitter Corpus" in card and "CC BY 4.0" in card
