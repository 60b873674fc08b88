"""The loss functions, checked against values computed by hand."""

import math

import pytest
import torch

from hfkdq.losses import (
    attention_loss,
    cross_entropy_loss,
    hidden_state_loss,
    kd_loss,
    reduce_loss,
    regression_kd_loss,
)


def test_kd_loss_is_zero_when_student_matches_teacher():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    assert kd_loss(logits, logits.clone(), temperature=2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_matches_hand_computed_kl_times_t_squared():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0) * 2, 0.0]])  # at T=2 the teacher's softmax is (0.75, 0.25)
    expected_kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_loss(student, teacher, temperature=2.0).item() == pytest.approx(expected_kl * 4, rel=1e-5)


def test_kd_loss_uses_last_dim_for_token_logits_and_ignores_masked_positions():
    teacher = torch.tensor([[[math.log(3.0), 0.0], [5.0, -5.0]]])  # (batch=1, tokens=2, classes=2)
    student = torch.tensor([[[0.0, 0.0], [-9.0, 9.0]]])  # second token is wildly wrong ...
    mask = torch.tensor([[True, False]])  # ... but masked (padding or label -100)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_loss(student, teacher, temperature=1.0, mask=mask).item() == pytest.approx(expected, rel=1e-5)


def test_kd_loss_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), temperature=0)


def test_regression_kd_is_mse_to_teacher_predictions():
    student = torch.tensor([[1.0], [3.0]])
    teacher = torch.tensor([[2.0], [3.0]])
    assert regression_kd_loss(student, teacher).item() == pytest.approx(0.5)


def test_hidden_mse_averages_over_width_and_counts_only_unmasked_tokens():
    student = torch.tensor([[[1.0, 1.0], [100.0, 100.0]]])
    teacher = torch.tensor([[[0.0, 2.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 0]])
    assert hidden_state_loss(student, teacher, mask, kind="mse").item() == pytest.approx(1.0)


def test_hidden_cosine_is_one_minus_cosine_similarity():
    student = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [2.0, 2.0]]])
    # token 1: orthogonal -> 1; token 2: parallel -> 0; mean 0.5
    assert hidden_state_loss(student, teacher, kind="cosine").item() == pytest.approx(0.5, abs=1e-6)


def test_hidden_loss_refuses_different_widths_with_a_hint_to_project():
    with pytest.raises(ValueError, match="project"):
        hidden_state_loss(torch.zeros(1, 2, 4), torch.zeros(1, 2, 8))


def test_attention_kl_per_query_row_averaged_over_heads_and_unmasked_queries():
    teacher = torch.tensor([[[[0.75, 0.25], [0.5, 0.5]]]])  # (batch, heads=1, queries=2, keys=2)
    student = torch.tensor([[[[0.5, 0.5], [0.01, 0.99]]]])
    mask = torch.tensor([[1, 0]])  # second query is padding
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert attention_loss(student, teacher, mask).item() == pytest.approx(expected, rel=1e-5)


def test_attention_loss_needs_equal_head_counts():
    with pytest.raises(ValueError, match="heads"):
        attention_loss(torch.full((1, 2, 3, 3), 1 / 3), torch.full((1, 4, 3, 3), 1 / 3))


def test_fully_masked_batch_gives_zero_not_nan():
    loss = kd_loss(
        torch.randn(2, 3, 4), torch.randn(2, 3, 4), temperature=2.0, mask=torch.zeros(2, 3, dtype=torch.bool)
    )
    assert loss.item() == 0.0


def test_kd_loss_is_finite_when_the_teacher_rules_out_a_class_with_minus_inf():
    teacher = torch.tensor([[2.0, float("-inf"), 0.0]])
    student = torch.tensor([[1.0, 0.5, 0.0]], requires_grad=True)
    loss = kd_loss(student, teacher, temperature=2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    reference = torch.nn.KLDivLoss(reduction="sum")(
        torch.log_softmax(student.detach() / 2, -1), torch.softmax(teacher / 2, -1)
    )
    assert loss.item() == pytest.approx(reference.item() * 4, rel=1e-5)


def test_non_finite_values_at_masked_positions_do_not_leak_into_the_loss():
    teacher = torch.tensor([[[1.0, 0.0], [float("nan"), float("inf")]]])
    student = torch.tensor([[[0.0, 0.0], [float("nan"), 0.0]]])
    mask = torch.tensor([[True, False]])
    assert torch.isfinite(kd_loss(student, teacher, temperature=1.0, mask=mask))
    hidden = torch.tensor([[[1.0, 1.0], [float("nan"), 1.0]]])
    assert torch.isfinite(hidden_state_loss(hidden, torch.zeros_like(hidden), mask))


def test_half_precision_logits_give_the_float32_loss():
    student, teacher = torch.randn(4, 6, 5), torch.randn(4, 6, 5)
    full = kd_loss(student, teacher, temperature=2.0)
    half = kd_loss(student.half(), teacher.bfloat16(), temperature=2.0)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=2e-2)


def test_num_items_divides_the_sum_instead_of_averaging():
    per_token = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[True, True, False]])
    assert reduce_loss(per_token, mask).item() == pytest.approx(2.0)
    assert reduce_loss(per_token, mask, num_items=8).item() == pytest.approx(0.5)


def test_cross_entropy_matches_the_heads_own_loss_and_ignores_minus_100():
    logits = torch.randn(2, 4, 3)
    labels = torch.tensor([[0, 2, -100, 1], [-100, -100, 1, 0]])
    expected = torch.nn.CrossEntropyLoss()(logits.view(-1, 3), labels.view(-1))
    assert cross_entropy_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    assert cross_entropy_loss(logits, labels, num_items=5).item() == pytest.approx(expected.item(), rel=1e-6)


def test_logits_of_magnitude_1e4_give_a_finite_kd_loss_and_gradient():
    student = (torch.randn(2, 5, 4) * 1e4).requires_grad_()
    teacher = torch.randn(2, 5, 4) * 1e4
    loss = kd_loss(student, teacher, temperature=2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()


def test_a_nan_teacher_makes_the_kd_loss_nan_instead_of_silently_zero():
    teacher = torch.tensor([[float("nan"), 0.0, 1.0]])
    assert torch.isnan(kd_loss(torch.zeros(1, 3), teacher, temperature=2.0))


@pytest.mark.parametrize("temperature", [0.05, 100.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_extreme_temperatures_and_low_precision_teachers_give_finite_losses_and_gradients(temperature, dtype):
    """T=0.05 divides logits by a small number (overflow risk in half precision), T=100 flattens both
    distributions to near-uniform (the loss must stay >= 0 and shrink, not underflow to NaN)."""
    torch.manual_seed(0)
    student = (torch.randn(3, 7, 5) * 30).requires_grad_()
    teacher = (torch.randn(3, 7, 5) * 30).to(dtype)
    loss = kd_loss(student, teacher, temperature=temperature)
    loss.backward()
    assert torch.isfinite(loss) and loss >= 0
    assert torch.isfinite(student.grad).all()
    same = kd_loss(teacher.float(), teacher, temperature=temperature)
    assert same.abs() < 1e-3  # a student equal to its teacher still costs (almost) nothing
