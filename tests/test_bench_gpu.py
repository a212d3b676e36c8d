"""bench/gpu.py runs its CUDA code paths on the CPU at tiny sizes, and says so without CUDA."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu.py"), *args], capture_output=True, text=True, env=env, timeout=900
    )


def test_cpu_smoke_runs_every_section():
    result = _run("--cpu-smoke")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("(a) evaluation with geometry", "(b) corruptions at 32 px", "(c) evaluation sweep"):
        assert heading in out, out
    # Every model of (a), every corruption of (b), and the sweep's wall time.
    assert "vgg16" in out and "resnet18" in out and "all 19 × 5" in out and "wall time" in out
    assert all(name in out for name in ("glass_blur", "jpeg_compression", "spatter"))
    assert "n/a" in out  # no peak FLOP/s is claimed for a CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_exits_0():
    result = _run()
    assert result.returncode == 0 and "no CUDA device: nothing measured" in result.stdout
