"""`lotterysite info`: what a store holds, every file read back and checked against its schema."""

from __future__ import annotations

from pathlib import Path

from .io import StoreError, read_table, verify_store
from .schema import TABLES, outcomes_schema, store_geometry_schema


def expected_schema(name: str, manifest: dict):
    if name in TABLES:
        return TABLES[name]
    if name == "outcomes.arrow":
        return outcomes_schema(manifest["corruptions"])
    if name.startswith("geometry/"):
        return store_geometry_schema(manifest)
    return None


def describe(root: str | Path) -> str:
    root = Path(root)
    m = verify_store(root)  # sizes, digests and run of every file
    try:
        return _describe(root, m)
    except (KeyError, TypeError, AttributeError) as e:
        raise StoreError(
            f"{root / 'manifest.json'}: a field is missing or malformed ({type(e).__name__}: {e}); "
            "rerun `lotterysite precompute RECIPE`"
        ) from None


def _describe(root: Path, m: dict) -> str:
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
        "files:",
    ]
    total = 0
    for name, info in m["files"].items():
        if not name.endswith(".arrow"):
            total += info["bytes"]
            lines.append(f"  {name:<48} {'':>8}      {info['bytes'] / 1024:>9.1f} KiB")
            continue
        table = read_table(root / name, expected_schema(name, m))
        if table.num_rows != info["rows"]:
            raise StoreError(f"{root / name}: holds {table.num_rows} rows, the manifest says {info['rows']}; "
                             "rerun `lotterysite precompute RECIPE`")  # fmt: skip
        total += info["bytes"]
        lines.append(f"  {name:<48} {info['rows']:>8} rows {info['bytes'] / 1024:>9.1f} KiB")
    lines.append(f"total {total / 1024 / 1024:.1f} MiB in {len(m['files'])} files")
    return "\n".join(lines)
