"""Every flag, a bad value: one line, exit status 1, nothing written (issue 20, item 5).

The rows are built from the argument dataclasses (the recipes) and the argparse parsers (the `hfkdq`
verbs), not listed by hand, so a new flag gets rows without anyone remembering to add them:

- by type, for every flag: a word where a number belongs, "maybe" for a boolean, an unknown choice;
- by range, for hfkdq's own numeric flags: -1, and NaN and infinity for real numbers;
- by meaning, for hfkdq's own text flags: a value from `BAD_TEXT`; a text flag missing from it (and from
  `FREE_TEXT`, the flags any text suits) fails `test_every_own_flag_has_a_row`.

Each row runs the recipe's (or the verb's) real entry point in this process: every check runs before any
model is loaded or trained, so a row costs a parse and at most a read of two tiny files.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from transformers import TrainingArguments
from transformers.hf_argparser import string_to_bool

from hfkdq.arguments import ModelArguments
from hfkdq.commands.distill import recipe_main
from hfkdq.commands.errors import EXIT_ERROR
from hfkdq.commands.main import build_parser
from hfkdq.commands.main import main as hfkdq_main
from hfkdq.config import DistillationArguments
from hfkdq.recipe_args import RecipeArgumentParser
from hfkdq.tasks.glue import GlueDataArguments, build_glue_task
from hfkdq.tasks.ner import NerDataArguments, build_ner_task

MISSING = "/nonexistent/hfkdq-flag-table"
BAD_TEXT = {
    "teacher_name_or_path": MISSING,
    "teacher_finetune": "sometimes",
    "teacher_cache": "<a file>",
    "student_name_or_path": MISSING,
    "student_layers": "0,0,9",
    "augment": "bogus_view",
    "transfer_file": MISSING,
    "quantize": "bogus-int3",
    "quantize_eval_split": "nope",
    "train_file": MISSING,
    "validation_file": MISSING,
    "test_file": MISSING,
    "validation_mismatched_file": MISSING,
    "tag_scheme": "bogus",
    "task_name": "bogus",
    "text_columns": "no_such_column",
    "label_column": "no_such_column",
    "hidden_loss": "bogus",
    "layer_map": "bogus",
    "dataset_name": MISSING,
    "output_dir": "<a file>",
    "resume_from_checkpoint": MISSING,
    "prune_importance": "bogus",
}
"""hfkdq's own text flags: a value each must refuse."""
FREE_TEXT = {
    "dataset_config_name": "a Hub configuration name; read only with --dataset_name, which is checked",
}
"""hfkdq's own text flags that take any text, and why."""

OWN_TYPES = (ModelArguments, NerDataArguments, GlueDataArguments, DistillationArguments)
INHERITED = {field.name for field in dataclasses.fields(TrainingArguments)}


def own_fields(data_type: type) -> list[dataclasses.Field]:
    """The flags hfkdq defines (not those DistillationArguments inherits from TrainingArguments)."""
    fields = [*dataclasses.fields(ModelArguments), *dataclasses.fields(data_type)]
    fields += [f for f in dataclasses.fields(DistillationArguments) if f.name not in INHERITED]
    return fields


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions if action.nargs != 0 and action.option_strings}


def _type_rows(action: argparse.Action) -> list[str]:
    if action.choices:
        return ["bogus"]
    if action.type is string_to_bool:
        return ["maybe"]
    if action.type in (int, float):
        return ["abc"]
    return []


def recipe_rows(data_type: type) -> list[tuple[str, str]]:
    """(flag, bad value) for every flag of a recipe."""
    parser = RecipeArgumentParser((ModelArguments, data_type, DistillationArguments))
    actions = _actions(parser)
    own = {field.name: field for field in own_fields(data_type)}
    rows = []
    for name, action in actions.items():
        if data_type is GlueDataArguments and name not in {f.name for f in dataclasses.fields(data_type)}:
            continue  # the shared flags are covered by the NER recipe's rows
        rows += [(name, value) for value in _type_rows(action)]
        if name not in own:
            rows += [(name, BAD_TEXT[name])] if name in BAD_TEXT else []  # Trainer flags hfkdq reads itself
            continue
        if action.type is int:
            rows.append((name, "-1"))
        elif action.type is float:
            rows += [(name, "-1"), (name, "nan"), (name, "inf")]
        elif name in BAD_TEXT:
            rows.append((name, BAD_TEXT[name]))
    return rows


def test_every_own_flag_has_a_row():
    for data_type in (NerDataArguments, GlueDataArguments):
        covered = {name for name, _ in recipe_rows(data_type)}
        for field in own_fields(data_type):
            if field.name in FREE_TEXT or (
                data_type is GlueDataArguments and field not in dataclasses.fields(data_type)
            ):
                continue
            assert field.name in covered, (
                f"--{field.name} has no bad-value row: add one to BAD_TEXT or FREE_TEXT"
            )


@pytest.fixture(scope="module")
def recipe_setup(tmp_path_factory, tiny_teacher_dir) -> dict:
    from hfkdq.resources import btc_files

    root = tmp_path_factory.mktemp("flag-table")
    corpus = btc_files()
    ner = {}
    for split, count in (("train", 16), ("validation", 8)):
        blocks = Path(corpus[split]).read_text(encoding="utf-8").strip().split("\n\n")[:count]
        ner[split] = root / f"{split}.conll"
        ner[split].write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    sst2 = root / "sst2.tsv"
    sst2.write_text("sentence\tlabel\na fine film\t1\na dull film\t0\nquite good\t1\nrather bad\t0\n")
    (root / "a-file").write_text("not a directory")
    return {
        "root": root,
        "teacher": str(tiny_teacher_dir),
        "ner": ["--train_file", str(ner["train"]), "--validation_file", str(ner["validation"])],
        "glue": ["--task_name", "sst2", "--train_file", str(sst2), "--validation_file", str(sst2)],
    }


def _run_recipe_row(setup, data_type, build_task, flag, value, capsys, name) -> None:
    output_dir = setup["root"] / f"out-{name}"
    value = str(setup["root"] / "a-file") if value == "<a file>" else value
    data = setup["ner"] if data_type is NerDataArguments else setup["glue"]
    argv = [*data, "--teacher_name_or_path", setup["teacher"], "--output_dir", str(output_dir)]
    argv += ["--student_num_layers", "1", "--max_seq_length", "32", "--report_to", "none"]
    argv += [f"--{flag}", value]
    capsys.readouterr()
    status = recipe_main(data_type, build_task, argv)
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert status == EXIT_ERROR, f"--{flag} {value!r} was accepted"
    assert len(errors) == 1 and "Traceback" not in errors[0], errors
    assert not output_dir.exists(), f"--{flag} {value!r} left {output_dir}"


@pytest.mark.parametrize(("flag", "value"), recipe_rows(NerDataArguments))
def test_a_bad_ner_recipe_flag_is_one_line_exit_1_and_writes_nothing(recipe_setup, flag, value, capsys):
    _run_recipe_row(recipe_setup, NerDataArguments, build_ner_task, flag, value, capsys, f"ner-{flag}")


@pytest.mark.parametrize(("flag", "value"), recipe_rows(GlueDataArguments))
def test_a_bad_glue_recipe_flag_is_one_line_exit_1_and_writes_nothing(recipe_setup, flag, value, capsys):
    _run_recipe_row(recipe_setup, GlueDataArguments, build_glue_task, flag, value, capsys, f"glue-{flag}")


# ------------------------------------------------------------------------------------------------- CLI

CLI_BAD_TEXT = {
    "methods": "bogus-int3",
    "task": "bogus",
    "eval_file": MISSING,
    "data_dir": MISSING,
    "eval_split": "nope",
    "train_file": MISSING,
    "teacher_dir": MISSING,
    "cpu_target": "bogus",
    "device": "bogus",
    "repo_id": "not a repo id",
    "output_dir": "<a file>",
    "output": "<a directory>",
    "run_dirs": MISSING,
    "recipe_args": "--no_such_flag",
    "ffn_keep": "1.5",
}
"""Text flags of the `hfkdq` verbs: a value each must refuse."""


def cli_rows() -> list[tuple[str, str, str]]:
    """(verb, flag, bad value) for every option of every verb."""
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    rows = []
    for verb, parser in subparsers.choices.items():
        for action in parser._actions:
            if action.nargs == 0 or not action.option_strings:
                continue
            minimum = getattr(action.type, "minimum", None)
            if minimum is not None:
                rows += [(verb, action.dest, str(minimum - 1)), (verb, action.dest, "abc")]
            elif action.choices:
                rows.append((verb, action.dest, "bogus"))
            elif action.type in (int, float):
                rows.append((verb, action.dest, "unranged"))  # fails test_every_cli_flag_has_a_row
            else:
                rows.append((verb, action.dest, CLI_BAD_TEXT.get(action.dest, "unlisted")))
    return rows


def test_every_cli_flag_has_a_row():
    for verb, flag, value in cli_rows():
        if (verb, flag) in FREE_CLI_TEXT:
            continue
        assert value != "unranged", f"hfkdq {verb} --{flag}: give it a ranged type (hfkdq.commands.flags)"
        assert value != "unlisted", f"hfkdq {verb} --{flag}: add a bad value to CLI_BAD_TEXT"


FREE_CLI_TEXT = {
    ("push", "token"): "any token; the Hub decides",
    ("push", "license"): "any licence identifier, written into the card",
}


@pytest.fixture(scope="module")
def cli_setup(tmp_path_factory, minilm_tokenizer) -> dict:
    from conftest import tiny_bert_config
    from transformers import BertForTokenClassification

    root = tmp_path_factory.mktemp("cli-flag-table")
    labels = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    config = tiny_bert_config(num_labels=len(labels), num_layers=1, hidden_size=32)
    config.id2label, config.label2id = dict(enumerate(labels)), {name: i for i, name in enumerate(labels)}
    student = root / "student"
    BertForTokenClassification(config).save_pretrained(student)
    minilm_tokenizer.save_pretrained(student)
    (root / "a-file").write_text("not a directory")
    (root / "a-directory").mkdir()
    return {"root": root, "student": str(student)}


def _cli_argv(setup: dict, verb: str, output_dir: Path) -> list[str]:
    student = setup["student"]
    return {
        "quantize": ["quantize", student, "--methods", "torch-int8", "--output_dir", str(output_dir)],
        "evaluate": ["evaluate", student],
        "report": ["report", str(setup["root"] / "results.json"), "--output_dir", str(output_dir)],
        "push": ["push", student, "--repo_id", "someone/tiny", "--dry_run"],
        "distill": ["distill", "ner"],
        "prune": ["prune", student, "--ffn_keep", "0.5", "--output_dir", str(output_dir)],
    }[verb]


@pytest.mark.parametrize(
    ("verb", "flag", "value"), [row for row in cli_rows() if (row[0], row[1]) not in FREE_CLI_TEXT]
)
def test_a_bad_cli_flag_is_one_line_exit_1_and_writes_nothing(cli_setup, verb, flag, value, capsys):
    output_dir = cli_setup["root"] / f"out-{verb}-{flag}"
    value = {
        "<a file>": str(cli_setup["root"] / "a-file"),
        "<a directory>": str(cli_setup["root"] / "a-directory"),
    }.get(value, value)
    before = sorted(path.name for path in cli_setup["root"].iterdir())
    capsys.readouterr()
    try:
        status = hfkdq_main([*_cli_argv(cli_setup, verb, output_dir), f"--{flag}", value])
    except SystemExit as stopped:
        status = stopped.code
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert status == EXIT_ERROR, f"hfkdq {verb} --{flag} {value!r} was accepted"
    assert len(errors) == 1 and (flag in errors[0] or value in errors[0]), errors
    assert sorted(path.name for path in cli_setup["root"].iterdir()) == before, "something was written"
