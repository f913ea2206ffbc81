"""Which torch device a run uses: "auto" resolves to the first GPU when there is one."""

from __future__ import annotations

import torch

from .config import ConfigError, check_device


def available_devices() -> list[str]:
    """What this machine offers, e.g. ["cpu"] or ["cpu", "cuda:0", "cuda:1"]."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu"] + [f"cuda:{i}" for i in range(gpus)]


def describe_devices() -> str:
    """One line for a device picker: what was found."""
    if not torch.cuda.is_available():
        return "no CUDA GPU found (torch sees none): runs use the CPU"
    names = [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    return "found " + ", ".join(names)


def resolve_device(name: str) -> torch.device:
    """auto → cuda:0 when a GPU is present, else cpu; a CUDA device that is absent is a ConfigError
    naming it and what this machine has."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        found = available_devices()
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} is unavailable: no CUDA GPU here; use cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else torch.cuda.current_device()
        if f"cuda:{index}" not in found:
            raise ConfigError(f"device={name!r} is unavailable: this machine has {', '.join(found)}")
        return torch.device(f"cuda:{index}")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """"cpu" or "cuda:N" for a resolved device."""
    return f"cuda:{device.index}" if device.type == "cuda" else device.type
