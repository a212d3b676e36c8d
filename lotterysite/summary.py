"""Text summaries of a model's geometry, for the terminal."""

from __future__ import annotations

import torch

from .geometry import Geometry


def class_table(geometry: Geometry, labels: torch.Tensor, classes: tuple[str, ...]) -> list[dict]:
    """Per class and overall: sample count, accuracy and the means of angle-to-true-class, length and margin."""
    angle_true = geometry.angle_to(labels)
    rows = []
    groups = [(name, labels == i) for i, name in enumerate(classes)] + [
        ("all", torch.ones_like(labels, dtype=torch.bool))
    ]
    for name, sel in groups:
        n = int(sel.sum())
        if n == 0:
            continue
        finite = sel & ~geometry.degenerate
        rows.append(
            {
                "class": name,
                "n": n,
                "accuracy": float(geometry.correct[sel].float().mean()),
                "angle": float(angle_true[finite].mean()) if finite.any() else float("nan"),
                "length": float(geometry.length[sel].mean()),
                "margin": float(geometry.margin[sel].mean()),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    header = f"{'class':<14} {'n':>6} {'accuracy':>9} {'angle°':>8} {'length':>8} {'margin':>8}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['class'][:14]:<14} {r['n']:>6} {r['accuracy']:>9.2%} {r['angle']:>8.2f} {r['length']:>8.3f} "
            f"{r['margin']:>8.3f}"
        )
    return "\n".join(lines)
