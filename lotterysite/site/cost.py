"""Structured pruning on the site: accuracy against cost (models.arrow's cost columns) and a note where pruning
changed the feature dimension. Shown only for stores with channel-pruned models (schema 1.5); a masks-only store's
pages stay as they were."""

from __future__ import annotations

from urllib.parse import quote

from .data import Store, method_label

FIG3 = "#the-curse-of-dimensionality-fig-3"  # the findings page's Fig. 3 heading


def _models(store: Store) -> list[dict]:
    return store.models.to_pylist()


def has_channel_models(store: Store) -> bool:
    return "granularity" in store.models.column_names and "channel" in store.models.column("granularity").to_pylist()


def cost_table(store: Store, views: dict[str, str]) -> bytes:
    """The cost chart's rows (`charts.accuracy_vs_cost`): every model on clean data and on the corruption mean, its
    MACs, parameters and speed-up over the dense model of its architecture and seed (median latencies, large batch)."""
    import pyarrow as pa

    from .data import arrow_bytes

    models = _models(store)
    dense = {(m["arch"], m["seed"]): m for m in models if m["method"] == "dense"}
    names = ("model_id", "arch", "method", "amount", "macs", "speedup", "parameters", "data", "panel", "accuracy",
             "seed", "href")  # fmt: skip
    cols = {k: [] for k in names}
    for m in models:
        ref = dense.get((m["arch"], m["seed"]))
        own, base = m.get("latency_batch_ms"), ref and ref.get("latency_batch_ms")
        speedup = base / own if own and base else float("nan")
        labels = [method_label(p) for p in models if p["arch"] == m["arch"] and p["method"] != "dense"]
        for label in dict.fromkeys(labels) if m["method"] == "dense" else [method_label(m)]:
            for data, column in (("clean", "clean_accuracy"), ("corruption mean", "corrupted_accuracy")):
                if m[column] is None or m[column] != m[column]:
                    continue
                row = {"model_id": m["model_id"], "arch": m["arch"], "method": label, "amount": float(m["amount"]),
                       "macs": m["macs"], "speedup": speedup, "parameters": m["parameters"], "data": data,
                       "panel": f"{m['arch']} · {data}", "accuracy": m[column], "seed": m["seed"],
                       "href": f"{views.get(m['arch'], '')}#ref={quote(m['model_id'], safe='')}"}  # fmt: skip
                for k in names:
                    cols[k].append(row[k])
    schema = pa.schema([("model_id", pa.string()), ("arch", pa.string()), ("method", pa.string()),
                        ("amount", pa.float32()), ("macs", pa.float64()), ("speedup", pa.float32()),
                        ("parameters", pa.int32()), ("data", pa.string()), ("panel", pa.string()),
                        ("accuracy", pa.float32()), ("seed", pa.int32()), ("href", pa.string())])  # fmt: skip
    return arrow_bytes(pa.table(cols, schema=schema))


def feature_dim_note(store: Store, findings: str = "findings.md") -> str:
    """A Markdown note naming the models whose feature dimension differs from their dense model's ('' if none);
    `findings`: the findings page's path relative to the page the note is on."""
    if "feature_dim" not in store.models.column_names:
        return ""
    changed = [m for m in _models(store) if m["dense_feature_dim"] > 0 and m["feature_dim"] != m["dense_feature_dim"]]
    if not changed:
        return ""
    names = ", ".join(f"`{m['model_id']}` ({m['dense_feature_dim']} → {m['feature_dim']})" for m in changed[:8])
    more = f" and {len(changed) - 8} more" if len(changed) > 8 else ""
    return (
        f"**The feature dimension changed** for {names}{more}: their structured pruning removed channels of the "
        "classifier's input. Angles between features and class directions shrink as the dimension grows, and grow "
        f"as it falls ([Fig. 3]({findings}{FIG3})), so compare their angles with the dense model's with that in "
        "mind.\n\n"
    )
