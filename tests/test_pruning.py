"""Structured FFN pruning: exact on the kept neurons, a no-op when everything is kept, a stock model after."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_bert_config, tiny_ner_task
from transformers import (
    AutoModelForTokenClassification,
    BertForTokenClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    MPNetConfig,
    MPNetForSequenceClassification,
)

from hfkdq.pruning import (
    PRUNING_CONFIG_KEY,
    PruningError,
    check_ffn_keep,
    ffn_importance,
    find_ffn_blocks,
    neurons_to_keep,
    prune_ffn,
    prune_model,
    select_neurons,
)


@pytest.fixture(scope="module")
def task(minilm_tokenizer):
    return tiny_ner_task(minilm_tokenizer, "btc", train_sentences=32, eval_sentences=8)


def _model(task, seed=0, layers=3):
    torch.manual_seed(seed)
    config = tiny_bert_config(num_labels=len(task.label_names), num_layers=layers, hidden_size=32)
    config.id2label = dict(enumerate(task.label_names))
    config.label2id = {name: i for i, name in enumerate(task.label_names)}
    return BertForTokenClassification(config).eval()


def _batch(task, size=8):
    features = task.train_dataset.select(range(size)).remove_columns(
        [
            c
            for c in task.train_dataset.column_names
            if c not in ("input_ids", "attention_mask", "token_type_ids")
        ]
    )
    return task.data_collator([dict(row) for row in features])


def _ffn_io(model, batch, replace_inputs=None):
    """Each layer's FFN input (to up), intermediate activation (into down) and output (of down).

    With `replace_inputs`, each layer's FFN input is replaced by the given tensor, so a pruned layer
    can be compared with the original on exactly the same input.
    """
    records = []
    handles = []
    for block in find_ffn_blocks(model):
        record = {}
        records.append(record)

        def up_hook(_module, args, record=record, layer=block.layer):
            if replace_inputs is not None:
                record["input"] = replace_inputs[layer]
                return (replace_inputs[layer],)
            record["input"] = args[0]
            return None

        handles.append(block.up.register_forward_pre_hook(up_hook))
        handles.append(
            block.down.register_forward_pre_hook(lambda _m, a, r=record: r.__setitem__("act", a[0]))
        )
        handles.append(
            block.down.register_forward_hook(lambda _m, _a, out, r=record: r.__setitem__("out", out))
        )
    with torch.no_grad():
        model(**batch)
    for handle in handles:
        handle.remove()
    return records


def test_pruned_model_keeps_the_kept_neurons_exact_and_drops_only_the_pruned_contributions(task):
    original = _model(task).double()
    pruned = _model(task).double()
    batch = _batch(task)
    report = prune_model(pruned, 0.5, task.train_dataset, task.data_collator, max_samples=16)
    before = _ffn_io(original, batch)
    after = _ffn_io(pruned, batch, replace_inputs=[record["input"] for record in before])
    for layer, kept in enumerate(report["kept_neurons"]):
        width = original.config.intermediate_size
        assert len(kept) == width // 2
        # the kept neurons' activations are the original ones (float64: up to the GEMM's summation order)
        torch.testing.assert_close(after[layer]["act"], before[layer]["act"][..., kept], rtol=0, atol=1e-13)
        # the FFN output is the original minus exactly the removed neurons' contributions
        removed = sorted(set(range(width)) - set(kept))
        down = find_ffn_blocks(original)[layer].down
        contribution = before[layer]["act"][..., removed] @ down.weight[:, removed].T
        torch.testing.assert_close(
            after[layer]["out"], before[layer]["out"] - contribution, rtol=0, atol=1e-12
        )


def test_keeping_every_neuron_gives_an_identical_model(task):
    original = _model(task)
    pruned = _model(task)
    report = prune_model(pruned, 1.0, task.train_dataset, task.data_collator, max_samples=16)
    assert report["width"] == original.config.intermediate_size
    assert all(kept == list(range(report["width"])) for kept in report["kept_neurons"])
    original_state, pruned_state = original.state_dict(), pruned.state_dict()
    assert original_state.keys() == pruned_state.keys()
    assert all(torch.equal(original_state[key], pruned_state[key]) for key in original_state)
    batch = _batch(task)
    with torch.no_grad():
        assert torch.equal(original(**batch).logits, pruned(**batch).logits)


def test_a_pruned_model_saves_and_loads_as_a_stock_model(task, tmp_path):
    model = _model(task)
    prune_model(model, 0.25, task.train_dataset, task.data_collator, max_samples=16)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.intermediate_size == 16
    assert getattr(loaded.config, PRUNING_CONFIG_KEY)["original_width"] == 64
    batch = _batch(task)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_neurons_that_never_fire_are_pruned_first(task):
    model = _model(task)
    dead = [3, 10, 17, 40, 41, 63]
    for block in find_ffn_blocks(model):
        with torch.no_grad():
            block.up.weight[dead] = 0.0
            block.up.bias[dead] = 0.0  # GELU(0) = 0: these neurons contribute nothing, gradient or not
    for method in ("taylor", "fisher"):
        scores = ffn_importance(model, task.train_dataset, task.data_collator, method=method, max_samples=16)
        assert scores.shape == (3, 64)
        assert torch.all(scores[:, dead] == 0) and torch.all(scores >= 0)
        kept = select_neurons(scores, 32)
        assert all(not set(dead) & set(layer) for layer in kept)


def test_scoring_leaves_the_model_as_it_was(task):
    model = _model(task)
    model.classifier.requires_grad_(False)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    ffn_importance(model, task.train_dataset, task.data_collator, max_samples=8)
    assert not model.training
    assert all(parameter.grad is None for parameter in model.parameters())
    assert (
        not model.classifier.weight.requires_grad
        and model.bert.embeddings.word_embeddings.weight.requires_grad
    )
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(
            lambda: MPNetForSequenceClassification(
                MPNetConfig(
                    vocab_size=99,
                    hidden_size=32,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    intermediate_size=48,
                )
            ),
            id="mpnet",
        ),
        pytest.param(
            lambda: DistilBertForSequenceClassification(
                DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=48)
            ),
            id="distilbert",
        ),
    ],
)
def test_other_bert_style_families_prune_to_their_own_stock_config(model, tmp_path):
    model = model().eval()
    ids = torch.randint(5, 99, (2, 7))
    prune_model(model, 0.5, importance="magnitude")
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert [block.width for block in find_ffn_blocks(loaded)] == [24, 24]
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -0.5, math.nan, math.inf, -math.inf, "half", None])
def test_a_keep_share_outside_zero_to_one_is_refused_in_one_line(bad):
    with pytest.raises(PruningError, match="--ffn_keep must be") as error:
        check_ffn_keep(bad)
    assert "\n" not in str(error.value)


def test_a_keep_share_that_leaves_no_neuron_is_refused_before_scoring(task):
    model = _model(task)
    assert neurons_to_keep(1 / 64, 64) == 1
    with pytest.raises(PruningError, match="rounds to none"):
        prune_model(model, 0.005, task.train_dataset, task.data_collator)
    assert model.config.intermediate_size == 64


def test_layers_must_keep_the_same_number_of_neurons(task):
    model = _model(task, layers=2)
    with pytest.raises(PruningError, match="same number"):
        prune_ffn(model, [[0, 1, 2], [0, 1]])
    with pytest.raises(PruningError, match="distinct"):
        prune_ffn(model, [[0, 0], [0, 1]])


def test_taylor_importance_needs_labelled_training_data(task):
    model = _model(task)
    with pytest.raises(PruningError, match="labelled training examples"):
        prune_model(model, 0.5)
    with pytest.raises(PruningError, match="unknown --importance"):
        prune_model(model, 0.5, task.train_dataset, task.data_collator, importance="random")
