"""PyTorch dynamic int8: `torch.ao.quantization.quantize_dynamic` on the encoder's nn.Linear layers.

This is the variant that needs nothing but torch, and it is fast on x86 (fbgemm/x86 engine) and ARM
(qnnpack). transformers cannot `from_pretrained` a dynamically quantized model, so the output holds
the fp32 config + tokenizer and the quantized state dict; `load_torch_int8(dir)` rebuilds the model
from the config, applies the same quantization and loads the state dict (with `weights_only=True`:
no pickled code is executed). `README.md` in the output states this format.

The classifier head stays fp32, as for the other backends. torch 2.13 marks `torch.ao.quantization`
as deprecated in favour of torchao; it still works and is what this stack ships.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from hfkdq.heads import HEAD_SUFFIXES, auto_class_for, head_of
from hfkdq.outputs import atomic_output_dir, check_output_dir
from hfkdq.quantization.artifacts import (
    SavedModel,
    read_metadata,
    save_tokenizer,
    write_metadata,
)

STATE_DICT_FILE = "quantized_state_dict.pt"
DEFAULT_SKIP_MODULES = ("classifier",)

README = """# PyTorch dynamic int8 model (hfkdq `torch-int8`)

Made by `torch.ao.quantization.quantize_dynamic(model, {{Linear layers}}, dtype=torch.qint8)`.
`transformers` cannot load this directory with `from_pretrained`: a dynamically quantized model
has packed int8 weights that only exist after `quantize_dynamic` has been applied.

Files
- `config.json`, tokenizer files: the fp32 student's config (label maps included) and tokenizer.
- `{state_dict}`: `torch.save(quantized_model.state_dict())`, loadable with `weights_only=True`.
- `hfkdq_quantization.json`: `quantized_modules` lists the Linear layers that were quantized
  (the classifier head is kept fp32); `quantized_engine` the engine they were packed with.

Load
```python
from hfkdq.quantization.torch_dynamic import load_torch_int8
model = load_torch_int8("{name}")
```
or by hand: build `AutoModel{head_class}.from_config(AutoConfig.from_pretrained(dir))`, apply
`quantize_dynamic` with `{{name: default_dynamic_qconfig for name in quantized_modules}}`, then
`load_state_dict(torch.load(dir / "{state_dict}", weights_only=True))`.
"""


def _quantize(model, module_names: Iterable[str]):
    """Quantize exactly the named Linear layers of `model` (a copy; the original is untouched)."""
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*deprecated.*")
        return quantize_dynamic(
            model, {name: default_dynamic_qconfig for name in module_names}, dtype=torch.qint8, inplace=False
        )


def linears_to_quantize(model, skip_modules: Sequence[str] = DEFAULT_SKIP_MODULES) -> list[str]:
    """Names of the nn.Linear layers to quantize: all but those under a `skip_modules` prefix."""
    import torch

    def skipped(name: str) -> bool:
        return any(
            name == skip or name.startswith(skip + ".") or name.endswith("." + skip) for skip in skip_modules
        )

    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not skipped(name)
    ]


def quantize_torch_dynamic(
    model: SavedModel,
    output_dir: str | Path,
    *,
    skip_modules: Sequence[str] = DEFAULT_SKIP_MODULES,
    overwrite: bool = False,
) -> Path:
    """Quantize the student's Linear layers to int8 and save config, tokenizer and state dict."""
    import torch

    output_dir = check_output_dir(output_dir, overwrite)
    fp32 = model.auto_class().from_pretrained(model.path, dtype=torch.float32).eval()
    names = linears_to_quantize(fp32, skip_modules)
    quantized = _quantize(fp32, names)
    with atomic_output_dir(output_dir, overwrite) as staging:
        model.config.save_pretrained(staging)
        torch.save(quantized.state_dict(), staging / STATE_DICT_FILE)
        save_tokenizer(model.path, staging)
        write_metadata(
            staging,
            method="torch-int8",
            backend="torch",
            source=model,
            options={"skip_modules": list(skip_modules), "dtype": "qint8"},
            load_with="hfkdq.quantization.torch_dynamic.load_torch_int8(dir)",
            extra={
                "state_dict": STATE_DICT_FILE,
                "quantized_modules": names,
                "quantized_engine": torch.backends.quantized.engine,
            },
        )
        (staging / "README.md").write_text(
            README.format(
                state_dict=STATE_DICT_FILE, name=output_dir.name, head_class=HEAD_SUFFIXES[model.head]
            )
        )
    return output_dir


def load_torch_int8(directory: str | Path, head: str | None = None, device: str | None = None):
    """Rebuild a `torch-int8` variant: fp32 skeleton from the config, same quantization, saved weights.

    `head` defaults to the one the config names. `device` is accepted for the common loader signature
    and ignored: PyTorch's dynamically quantized Linear kernels exist for the CPU only.
    """
    import torch
    from transformers import AutoConfig

    directory = Path(directory)
    metadata = read_metadata(directory)
    if metadata.get("backend") != "torch":
        raise ValueError(
            f"{directory} is not a torch-int8 variant (no hfkdq_quantization.json with backend 'torch')."
        )
    config = AutoConfig.from_pretrained(directory)
    head = head or head_of(config, directory)
    skeleton = auto_class_for(head).from_config(config, dtype=torch.float32).eval()
    model = _quantize(skeleton, metadata["quantized_modules"])
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="TypedStorage is deprecated"
        )  # torch's own quantized unpickling
        state_dict = torch.load(directory / metadata.get("state_dict", STATE_DICT_FILE), weights_only=True)
    model.load_state_dict(state_dict)
    return model.eval()
