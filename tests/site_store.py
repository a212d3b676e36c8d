"""A small but real store for the site tests, computed from a trained and pruned LeNet-5 on Fashion-MNIST.

Everything in it comes from real computations: one epoch of training on a subset, magnitude and random pruning,
two corruptions at two severities, the geometry of every sample. It is written through the store's own
`to_table` / `write_table` / `write_manifest`, so the site reads exactly what precompute writes.
When `lotterysite precompute` is available the tests may build their store with it instead: `build_store` is
the only function they call.
"""

from __future__ import annotations

import base64
import functools
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

N_TRAIN = 6000  # training images: one epoch reaches ~75 % in a few seconds
N_EVAL = 600  # evaluation images measured for the accuracy tables
N_SHIPPED = 300  # of which the first ones are shipped per sample to the browser
CORRUPTIONS = ("gaussian_noise", "brightness")
SEVERITIES = (1, 3)
PRUNED = (("magnitude", 0.5), ("magnitude", 0.8), ("random", 0.3))
HOSTILE = "<script>alert(1)</script>"


def _model_id(method: str, amount: float) -> str:
    return "lenet5/dense" if method == "dense" else f"lenet5/{method}/{amount:g}"


def _model_key(model_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_id.replace("/", "__"))


@functools.lru_cache(maxsize=1)
def _compute():
    """Train, prune, corrupt and measure once per test session (cached: ~15 s on 2 cores)."""
    import torch

    from lotterysite.config import TrainConfig
    from lotterysite.corruptions import corrupt
    from lotterysite.data import load_dataset
    from lotterysite.geometry import measure_model
    from lotterysite.models import create_model
    from lotterysite.pruning import prune
    from lotterysite.training import train

    torch.manual_seed(0)
    data = load_dataset("fashion_mnist")
    train_set = data.train.head(N_TRAIN)
    eval_set = data.test.head(N_EVAL)
    dense = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    train(dense, train_set, TrainConfig(epochs=1), progress=False)
    models = {"lenet5/dense": ("dense", 0.0, dense)}
    for method, amount in PRUNED:
        models[_model_id(method, amount)] = (method, amount, prune(dense, method, amount, seed=0))

    clean = eval_set.float_images()
    inputs = {("clean", 0): clean}
    for name in CORRUPTIONS:
        for severity in SEVERITIES:
            inputs[(name, severity)] = corrupt(clean, name, severity)
    labels = eval_set.labels
    results = {}
    for model_id, (_, _, model) in models.items():
        for variant, images in inputs.items():
            batches = [(images[i : i + 500], labels[i : i + 500]) for i in range(0, len(labels), 500)]
            geometry, _ = measure_model(model, batches)
            results[(model_id, variant)] = {
                "angle": geometry.angle.numpy(),
                "length": geometry.length.numpy(),
                "margin": geometry.margin.numpy(),
                "pred": geometry.pred.numpy(),
                "correct": geometry.correct.numpy(),
                "prob_true": geometry.prob_true.numpy(),
                "loss": geometry.loss.numpy(),
                "degenerate": geometry.degenerate.numpy(),
            }
        sparsity = 0.0
        if model_id != "lenet5/dense":
            weights = [p for n, p in model.named_parameters() if n in getattr(model, "masks", {})]
            sparsity = float(sum((w == 0).sum() for w in weights) / sum(w.numel() for w in weights))
        models[model_id] = models[model_id] + (sparsity,)
    return {
        "models": {k: (m, a, s) for k, (m, a, _, s) in models.items()},
        "results": results,
        "labels": labels.numpy(),
        "images": eval_set.images[:N_SHIPPED].numpy(),
        "gallery_images": clean[:2],
        "classes": data.classes,
    }


def _png(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[0]).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build_store(root: str | Path, *, hostile: bool = False, gallery: bool = True) -> Path:
    """Write the fixture store to `root`; `hostile` puts HTML in a class, a method and the recipe name."""
    from lotterysite.store import TABLES, geometry_schema, to_table, write_manifest, write_table

    root = Path(root)
    c = _compute()
    classes = list(c["classes"])
    method_name = {"dense": "dense", "magnitude": "magnitude", "random": "random"}
    recipe_name = "site-fixture"
    if hostile:
        classes[0] = HOSTILE
        method_name["random"] = 'rand"<b>om</b>'
        recipe_name = f"fixture {HOSTILE}"
    labels = c["labels"]
    ncls = len(classes)
    corrupted = [(name, severity) for name in CORRUPTIONS for severity in SEVERITIES]
    variants = [("clean", 0), *corrupted]

    def mid(model_id: str) -> str:
        method = c["models"][model_id][0]
        return model_id.replace(f"/{method}", f"/{method_name[method]}", 1)

    files = {}

    def put(rel: str, table, schema_meta: dict | None = None):
        n = write_table(root / rel, table, metadata={"recipe": recipe_name, **(schema_meta or {})})
        files[rel] = {"rows": n, "bytes": (root / rel).stat().st_size}

    rows = {k: [] for k in TABLES["models.arrow"].names}
    acc = {k: [] for k in TABLES["accuracy.arrow"].names}
    corr = {k: [] for k in TABLES["correlations.arrow"].names}
    mc = {k: [] for k in TABLES["margin_change.arrow"].names}
    manifest_models = []
    for model_id, (method, amount, sparsity) in c["models"].items():
        r = c["results"]
        clean = r[(model_id, ("clean", 0))]
        corr_acc = float(np.mean([r[(model_id, v)]["correct"].mean() for v in corrupted]))
        for k, v in dict(model_id=mid(model_id), model_key=_model_key(mid(model_id)), arch="lenet5",
                         method=method_name[method], retrained=False, amount=amount, sparsity=sparsity,
                         prunable=61470, seed=0, clean_accuracy=float(clean["correct"].mean()),
                         corrupted_accuracy=corr_acc).items():  # fmt: skip
            rows[k].append(v)
        manifest_models.append({"model_id": mid(model_id), "model_key": _model_key(mid(model_id)), "arch": "lenet5",
                                "method": method_name[method], "amount": amount, "retrained": False})  # fmt: skip
        groups = [("clean", 0, [("clean", 0)])]
        groups += [(v[0], v[1], [v]) for v in corrupted]
        groups += [(n, 0, [v for v in corrupted if v[0] == n]) for n in CORRUPTIONS]
        groups += [("corruption_mean", 0, corrupted)]
        for variant, severity, members in groups:
            correct = np.concatenate([r[(model_id, v)]["correct"] for v in members])
            lab = np.concatenate([labels] * len(members))
            for class_id in [-1, *range(ncls)]:
                sel = correct if class_id < 0 else correct[lab == class_id]
                for k, v in dict(model_id=mid(model_id), variant=variant, severity=severity, class_id=class_id,
                                 n=len(sel), correct=int(sel.sum()), accuracy=float(sel.mean())).items():  # fmt: skip
                    acc[k].append(v)
        robustness = np.sum([r[(model_id, v)]["correct"] for v in corrupted], axis=0)
        angle_true = clean["angle"][np.arange(len(labels)), labels]
        for k, v in dict(model_id=mid(model_id), arch="lenet5", method=method_name[method], amount=amount,
                         n=len(labels), rc_angle=np.corrcoef(robustness, angle_true)[0, 1],
                         rc_length=np.corrcoef(robustness, clean["length"])[0, 1],
                         rc_margin=np.corrcoef(robustness, clean["margin"])[0, 1]).items():  # fmt: skip
            corr[k].append(v)
        for name in ["all", *CORRUPTIONS]:
            members = [v for v in corrupted if name in ("all", v[0])]
            change = np.concatenate([(clean["margin"] - r[(model_id, v)]["margin"]) / clean["margin"] for v in members])
            lo, hi = np.quantile(change, [0.005, 0.995])
            density, edges = np.histogram(change[(change >= lo) & (change <= hi)], bins=40, density=True)
            for k, v in dict(model_id=[mid(model_id)] * 40, variant=[name] * 40, x=(edges[:-1] + edges[1:]) / 2,
                             density=density).items():  # fmt: skip
                mc[k].extend(v)

        geo = {k: [] for k in geometry_schema(ncls).names}
        shipped = slice(0, N_SHIPPED)
        for variant in variants:
            g = r[(model_id, variant)]
            n = N_SHIPPED
            geo["model_id"] += [mid(model_id)] * n
            geo["sample_id"] += list(range(n))
            geo["variant"] += [variant[0]] * n
            geo["severity"] += [variant[1]] * n
            geo["label"] += list(labels[shipped])
            for k in ("pred", "correct", "prob_true", "loss", "length", "margin", "degenerate"):
                geo[k] += list(g[k][shipped])
            geo["angle_true"] += list(g["angle"][np.arange(n), labels[shipped]])
            geo["rel_margin_change"] += list((clean["margin"][shipped] - g["margin"][shipped]) / clean["margin"][shipped])
            geo["robustness"] += list(robustness[shipped])
            for j in range(ncls):
                geo[f"angle_{j}"] += list(g["angle"][shipped, j])
        put(f"geometry/{_model_key(mid(model_id))}.arrow", to_table(geo, geometry_schema(ncls), where=model_id))

    put("models.arrow", to_table(rows, TABLES["models.arrow"], where="models"))
    put("accuracy.arrow", to_table(acc, TABLES["accuracy.arrow"], where="accuracy"))
    put("correlations.arrow", to_table(corr, TABLES["correlations.arrow"], where="correlations"))
    put("margin_change.arrow", to_table(mc, TABLES["margin_change.arrow"], where="margin_change"))

    dense_pred = c["results"][("lenet5/dense", ("clean", 0))]["pred"]
    pruned_preds = np.stack([c["results"][(m, ("clean", 0))]["pred"] for m in c["models"] if m != "lenet5/dense"])
    modal = np.array([np.bincount(col, minlength=ncls).argmax() for col in pruned_preds.T])
    agreement = (pruned_preds == modal).mean(axis=0)
    pie = np.flatnonzero(modal != dense_pred)
    put("exemplars.arrow", to_table(dict(arch=["lenet5"] * len(pie), sample_id=pie, label=labels[pie],
                                         dense_pred=dense_pred[pie], pruned_pred=modal[pie],
                                         pruned_agreement=agreement[pie]), TABLES["exemplars.arrow"]))  # fmt: skip

    rng = np.random.default_rng(0)
    curse = {k: [] for k in TABLES["curse.arrow"].names}
    for dim in (2, 8, 32, 128, 512):
        a, b = rng.uniform(-1, 1, (2, 2000, dim))
        ang = np.degrees(np.arccos(np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
        for k, v in dict(study="random", dimension=dim, angle_mean=ang.mean(), angle_std=ang.std(),
                         accuracy=float("nan")).items():  # fmt: skip
            curse[k].append(v)
    clean = c["results"][("lenet5/dense", ("clean", 0))]
    true_angle = clean["angle"][np.arange(len(labels)), labels]
    for k, v in dict(study="lenet5", dimension=84, angle_mean=true_angle.mean(), angle_std=true_angle.std(),
                     accuracy=clean["correct"].mean()).items():  # fmt: skip
        curse[k].append(v)
    put("curse.arrow", to_table(curse, TABLES["curse.arrow"], where="curse"))

    pie_set = set(pie.tolist())
    put("samples.arrow", to_table(dict(sample_id=range(N_SHIPPED), label=labels[:N_SHIPPED],
                                       class_name=[classes[y] for y in labels[:N_SHIPPED]],
                                       thumbnail=[_png(im) for im in c["images"]],
                                       pie=[i in pie_set for i in range(N_SHIPPED)]), TABLES["samples.arrow"]))  # fmt: skip
    if gallery:
        from lotterysite.corruptions import gallery as make_gallery

        make_gallery(c["gallery_images"], root / "gallery.png", names=CORRUPTIONS)
    write_manifest(root, {
        "lotterysite_version": "0.1.0",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": {"name": recipe_name, "config": {"train_subset": N_TRAIN, "epochs": 1}},
        "dataset": {"name": "fashion_mnist", "classes": classes, "n_eval": N_EVAL, "n_shipped": N_SHIPPED,
                    "channels": 1, "image_size": 28},
        "architectures": ["lenet5"],
        "methods": sorted({m["method"] for m in manifest_models}),
        "models": manifest_models,
        "corruptions": list(CORRUPTIONS),
        "severities": list(SEVERITIES),
        "files": files,
    })  # fmt: skip
    return root


if __name__ == "__main__":
    import sys
    import time

    start = time.perf_counter()
    out = build_store(sys.argv[1] if len(sys.argv) > 1 else "store/fixture")
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    print(json.dumps(json.loads((out / "manifest.json").read_text())["files"], indent=1)[:800])


_SITES: dict[tuple, Path] = {}


def build_site(workdir: Path, store: Path) -> Path:
    """Build the site for `store` with the repository's mkdocs.yml and site_src/; returns the site folder.

    Cached per store for the whole session: the unit and the browser tests share one build.
    """
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    key = (str(store),)
    if key in _SITES:
        return _SITES[key]
    repo = Path(__file__).resolve().parents[1]
    workdir.mkdir(parents=True, exist_ok=True)
    text = (repo / "mkdocs.yml").read_text(encoding="utf-8")
    # Paths in mkdocs.yml are relative to it: point them back at the repository from the work folder.
    text = text.replace("store: store/demo", f"store: {store}\n      node_modules: {repo / 'node_modules'}")
    text = text.replace("docs_dir: site_src", f"docs_dir: {repo / 'site_src'}")
    text = text.replace("site_dir: site", f"site_dir: {workdir / 'site'}")
    cfg_path = workdir / "mkdocs.yml"
    cfg_path.write_text(text, encoding="utf-8")
    build(load_config(str(cfg_path)))
    _SITES[key] = workdir / "site"
    return _SITES[key]
