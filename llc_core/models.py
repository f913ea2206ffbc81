"""MLP and CNN architectures, described by small JSON-serialisable specs.

A checkpoint stores its spec, so it rebuilds its own model without any pickled code.
"""

from __future__ import annotations

import math

from torch import nn

from .config import InputError

OUTPUTS = 10  # every class subset keeps 10 outputs: one architecture across K, as in the seed experiment


class ArchError(InputError):
    pass


def default_spec(arch: str, input_shape: tuple) -> dict:
    """The project's architectures for a dataset's input shape (C, L) or (C, H, W)."""
    if arch not in ("mlp", "cnn"):
        raise ArchError(f"arch {arch!r} is unknown: use mlp or cnn")
    if tuple(input_shape) == (1, 40):  # MNIST-1D: both about 15k parameters, a fair comparison
        if arch == "mlp":
            return {"kind": "mlp", "input_shape": [1, 40], "hidden": [100, 100], "outputs": OUTPUTS}
        return {"kind": "cnn1d", "input_shape": [1, 40], "channels": [32, 48, 48], "kernels": [5, 3, 3],
                "strides": [1, 2, 2], "outputs": OUTPUTS}
    if tuple(input_shape) == (1, 28, 28):  # the seed experiment: 118,282 vs 127,098 parameters
        if arch == "mlp":
            return {"kind": "mlp", "input_shape": [1, 28, 28], "hidden": [128, 128], "outputs": OUTPUTS}
        return {"kind": "cnn2d", "input_shape": [1, 28, 28], "channels": [16, 16], "kernel": 3,
                "hidden": 64, "outputs": OUTPUTS}
    raise ArchError(f"no {arch} architecture for input shape {tuple(input_shape)}: "
                    f"expected (1, 40) or (1, 28, 28)")


def build_model(spec: dict) -> nn.Module:
    """The module for a spec; raises ArchError naming what is wrong."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ArchError(f"architecture spec must be a JSON object with a 'kind', got {spec!r:.100}")
    builders = {"mlp": _mlp, "cnn1d": _cnn1d, "cnn2d": _cnn2d}
    if spec["kind"] not in builders:
        raise ArchError(f"architecture kind {spec['kind']!r} is unknown: use one of {', '.join(builders)}")
    try:
        return builders[spec["kind"]](spec)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ArchError(f"architecture spec {spec!r:.200} is invalid: {exc}") from exc


def _ints(values, name, low=1, high=4096):
    if not isinstance(values, list) or not all(isinstance(v, int) and low <= v <= high for v in values):
        raise ValueError(f"{name} must be a list of integers in [{low}, {high}]")
    return values


def _mlp(spec):
    widths = [math.prod(_ints(spec["input_shape"], "input_shape"))] + _ints(spec["hidden"], "hidden")
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], _ints([spec["outputs"]], "outputs")[0]))
    return nn.Sequential(*layers)


def _cnn1d(spec):
    channels_in, length = _ints(spec["input_shape"], "input_shape")
    channels, kernels = _ints(spec["channels"], "channels"), _ints(spec["kernels"], "kernels", high=64)
    strides = _ints(spec["strides"], "strides", high=8)
    if not len(channels) == len(kernels) == len(strides):
        raise ValueError("channels, kernels and strides must have the same length")
    layers: list[nn.Module] = []
    for c_out, k, s in zip(channels, kernels, strides):
        layers += [nn.Conv1d(channels_in, c_out, k, stride=s, padding=k // 2), nn.ReLU()]
        channels_in, length = c_out, (length + 2 * (k // 2) - k) // s + 1
    layers += [nn.Flatten(), nn.Linear(channels_in * length, _ints([spec["outputs"]], "outputs")[0])]
    return nn.Sequential(*layers)


def _cnn2d(spec):
    c_in, h, w = _ints(spec["input_shape"], "input_shape")
    c1, c2 = _ints(spec["channels"], "channels")
    k = _ints([spec["kernel"]], "kernel", high=15)[0]
    side = ((h - k + 1) // 2) - k + 1  # conv, 2×2 max-pool, conv (no padding)
    if side < 1 or h != w:
        raise ValueError(f"input {h}×{w} is too small for two {k}×{k} convolutions and a pool")
    return nn.Sequential(
        nn.Conv2d(c_in, c1, k), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, k), nn.ReLU(),
        nn.Flatten(), nn.Linear(c2 * side * side, _ints([spec["hidden"]], "hidden")[0]), nn.ReLU(),
        nn.Linear(spec["hidden"], _ints([spec["outputs"]], "outputs")[0]),
    )


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
