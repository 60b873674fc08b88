"""recipes/distill_bert_ner.py end to end on a tiny teacher: fine-tune, distill, evaluate, save."""

import json
import math

import pytest
from conftest import TEST_DATA, import_script
from transformers import AutoModelForTokenClassification, AutoTokenizer, BertForTokenClassification

from hfkdq.data.conll import CoNLLFormatError

CONFIG = str(TEST_DATA / "ner_recipe_tiny.yaml")


def flags(teacher, output_dir, *extra: str) -> list[str]:
    """The tiny experiment file, a teacher, an output directory, and any further recipe flags."""
    return [CONFIG, "--teacher_name_or_path", str(teacher), "--output_dir", str(output_dir), *extra]


@pytest.fixture(scope="module")
def recipe():
    return import_script("recipes/distill_bert_ner.py")


def test_recipe_fine_tunes_the_teacher_distills_and_saves_a_loadable_student(
    recipe, tiny_teacher_dir, tmp_path
):
    output_dir = tmp_path / "run"
    results = recipe.main(flags(tiny_teacher_dir, output_dir))

    saved = json.loads((output_dir / "results.json").read_text())
    assert saved["environment"]["hfkdq"] and saved["environment"]["versions"]["transformers"]
    assert "git_commit" in saved["environment"], "the commit, or None outside a git checkout"
    assert saved["teacher"]["metrics"].keys() == saved["student"]["metrics"].keys() == {"validation", "test"}
    assert {"f1", "precision", "recall", "PER_f1"} <= set(saved["student"]["metrics"]["test"])
    assert saved["student"]["num_layers"] == 2 and saved["teacher"]["num_layers"] == 4
    assert saved["student"]["initialised_from_teacher_layers"] == [0, 2]
    assert saved["student"]["init"] == "alternate"
    assert "PER" in saved["reports"]["student/test"], "a per-type report accompanies the metrics"
    assert results["student"]["metrics"]["test"]["f1"] == saved["student"]["metrics"]["test"]["f1"]
    from hfkdq.loss_terms import WEIGHT_FIELDS

    assert set(WEIGHT_FIELDS) <= set(saved["distillation"]), "every loss weight is recorded, from the table"
    assert saved["distillation"]["active_terms"] == [
        name for name in ("ce", "kd", "hidden", "attention") if saved["distillation"][f"{name}_weight"] > 0
    ]

    student = AutoModelForTokenClassification.from_pretrained(output_dir / "student")
    tokenizer = AutoTokenizer.from_pretrained(output_dir / "student")
    assert student.config.id2label[0] == "O" and "B-PER" in student.config.label2id
    assert tokenizer("Hello there")["input_ids"][0] == tokenizer.cls_token_id
    assert (output_dir / "teacher" / "config.json").is_file(), "the fine-tuned teacher is kept for reuse"
    curve = saved["teacher"]["learning_curve"]
    assert curve and all("eval_f1" in entry and "epoch" in entry for entry in curve), (
        "teacher curve per epoch"
    )
    values = [entry["eval_f1"] for entry in curve]
    expected = None if len(values) < 2 else values[-1] > max(values[:-1])  # one epoch: cannot tell
    assert saved["teacher"]["still_improving"] is expected
    assert saved["teacher"]["chance"]["chance_level"] == 0.0, "tagging every word O scores 0 entity F1"
    assert not (output_dir / "teacher-training").exists(), "teacher checkpoints are removed once it is saved"
    assert not list(output_dir.glob(".*")), "no staging directories are left behind"


def test_recipe_loads_an_already_fine_tuned_teacher_without_retraining(recipe, tiny_teacher_dir, tmp_path):
    first = tmp_path / "first"
    recipe.main(flags(tiny_teacher_dir, first))
    second = tmp_path / "second"
    results = recipe.main(flags(first / "teacher", second))
    assert results["teacher"]["name_or_path"] == str(first / "teacher")
    assert not (second / "teacher").exists()


def test_teacher_fine_tuned_for_other_labels_is_rejected_before_any_output(
    recipe, tmp_path, minilm_tokenizer
):
    from conftest import tiny_bert_config

    wrong = tmp_path / "wrong-teacher"
    BertForTokenClassification(tiny_bert_config(num_labels=3)).save_pretrained(wrong)
    minilm_tokenizer.save_pretrained(wrong)
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="predicts labels .* but the dataset has"):
        recipe.main(flags(wrong, output_dir))
    assert not output_dir.exists()


def test_malformed_conll_names_file_and_line_before_any_output(recipe, tiny_teacher_dir, tmp_path):
    broken = tmp_path / "broken.conll"
    broken.write_text("Obama\tB-PER\nvisits\nParis\tB-LOC\n")
    output_dir = tmp_path / "run"
    with pytest.raises(CoNLLFormatError, match=r"broken.conll:2"):
        recipe.main(
            flags(tiny_teacher_dir, output_dir, "--train_file", str(broken), "--validation_file", str(broken))
        )
    assert not output_dir.exists()


def test_yaml_keys_and_flags_share_one_namespace_and_flags_win(recipe):
    from hfkdq.arguments import ModelArguments
    from hfkdq.config import DistillationArguments
    from hfkdq.recipe_args import parse_recipe_args
    from hfkdq.tasks.ner import NerDataArguments

    model_args, data_args, training_args = parse_recipe_args(
        (ModelArguments, NerDataArguments, DistillationArguments),
        [CONFIG, "--output_dir", "x", "--temperature", "3"],
    )
    assert training_args.temperature == 3.0 and training_args.hidden_weight == 1.0
    assert model_args.student_num_layers == 2 and data_args.max_train_samples == 48


def test_recipe_quantizes_the_student_when_asked(recipe, tiny_teacher_dir, tmp_path):
    output_dir = tmp_path / "run"
    recipe.main(flags(tiny_teacher_dir, output_dir, "--quantize", "torch-int8", "--max_metric_drop", "100"))
    saved = json.loads((output_dir / "results.json").read_text())
    assert "quantization" in saved
    assert (output_dir / "quantized" / "torch-int8").is_dir()
    assert (output_dir / "quantized" / "REPORT.md").is_file()


def test_quantized_variants_are_measured_on_the_split_asked_for(recipe, tiny_teacher_dir, tmp_path):
    output_dir = tmp_path / "run"
    recipe.main(
        flags(tiny_teacher_dir, output_dir, "--quantize", "torch-int8", "--quantize_eval_split", "test")
    )
    saved = json.loads((output_dir / "results.json").read_text())
    quantization = saved["quantization"]
    assert quantization["eval_split"] == "test"
    fp32_row = next(row for row in quantization["variants"] if row["role"] == "student")
    # The fp32 student row is the same model on the same split as the run's own test evaluation.
    assert fp32_row["metrics"]["f1"] == pytest.approx(saved["student"]["metrics"]["test"]["f1"])


def test_a_quantization_split_the_run_lacks_fails_before_training(recipe, tiny_teacher_dir, tmp_path):
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="--quantize_eval_split 'dev'.*validation"):
        recipe.main(
            flags(tiny_teacher_dir, output_dir, "--quantize", "torch-int8", "--quantize_eval_split", "dev")
        )
    assert not output_dir.exists()


def test_unknown_quantization_method_fails_before_training(recipe, tiny_teacher_dir, tmp_path):
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="onnx-int8"):
        recipe.main(flags(tiny_teacher_dir, output_dir, "--quantize", "int3"))
    assert not output_dir.exists()


def test_hfkdq_distill_subcommand_runs_the_same_recipe(tiny_teacher_dir, tmp_path):
    from hfkdq.commands.main import main

    output_dir = tmp_path / "run"
    status = main(
        [
            "distill",
            "ner",
            CONFIG,
            "--teacher_name_or_path",
            str(tiny_teacher_dir),
            "--output_dir",
            str(output_dir),
        ]
    )
    assert status == 0
    assert json.loads((output_dir / "results.json").read_text())["student"]["num_layers"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--student_layers", "1,1", "--student_num_layers", "2"), "repeats teacher layers"),
        (("--student_num_layers", "0"), "at least one layer"),
        (("--student_num_layers", "9"), "at most 4 layers"),
    ],
)
def test_a_student_the_teacher_cannot_build_fails_before_the_teacher_is_fine_tuned(
    recipe, tiny_teacher_dir, tmp_path, extra, message
):
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        recipe.main(flags(tiny_teacher_dir, output_dir, *extra))
    assert not (output_dir / "teacher").exists()


def test_a_weak_teacher_is_reported_before_distillation(recipe, tiny_teacher_dir, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="hfkdq"):
        recipe.main(flags(tiny_teacher_dir, tmp_path / "run", "--teacher_min_metric", "0.99"))
    assert any("unlikely to beat plain fine-tuning" in record.message for record in caplog.records)


def test_augmented_distillation_runs_and_is_recorded(recipe, tiny_teacher_dir, tmp_path):
    results = recipe.main(flags(tiny_teacher_dir, tmp_path / "run", "--augment", "all"))
    assert results["student"]["augment"] == "all" and results["student"]["augment_probability"] == 0.5
    assert math.isfinite(results["train_metrics"]["train_loss"]), "augmented batches give a finite loss"


def test_an_augmentation_for_another_task_fails_before_the_teacher_is_fine_tuned(
    recipe, tiny_teacher_dir, tmp_path
):
    with pytest.raises(ValueError, match="does not fit a token"):
        recipe.main(flags(tiny_teacher_dir, tmp_path / "run", "--augment", "ngram"))
    assert not (tmp_path / "run" / "teacher").exists()


def test_a_transfer_file_is_labelled_by_the_teacher_and_recorded(recipe, tiny_teacher_dir, tmp_path):
    transfer = tmp_path / "transfer.txt"
    transfer.write_text("Obama visits Paris\nthe match in London\n" * 12)
    results = recipe.main(
        flags(
            tiny_teacher_dir, tmp_path / "run", "--transfer_file", str(transfer), "--transfer_ratio", "0.25"
        )
    )
    assert results["student"]["transfer_examples"] == 12


def test_an_unreadable_transfer_file_fails_before_the_teacher_is_fine_tuned(
    recipe, tiny_teacher_dir, tmp_path
):
    transfer = tmp_path / "transfer.txt"
    transfer.write_bytes(b"ok\n\xff\n")
    with pytest.raises(ValueError, match="transfer.txt:2: not UTF-8"):
        recipe.main(flags(tiny_teacher_dir, tmp_path / "run", "--transfer_file", str(transfer)))
    assert not (tmp_path / "run" / "teacher").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--transfer_file", "{tagged}"), r"tagged.txt:1: looks like a tagged CoNLL file"),
        (("--transfer_file", "{empty}"), r"empty.txt holds no text"),
        (
            ("--transfer_train_remainder", "true", "--max_train_samples", "100000"),
            "nothing remains of the training split",
        ),
        (
            ("--transfer_train_remainder", "true", "--transfer_ratio", "0"),
            "--transfer_ratio must be a finite",
        ),
        (
            ("--transfer_train_remainder", "true", "--transfer_ratio", "inf"),
            "--transfer_ratio must be a finite",
        ),
    ],
    ids=["tagged-conll", "empty-file", "no-remainder", "zero-ratio", "infinite-ratio"],
)
def test_an_unusable_transfer_source_fails_before_the_teacher_is_fine_tuned(
    recipe, tiny_teacher_dir, tmp_path, extra, message
):
    (tmp_path / "tagged.txt").write_text("EU\tB-ORG\nrejects\tO\n")
    (tmp_path / "empty.txt").write_text("\n")
    extra = [flag.format(tagged=tmp_path / "tagged.txt", empty=tmp_path / "empty.txt") for flag in extra]
    with pytest.raises(ValueError, match=message):
        recipe.main(flags(tiny_teacher_dir, tmp_path / "run", *extra))
    assert not (tmp_path / "run" / "teacher").exists()


def test_the_recipe_distills_from_a_teacher_cache_built_for_the_runs_own_teacher(
    recipe, tiny_teacher_dir, tmp_path
):
    """A re-run fine-tunes another teacher (another seed): its cache holds that teacher's logits, never the
    first run's (the old cache is moved aside with the rest of the finished run, not reused)."""
    from hfkdq.teacher_cache import teacher_fingerprint

    logits_only = ("--teacher_cache", "auto", "--hidden_weight", "0", "--attention_weight", "0")
    output_dir = tmp_path / "run"
    cache = output_dir / "teacher-cache"
    first = recipe.main(flags(tiny_teacher_dir, output_dir, *logits_only))
    assert first["student"]["teacher_cache"] == str(cache)
    built_for = json.loads((cache / "hfkdq_teacher_cache.json").read_text())["teacher_fingerprint"]
    recipe.main(
        flags(tiny_teacher_dir, output_dir, *logits_only, "--seed", "6", "--overwrite_output_dir", "true")
    )
    rebuilt_for = json.loads((cache / "hfkdq_teacher_cache.json").read_text())["teacher_fingerprint"]
    second_teacher = AutoModelForTokenClassification.from_pretrained(output_dir / "teacher")
    assert rebuilt_for == teacher_fingerprint(second_teacher) != built_for


def test_a_teacher_cache_with_layer_terms_fails_before_the_teacher_is_fine_tuned(
    recipe, tiny_teacher_dir, tmp_path
):
    with pytest.raises(ValueError, match="stores logits only"):
        recipe.main(flags(tiny_teacher_dir, tmp_path / "run", "--teacher_cache", "auto"))
    assert not (tmp_path / "run" / "teacher").exists()


def test_compare_plain_trains_the_same_student_without_distillation(
    recipe, tiny_teacher_dir, tmp_path, capsys
):
    output_dir = tmp_path / "run"
    results = recipe.main(flags(tiny_teacher_dir, output_dir, "--compare_plain", "true"))
    plain = results["plain_student"]["metrics"]
    assert plain.keys() == results["student"]["metrics"].keys() == {"validation", "test"}
    assert (
        AutoModelForTokenClassification.from_pretrained(output_dir / "plain-student").config.num_hidden_layers
        == 2
    )
    assert not (output_dir / "plain-student-training").exists()
    printed = capsys.readouterr().out
    assert "plain f1" in printed and "distilled f1" in printed
    saved = json.loads((output_dir / "results.json").read_text())
    assert saved["plain_student"]["metrics"]["test"]["f1"] == plain["test"]["f1"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--max_seq_length", "0"), "max_seq_length must be a whole number >= 2"),
        (("--max_seq_length", "4096"), "longer than .* can read"),
        (("--max_train_samples", "0"), "max_train_samples must be a whole number >= 1"),
        (("--max_eval_samples", "-3"), "max_eval_samples must be a whole number >= 1"),
        (("--per_device_train_batch_size", "0"), "per_device_train_batch_size must be a whole number >= 1"),
        (("--gradient_accumulation_steps", "0"), "gradient_accumulation_steps must be"),
        (("--num_train_epochs", "0"), "num_train_epochs must be > 0"),
        (("--max_metric_drop", "nan"), "max_metric_drop must be a finite number"),
        (("--max_metric_drop", "-1"), "max_metric_drop must be a finite number"),
    ],
)
def test_bad_sizes_and_counts_fail_before_any_work(recipe, tiny_teacher_dir, tmp_path, extra, message):
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        recipe.main(flags(tiny_teacher_dir, output_dir, *extra))
    assert not output_dir.exists() or not any(output_dir.iterdir())


def test_a_header_only_or_empty_split_names_the_split_and_file(recipe, tiny_teacher_dir, tmp_path):
    empty = tmp_path / "dev.conll"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match=r"split 'validation' \(.*dev.conll\) holds no sentences"):
        recipe.main(flags(tiny_teacher_dir, tmp_path / "run", "--validation_file", str(empty)))


def test_a_teacher_with_another_head_type_is_re_headed_not_a_size_mismatch(
    recipe, tiny_teacher_dir, minilm_tokenizer, tmp_path
):
    from conftest import tiny_bert_config
    from transformers import BertForSequenceClassification

    teacher_dir = tmp_path / "sequence-teacher"
    BertForSequenceClassification(
        tiny_bert_config(num_labels=2, num_layers=4, hidden_size=64)
    ).save_pretrained(teacher_dir)
    minilm_tokenizer.save_pretrained(teacher_dir)
    results = recipe.main(flags(teacher_dir, tmp_path / "run"))
    assert results["teacher"]["num_layers"] == 4


def test_a_finished_run_is_kept_unless_overwritten_and_a_failed_rerun_restores_it(
    recipe, tiny_teacher_dir, tmp_path, monkeypatch
):
    output_dir = tmp_path / "run"
    recipe.main(flags(tiny_teacher_dir, output_dir))
    before = (output_dir / "results.json").read_text()
    weights = (output_dir / "student" / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        recipe.main(flags(tiny_teacher_dir, output_dir))

    import hfkdq.experiment.results

    def fail_in_evaluation(*args, **kwargs):
        raise RuntimeError("evaluation crashed")

    monkeypatch.setattr(hfkdq.experiment.results, "write_json_atomically", fail_in_evaluation)
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        recipe.main(flags(tiny_teacher_dir, output_dir, "--overwrite_output_dir", "true", "--seed", "9"))
    assert (output_dir / "results.json").read_text() == before
    assert (output_dir / "student" / "model.safetensors").read_bytes() == weights, (
        "student and results stay one run"
    )
    assert not list(output_dir.glob(".previous-run*")) and not (output_dir / ".hfkdq-run.lock").exists()


def test_a_second_concurrent_run_is_refused(recipe, tiny_teacher_dir, tmp_path):
    from hfkdq.run_dir import run_lock

    with run_lock(tmp_path / "run"):
        with pytest.raises(RuntimeError, match="another run .* is writing to"):
            recipe.main(flags(tiny_teacher_dir, tmp_path / "run"))
