"""The names of what a run directory holds, in one place: the recipes and `hfkdq quantize` write them,
`hfkdq report`, `hfkdq evaluate` and `hfkdq push` read them.

    <output_dir>/
        results.json          the run: teacher, student, distillation settings, metrics (RESULTS_FILE)
        student/              the fp32 student + tokenizer (STUDENT_DIR); pruned + recovered with --prune_ffn_keep
        unpruned-student/     the distilled student before pruning, with --prune_ffn_keep (UNPRUNED_STUDENT_DIR)
        teacher/              a teacher fine-tuned by the run (TEACHER_DIR)
        plain-student/        the no-distillation baseline, with --compare_plain (PLAIN_STUDENT_DIR)
        teacher-cache/        the teacher's stored logits, with --teacher_cache auto (TEACHER_CACHE_DIR)
        quantized/            one folder per method + results.json, REPORT.md, pareto.png (QUANTIZED_DIR)
            <method>/hfkdq_quantization.json   how the variant was made and loads (METADATA_FILE)

A leaf module: it imports nothing, so every layer may use it.
"""

from __future__ import annotations

RESULTS_FILE = "results.json"
"""A run's results (in the run directory) and a quantization's results (in quantized/) share this name."""
REPORT_FILE = "REPORT.md"
PLOT_FILE = "pareto.png"
METADATA_FILE = "hfkdq_quantization.json"
"""Written into every quantized variant: method, backend, head, options, how to load it."""
VERIFICATION_FILE = "verification.json"
"""Written into every quantized variant: how its predictions compare with the fp32 student's."""

STUDENT_DIR = "student"
TEACHER_DIR = "teacher"
PLAIN_STUDENT_DIR = "plain-student"
UNPRUNED_STUDENT_DIR = "unpruned-student"
TEACHER_CACHE_DIR = "teacher-cache"
QUANTIZED_DIR = "quantized"

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""The weights `save_pretrained` writes for an unsharded model."""
WEIGHT_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
"""The index `save_pretrained` writes for a sharded model instead of one weights file."""
