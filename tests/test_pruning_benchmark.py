"""The pruning benchmark's headline keys, read from its per-task results (issue 18's targets)."""

import pytest
from conftest import import_script


@pytest.fixture(scope="module")
def pruning():
    return import_script("benchmarks/pruning.py")


def _task(retention, b1, b32, mixed=None):
    rows = {
        "unpruned": {"int8_retention_vs_unpruned": 1.0, "int8_speedup_vs_unpruned": {"b1": 1.0, "b32": 1.0}},
        "keep-0.5": {
            "int8_retention_vs_unpruned": retention,
            "int8_speedup_vs_unpruned": {"b1": b1, "b32": b32},
        },
    }
    return {"measured": {"rows": rows}} | ({"mixed_precision": mixed} if mixed else {})


def test_retention_is_per_task_and_the_speed_up_is_the_worse_tasks(pruning):
    results = {"tasks": {"conll2003": _task(0.991, 1.3, 1.25), "sst2": _task(0.98765, 1.22, 1.4)}}

    headline = pruning.pruning_headline(results)

    assert headline["pruned_ffn_keep"] == 0.5
    assert headline["pruned_ner_retention_vs_unpruned"] == 0.991
    assert headline["pruned_sst2_retention_vs_unpruned"] == 0.9877
    assert headline["pruned_speedup_vs_unpruned_b1"] == 1.22
    assert headline["pruned_speedup_vs_unpruned_b32"] == 1.25
    assert headline["mixed_precision_found"] is None, "no search ran: nothing to report"


def test_a_search_that_met_the_budget_where_full_int8_missed_counts_as_found(pruning):
    met = {"budget_points": 0.1, "students": {"unpruned": {"full_int8_drop": 0.4, "mixed_drop": 0.05}}}
    unreachable = {
        "budget_points": 0.1,
        "students": {"unpruned": {"full_int8_drop": 0.4, "search": "unreachable"}},
    }
    not_needed = {
        "budget_points": 0.1,
        "students": {"unpruned": {"full_int8_drop": 0.02, "search": "not needed"}},
    }

    assert pruning.pruning_headline({"tasks": {"conll2003": _task(1, 1, 1, met)}})["mixed_precision_found"]
    assert (
        pruning.pruning_headline({"tasks": {"sst2": _task(1, 1, 1, unreachable)}})["mixed_precision_found"]
        is False
    )
    assert (
        pruning.pruning_headline({"tasks": {"sst2": _task(1, 1, 1, not_needed)}})["mixed_precision_found"]
        is None
    )


def test_a_missing_task_leaves_its_keys_null(pruning):
    headline = pruning.pruning_headline({"tasks": {"conll2003": _task(0.99, 1.2, 1.3)}})

    assert headline["pruned_sst2_retention_vs_unpruned"] is None
    assert headline["pruned_speedup_vs_unpruned_b1"] == 1.2, "the only task measured"
