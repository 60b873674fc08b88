"""The two calls a user of `hfkdq.quantization` needs: `quantize` one saved model with one method, and
`load_variant` to load any variant back, whatever its backend (read from its metadata file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hfkdq.heads import head_of
from hfkdq.quantization.artifacts import SavedModel, inspect_model_dir, read_metadata
from hfkdq.quantization.registry import BACKENDS, check_options, get_method, require_backend


def quantize(model_dir: str | Path | SavedModel, method: str, output_dir: str | Path, **options: Any) -> Path:
    """Write the `method` variant of the fp32 model in `model_dir` to `output_dir`; return `output_dir`.

    `options` go to the backend: `overwrite` for every method, else those in the method's registry entry
    (e.g. `per_channel`, `optimize`, `cpu_target`, `calibration_dataset`, `double_quant`, `skip_modules`);
    another name fails before any work. The output directory appears only when complete. A `SavedModel`
    (a model already inspected, or just saved and described from memory) is not inspected again.
    """
    entry = get_method(method)
    check_options(entry, options)
    require_backend(entry)
    model = model_dir if isinstance(model_dir, SavedModel) else inspect_model_dir(model_dir)
    function = getattr(entry.backend.load_module(), entry.function)
    return Path(function(model, Path(output_dir), **{**entry.defaults, **options}))


def load_variant(directory: str | Path | SavedModel, device: str | None = None):
    """Load any variant written by `quantize` (or a plain fp32 HF directory) ready for inference.

    The backend is read from the directory's `hfkdq_quantization.json`; without it the directory is
    loaded as an fp32 `AutoModelFor...Classification`. `device` places fp32 and bitsandbytes models
    (None: fp32 on CPU, bitsandbytes on its default device); ONNX Runtime and torch-int8 variants run
    on the CPU whatever it says (see `method_device`).
    """
    if isinstance(directory, SavedModel):  # an fp32 model already described: nothing to read again
        return _load_fp32(directory, device)
    directory = Path(directory)
    metadata = read_metadata(directory)
    if metadata.get("backend") is None:
        return _load_fp32(inspect_model_dir(directory), device)
    backend = BACKENDS.get(metadata["backend"])
    if backend is None:
        raise ValueError(
            f"{directory}: unknown backend {metadata['backend']!r} in its hfkdq_quantization.json"
        )
    require_backend(get_method(metadata["method"]))
    head = metadata.get("head")
    if head is None:
        from transformers import AutoConfig

        head = head_of(AutoConfig.from_pretrained(directory), directory)
    return getattr(backend.load_module(), backend.loader)(directory, head, device=device)


def _load_fp32(model: SavedModel, device: str | None):
    import torch

    loaded = model.auto_class().from_pretrained(model.path, dtype=torch.float32).eval()
    return loaded.to(device) if device else loaded
