"""What a model costs to run: parameters, multiply-accumulates per image, and measured inference latency.

Masks do not change any of the three: a weight-pruned model has its dense model's shape, and dense kernels
multiply its zeros like any other weight. Only structured (channel) pruning makes a model smaller and faster.

MACs are counted with forward hooks on every `nn.Conv*` and `nn.Linear` call: per output element, (in channels /
groups) x kernel size for a convolution, in_features for a linear layer. Batch norm, activations, pooling, biases
and residual additions are left out (each costs one operation per element, a few percent at most), and so are
matrix products a model computes functionally (attention inside `nn.MultiheadAttention`). Torch-Pruning's
`count_ops_and_params` counts the same convolutions and linear layers, plus those elementwise operations; the
tests check the two agree layer by layer.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

LARGE_BATCH = 256  # the "large batch" of the throughput latency
COST_VERSION = "cost/1"  # in the precompute's results fingerprint: work files without cost are evaluated again
_COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def parameter_count(model: nn.Module) -> int:
    """Every parameter (weights, biases, norms), counted once even where shared."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def layer_macs(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Multiply-accumulates of each conv and linear layer for ONE image, by module name (`example`: a batch)."""
    names = {m: name for name, m in model.named_modules() if isinstance(m, _COUNTED)}
    counts: dict[str, int] = {}
    images = example.shape[0]

    def hook(module, inputs, output):
        per_output = module.weight[0].numel()  # (in / groups) x kernel, or in_features
        counts[names[module]] = counts.get(names[module], 0) + output.numel() // images * per_output

    handles = [m.register_forward_hook(hook) for m in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return counts


def macs_per_image(model: nn.Module, example: torch.Tensor) -> int:
    return sum(layer_macs(model, example).values())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def latency_ms(model: nn.Module, batch: torch.Tensor, *, repeats: int, warmup: int) -> float:
    """Median wall time of `repeats` forward passes of `batch` (after `warmup`), in milliseconds, on the batch's
    device (synchronised around every pass on a GPU, so the time is the pass's, not the launch's)."""
    device = batch.device
    was_training = model.training
    model.eval()
    try:
        for _ in range(warmup):
            model(batch)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            model(batch)
            _sync(device)
            times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return statistics.median(times) * 1000.0


def model_cost(
    model: nn.Module,
    *,
    in_channels: int,
    image_size: int,
    device: torch.device | str = "cpu",
    large_batch: int = LARGE_BATCH,
    latency: bool = True,
) -> dict[str, float | int]:
    """{"parameters", "macs", "latency_b1_ms", "latency_batch_ms"} for images of the given shape on `device`:
    latency is the median of 30 passes of one image and of 5 passes of `large_batch` images (NaN when
    `latency` is False). Inputs are uniform noise: the cost of a forward pass does not depend on the pixels."""
    device = torch.device(device)
    model.to(device)  # where the precompute evaluated it already; float32, as loaded
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(large_batch, in_channels, image_size, image_size, generator=generator).to(device)
    out = {"parameters": parameter_count(model), "macs": macs_per_image(model, x[:1])}
    nan = float("nan")
    out["latency_b1_ms"] = latency_ms(model, x[:1], repeats=30, warmup=5) if latency else nan
    out["latency_batch_ms"] = latency_ms(model, x, repeats=5, warmup=1) if latency else nan
    return out
