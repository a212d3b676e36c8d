"""Table building: the store's Arrow tables, one builder each, returning {column name: values} (never built by
position; store/schema.py declares them).

The aggregates (accuracy, correlations, margin change, paired differences, exemplars) are computed on the full
evaluation set; the per-sample tables (samples, outcomes, geometry) hold the shipped samples' rows only, chosen by
`draw_shipped` (store.sampling, the one policy the site's cut uses too). The builders read `StoredResults`: every
model's results, each loaded from its work file when asked for, so a builder holds one model's arrays at a time.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import numpy as np
import torch

from ..data import ImageSet
from ..store import geometry_schema, sampling
from ..store.schema import ACCURACY, CONFUSED, CORRELATIONS, EXEMPLARS, MARGIN_CHANGE, MODELS, outcomes_schema
from . import aggregate as agg
from . import custom, results_file
from .plan import ModelEntry
from .recipe import Recipe, shipped_rows

PNG_SIDE = 32  # pixels: thumbnails of images up to this size ship as they are, as PNG
THUMBNAIL_SIDE = 64  # pixels: larger images ship shrunk to this, as JPEG


class StoredResults(Mapping):
    """model_id -> (entry, results, extra), every results object read lazily from its file each time it is asked
    for: a table builder's loop holds one model's arrays at a time and drops them before the next."""

    def __init__(self, files: dict[str, tuple], variants, angle_variants: list[int]):
        self.files, self.variants, self.angle_variants = files, list(variants), angle_variants

    def __getitem__(self, model_id: str):
        path, entry, extra = self.files[model_id]
        return entry, results_file.LazyModelResults(path, self.variants, self.angle_variants), extra

    def __iter__(self):
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def extra(self, model_id: str) -> dict:
        """What the evaluate unit recorded beside `model_id`'s results (sparsity, settings, ...)."""
        return self.files[model_id][2]

    def entries(self) -> list[ModelEntry]:
        return [entry for _, entry, _ in self.files.values()]


COST = ("parameters", "macs", "latency_b1_ms", "latency_batch_ms", "latency_batch")  # models.arrow cost columns


def accuracy_table(results: dict, C: int, weights) -> tuple[dict, dict]:
    """accuracy.arrow's columns, and per model {variant: (accuracy, lo, hi)} over all classes (for models.arrow)."""
    acc = {k: [] for k in ACCURACY.names}
    overall: dict[str, dict] = {}
    for entry, res, _ in results.values():
        rows = agg.accuracy_rows(entry.model_id, res, C, weights, agg.BOOTSTRAP)
        for k, v in rows.items():
            acc[k] += v
        overall[entry.model_id] = {
            v: (a, lo, hi)
            for v, c, a, lo, hi in zip(
                rows["variant"],
                rows["class_id"],
                rows["accuracy"],
                rows["accuracy_lo"],
                rows["accuracy_hi"],
                strict=True,
            )
            if c == -1
        }
    return acc, overall


def models_table(results: dict, overall: dict) -> dict:
    nan3 = (float("nan"),) * 3
    cols = {k: [] for k in MODELS.names}
    # A masked model has its dense model's shape, so its dense model's cost: latency is measured once per shape.
    dense = {(e.arch, e.seed): x for e, _, x in results.values() if e.method == "dense"}
    for entry, _, extra in results.values():
        if extra.get("granularity") != "channel":
            extra = {**extra, **{k: v for k, v in dense.get((entry.arch, entry.seed), {}).items() if k in COST}}
        clean = overall[entry.model_id]["clean"]
        corrupted = overall[entry.model_id].get("corruption_mean", nan3)
        row = {
            "model_id": entry.model_id, "model_key": entry.key, "arch": entry.arch, "method": entry.method,
            "retrained": entry.retrained, "amount": entry.amount, "sparsity": extra["sparsity"],
            "prunable": extra["prunable"], "seed": entry.seed,
            "bn_recalibration_batches": extra.get("bn_recalibration_batches", 0),
            "clean_accuracy": clean[0], "clean_accuracy_lo": clean[1], "clean_accuracy_hi": clean[2],
            "corrupted_accuracy": corrupted[0], "corrupted_accuracy_lo": corrupted[1],
            "corrupted_accuracy_hi": corrupted[2],
        }  # fmt: skip
        row.update({k: extra.get(k, float("nan")) for k in COST})
        row["granularity"] = extra.get("granularity", "none" if entry.method == "dense" else "weight")
        row["feature_dim"] = extra.get("feature_dim", -1)  # -1: a work file from before schema 1.5
        row["dense_feature_dim"] = extra.get("dense_feature_dim", -1)
        for k in MODELS.names:
            cols[k].append(row[k])
    return cols


def correlations_table(results: dict, weights, *, corrupted: bool) -> dict:
    """Table 1 per model (needs corrupted variants: robustness counts them), with intervals."""
    cor = {k: [] for k in CORRELATIONS.names}
    if not corrupted:
        return cor
    for entry, res, _ in results.values():
        ra, rl, rm, rm5 = agg.correlations(res)
        row = {"model_id": entry.model_id, "arch": entry.arch, "method": entry.method, "amount": entry.amount,
               "n": res.labels.shape[0], "rc_angle": ra, "rc_length": rl, "rc_margin": rm, "rc_margin_eq5": rm5,
               **agg.correlation_intervals(res, weights, agg.BOOTSTRAP)}  # fmt: skip
        row["mc_abs_mean"], row["mc_abs_mean_lo"], row["mc_abs_mean_hi"] = agg.margin_change_spread(
            res, weights, agg.BOOTSTRAP
        )
        for k in CORRELATIONS.names:
            cor[k].append(row[k])
    return cor


def paired_table(results: dict, weights) -> dict:
    """Paired differences on the same evaluation images: every two models (ref_id the one listed first, so a dense
    model is the ref of its pruned ones; any two, so Fig. 10's picker can compare any pair) and every model's
    corrupted vs clean accuracy. A few N-vectors per model: 25 models x 500 images is 0.1 s, 300 pairs."""
    inputs = {}
    for entry, res, _ in results.values():  # one model's V x N arrays at a time; a few N-vectors kept of each
        inputs[entry.model_id] = agg.PairedInputs.of(res)
    ids = list(inputs)
    pairs = [(m, m) for m in ids] + [(m, r) for i, m in enumerate(ids) for r in ids[:i]]
    return agg.paired_rows(pairs, inputs, weights, agg.BOOTSTRAP)


def margin_change_table(results: dict, *, corrupted: bool) -> dict:
    mch = {k: [] for k in MARGIN_CHANGE.names}
    if corrupted:
        for entry, res, _ in results.values():
            for k, v in agg.margin_change_density(entry.model_id, res).items():
                mch[k] += v
    return mch


def exemplars_table(results: dict, labels: np.ndarray) -> dict:
    """Pruning-identified exemplars per architecture, over every seed."""
    exm = {k: [] for k in EXEMPLARS.names}
    for arch in dict.fromkeys(e.arch for e, _, _ in results.values()):
        # Copies of the clean row: a view would keep each model's V x N predictions alive.
        dense = [res.pred[0].copy() for e, res, _ in results.values() if e.arch == arch and e.method == "dense"]
        pruned = [res.pred[0].copy() for e, res, _ in results.values() if e.arch == arch and e.method != "dense"]
        if not dense or not pruned:
            continue
        idx, dpred, ppred, agree = agg.pruning_identified_exemplars(np.stack(dense), np.stack(pruned))
        row = {"arch": [arch] * len(idx), "sample_id": idx, "label": labels[idx], "dense_pred": dpred,
               "pruned_pred": ppred, "pruned_agreement": agree}  # fmt: skip
        for k in EXEMPLARS.names:
            exm[k] += list(row[k])
    return exm


def draw_shipped(recipe: Recipe, labels: np.ndarray, exemplars: dict, C: int) -> tuple[sampling.Draw, np.ndarray, dict]:
    """The shipped samples (store.sampling, the one policy the site's cut uses too): the whole evaluation set where
    it fits the per-model row limit, else a class-stratified uniform random sample of samples_per_class per class;
    exemplars outside it fill what the limit leaves, as extra rows (in_sample false). Returns the draw, whether
    each evaluated sample is an exemplar, and the shipping record (`shipping_record`)."""
    r = recipe
    per_sample_rows = shipped_rows(r, 1)
    limit = max(C, r.ship.max_rows_per_model // per_sample_rows)
    keep = np.unique(np.asarray(exemplars["sample_id"], dtype=np.int64))
    pie = np.isin(np.arange(len(labels)), keep)
    n_classes = len(np.unique(labels))
    size = len(labels) if len(labels) <= limit else min(limit, r.ship.samples_per_class * n_classes)
    drawn = sampling.draw_samples(labels, pie, sample_size=size, budget=limit, seed=r.ship.seed)
    shipping = shipping_record(
        labels,
        keep,
        drawn,
        C,
        asked=r.ship.samples_per_class,
        max_rows=r.ship.max_rows_per_model,
        rows_per_sample=per_sample_rows,
        limit=limit,
        seed=r.ship.seed,
    )
    return drawn, pie, shipping


def samples_table(eval_set: ImageSet, drawn: sampling.Draw, pie: np.ndarray, *, thumbnails: bool) -> dict:
    """One row per shipped sample: its label, class name, thumbnail (a data URI, or "" without thumbnails)."""
    classes = eval_set.classes
    labels = eval_set.labels.numpy()
    shipped = drawn.index
    return {
        "sample_id": shipped, "label": labels[shipped], "class_name": [classes[i] for i in labels[shipped]],
        "thumbnail": [thumbnail(custom.images_at(eval_set, [i])[0]) if thumbnails else "" for i in shipped],
        "pie": pie[shipped], "in_sample": drawn.in_sample,
    }  # fmt: skip


def shipping_record(
    labels: np.ndarray,
    exemplars: np.ndarray,
    drawn: sampling.Draw,
    C: int,
    *,
    asked: int,
    max_rows: int,
    rows_per_sample: int,
    limit: int,
    seed: int,
) -> dict:
    """The effective numbers behind `ship.samples_per_class` (manifest `dataset.shipping`, `lotterysite info`):
    the policy and its seed, per class the evaluated samples, the samples shipped, of them the exemplars and the
    stratified sample; `cut` says whether `max_rows_per_model` kept fewer than asked (a sample smaller than `asked`
    per class, or fewer exemplars than were found)."""
    exemplars = np.unique(exemplars)
    shipped = drawn.index
    is_pie = np.isin(shipped, exemplars)
    per_class = np.bincount(labels[shipped], minlength=C)
    pie_per_class = np.bincount(labels[shipped[is_pie]], minlength=C)
    population = np.bincount(labels, minlength=C)
    sample = np.bincount(labels[shipped[drawn.in_sample]], minlength=C)
    everything = len(shipped) == len(labels)
    # Short of the ask: fewer than samples_per_class x the classes present (proportional allocation spreads that
    # by class size), or exemplars left out.
    asked_total = min(asked * int((population > 0).sum()), len(labels))
    short = int(is_pie.sum()) < len(exemplars) or int(sample.sum()) < asked_total
    cut = bool(not everything and short)
    return {
        "asked_per_class": asked, "max_rows_per_model": max_rows, "rows_per_sample": rows_per_sample,
        "limit": limit, "per_class": per_class.tolist(), "exemplars_per_class": pie_per_class.tolist(),
        "exemplars_found": len(exemplars), "exemplars_shipped": int(is_pie.sum()), "cut": cut,
        "policy": sampling.POLICY, "seed": seed, "everything": everything, "evaluated_per_class": population.tolist(),
        "sample_size": int(drawn.in_sample.sum()), "sample_per_class": sample.tolist(),
        "extra_exemplars": int((~drawn.in_sample).sum()),
    }  # fmt: skip


def outcomes_table(results: dict, shipped: np.ndarray, names: list[str]) -> dict:
    """Per shipped sample and model: correct on clean, and how many severities of each corruption it survives."""
    out = {k: [] for k in outcomes_schema(names).names}
    for entry, res, _ in results.values():
        correct = res.correct[:, shipped]
        out["model_id"] += [entry.model_id] * len(shipped)
        out["sample_id"] += shipped.tolist()
        out["correct_clean"] += correct[0].tolist()
        out["robustness"] += correct[1:].sum(0).tolist()
        for n in names:
            rows = [v for v, (vn, _) in enumerate(res.variants) if vn == n]
            out[f"c_{n}"] += correct[rows].sum(0).tolist()
    return out


def confused_table(results: dict, C: int, k: int) -> tuple[dict[str, np.ndarray], dict]:
    """Per architecture, every class's k most confused classes (over the arch's models, full data): {arch: C x k
    class ids}, and confused.arrow's columns."""
    ids_of = {}
    cols = {name: [] for name in CONFUSED.names}
    for arch in dict.fromkeys(e.arch for e, _, _ in results.values()):
        ids, wrong, mean = agg.confused_classes((res for e, res, _ in results.values() if e.arch == arch), C, k)
        ids_of[arch] = ids
        present = np.flatnonzero(ids[:, 0] >= 0)
        cols["arch"] += [arch] * (len(present) * k)
        cols["class_id"].append(np.repeat(present, k))
        cols["rank"].append(np.tile(np.arange(k), len(present)))
        cols["confused_id"].append(ids[present].ravel())
        cols["wrong"].append(wrong[present].ravel())
        cols["mean_angle"].append(mean[present].ravel())
    out = {n: (np.concatenate(v) if v and isinstance(v[0], np.ndarray) else v) for n, v in cols.items()}
    return ids_of, out


def geometry_table(entry: ModelEntry, res, shipped: np.ndarray, labels: np.ndarray, ship_variants: list[int],
                   C: int, confused: np.ndarray | None = None) -> dict:  # fmt: skip
    """One model's per-sample rows: shipped samples x (clean + corruptions at the shipped severities). With
    `confused` (C x k class ids, many classes) the angle columns are angle_c<r>, to the row's label's r-th most
    confused class; else angle_<j> for every class."""
    rob = agg.robustness(res)[shipped]
    rel = np.vstack([np.zeros((1, res.margin.shape[1]), np.float32), agg.relative_margin_change(res)])
    angle_true = res.angle_true
    # Sorted sample ids read the memory-mapped angles front to back; the rows are put back in shipped order.
    order = np.argsort(shipped, kind="stable")
    undo = np.argsort(order)
    k = None if confused is None else confused.shape[1]
    g = {name: [] for name in geometry_schema(C, k).names}
    n = len(shipped)
    for v in ship_variants:
        name, severity = res.variants[v]
        g["model_id"] += [entry.model_id] * n
        g["sample_id"].append(shipped)
        g["variant"] += [name] * n
        g["severity"].append(np.full(n, severity))
        g["label"].append(labels[shipped])
        g["pred"].append(res.pred[v, shipped])
        g["correct"].append(res.correct[v, shipped])
        for metric in ("prob_true", "loss", "length", "margin", "margin_eq5", "degenerate"):
            g[metric].append(getattr(res, metric)[v, shipped])
        g["angle_true"].append(angle_true[v, shipped])
        g["rel_margin_change"].append(rel[v, shipped])
        g["robustness"].append(rob)
        rows = np.asarray(res.angles(v)[shipped[order]])[undo]  # shipped x C
        if confused is None:
            for j in range(C):
                g[f"angle_{j}"].append(rows[:, j])
        else:
            picked = np.take_along_axis(rows, confused[labels[shipped]], axis=1)
            for r in range(k):
                g[f"angle_c{r}"].append(picked[:, r])
    return {col: (np.concatenate(v) if v and isinstance(v[0], np.ndarray) else v) for col, v in g.items()}


def thumbnail(image: torch.Tensor) -> str:
    """A data URI of one uint8 C x H x W image, usable as a Vega URL: a PNG at its own size up to 32 px (a few
    hundred bytes at 28 px); larger images (class folders at 224 px) shrink to 64 px and ship as WebP, ~0.9 KB
    (JPEG at quality 80 was ~1.5 KB on the foolbox ImageNet photos: 2000 thumbnails must fit a 5 MB page), or as
    JPEG where Pillow lacks WebP."""
    from PIL import Image, features

    arr = image.numpy()
    pil = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
    buf = io.BytesIO()
    if max(pil.size) <= PNG_SIDE:
        pil.save(buf, format="PNG", optimize=True)
        kind = "png"
    else:
        pil.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.BILINEAR)
        if features.check("webp"):
            pil.save(buf, format="WEBP", quality=75, method=6)
            kind = "webp"
        else:
            pil.save(buf, format="JPEG", quality=80, optimize=True)
            kind = "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")
