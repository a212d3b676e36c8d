"""Overhead of the `ray` and `slurm` executors over `local` on one small recipe, as ratios.

Runs the same recipe from scratch three times in this process (local; a local Ray cluster with 2 CPUs; submitit's
local executor, which runs every unit as a subprocess as a Slurm job array would) and prints each wall time and
its ratio to local. The units are tiny on purpose: what is measured is the executor's own cost (process start,
shipping the task, re-reading the data per worker), which a real study amortises over minutes-long units.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lotterysite.precompute import parse_recipe, precompute
from lotterysite.precompute.executors import SlurmOptions

RECIPE = """
name = "bench-executors"
[data]
name = "fashion_mnist"
train_subset = 2000
eval_subset = 500
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
[[pruning]]
method = "magnitude"
amounts = [0.3, 0.6, 0.9]
[corruptions]
names = ["fog", "gaussian_noise"]
severities = [1, 3]
[curse]
enabled = false
"""


def run(executor: str, **kw) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        precompute(parse_recipe(RECIPE, "bench.toml"), store=Path(tmp) / "store", progress=False, executor=executor,
                   device="cpu" if executor == "local" else None, **kw)  # fmt: skip
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executors", default="local,ray,slurm")
    args = parser.parse_args()
    # One thread everywhere: Ray's one-CPU tasks run single-threaded, so local must too for a fair ratio.
    torch.set_num_threads(1)
    times = {}
    for name in args.executors.split(","):
        if name == "ray":
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            print(f"ray.init: {time.perf_counter() - t0:.1f} s (not counted)")
            times[name] = run("ray")
        elif name == "slurm":
            times[name] = run("slurm", slurm=SlurmOptions(cluster="local", time_min=30))
        else:
            times[name] = run(name)
    base = times.get("local")
    for name, seconds in times.items():
        ratio = f"{seconds / base:.2f}x local" if base else ""
        print(f"{name:<6} {seconds:7.1f} s  {ratio}")


if __name__ == "__main__":
    main()
