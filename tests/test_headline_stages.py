"""Resuming the headline benchmark: a finished stage is reused only under the settings it ran with."""

import json
import sys

import pytest
from conftest import REPO_ROOT, import_script, requires_shared_data


@pytest.fixture(scope="module")
def headline():
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))  # headline.py imports headline_report beside it
    try:
        yield import_script("benchmarks/headline.py")
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))


def _stage_commands(headline, output_dir, preset_changes=None):
    preset = {**headline.PRESETS["quick"], **(preset_changes or {})}
    return {
        stage.name: command for stage, _, command in headline.stages(output_dir, preset, headline.TEACHER)
    }


def _finish(stage_dir, headline, command):
    stage_dir.mkdir(parents=True)
    (stage_dir / "results.json").write_text(json.dumps({"quantization": {}}))
    headline.record_stage(stage_dir, command)


def test_a_stage_resumed_under_its_own_settings_matches(headline, tmp_path):
    commands = _stage_commands(headline, tmp_path)
    _finish(tmp_path / "conll2003-L3", headline, commands["conll2003-L3"])

    assert headline.settings_mismatch(tmp_path / "conll2003-L3", commands["conll2003-L3"]) is None


def test_a_changed_preset_is_named_with_both_values_and_the_fix(headline, tmp_path):
    before = _stage_commands(headline, tmp_path)
    _finish(tmp_path / "conll2003-L3", headline, before["conll2003-L3"])
    after = _stage_commands(headline, tmp_path, {"teacher_learning_rate": {"sst2": 3e-5, "conll2003": 5e-5}})

    reason = headline.settings_mismatch(tmp_path / "conll2003-L3", after["conll2003-L3"])

    preset_value = headline.PRESETS["quick"]["teacher_learning_rate"]["conll2003"]
    assert f"--teacher_learning_rate {preset_value} -> 5e-05" in reason
    assert "--learning_rate" not in reason.replace("--teacher_learning_rate", "")
    assert f"Delete {tmp_path / 'conll2003-L3'}" in reason


def test_a_stage_finished_before_settings_were_recorded_is_taken_as_it_is(headline, tmp_path):
    commands = _stage_commands(headline, tmp_path)
    (tmp_path / "sst2-L3").mkdir()

    assert headline.settings_mismatch(tmp_path / "sst2-L3", commands["sst2-L3"]) is None


def test_recorded_settings_do_not_depend_on_where_the_checkout_and_data_live(headline, tmp_path):
    command = _stage_commands(headline, tmp_path)["conll2003-L3"]

    settings = headline.stage_settings(command)

    assert settings[0] == "<repo>/recipes/distill_bert_ner.py"
    assert "<shared>/conll2003/train.txt" in settings
    assert not any(str(headline.ROOT) in argument for argument in settings)


@requires_shared_data
def test_a_resumed_benchmark_refuses_a_mismatched_stage_before_running_any(headline, tmp_path, monkeypatch):
    output_dir = tmp_path / "runs"
    commands = _stage_commands(headline, output_dir / "quick", {"epochs": 2})
    _finish(output_dir / "quick" / "sst2-L3", headline, commands["sst2-L3"])
    monkeypatch.setattr(headline, "run", lambda *args: pytest.fail("a stage ran despite the mismatch"))
    argv = ["headline.py", "--preset", "quick", "--name", "quick", "--output_dir", str(output_dir)]
    monkeypatch.setattr(sys, "argv", [*argv, "--results_root", str(tmp_path / "results")])

    with pytest.raises(SystemExit) as stopped:
        headline.main()

    assert "sst2-L3 finished with other settings" in str(stopped.value)
    assert "--num_train_epochs 2 -> 1" in str(stopped.value)
    assert not (tmp_path / "results").exists()


def test_extra_kd_seeds_retrain_only_the_student_pair_on_the_stage_teacher(headline, tmp_path):
    commands = _stage_commands(headline, tmp_path, {"kd_seeds": {"conll2003": (43,)}})
    seeded = headline._flag_values(commands["conll2003-L3-seed43"][1:])

    assert seeded["--seed"] == "43"
    assert seeded["--teacher_name_or_path"] == str(tmp_path / "conll2003-L3" / "teacher")
    assert seeded["--compare_plain"] == "true"
    assert "--quantize" not in seeded
    assert headline._flag_values(commands["conll2003-L3"][1:])["--seed"] == "42"


def _seed_stage(stage_dir, seed, student, plain):
    stage_dir.mkdir(parents=True)
    results = {
        "distillation": {"seed": seed},
        "student": {"metrics": {"test": {"f1": student}}},
        "plain_student": {"metrics": {"test": {"f1": plain}}},
    }
    (stage_dir / "results.json").write_text(json.dumps(results))


def test_the_kd_gain_is_the_mean_over_the_finished_seed_runs(headline, tmp_path):
    _seed_stage(tmp_path / "conll2003-L3", 42, 0.80, 0.79)
    _seed_stage(tmp_path / "conll2003-L3-seed43", 43, 0.81, 0.78)
    (tmp_path / "conll2003-L3-seed44").mkdir()  # started, not finished: not counted

    gains = headline.kd_gains(tmp_path, "conll2003", "test", "f1")

    assert gains["seeds"] == [42, 43]
    assert gains["gains"] == [1.0, 3.0]
    assert gains["mean"] == 2.0 and gains["sd"] == pytest.approx(1.41, abs=0.01)
