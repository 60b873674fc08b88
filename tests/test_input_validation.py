"""Issue 20's bad inputs, each a one-line error (exit status 1) naming the thing and the fix, before any
work; each case covers its whole category (every non-string type, every way a file can be broken).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from conftest import TEST_DATA, requires_onnx, tiny_bert_config

from hfkdq.commands.distill import recipe_main
from hfkdq.commands.errors import EXIT_ERROR
from hfkdq.commands.main import main as hfkdq_main
from hfkdq.tasks.ner import NerDataArguments, build_ner_task

BTC_LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def _error_line(capsys) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.fixture
def student_dir(tmp_path, minilm_tokenizer) -> Path:
    from transformers import BertForTokenClassification

    config = tiny_bert_config(num_labels=len(BTC_LABELS), num_layers=1, hidden_size=32)
    config.id2label, config.label2id = dict(enumerate(BTC_LABELS)), {n: i for i, n in enumerate(BTC_LABELS)}
    directory = tmp_path / "student"
    BertForTokenClassification(config).save_pretrained(directory)
    minilm_tokenizer.save_pretrained(directory)
    return directory


# ------------------------------------------------------------------------------------ model files


@pytest.mark.parametrize("damage", ["truncated", "empty", "header only"])
def test_a_damaged_model_safetensors_given_to_quantize_is_named_with_the_fix(
    student_dir, tmp_path, capsys, damage
):
    weights = student_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "header only": data[:8]}[damage])
    capsys.readouterr()
    status = hfkdq_main(
        ["quantize", str(student_dir), "--methods", "torch-int8", "--output_dir", str(tmp_path / "q")]
    )
    error = _error_line(capsys)
    assert status == EXIT_ERROR
    assert "model.safetensors" in error and "corrupt" in error and "save_pretrained" in error
    assert not (tmp_path / "q").exists()


@requires_onnx
@pytest.mark.parametrize("damage", ["truncated", "empty", "not onnx"])
def test_a_damaged_model_onnx_given_to_evaluate_is_named_with_the_fix(student_dir, tmp_path, capsys, damage):
    from hfkdq.quantization import quantize

    variant = tmp_path / "onnx-fp32"
    quantize(student_dir, "onnx-fp32", variant)
    graph = variant / "model.onnx"
    data = graph.read_bytes()
    graph.write_bytes(
        {"truncated": data[: len(data) // 3], "empty": b"", "not onnx": b"\x08\x07garbage"}[damage]
    )
    capsys.readouterr()
    status = hfkdq_main(["evaluate", str(variant), "--max_eval_samples", "4"])
    error = _error_line(capsys)
    assert status == EXIT_ERROR
    assert "model.onnx" in error and "corrupt" in error and "hfkdq quantize --overwrite" in error


# ------------------------------------------------------------------------------------- the recipe


@pytest.fixture
def ner_files(tmp_path) -> dict[str, Path]:
    from hfkdq.resources import btc_files

    files = {}
    for split, count in (("train", 16), ("validation", 8)):
        blocks = Path(btc_files()[split]).read_text(encoding="utf-8").strip().split("\n\n")[:count]
        files[split] = tmp_path / f"{split}.conll"
        files[split].write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return files


def _recipe(capsys, teacher, files, output_dir, *extra) -> tuple[int, str]:
    argv = ["--teacher_name_or_path", str(teacher), "--output_dir", str(output_dir)]
    argv += ["--train_file", str(files["train"]), "--validation_file", str(files["validation"])]
    argv += ["--max_seq_length", "32", "--report_to", "none", *extra]
    capsys.readouterr()
    status = recipe_main(NerDataArguments, build_ner_task, argv)
    return status, _error_line(capsys) if status else ""


def _complete_checkpoint(directory: Path, num_layers: int) -> None:
    from transformers import BertForTokenClassification

    config = tiny_bert_config(num_labels=len(BTC_LABELS), num_layers=num_layers, hidden_size=64)
    BertForTokenClassification(config).save_pretrained(directory)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({}, directory / name)
    (directory / "trainer_state.json").write_text("{}")


def test_resuming_with_another_student_layer_count_names_the_setting(
    tiny_teacher_dir, ner_files, tmp_path, capsys
):
    """Was a RuntimeError listing unexpected keys, after the teacher was ready."""
    output_dir = tmp_path / "run"
    _complete_checkpoint(output_dir / "checkpoint-4", num_layers=2)
    status, error = _recipe(
        capsys,
        tiny_teacher_dir,
        ner_files,
        output_dir,
        "--student_num_layers",
        "3",
        "--resume_from_checkpoint",
        "true",
    )
    assert status == EXIT_ERROR
    assert "num_hidden_layers 2 (this run: 3)" in error and "--student_num_layers 2" in error
    assert not (output_dir / "teacher").exists(), "refused before the teacher was fine-tuned"


@pytest.mark.parametrize(
    "kind", ["foreign files", "corrupt metadata", "foreign metadata", "a file", "no table"]
)
def test_a_teacher_cache_that_is_not_one_is_named_with_a_real_flag(
    tiny_teacher_dir, ner_files, tmp_path, capsys, kind
):
    cache = tmp_path / "cache"
    if kind == "a file":
        cache.write_text("x")
    else:
        cache.mkdir()
        metadata = {
            "foreign files": None,
            "corrupt metadata": "{not json",
            "foreign metadata": json.dumps({"model": "something else"}),
            "no table": json.dumps(
                {"format_version": 1, "teacher_fingerprint": "x", "num_examples": 1, "data_fingerprint": "y"}
            ),
        }[kind]
        (cache / ("notes.txt" if metadata is None else "hfkdq_teacher_cache.json")).write_text(
            metadata or "mine"
        )
    status, error = _recipe(
        capsys, tiny_teacher_dir, ner_files, tmp_path / "run", "--teacher_cache", str(cache),
        "--hidden_weight", "0", "--attention_weight", "0",
    )  # fmt: skip
    assert status == EXIT_ERROR
    assert (
        f"--teacher_cache {cache}" in error and "--teacher_cache auto" in error and "--overwrite" not in error
    )
    assert not (tmp_path / "run" / "teacher").exists()


def test_an_output_dir_that_is_a_file_is_refused_before_any_work(
    tiny_teacher_dir, ner_files, tmp_path, capsys
):
    (tmp_path / "out").write_text("mine")
    status, error = _recipe(capsys, tiny_teacher_dir, ner_files, tmp_path / "out")
    assert status == EXIT_ERROR and "is a file, not a directory" in error and "--output_dir" in error
    assert (tmp_path / "out").read_text() == "mine"


@pytest.mark.parametrize("verb", ["quantize", "report"])
def test_a_cli_output_dir_that_is_a_file_is_refused(student_dir, tmp_path, capsys, verb):
    (tmp_path / "out").write_text("mine")
    argv = {
        "quantize": ["quantize", str(student_dir), "--methods", "torch-int8"],
        "report": ["report", str(tmp_path / "results.json")],
    }[verb]
    with pytest.raises(SystemExit) as stopped:
        hfkdq_main([*argv, "--output_dir", str(tmp_path / "out")])
    assert stopped.value.code == EXIT_ERROR
    assert "is a file, not a directory" in _error_line(capsys)


@pytest.mark.parametrize(
    ("flag", "value"), [("batch_size", "0"), ("batch_size", "-3"), ("latency_warmup", "-1")]
)
def test_quantize_refuses_a_batch_size_of_0_and_every_count_below_its_range(
    student_dir, tmp_path, capsys, flag, value
):
    with pytest.raises(SystemExit) as stopped:
        hfkdq_main(["quantize", str(student_dir), "--output_dir", str(tmp_path / "q"), f"--{flag}", value])
    assert stopped.value.code == EXIT_ERROR
    assert f"--{flag}: must be a whole number >=" in _error_line(capsys)


def test_a_training_set_without_entities_is_refused_before_the_teacher_trains(
    tiny_teacher_dir, ner_files, tmp_path, capsys
):
    """Was `max() arg is an empty sequence`, after the teacher had trained."""
    lines = ner_files["train"].read_text().splitlines()
    ner_files["train"].write_text(
        "\n".join(f"{line.split()[0]}\tO" if line.strip() else "" for line in lines) + "\n"
    )
    status, error = _recipe(capsys, tiny_teacher_dir, ner_files, tmp_path / "run")
    assert status == EXIT_ERROR
    assert "train split" in error and "has no entities" in error and str(ner_files["train"]) in error


def test_entity_types_only_in_validation_are_named(minilm_tokenizer, ner_files, caplog):
    lines = ner_files["validation"].read_text().splitlines()
    lines[0] = f"{lines[0].split()[0]}\tB-PRODUCT"
    ner_files["validation"].write_text("\n".join(lines) + "\n")
    data_args = NerDataArguments(
        train_file=str(ner_files["train"]), validation_file=str(ner_files["validation"])
    )
    with caplog.at_level(logging.WARNING, logger="hfkdq.validation"):
        build_ner_task(data_args, minilm_tokenizer)
    assert "The validation split has entity types the training set lacks (PRODUCT)" in caplog.text


# ------------------------------------------------------------------------------------ config files


@pytest.mark.parametrize("word", ["no", "yes", "off", "on", "false", "True"])
def test_yaml_reading_an_unquoted_word_as_a_boolean_hints_at_quoting(tmp_path, word):
    from hfkdq.arguments import ModelArguments
    from hfkdq.config import DistillationArguments
    from hfkdq.recipe_args import parse_recipe_args

    config = tmp_path / "run.yaml"
    config.write_text(f"student_layers: {word}\noutput_dir: {tmp_path / 'out'}\n")
    with pytest.raises(ValueError, match=r"student_layers: the value was read as the boolean .* quote it"):
        parse_recipe_args((ModelArguments, NerDataArguments, DistillationArguments), [str(config)])


def test_a_json_config_is_read_like_yaml_and_other_files_are_refused_by_name(tmp_path):
    from hfkdq.arguments import ModelArguments
    from hfkdq.config import DistillationArguments
    from hfkdq.recipe_args import parse_recipe_args

    types = (ModelArguments, NerDataArguments, DistillationArguments)
    config = tmp_path / "run.json"
    config.write_text(
        json.dumps({"student_layers": "bottom", "learning_rate": 3e-4, "output_dir": str(tmp_path)})
    )
    model_args, _, training_args = parse_recipe_args(types, [str(config), "--learning_rate", "1e-4"])
    assert model_args.student_layers == "bottom" and training_args.learning_rate == 1e-4, "flags win"
    (tmp_path / "run.toml").write_text("x = 1")
    with pytest.raises(ValueError, match=r"run.toml: an experiment file must be YAML .* or JSON"):
        parse_recipe_args(types, [str(tmp_path / "run.toml")])
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"bad.json: not valid JSON"):
        parse_recipe_args(types, [str(tmp_path / "bad.json")])


@pytest.mark.parametrize("value", ["-1,3,5", "-1", "-2,-1", "-0.5"])
def test_a_negative_number_list_as_a_separate_argument_is_read_as_the_value(tmp_path, value):
    """argparse took `-1,3,5` for an option ("expected one argument")."""
    from hfkdq.arguments import ModelArguments
    from hfkdq.config import DistillationArguments
    from hfkdq.recipe_args import parse_recipe_args

    model_args, _, _ = parse_recipe_args(
        (ModelArguments, NerDataArguments, DistillationArguments),
        ["--output_dir", str(tmp_path), "--student_layers", value],
    )
    assert model_args.student_layers == value


def test_a_bad_flag_usage_is_one_line_from_the_recipe(tmp_path, capsys):
    status = recipe_main(
        NerDataArguments, build_ner_task, ["--output_dir", str(tmp_path / "o"), "--learning_rate"]
    )
    assert status == EXIT_ERROR and "--learning_rate/--learning-rate: expected one argument" in _error_line(
        capsys
    )


# ------------------------------------------------------------------------------------------- data


@pytest.mark.parametrize("value", [None, 3, 2.5, True, ["a", "list"], {"an": "object"}])
def test_a_json_lines_text_that_is_not_a_string_is_refused_with_file_and_line(tmp_path, value):
    """`"sentence": null` trained on an empty string, without a word (issue 20, case 5)."""
    from hfkdq.data.glue import load_glue_dataset

    rows = [{"sentence": "a fine film", "label": 1}, {"sentence": value, "label": 0}]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    with pytest.raises(ValueError, match=rf"{train}:2: 'sentence' is .*, not text"):
        load_glue_dataset("sst2", data_files={"train": str(train)})
    as_array = tmp_path / "train.json"
    as_array.write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=rf"{as_array}: record 2: 'sentence' is"):
        load_glue_dataset("sst2", data_files={"train": str(as_array)})


def test_the_tiny_recipe_config_still_parses():
    from hfkdq.arguments import ModelArguments
    from hfkdq.config import DistillationArguments
    from hfkdq.recipe_args import parse_recipe_args

    model_args, _, _ = parse_recipe_args(
        (ModelArguments, NerDataArguments, DistillationArguments),
        [str(TEST_DATA / "ner_recipe_tiny.yaml"), "--output_dir", "unused"],
    )
    assert model_args.student_num_layers == 2
