"""Device names spelled one way, so rows measured on the same device compare equal in reports."""

from __future__ import annotations


def normalize_device(device: str) -> str:
    """'cuda' -> 'cuda:0', 'cpu' -> 'cpu': one spelling per device, so rows measured on the same device
    compare equal. An index-less accelerator means index 0, as bitsandbytes' `device_map` places it there."""
    import torch

    parsed = torch.device(device)
    if parsed.type == "cpu":
        return "cpu"
    return f"{parsed.type}:{0 if parsed.index is None else parsed.index}"
