"""Named student initialisations pick the documented teacher layers, and bad choices fail with the fix."""

import pytest

from hfkdq.student_init import INIT_STRATEGIES, choose_init_layers


@pytest.mark.parametrize(
    ("spec", "layers", "teacher_layers", "expected"),
    [
        ("bottom", 3, 6, [0, 1, 2]),
        ("alternate", 3, 6, [0, 2, 4]),
        ("alternate", 2, 6, [0, 3]),
        ("alternate", 6, 12, [0, 2, 4, 6, 8, 10]),
        ("top-aligned", 3, 6, [1, 3, 5]),
        ("uniform", 3, 6, [1, 3, 5]),
        ("last", 2, 6, [4, 5]),
        ("0,2,5", 3, 6, [0, 2, 5]),
        ([5, 0], 2, 6, [5, 0]),
    ],
)
def test_each_strategy_names_the_documented_teacher_layers(spec, layers, teacher_layers, expected):
    assert choose_init_layers(spec, layers, teacher_layers) == expected


@pytest.mark.parametrize("name", list(INIT_STRATEGIES))
@pytest.mark.parametrize(("layers", "teacher_layers"), [(1, 6), (2, 6), (3, 6), (4, 12), (6, 6)])
def test_every_strategy_gives_distinct_existing_layers(name, layers, teacher_layers):
    chosen = choose_init_layers(name, layers, teacher_layers)
    assert len(chosen) == len(set(chosen)) == layers
    assert all(0 <= layer < teacher_layers for layer in chosen)


@pytest.mark.parametrize(
    ("spec", "layers", "teacher_layers", "message"),
    [
        ("alternate", 0, 6, "at least one layer"),
        ("bottom", 7, 6, "at most 6 layers"),
        ("middle", 3, 6, "unknown student initialisation 'middle'"),
        ("0,2", 3, 6, "names 2 teacher layers for a 3-layer student"),
        ("0,2,9", 3, 6, r"layers \[9\] do not exist"),
        ("1,1,3", 3, 6, r"repeats teacher layers \[1\]"),
    ],
)
def test_bad_initialisations_fail_with_the_fix(spec, layers, teacher_layers, message):
    with pytest.raises(ValueError, match=message):
        choose_init_layers(spec, layers, teacher_layers)
