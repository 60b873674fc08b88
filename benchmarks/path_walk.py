"""Follow a run directory through quantize -> report -> push: every hfkdq function that is handed a path
inside it, in call order. Objects passed instead of paths shorten the walk; a module the walk leaves and
comes back to is a "return".

    python benchmarks/path_walk.py [--output benchmarks/results/path_walk.json]

It distils a tiny random BERT for one epoch on a slice of the embedded BTC (seconds), quantizes it with
torch-int8 through the recipe's --quantize, then plans the push (`hfkdq.hub.plan_push`, no network).
Recording starts when the recipe enters `quantize_student`. A call counts as a stop when one of its
arguments is a str/Path under the run directory; consecutive stops in one module are one visit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "data" / "ner_recipe_tiny.yaml"


def tiny_teacher(path: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from hfkdq.resources import packaged_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(packaged_minilm_path()))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def record_walk(run_dir: Path, action) -> list[tuple[str, str]]:
    """(module, function) of each hfkdq call, from `quantize_student` on, that receives a path in `run_dir`."""
    root = str(run_dir.resolve())
    stops: list[tuple[str, str]] = []
    started = False

    def inside(value) -> bool:
        if isinstance(value, str | Path):
            try:
                return str(Path(value).resolve()).startswith(root)
            except (OSError, ValueError):
                return False
        return False

    def profile(frame, event, _arg):
        nonlocal started
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("hfkdq"):
            return
        code = frame.f_code
        started = started or code.co_name == "quantize_student"
        if not started:
            return
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if any(inside(frame.f_locals.get(name)) for name in names):
            stops.append((module, code.co_name))

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return stops


def summarize(stops: list[tuple[str, str]]) -> dict:
    visits: list[str] = []
    for module, _ in stops:
        if not visits or visits[-1] != module:
            visits.append(module)
    returns = sum(1 for index, module in enumerate(visits) if module in visits[:index])
    return {
        "stops": len(stops),
        "modules": len(set(visits)),
        "returns": returns,
        "visits": visits,
        "calls": [f"{module}.{function}" for module, function in stops],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None, help="Also write the walk as JSON here.")
    options = parser.parse_args()
    import hfkdq.pipeline

    run_recipe = getattr(hfkdq.pipeline, "run_recipe", None)  # there before the commands/ package
    if run_recipe is None:
        from hfkdq.commands.distill import run_recipe
    from hfkdq.hub import plan_push
    from hfkdq.tasks.ner import NerDataArguments, build_ner_task

    with tempfile.TemporaryDirectory() as scratch:
        teacher = tiny_teacher(Path(scratch) / "teacher")
        run_dir = Path(scratch) / "run"
        flags = [str(CONFIG), "--teacher_name_or_path", str(teacher), "--output_dir", str(run_dir)]
        flags += ["--quantize", "torch-int8", "--latency_repeats", "1", "--latency_warmup", "0"]

        def quantize_report_push() -> None:
            run_recipe(NerDataArguments, build_ner_task, flags)
            plan_push(run_dir, "you/walk")

        walk = summarize(record_walk(run_dir, quantize_report_push))
    print(json.dumps({key: walk[key] for key in ("stops", "modules", "returns", "visits")}, indent=2))
    if options.output:
        Path(options.output).write_text(json.dumps(walk, indent=2) + "\n")


if __name__ == "__main__":
    main()
