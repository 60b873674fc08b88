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


def test_every_student_after_the_first_reuses_its_teacher_and_the_task_caches(headline, tmp_path):
    preset = {**headline.PRESETS["quick"], "students": ("L3", "minilm3")}
    commands = {
        stage.name: headline._flag_values(command[1:])
        for stage, _, command in headline.stages(tmp_path, preset, headline.TEACHER)
    }
    first, later = commands["conll2003-L3"], commands["conll2003-minilm3"]

    assert first["--teacher_name_or_path"] == headline.TEACHER and first["--teacher_cache"] == "auto"
    assert later["--teacher_name_or_path"] == str(tmp_path / "conll2003-L3" / "teacher")
    assert later["--teacher_cache"] == str(tmp_path / "conll2003-L3" / "teacher-cache")
    assert later["--student_num_layers"] == "3" and later["--student_name_or_path"] == headline.MINILM
    assert first["--compare_plain"] == later["--compare_plain"] == "true"
    transfer = [commands[f"conll2003-{student}-transfer"] for student in ("L3", "minilm3")]
    assert {flags["--teacher_cache"] for flags in transfer} == {
        str(tmp_path / "conll2003-transfer-teacher-cache")
    }
    assert all(flags["--transfer_train_remainder"] == "true" for flags in transfer)
    assert transfer[0]["--transfer_ratio"] == str(preset["transfer_ratio"])
    assert all("--quantize" in flags for flags in commands.values())


def test_extra_seeds_retrain_only_the_chosen_students_without_quantizing(headline, tmp_path):
    preset = {**headline.PRESETS["quick"], "extra_seeds": (43,), "students": ("L3", "minilm", "minilm3")}
    seeded = {
        stage.name: headline._flag_values(command[1:])
        for stage, quantized, command in headline.seed_stages(tmp_path, preset, headline.TEACHER, ["minilm3"])
        if not quantized
    }

    assert set(seeded) == {
        f"{task}-minilm3{kind}-seed43" for task in ("sst2", "conll2003") for kind in ("", "-transfer")
    }
    pair = seeded["conll2003-minilm3-seed43"]
    assert pair["--seed"] == "43" and pair["--compare_plain"] == "true"
    assert pair["--teacher_name_or_path"] == str(tmp_path / "conll2003-L3" / "teacher")
    assert seeded["sst2-minilm3-transfer-seed43"]["--transfer_train_remainder"] == "true"
    assert not any("--quantize" in flags for flags in seeded.values())


def _stage(task, seed, student=None, plain=None, teacher=0.9, int8=None, b1=(50.0, 5.0), b32=(1500.0, 150.0)):
    split, metric = ("test", "f1") if task == "conll2003" else ("validation", "accuracy")
    results = {"distillation": {"seed": seed}, "student": {"metrics": {split: {metric: student}}}}
    if plain is not None:
        results["plain_student"] = {"metrics": {split: {metric: plain}}}
    if int8 is not None:
        row = {
            "metrics": {metric: int8},
            "size_bytes": 10,
            "latency_ms": {"batch_1": b1[1], "batch_32": b32[1]},
        }
        teacher_row = {
            "metrics": {metric: teacher},
            "size_bytes": 100,
            "latency_ms": {"batch_1": b1[0], "batch_32": b32[0]},
        }
        results["quantization"] = {
            "main_metric": metric,
            "variants": [{"name": "teacher", **teacher_row}, {"name": "onnx-int8", **row}],
        }
    return results


def test_the_best_student_keeps_most_on_its_worse_task_and_the_fast_one_is_the_fastest(headline):
    stages = {}
    for task in ("sst2", "conll2003"):
        stages[f"{task}-L3"] = _stage(task, 42, 0.80, 0.78, int8=0.80, b1=(50.0, 4.0), b32=(1500.0, 120.0))
        stages[f"{task}-L3-transfer"] = _stage(task, 42, 0.84, int8=0.84, b1=(50.0, 4.0), b32=(1500.0, 120.0))
        # Faster (2 ms), but keeps less on CoNLL-2003.
        worse = 0.70 if task == "conll2003" else 0.89
        stages[f"{task}-minilm3"] = _stage(
            task, 42, worse, 0.6, int8=worse, b1=(50.0, 2.0), b32=(1500.0, 50.0)
        )
    stages["conll2003-L3-transfer-seed43"] = _stage("conll2003", 43, 0.86)
    stages["conll2003-L3-seed43"] = _stage("conll2003", 43, 0.80, 0.80)

    figures, details = headline.headline(stages, ("L3", "minilm", "minilm3"))

    assert figures["best_student"] == "L3-kd-transfer"
    assert figures["best_ner_retention"] == figures["best_sst2_retention"] == round(0.84 / 0.9, 4)
    assert figures["best_speedup_b1"] == 12.5 and figures["best_speedup_b32"] == 12.5
    assert figures["fast_student"] == "minilm3-kd"
    assert figures["fast_speedup_b1"] == 25.0 and figures["fast_speedup_b32"] == 30.0
    assert figures["fast_ner_retention"] == round(0.70 / 0.9, 4)
    # KD + transfer minus plain, per seed: CoNLL-2003 (84 - 78) and (86 - 80); SST-2 one seed.
    assert details["transfer_gains"]["conll2003"]["gains"] == [6.0, 6.0]
    assert figures["ner_transfer_gain"] == 6.0 and figures["sst2_transfer_gain"] == 6.0
    assert "minilm-kd" not in details["candidates"], "a student not run is no candidate"


def test_a_headline_with_no_finished_stage_is_all_null(headline):
    figures, _ = headline.headline({}, ("L3",))

    assert figures["best_student"] is None and figures["fast_student"] is None
    assert figures["best_ner_retention"] is None and figures["ner_transfer_gain"] is None


def test_a_student_with_its_own_tokenizer_is_measured_against_the_first_stage_teacher(headline):
    stages = {f"{task}-L3": _stage(task, 42, 0.8, 0.78, int8=0.8) for task in ("sst2", "conll2003")}
    for task in ("sst2", "conll2003"):
        own = _stage(task, 42, 0.85, 0.8, int8=0.85, b1=(50.0, 2.0), b32=(1500.0, 50.0))
        own["quantization"]["variants"] = own["quantization"]["variants"][1:]  # no teacher row
        stages[f"{task}-minilm3"] = own

    table = headline.candidates(stages, ("L3", "minilm3"))

    assert table["minilm3-kd"]["sst2"]["retention"] == round(0.85 / 0.9, 4)
    assert table["minilm3-kd"]["sst2"]["speedup_b1"] == 25.0, "the first stage's teacher: 50 ms / 2 ms"
    assert table["minilm3-kd"]["sst2"]["timed_side_by_side"] is False


def test_speed_ups_come_from_the_side_by_side_speed_stage_when_it_has_timed_the_student(headline):
    stages = {f"{task}-L3": _stage(task, 42, 0.8, 0.78, int8=0.8) for task in ("sst2", "conll2003")}
    speed = {
        "latency_ms": {
            "sst2": {"teacher": {"b1": 60.0, "b32": 1200.0}, "sst2-L3": {"b1": 3.0, "b32": 40.0}},
            # CoNLL-2003's student was not timed: its stage's own rows stand in.
            "conll2003": {"teacher": {"b1": 60.0, "b32": 1200.0}},
        }
    }

    table = headline.candidates(stages, ("L3",), speed)

    assert table["L3-kd"]["sst2"]["speedup_b1"] == 20.0 and table["L3-kd"]["sst2"]["speedup_b32"] == 30.0
    assert table["L3-kd"]["sst2"]["timed_side_by_side"] is True
    assert table["L3-kd"]["conll2003"]["speedup_b1"] == 10.0, "the stage's rows: 50 ms / 5 ms"
    assert table["L3-kd"]["conll2003"]["timed_side_by_side"] is False


def test_the_kd_stages_of_every_student_run_before_any_transfer_stage(headline, tmp_path):
    preset = {**headline.PRESETS["quick"], "students": ("L3", "minilm", "minilm3")}
    names = [stage.name for stage, _, _ in headline.stages(tmp_path, preset, headline.TEACHER)]

    assert names[:2] == ["sst2-L3", "conll2003-L3"], "the first student's stages train the teachers"
    last_kd = max(index for index, name in enumerate(names) if not name.endswith("-transfer"))
    first_transfer = min(index for index, name in enumerate(names) if name.endswith("-transfer"))
    assert last_kd < first_transfer and len(names) == 12
    assert names[first_transfer : first_transfer + 2] == [
        "sst2-minilm3-transfer",
        "conll2003-minilm3-transfer",
    ]


def test_the_speed_stage_times_each_task_teacher_beside_its_students_and_reuses_an_unchanged_timing(
    headline, tmp_path, monkeypatch
):
    import hfkdq.evaluation
    import hfkdq.quantization

    preset = {**headline.PRESETS["quick"], "speed_rounds": 2, "speed_repeats": {"b1": 1, "b32": 1}}
    teacher_dir = tmp_path / "sst2-L3" / "teacher"
    teacher_dir.mkdir(parents=True)
    (teacher_dir / "config.json").write_text("{}")
    stages = {"sst2-L3": _stage("sst2", 42, 0.8, 0.78, int8=0.8)}
    stages["sst2-L3"]["quantization"]["variants"][1]["path"] = "int8-dir"
    stages["sst2-L3-seed43"] = stages["sst2-L3"]
    timed = []
    monkeypatch.setattr(hfkdq.quantization, "load_variant", lambda path: str(path))
    fake_ms = {str(teacher_dir): 40.0, "int8-dir": 2.0}

    def fake_latency(model, batch_size, seq_len, repeats, warmup):
        timed.append((model, batch_size))
        return fake_ms[model] * batch_size

    monkeypatch.setattr(hfkdq.evaluation, "measure_latency", fake_latency)

    speed = headline.speed_stage(tmp_path, preset, stages)

    assert speed["latency_ms"]["sst2"] == {
        "teacher": {"b1": 40.0, "b32": 1280.0},
        "sst2-L3": {"b1": 2.0, "b32": 64.0},
    }, "seed stages are not timed; CoNLL-2003 has no teacher yet"
    assert [model for model, _ in timed] == [str(teacher_dir)] * 2 + ["int8-dir"] * 2 + [
        str(teacher_dir)
    ] * 2 + ["int8-dir"] * 2, "interleaved: every model once per round"
    timed.clear()
    assert headline.speed_stage(tmp_path, preset, stages) == speed and not timed


def test_the_pruning_benchmarks_keys_join_the_headline_with_their_source(headline, tmp_path):
    results = tmp_path / "results.json"
    assert headline.pruning_figures(results) == {}, "no pruning benchmark yet: no keys"
    results.write_text(json.dumps({"headline": {"pruned_ffn_keep": 0.5, "mixed_precision_found": True}}))

    figures = headline.pruning_figures(results)

    assert figures == {"pruned_ffn_keep": 0.5, "mixed_precision_found": True, "pruning_source": str(results)}
