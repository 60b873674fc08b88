"""Teacher preparation: what the teacher is fine-tuned as, whatever form its checkpoint is stored in."""

import torch
from conftest import tiny_bert_config, tiny_ner_task
from transformers import BertModel

from hfkdq import DistillationArguments
from hfkdq.arguments import ModelArguments
from hfkdq.teacher import prepare_teacher


def test_a_half_precision_checkpoint_is_fine_tuned_in_float32(minilm_tokenizer, tmp_path):
    """transformers 5 loads fp16-stored weights as fp16; training those without fp32 master weights
    silently loses small updates, so the teacher is always fine-tuned in float32."""
    torch.manual_seed(0)
    BertModel(tiny_bert_config(num_labels=2, num_layers=2, hidden_size=32)).half().save_pretrained(
        tmp_path / "fp16-encoder"
    )
    task = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=16, eval_sentences=8)
    args = DistillationArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
    )
    model_args = ModelArguments(
        teacher_name_or_path=str(tmp_path / "fp16-encoder"), teacher_select_best=False
    )

    teacher = prepare_teacher(model_args, args, task, minilm_tokenizer).model

    assert {parameter.dtype for parameter in teacher.parameters()} == {torch.float32}
