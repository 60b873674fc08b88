"""Run by torchrun (two CPU processes) from tests/test_outputs.py: `save_model_atomically` on every rank.

Each rank records the directory `Trainer.save_model` was given, so the test can check that all ranks
saved into the one staging directory rank 0 created.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import tiny_bert_config  # noqa: E402
from transformers import BertForSequenceClassification, Trainer, TrainingArguments  # noqa: E402

from hfkdq.outputs import save_model_atomically  # noqa: E402


def main(output_dir: str) -> None:
    args = TrainingArguments(output_dir=str(Path(output_dir) / "training"), report_to=[], use_cpu=True)
    trainer = Trainer(model=BertForSequenceClassification(tiny_bert_config(num_layers=1)), args=args)
    given = []
    save_model = trainer.save_model
    trainer.save_model = lambda path: (given.append(path), save_model(path))
    save_model_atomically(trainer, Path(output_dir) / "student")
    record = {"world_size": args.world_size, "staging": given}
    (Path(output_dir) / f"rank{args.process_index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1])
