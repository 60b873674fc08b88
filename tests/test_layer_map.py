"""Which student layer learns from which teacher layer."""

import pytest

from hfkdq.layer_map import parse_layer_spec, resolve_layer_map, uniform_teacher_layers


@pytest.mark.parametrize(
    ("student", "teacher", "expected"),
    [
        (3, 6, [1, 3, 5]),
        (6, 12, [1, 3, 5, 7, 9, 11]),
        (4, 12, [2, 5, 8, 11]),
        (6, 6, [0, 1, 2, 3, 4, 5]),
        (1, 6, [5]),
    ],
)
def test_uniform_map_spreads_evenly_and_ends_at_the_teachers_last_layer(student, teacher, expected):
    assert uniform_teacher_layers(student, teacher) == expected


def test_uniform_map_refuses_a_student_deeper_than_the_teacher():
    with pytest.raises(ValueError, match="no deeper"):
        uniform_teacher_layers(8, 6)


def test_last_pairs_only_the_final_layers():
    assert resolve_layer_map("last", 3, 6) == [(2, 5)]


def test_explicit_list_names_one_teacher_layer_per_student_layer():
    assert resolve_layer_map([0, 2, 4], 3, 6) == [(0, 0), (1, 2), (2, 4)]
    assert resolve_layer_map("0,2,4", 3, 6) == [(0, 0), (1, 2), (2, 4)]


def test_explicit_list_pointing_outside_the_teacher_is_an_error():
    with pytest.raises(ValueError, match="outside the teacher"):
        resolve_layer_map([1, 3, 6], 3, 6)


def test_explicit_list_of_wrong_length_is_an_error():
    with pytest.raises(ValueError, match="one teacher layer per student layer"):
        resolve_layer_map([1, 3], 3, 6)


def test_unparseable_spec_is_an_error():
    with pytest.raises(ValueError, match="uniform"):
        parse_layer_spec("every-other")
