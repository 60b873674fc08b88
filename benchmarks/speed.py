#!/usr/bin/env python
"""Where the int8 student's speed is, and where it is not: a profile of one finished headline stage.

Reads a ``<task>-L3`` stage of ``benchmarks/headline.py`` (teacher, student, quantized/torch-int8,
quantized/onnx-int8), adds the ONNX variants the headline does not ship (fp32 export, static QDQ int8
calibrated on training examples, dynamic int8 with ORT's full graph fusions), and measures, side by
side and interleaved round by round:

* latency at batch 1 and 32, at the headline's sequence length (128) and at the data's real lengths
  (batch 1: the median example; batch 32: the median padded length of a random batch of 32);
* the same at 1 and 2 threads (torch ``set_num_threads``; ORT ``intra_op_num_threads``);
* ORT's profiler on the int8 and fp32 graphs: time per operator type (dynamic activation
  quantization, integer MatMuls, the fp32 Softmax / LayerNorm / GELU that int8 leaves alone);
* torch.profiler on the fp32 teacher and torch int8 student: time per aten operator;
* py-spy (when installed: the ``bench`` extra) on a forward loop of the teacher and the int8
  student: which Python frames the samples land in, i.e. how much is framework overhead.

    python benchmarks/speed.py --stage_dir outputs/bench/mpnet_cpu/conll2003-L3 --task conll2003 \\
        --results benchmarks/results/mpnet_cpu/speed.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hfkdq.evaluation import dummy_inputs  # noqa: E402
from hfkdq.heads import head_of  # noqa: E402
from hfkdq.quantization import load_variant, quantize  # noqa: E402

SPLIT_FILES = {
    "conll2003": {"train": "conll2003/train.txt", "eval": "conll2003/test.txt"},
    "sst2": {"train": "glue/sst2/train.tsv", "eval": "glue/sst2/validation.tsv"},
}


def encode_split(
    task: str, data_dir: Path, split: str, tokenizer, max_length: int, samples: int | None = None
):
    """Tokenized texts of `split` ("train", or "eval": CoNLL test / SST-2 validation), optionally a random sample."""
    path = data_dir / SPLIT_FILES[task][split]
    if task == "conll2003":
        from hfkdq.data.conll import read_conll

        texts = [list(sentence) for sentence in read_conll(path)["tokens"]]
    else:
        from hfkdq.data.glue import load_glue_dataset

        texts = list(load_glue_dataset("sst2", {split: str(path)})[split]["sentence"])
    if samples is not None:
        texts = random.Random(0).sample(texts, samples)
    return tokenizer(texts, is_split_into_words=task == "conll2003", truncation=True, max_length=max_length)


def real_lengths(task: str, data_dir: Path, tokenizer) -> list[int]:
    """Token counts of the evaluation split the headline quotes (CoNLL test, SST-2 validation)."""
    return [len(ids) for ids in encode_split(task, data_dir, "eval", tokenizer, 512)["input_ids"]]


def typical_shapes(lengths: list[int], seed: int = 0) -> dict[str, tuple[int, int]]:
    """(batch, seq) pairs: the headline's fixed 128 and what dynamic padding really gives on this data."""
    rng = random.Random(seed)
    padded_32 = [max(rng.sample(lengths, 32)) for _ in range(200)]
    return {
        "b1_s128": (1, 128),
        "b32_s128": (32, 128),
        "b1_real": (1, int(statistics.median(lengths))),
        "b32_real": (32, int(statistics.median(padded_32))),
    }


def ort_session_options(threads: int | None, profile_prefix: str | None = None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def load(path: Path, threads: int | None, profile_prefix: str | None = None):
    """A variant, with ORT's thread count (or profiler) set where it is an ONNX model."""
    if (path / "model.onnx").is_file():
        from transformers import AutoConfig

        from hfkdq.quantization.onnx import load_onnx

        head = head_of(AutoConfig.from_pretrained(path), path)
        return load_onnx(path, head, session_options=ort_session_options(threads, profile_prefix))
    return load_variant(path)  # torch int8, or a plain fp32 directory (teacher, student)


@torch.inference_mode()
def interleaved_latency(
    models: dict[str, object], shape: tuple[int, int], rounds: int, per_round: int
) -> dict[str, dict]:
    """Median ms per forward pass; every round times each model in turn, so drift hits all alike."""
    batch, seq = shape
    inputs = {name: dummy_inputs(model, batch, seq) for name, model in models.items()}
    for name, model in models.items():
        for _ in range(2):
            model(**inputs[name])
    timings: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for name, model in models.items():
            for _ in range(per_round):
                started = time.perf_counter()
                model(**inputs[name])
                timings[name].append((time.perf_counter() - started) * 1000)
    return {
        name: {"median_ms": round(statistics.median(values), 3), "runs": len(values)}
        for name, values in timings.items()
    }


def ort_profile(path: Path, shape: tuple[int, int], runs: int, scratch: Path) -> dict[str, float]:
    """Share of ORT node time per operator type (percent), from ORT's own profiler."""
    model = load(path, threads=None, profile_prefix=str(scratch / f"{path.name}-{shape[0]}x{shape[1]}"))
    inputs = dummy_inputs(model, *shape)
    for _ in range(runs):
        model(**inputs)
    trace = Path(model.model.end_profiling())
    per_op: dict[str, float] = defaultdict(float)
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values()) or 1.0
    return {op: round(100 * us / total, 1) for op, us in sorted(per_op.items(), key=lambda item: -item[1])}


@torch.inference_mode()
def torch_profile(model, shape: tuple[int, int], runs: int, top: int = 8) -> dict[str, float]:
    """Share of self CPU time per aten operator (percent), from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    inputs = dummy_inputs(model, *shape)
    model(**inputs)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(runs):
            model(**inputs)
    events = [event for event in profiler.key_averages() if event.self_cpu_time_total > 0]
    total = sum(event.self_cpu_time_total for event in events) or 1.0
    events.sort(key=lambda event: -event.self_cpu_time_total)
    return {event.key: round(100 * event.self_cpu_time_total / total, 1) for event in events[:top]}


def forward_loop(path: Path, shape: tuple[int, int], seconds: float) -> None:
    """What py-spy samples: one variant's forward pass, over and over, once it is loaded and warm."""
    model = load(path, threads=None)
    inputs = dummy_inputs(model, *shape)
    with torch.inference_mode():
        model(**inputs)
        print("ready", flush=True)
        ends = time.perf_counter() + seconds
        while time.perf_counter() < ends:
            model(**inputs)


def pyspy_profile(path: Path, shape: tuple[int, int], seconds: float, scratch: Path, top: int = 8) -> dict:
    """Share of py-spy samples (percent) per innermost Python frame, over a warm forward loop of `path`.

    py-spy attaches only once the model is loaded and has run once, so imports and loading are not
    in the profile.
    """
    import shutil
    import subprocess

    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).is_file():
        return {"skipped": "py-spy is not installed (pip install 'hfkdq[bench]')"}
    output = scratch / f"{path.name}-{shape[0]}x{shape[1]}.txt"
    loop = [sys.executable, __file__, "--loop", str(path), "--loop_shape", f"{shape[0]}x{shape[1]}"]
    with subprocess.Popen(
        [*loop, "--loop_seconds", str(seconds + 5)], stdout=subprocess.PIPE, text=True
    ) as looping:
        if looping.stdout.readline().strip() != "ready":
            return {"skipped": f"the forward loop of {path} did not start"}
        command = [pyspy, "record", "-r", "200", "-d", str(int(seconds)), "-f", "raw", "-o", str(output)]
        finished = subprocess.run([*command, "--pid", str(looping.pid)], capture_output=True, text=True)
        looping.wait()
    if finished.returncode != 0 or not output.is_file():
        return {"skipped": f"py-spy failed: {finished.stderr.strip()[-300:]}"}
    per_frame: dict[str, int] = defaultdict(int)
    for line in output.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        name, _, location = stack.split(";")[-1].partition(" (")
        per_frame[f"{name} ({location.rstrip(')').rsplit('/', 1)[-1]})"] += int(count)
    total = sum(per_frame.values()) or 1
    ranked = sorted(per_frame.items(), key=lambda item: -item[1])[:top]
    return {frame: round(100 * count / total, 1) for frame, count in ranked}


def build_extra_variants(stage_dir: Path, task: str, data_dir: Path, tokenizer) -> dict[str, Path]:
    """onnx-fp32, static QDQ int8 (100 calibration examples of the training split) and dynamic int8 + O99."""
    extra_dir = stage_dir / "speed-variants"
    student = stage_dir / "student"
    made = {}
    for name, method in (
        ("onnx-fp32", "onnx-fp32"),
        ("onnx-int8-static", "onnx-int8-static"),
        ("onnx-int8-o99", "onnx-int8"),
    ):
        target = extra_dir / name
        if not (target / "model.onnx").is_file():  # built once; a resumed run reuses it
            options = {"optimize": 99} if name == "onnx-int8-o99" else {}
            if method == "onnx-int8-static":
                options["calibration_dataset"] = calibration_examples(task, data_dir, tokenizer)
            quantize(student, method, target, overwrite=True, **options)
        made[name] = target
    return made


def calibration_examples(task: str, data_dir: Path, tokenizer, samples: int = 100):
    from datasets import Dataset

    return Dataset.from_dict(dict(encode_split(task, data_dir, "train", tokenizer, 128, samples)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--loop", type=Path, help="Only run this variant's forward pass in a loop (for py-spy)."
    )
    parser.add_argument("--loop_shape", default="1x128", help="BATCHxSEQ for --loop.")
    parser.add_argument("--loop_seconds", type=float, default=10.0)
    if "--loop" in sys.argv:
        options, _ = parser.parse_known_args()
        batch, seq = (int(value) for value in options.loop_shape.split("x"))
        forward_loop(options.loop, (batch, seq), options.loop_seconds)
        return
    parser.add_argument("--stage_dir", type=Path, required=True)
    parser.add_argument("--task", choices=("conll2003", "sst2"), required=True)
    parser.add_argument("--data_dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--threads", default="1,2", help="Thread counts to compare.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per_round", type=int, default=4)
    parser.add_argument("--profile_runs", type=int, default=10)
    parser.add_argument("--pyspy_seconds", type=float, default=10.0, help="Per py-spy profile (0: skip).")
    options = parser.parse_args()
    from transformers import AutoTokenizer

    stage = options.stage_dir
    tokenizer = AutoTokenizer.from_pretrained(stage / "student")
    lengths = real_lengths(options.task, options.data_dir, tokenizer)
    shapes = typical_shapes(lengths)
    variants = {
        "teacher (fp32 torch)": stage / "teacher",
        "student (fp32 torch)": stage / "student",
        "torch-int8": stage / "quantized" / "torch-int8",
        "onnx-int8": stage / "quantized" / "onnx-int8",
    }
    variants |= build_extra_variants(stage, options.task, options.data_dir, tokenizer)
    payload = {
        "stage_dir": str(stage),
        "task": options.task,
        "lengths": {
            "examples": len(lengths),
            "median": statistics.median(lengths),
            "p90": sorted(lengths)[int(0.9 * len(lengths))],
            "max": max(lengths),
        },
        "shapes": shapes,
        "latency": {},
    }
    default_threads = torch.get_num_threads()
    for threads in [int(value) for value in options.threads.split(",")]:
        torch.set_num_threads(threads)
        models = {name: load(path, threads) for name, path in variants.items()}
        for shape_name, shape in shapes.items():
            print(f"threads={threads} {shape_name} {shape}", flush=True)
            payload["latency"][f"threads_{threads}/{shape_name}"] = interleaved_latency(
                models, shape, options.rounds, options.per_round
            )
        del models
    torch.set_num_threads(default_threads)
    with tempfile.TemporaryDirectory(prefix="hfkdq-ort-profile-") as scratch:
        if options.pyspy_seconds > 0:
            payload["pyspy_profile"] = {
                f"{name}/{shape_name}": pyspy_profile(
                    variants[name], shapes[shape_name], options.pyspy_seconds, Path(scratch)
                )
                for name in ("teacher (fp32 torch)", "onnx-int8")
                for shape_name in ("b1_real", "b32_s128")
            }
        payload["ort_profile"] = {
            f"{name}/{shape_name}": ort_profile(
                variants[name], shapes[shape_name], options.profile_runs, Path(scratch)
            )
            for name in ("onnx-int8", "onnx-fp32", "onnx-int8-static")
            for shape_name in ("b32_s128", "b1_real")
        }
    payload["torch_profile"] = {
        f"{name}/{shape_name}": torch_profile(
            load(variants[name], None), shapes[shape_name], options.profile_runs
        )
        for name in ("teacher (fp32 torch)", "torch-int8")
        for shape_name in ("b32_s128", "b1_real")
    }
    payload["size_bytes"] = {name: _size(path) for name, path in variants.items()}
    options.results.parent.mkdir(parents=True, exist_ok=True)
    options.results.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload["latency"], indent=1))


def _size(path: Path) -> int:
    return sum(
        item.stat().st_size
        for item in path.iterdir()
        if item.suffix in (".onnx", ".safetensors", ".bin", ".pt")
    )


if __name__ == "__main__":
    main()
