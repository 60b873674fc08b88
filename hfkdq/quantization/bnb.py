"""bitsandbytes variants: LLM.int8 (8-bit) and 4-bit (NF4 / FP4, optional double quantization).

The model is quantized while transformers loads it (`BitsAndBytesConfig`) and saved with
`save_pretrained`, so the output is an ordinary HF directory whose config carries the quantization
settings. Three choices here come from measurements on this stack:

* The classifier head stays in fp32 (`llm_int8_skip_modules`): it is tiny, and quantizing the last
  projection costs the most accuracy per byte saved.
* The model is saved *before* any forward pass. bitsandbytes' CPU 4-bit kernel repacks weights on
  the first forward (block scales to bf16); a model saved after that reloads with slightly different
  logits. Saving first makes the save -> reload round trip exact.
* The CPU 4-bit kernel needs in_features to be a multiple of the block size (64) and out_features a
  multiple of 32; other Linear layers would crash in forward, so on CPU they are kept in fp32 and listed
  in the metadata.

On CPU bitsandbytes saves memory, not time; with CUDA available the model is placed on the GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfkdq.heads import auto_class_for
from hfkdq.outputs import atomic_output_dir, check_output_dir
from hfkdq.quantization.artifacts import (
    SavedModel,
    save_tokenizer,
    write_metadata,
)

logger = logging.getLogger(__name__)

DEFAULT_SKIP_MODULES = ("classifier",)
CPU_4BIT_BLOCK = 64
CPU_4BIT_ROWS = 32


def default_device() -> str:
    """'cuda' when a GPU is visible (where bitsandbytes is fast), else 'cpu' (memory savings only)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_map_for(device: str | None) -> dict[str, Any]:
    """A `device_map` that puts the whole model on one device."""
    device = device or default_device()
    return {"": 0 if device == "cuda" else device}


def default_compute_dtype(device: str | None = None):
    """4-bit matmul dtype: fp16 on CUDA (fast kernels), fp32 on CPU (no fp16 speed-up there, better accuracy)."""
    import torch

    return torch.float16 if (device or default_device()) == "cuda" else torch.float32


def cpu_4bit_incompatible_linears(model: SavedModel) -> list[str]:
    """Names of Linear layers the CPU 4-bit kernel cannot run (shape not a multiple of its blocks).

    The model is built on the meta device, so this costs no memory and reads no weights.
    """
    import torch

    with torch.device("meta"):
        skeleton = model.auto_class().from_config(model.config)
    return [
        name
        for name, module in skeleton.named_modules()
        if isinstance(module, torch.nn.Linear)
        and (module.in_features % CPU_4BIT_BLOCK or module.out_features % CPU_4BIT_ROWS)
    ]


def build_bnb_config(
    bits: int,
    *,
    quant_type: str = "nf4",
    double_quant: bool = False,
    compute_dtype: Any = None,
    skip_modules: Sequence[str] = DEFAULT_SKIP_MODULES,
    threshold: float = 6.0,
):
    """The `BitsAndBytesConfig` for 8-bit (LLM.int8, outlier `threshold`) or 4-bit (nf4/fp4) weights."""
    import torch
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(
            load_in_8bit=True, llm_int8_skip_modules=list(skip_modules), llm_int8_threshold=threshold
        )
    if bits == 4:
        if quant_type not in ("nf4", "fp4"):
            raise ValueError(f"4-bit quant_type must be 'nf4' or 'fp4', got {quant_type!r}")
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quant_type,
            bnb_4bit_use_double_quant=double_quant,
            bnb_4bit_compute_dtype=compute_dtype or torch.float32,
            llm_int8_skip_modules=list(skip_modules),
        )
    raise ValueError(f"bitsandbytes quantizes to 8 or 4 bits, got bits={bits!r}")


def quantize_bnb(
    model: SavedModel,
    output_dir: str | Path,
    *,
    bits: int,
    quant_type: str = "nf4",
    double_quant: bool = False,
    compute_dtype: str | None = None,
    skip_modules: Sequence[str] = DEFAULT_SKIP_MODULES,
    device: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Load the student through bitsandbytes at `bits` bits and save it as a reloadable HF directory."""
    import torch

    output_dir = check_output_dir(output_dir, overwrite)
    device = device or default_device()
    compute = getattr(torch, compute_dtype) if compute_dtype else default_compute_dtype(device)
    skipped = list(skip_modules)
    kernel_skips: list[str] = []
    if bits == 4 and device == "cpu":
        kernel_skips = [name for name in cpu_4bit_incompatible_linears(model) if name not in skipped]
        if kernel_skips:
            logger.warning(
                "Keeping %d Linear layer(s) in fp32: the bitsandbytes CPU 4-bit kernel needs in_features %% %d == 0 "
                "and out_features %% %d == 0 (%s).",
                len(kernel_skips),
                CPU_4BIT_BLOCK,
                CPU_4BIT_ROWS,
                ", ".join(kernel_skips[:5]) + (" ..." if len(kernel_skips) > 5 else ""),
            )
    config = build_bnb_config(
        bits,
        quant_type=quant_type,
        double_quant=double_quant,
        compute_dtype=compute,
        skip_modules=skipped + kernel_skips,
    )
    quantized = model.auto_class().from_pretrained(
        model.path, quantization_config=config, device_map=device_map_for(device), dtype=torch.float32
    )
    method = "bnb-8bit" if bits == 8 else ("bnb-4bit" if quant_type == "nf4" else "bnb-4bit-fp4")
    options = {
        "bits": bits,
        "quant_type": quant_type if bits == 4 else None,
        "double_quant": double_quant if bits == 4 else None,
        "compute_dtype": str(compute).removeprefix("torch.") if bits == 4 else None,
        "skip_modules": skipped,
        "device": device,
    }
    with atomic_output_dir(output_dir, overwrite) as staging:
        quantized.save_pretrained(staging)  # before any forward pass: see the module docstring
        save_tokenizer(model.path, staging)
        write_metadata(
            staging,
            method=method,
            backend="bitsandbytes",
            source=model,
            options=options,
            load_with="hfkdq.quantization.bnb.load_bnb(dir)  # = AutoModelFor...from_pretrained(dir, dtype=float32)",
            extra={"kept_fp32_for_cpu_kernel": kernel_skips},
        )
    return output_dir


def load_bnb(directory: str | Path, head: str, device: str | None = None):
    """Reload a bitsandbytes variant with its non-quantized parts in fp32.

    Without `dtype=float32` transformers loads bitsandbytes models with fp16 embeddings/norms/head,
    which changes the logits; fp32 reproduces those of the freshly quantized model.
    """
    import torch

    model = auto_class_for(head).from_pretrained(
        Path(directory), device_map=device_map_for(device), dtype=torch.float32
    )
    return model.eval()
