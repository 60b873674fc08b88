"""The figures README.md quotes from `make demo` are the committed results they cite, so the two cannot
drift apart: refresh the demo by committing its new results.json and pasting what it printed.

`make demo` writes outputs/ner-btc-minilm/results.json and prints `hfkdq.report.format_summary` of it;
the README's "What the demo measures" shows that printout verbatim, states the KD gain and whether the
student passes its teacher, and the run time (also in "Quick start").
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO_ROOT

from hfkdq.report import format_summary

DEMO_RESULTS = REPO_ROOT / "benchmarks" / "results" / "ner_btc_demo_cpu.json"
README = REPO_ROOT / "README.md"


@pytest.fixture(scope="module")
def demo() -> dict:
    return json.loads(DEMO_RESULTS.read_text())


@pytest.fixture(scope="module")
def section() -> str:
    """The README's "What the demo measures" section, up to the next heading."""
    text = README.read_text()
    start = text.index("## What the demo measures")
    return text[start : text.index("\n## ", start + 1)]


def test_the_section_cites_the_committed_results(section):
    assert f"`{DEMO_RESULTS.relative_to(REPO_ROOT)}`" in section


def test_the_printout_is_what_make_demo_prints_for_the_committed_results(demo, section):
    """Teacher, plain and distilled F1 on every split, parameter counts and wall time: all of it."""
    printed = re.search(r"it prints:\n\n```\n(.*?)\n```", section, re.S)
    assert printed, "the section shows the demo's printout in a code block after 'it prints:'"
    assert printed.group(1) == format_summary(demo, demo["task"]["main_metric"])


def test_the_stated_gain_and_comparison_with_the_teacher_follow_from_the_results(demo, section):
    metric = demo["task"]["main_metric"]
    teacher, plain, distilled = (
        demo[role]["metrics"]["test"][metric] for role in ("teacher", "plain_student", "student")
    )
    prose = " ".join(section.split())  # the README's line breaks fall anywhere in a sentence
    gain = re.search(
        r"Distillation (gains|loses) (\d+\.\d) F1 over plain fine-tuning on the test split", prose
    )
    assert gain, "the section states the KD gain on the test split"
    signed = float(gain.group(2)) * (1 if gain.group(1) == "gains" else -1)
    assert signed == round(100 * (distilled - plain), 1)
    passes = "the student passes its teacher" in prose
    assert passes == (distilled > teacher), "'passes its teacher' is said exactly when it is true"


def test_the_run_time_quoted_is_the_measured_one(demo, section):
    minutes = round(demo["wall_time_s"] / 60)
    assert f"About {minutes} minutes in all" in " ".join(section.split())
    quick_start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert f"(about {minutes} min on 2 CPU cores)" in quick_start


def test_the_settings_described_are_the_ones_the_run_recorded(demo, section):
    prose = " ".join(section.split())
    layers = demo["student"]["initialised_from_teacher_layers"]
    assert f"copied from teacher layers {', '.join(map(str, layers))}" in prose
    assert f"distilled for {demo['distillation']['num_train_epochs']:g} epochs" in prose
    assert f"T={demo['distillation']['temperature']:g}" in prose
