"""Stores whose findings differ, for tests that the home page's words follow the data.

`derive_store` copies the session's precomputed fixture store (`site_store.build_store`) and overwrites chosen
numbers of models.arrow and correlations.arrow, and optionally relabels a method (the fixture has no MPT model;
relabelling its random model "mpt" gives Fig. 10 a pair to compare without training one more model).
"""

from __future__ import annotations

import json
from pathlib import Path

from site_store import build_store


def _rewrite(path: Path, changes: dict[str, dict[str, object]], key: str = "model_id") -> None:
    """changes: {model_id: {column: value}} applied to the rows of that model; every other value kept."""
    import pyarrow as pa

    from lotterysite.store import read_table, write_table

    table = read_table(path)
    rows = table.to_pylist()
    for row in rows:
        row.update(changes.get(row[key], {}))
    meta = {k.decode().removeprefix("lotterysite."): v.decode() for k, v in (table.schema.metadata or {}).items()
            if k != b"lotterysite.schema_version"}  # fmt: skip
    write_table(path, pa.Table.from_pylist(rows, schema=table.schema.remove_metadata()), metadata=meta)


def derive_store(root: str | Path, *, models: dict | None = None, correlations: dict | None = None,
                 relabel: dict[str, str] | None = None) -> Path:  # fmt: skip
    """The fixture store at `root` with `models` / `correlations` ({model_id: {column: value}}) overwritten and
    `relabel` ({model_id: new method}) applied to models.arrow, correlations.arrow and the manifest."""
    root = build_store(root)
    models = {k: dict(v) for k, v in (models or {}).items()}
    correlations = {k: dict(v) for k, v in (correlations or {}).items()}
    for model_id, method in (relabel or {}).items():
        models.setdefault(model_id, {})["method"] = method
        correlations.setdefault(model_id, {})["method"] = method
    _rewrite(root / "models.arrow", models)
    _rewrite(root / "correlations.arrow", correlations)
    manifest = json.loads((root / "manifest.json").read_text())
    for m in manifest["models"]:
        m["method"] = (relabel or {}).get(m["model_id"], m["method"])
    manifest["methods"] = list(dict.fromkeys(m["method"] for m in manifest["models"]))
    manifest.pop("schema_version")
    from lotterysite.store import write_manifest

    write_manifest(root, manifest)
    return root


def acc(v: float, half: float = 0.02) -> dict:
    return {"v": v, "lo": v - half, "hi": v + half}


def model_numbers(clean: dict | None = None, corrupted: dict | None = None) -> dict:
    out = {}
    for name, a in (("clean_accuracy", clean), ("corrupted_accuracy", corrupted)):
        if a is not None:
            out[name], out[f"{name}_lo"], out[f"{name}_hi"] = a["v"], a["lo"], a["hi"]
    return out
