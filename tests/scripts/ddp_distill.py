"""Run by `accelerate launch` from tests/test_multiprocess.py: distill on every rank, dump the weights.

Each rank sees a different shard of the data, so equal weights at the end prove that both the
student and the projections were gradient-synced.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import tiny_ner_task, tiny_token_models  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from hfkdq import DistillationArguments, DistillationTrainer  # noqa: E402
from hfkdq.resources import packaged_minilm_path  # noqa: E402


def main(output_dir: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_minilm_path()))
    task = tiny_ner_task(tokenizer, "btc", train_sentences=64, eval_sentences=16)
    teacher, student = tiny_token_models(task.label_names)
    args = DistillationArguments(
        output_dir=output_dir,
        max_steps=6,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        logging_steps=2,
        save_strategy="no",
        report_to=[],
        hidden_weight=1.0,
        attention_weight=1.0,
        seed=3,
    )
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=task.train_dataset,
        processing_class=tokenizer,
        data_collator=task.data_collator,
    )
    trainer.train()
    rank = trainer.args.process_index
    state = {
        key: value.detach().cpu()
        for key, value in trainer.accelerator.unwrap_model(trainer.model).state_dict().items()
    }
    torch.save(
        {"world_size": trainer.args.world_size, "state": state, "log_history": trainer.state.log_history},
        Path(output_dir) / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1])
