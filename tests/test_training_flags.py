"""Flags transformers 5 renamed mean the same thing on the installed major, whichever way they are written."""

import pytest

from hfkdq.config import DistillationArguments
from hfkdq.recipe_args import parse_recipe_args
from hfkdq.training_flags import portable_training_flags


def _parse(*flags):
    (args,) = parse_recipe_args(
        (DistillationArguments,), ["--output_dir", "unused", "--report_to", "none", *flags]
    )
    return args


def _grouped(args) -> bool:
    return bool(getattr(args, "group_by_length", False)) or (
        getattr(args, "train_sampling_strategy", None) == "group_by_length"
    )


@pytest.mark.parametrize("flags", [("--warmup_ratio", "0.1"), ("--warmup_steps", "0.1")])
def test_a_warmup_ratio_warms_up_that_share_of_the_steps(flags):
    assert _parse(*flags).get_warmup_steps(200) == 20


def test_integer_warmup_steps_stay_steps():
    assert _parse("--warmup_steps", "7").get_warmup_steps(200) == 7


@pytest.mark.parametrize(
    "flags",
    [("--group_by_length", "true"), ("--group_by_length",), ("--train_sampling_strategy", "group_by_length")],
)
def test_length_grouping_is_on_whichever_spelling(flags):
    assert _grouped(_parse(*flags))


def test_grouping_switched_off_stays_off():
    assert not _grouped(_parse("--group_by_length", "false"))


def test_other_flags_pass_unchanged():
    flags = ["config.yaml", "--learning_rate", "3e-5", "--seed", "1"]
    assert portable_training_flags(flags) == flags
