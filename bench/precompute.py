"""The demo recipe end to end (target: <= 5 minutes on a 2-core CPU), with stage timings.

Runs `precompute/demo.toml` from scratch into a temporary store (nothing reused) and prints the time of every
stage and of every kind of unit (training, pruning, MPT, retraining and evaluation per architecture and method,
in wall and in CPU seconds; `--units` lists every unit), the load average before and after and the CPU time the
run got; as a machine-independent yardstick it also prints the total over one dense LeNet-5 training epoch on the
full Fashion-MNIST measured in the same process. Then it checks the regime the demo is sized for (README, "The demo
study") on the store it wrote: magnitude without retraining within 3 points of dense at 50 % on every
architecture, and MPT within 3 points of dense at some amount >= 50 % on at least one. `--regime STORE` runs only
that check, on an existing store.
"""

import argparse
import os
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from lotterysite.config import TrainConfig
from lotterysite.data import load_dataset
from lotterysite.models import create_model
from lotterysite.precompute import load_recipe, precompute
from lotterysite.training import default_device, train

ROOT = Path(__file__).parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("recipe", nargs="?", default=str(ROOT / "precompute" / "demo.toml"))
    parser.add_argument("--regime", metavar="STORE", help="only check the regime targets on this store")
    parser.add_argument("--store", metavar="DIR", help="write the store here and keep it (must not exist yet, so the "
                        "run is from scratch); default: a temporary folder, removed afterwards")  # fmt: skip
    parser.add_argument("--units", action="store_true", help="also print the seconds of every unit")
    args = parser.parse_args()
    if args.regime:
        print(regime_report(Path(args.regime)))
        return
    if args.store and Path(args.store).exists():
        parser.error(f"--store {args.store} exists: the benchmark runs from scratch, pass a new folder")
    load_before, start_all = os.getloadavg(), time.perf_counter()
    device = default_device()
    data = load_dataset("fashion_mnist")
    torch.manual_seed(0)
    start = time.perf_counter()
    train(create_model("lenet5", num_classes=10, in_channels=1, image_size=28), data.train, TrainConfig(epochs=1),
          device=device, progress=False)  # fmt: skip
    epoch = time.perf_counter() - start

    cpu_units = _count_cpu_per_unit()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(args.store) if args.store else Path(tmp) / "store"
        result = precompute(load_recipe(args.recipe), store=store, device=device, progress=False)
        regime = regime_report(store)
    load_after = os.getloadavg()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"device {device}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    print("load average (1, 5, 15 min) before " + " ".join(f"{x:.2f}" for x in load_before)
          + ", after " + " ".join(f"{x:.2f}" for x in load_after))  # fmt: skip
    print(result.report())
    print("wall seconds per kind of unit:")
    print(result.unit_report())
    print("CPU seconds per kind of unit (all threads; steadier than wall seconds on a shared machine):")
    print(replace(result, units=cpu_units).unit_report())
    if args.units:
        print(f"  {'unit':<48} {'wall':>7}   {'CPU':>7}")
        for uid, seconds in result.units.items():
            print(f"  {uid:<48} {seconds:7.2f} s {cpu_units.get(uid, float('nan')):7.2f} s")
    total = result.timings["total"]
    print(f"target <= 300 s: {'met' if total <= 300 else 'MISSED'}")
    cpu, wall = usage.ru_utime + usage.ru_stime, time.perf_counter() - start_all
    print(f"CPU time of this process {cpu:.0f} s in {wall:.0f} s ({cpu / wall:.0%} of one core on average)")
    print(f"ratio total / one LeNet-5 epoch on 60k images ({epoch:.1f} s): {total / epoch:.1f}x")
    print(regime)


def _count_cpu_per_unit() -> dict[str, float]:
    """CPU seconds of every unit the local executor runs in this process (wraps `UnitTask.__call__`)."""
    from lotterysite.precompute import run

    out: dict[str, float] = {}
    call = run.UnitTask.__call__

    def timed(self, unit_id: str):
        start = time.process_time()
        try:
            return call(self, unit_id)
        finally:
            out[unit_id] = time.process_time() - start

    run.UnitTask.__call__ = timed
    return out


def points(gap: float) -> str:
    """A dense-minus-model accuracy gap in words: '0.2 points below dense' (or above)."""
    return f"{abs(gap) * 100:.1f} points {'below' if gap >= 0 else 'above'} dense"


def regime_report(store: Path) -> str:
    """Clean accuracies (95 % bootstrap intervals) of dense, magnitude 50 % without retraining and MPT >= 50 %."""
    from pyarrow import ipc

    rows = ipc.open_file(str(store / "models.arrow")).read_all().to_pylist()

    def fmt(m):
        return f"{m['clean_accuracy']:.1%} [{m['clean_accuracy_lo']:.1%}, {m['clean_accuracy_hi']:.1%}]"

    lines, magnitude_ok, mpt_ok = ["regime (clean accuracy on the evaluation images):"], True, False
    for arch in dict.fromkeys(r["arch"] for r in rows):
        dense = next(r for r in rows if r["arch"] == arch and r["method"] == "dense")
        lines.append(f"  {arch}: dense {fmt(dense)}")
        mag = [r for r in rows if r["arch"] == arch and r["method"] == "magnitude" and not r["retrained"]
               and abs(r["amount"] - 0.5) < 1e-6]  # fmt: skip
        for r in mag:
            gap = dense["clean_accuracy"] - r["clean_accuracy"]
            magnitude_ok &= gap <= 0.03
            lines.append(f"    magnitude 50 %, no retraining: {fmt(r)}, {points(gap)}")
        magnitude_ok &= bool(mag)
        for r in sorted((r for r in rows if r["arch"] == arch and r["method"] == "mpt"), key=lambda r: r["amount"]):
            gap = dense["clean_accuracy"] - r["clean_accuracy"]
            mpt_ok |= r["amount"] >= 0.5 and gap <= 0.03
            lines.append(f"    mpt {r['amount']:.0%}: {fmt(r)}, {points(gap)}")
    lines.append(
        f"magnitude 50 % within 3 points of dense on every architecture: {'met' if magnitude_ok else 'MISSED'}"
    )
    lines.append(f"MPT >= 50 % within 3 points of dense on some architecture: {'met' if mpt_ok else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
