"""`lotterysite info`: what a store holds, every file read back and checked against its schema."""

from __future__ import annotations

from pathlib import Path

from .io import StoreError, check_classes, escape_controls, read_store, table_from_bytes
from .schema import REQUIRED_FILES, TABLES, outcomes_schema, store_geometry_schema


def expected_schema(name: str, manifest: dict):
    if name in TABLES:
        return TABLES[name]
    if name == "outcomes.arrow":
        return outcomes_schema(manifest["corruptions"])
    if name.startswith("geometry/"):
        return store_geometry_schema(manifest)
    return None


def describe(root: str | Path) -> str:
    """What the store at `root` holds, every file read once and checked (size, digest, run, schema, rows), ready
    for a terminal: a control character in a name (ESC, a newline) is printed escaped, never obeyed."""
    root = Path(root)
    m, blobs = read_store(root)  # sizes, digests and run of every file, each file's bytes read once
    for name in REQUIRED_FILES + tuple(f"geometry/{model['model_key']}.arrow" for model in m["models"]):
        if name not in blobs:
            raise StoreError(f"{root / 'manifest.json'}: field 'files' does not list {name}, which every store "
                             "holds; rerun `lotterysite precompute RECIPE`")  # fmt: skip
    tables = {}
    for name, data in blobs.items():
        if name.endswith(".arrow"):
            tables[name] = table_from_bytes(data, root / name, expected_schema(name, m))
    check_classes(root, m, tables["samples.arrow"])
    try:
        # Every name a store carries printed as text: a control character (ESC, a newline) escaped, never obeyed.
        return _describe(Path(escape_controls(str(root))), _escaped(m), tables)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise StoreError(
            f"{root / 'manifest.json'}: a field is missing or malformed ({type(e).__name__}: {e}); "
            "rerun `lotterysite precompute RECIPE`"
        ) from None


def _escaped(value):
    if isinstance(value, str):
        return escape_controls(value)
    if isinstance(value, dict):
        return {escape_controls(k) if isinstance(k, str) else k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _describe(root: Path, m: dict, tables: dict) -> str:
    d = m["dataset"]
    lines = [
        f"store {root} (schema {m['schema_version']}, lotterysite {m.get('lotterysite_version')}, "
        f"created {m.get('created')}, "
        f"run {m['run_id']})",
        f"recipe   {m['recipe']['name']}: {m['recipe'].get('title', '')}",
        f"data     {d['name']}: {len(d['classes'])} classes, {d['n_eval']} evaluation samples, "
        f"{d['n_shipped']} shipped",
        f"models   {len(m['models'])} ({', '.join(m['architectures'])}; methods {', '.join(m['methods'])})",
        f"variants clean + {len(m['corruptions'])} corruptions x severities {m['severities']} "
        f"(source: {m['corruption_source']}; per-sample rows shipped for severities {m['shipped_severities']})",
    ]
    lines.append(_skipped(d))
    lines += _shipping(root, m, tables["samples.arrow"])
    lines.append("files:")
    total = 0
    for name, info in m["files"].items():
        if not name.endswith(".arrow"):
            total += info["bytes"]
            lines.append(f"  {name:<48} {'':>8}      {info['bytes'] / 1024:>9.1f} KiB")
            continue
        table = tables[name]
        if table.num_rows != info["rows"]:
            raise StoreError(f"{root / name}: holds {table.num_rows} rows, the manifest says {info['rows']}; "
                             "rerun `lotterysite precompute RECIPE`")  # fmt: skip
        total += info["bytes"]
        lines.append(f"  {name:<48} {info['rows']:>8} rows {info['bytes'] / 1024:>9.1f} KiB")
    lines.append(f"total {total / 1024 / 1024:.1f} MiB in {len(m['files'])} files")
    return "\n".join(lines)


def _skipped(d: dict) -> str:
    """Images the recipe's `skip_unreadable = true` left out (manifest `dataset.skipped_unreadable`): a data set
    short of some images says so wherever its store is described, not only in the run's output."""
    skipped = d.get("skipped_unreadable")
    if skipped is None:  # a store written before the count was recorded
        return "skipped  unreadable images not recorded (a store from an older lotterysite)"
    counts = {split: int(skipped[split]) for split in ("train", "test")}
    if not any(counts.values()):
        return "skipped  no unreadable images"
    return "skipped  " + ", ".join(f"{n} unreadable {s} images" for s, n in counts.items()) + " (skip_unreadable)"


def _shipping(root: Path, m: dict, samples) -> list[str]:
    """The effective shipped numbers per class, counted from samples.arrow and checked against the manifest's
    record of the draw (`dataset.shipping`: lotterysite.store.sampling's policy)."""
    import numpy as np

    classes = m["dataset"]["classes"]
    C = len(classes)
    labels = samples.column("label").to_numpy()
    pie = samples.column("pie").to_numpy(zero_copy_only=False).astype(bool)
    in_sample = samples.column("in_sample").to_numpy(zero_copy_only=False).astype(bool)
    per_class = np.bincount(labels, minlength=C)
    pie_per_class = np.bincount(labels[pie], minlength=C)
    sample_per_class = np.bincount(labels[in_sample], minlength=C)
    rec = m["dataset"].get("shipping")
    if not rec or "sample_per_class" not in rec:
        raise StoreError(f"{root / 'manifest.json'}: dataset.shipping does not record the sample's draw; rerun "
                         "`lotterysite precompute RECIPE --force`")  # fmt: skip
    if (rec["per_class"], rec["exemplars_per_class"], rec["sample_per_class"]) != (
        per_class.tolist(),
        pie_per_class.tolist(),
        sample_per_class.tolist(),
    ):
        raise StoreError(
            f"{root / 'samples.arrow'}: holds {per_class.tolist()} samples per class ({pie_per_class.tolist()} "
            f"exemplars, {sample_per_class.tolist()} in the sample), the manifest records {rec['per_class']} "
            f"({rec['exemplars_per_class']}, {rec['sample_per_class']}); rerun `lotterysite precompute RECIPE`"
        )
    head = f"shipped  {len(labels)} of {m['dataset']['n_eval']} evaluated samples: "
    if rec["everything"]:
        head += "the whole evaluation set"
    else:
        head += (f"a class-stratified uniform random sample of {int(in_sample.sum())} (seed {rec['seed']}, asked "
                 f"{rec['asked_per_class']} per class), plus {int((~in_sample).sum())} pruning-identified exemplars "
                 "outside it as extra rows")  # fmt: skip
    head += f"; {rec['exemplars_shipped']} of {rec['exemplars_found']} exemplars shipped"
    extra = per_class - sample_per_class
    out = [head, "  per class: evaluated, shipped (sample + extra exemplars), exemplars shipped"]
    rows = zip(classes, rec["evaluated_per_class"], per_class, sample_per_class, extra, pie_per_class, strict=True)
    out += [f"    {name:<24} {n_eval:>6} {n:>6} ({s} + {x}) {e}" for name, n_eval, n, s, x, e in rows]
    if rec["cut"]:
        out.append(
            f"  cut by ship.max_rows_per_model = {rec['max_rows_per_model']}: {rec['rows_per_sample']} rows per "
            f"sample allow {rec['limit']} samples per model, so {int(sample_per_class.min())}-"
            f"{int(sample_per_class.max())} were drawn per class instead of {rec['asked_per_class']}"
            + (
                f" and {rec['exemplars_shipped']} of {rec['exemplars_found']} exemplars kept"
                if rec["exemplars_shipped"] < rec["exemplars_found"]
                else ""
            )  # fmt: skip
        )
    else:
        out.append(f"  not cut: ship.max_rows_per_model = {rec['max_rows_per_model']} allows {rec['limit']} samples "
                   f"per model ({rec['rows_per_sample']} rows each)")  # fmt: skip
    return out
