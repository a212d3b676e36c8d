"""What the site serves, derived from a store with pyarrow only: small per-view Arrow files the browser fetches.

The store keeps one geometry file per model with every variant; a page needs one (model, variant) at a time, so
the site splits them into slices of n_shipped rows (≤ `max_samples`). Aggregates the views need (the evaluation
table's rows and ranks, the per-sample correctness counts behind subset accuracy) are computed here, in Python.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from ..store import TABLES, StoreError, sampling
from ..store.io import check_classes, read_store, table_from_bytes
from ..store.schema import GALLERY_NAMES, OPTIONAL_TABLES, outcomes_schema, store_geometry_schema

SAFE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
SLICE_COLUMNS = ("sample_id", "label", "pred", "correct", "length", "margin", "angle_true", "robustness")
# The per-sample slice files every geometry page reads (the single views and the workspace; issue 23 §4), each
# per-sample value written once. Per (model, variant) the local slice: SLICE_COLUMNS and the class accuracy, without
# the class angles (what the local view, the sample examination, the selection and the sample grid read); and the
# parallel coordinates' class angles apart, one file per class (the PCP draws one class), fetched when that class is
# shown. Many classes (confused-class axes): one file of every sample's angles.
WS_LOCAL = "w"  # data/<arch>/w/<model_key>/<slice file>
WS_ANGLES = "p"  # data/<arch>/p/<model_key>/<slice stem>/c<class>.arrow (or all.arrow)
THUMBNAIL = re.compile(r"^data:image/(png|jpeg|webp);base64,[A-Za-z0-9+/=]*$")  # never a URL readers would fetch
SMALL_TABLES = ("models.arrow", "accuracy.arrow", "correlations.arrow", "margin_change.arrow", "exemplars.arrow",
                "curse.arrow", "paired.arrow")  # fmt: skip


def slug(text: str) -> str:
    """A URL- and file-safe form of a user-supplied name (architectures may be "tv:resnet50")."""
    out = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()
    return out or "x"


def unique_slugs(names) -> dict[str, str]:
    """{name: slug}, one slug per name: names whose slugs coincide ("ResNet" and "resnet", "tv:a" and "tv-a") each
    get a short digest of the name appended, so no two architectures share a page or a data folder."""
    names = list(dict.fromkeys(names))
    plain = {n: slug(n) for n in names}
    counts = Counter(plain.values())
    out = {}
    for n in names:
        s = plain[n]
        if counts[s] > 1 or s in out.values():
            s = f"{s}-{hashlib.sha256(n.encode('utf-8')).hexdigest()[:10]}"
        out[n] = s
    return out


@dataclass
class Store:
    root: Path
    manifest: dict
    classes: list[str]
    models: pa.Table
    accuracy: pa.Table
    tables: dict[str, pa.Table] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)  # every listed file, read once and verified

    def table(self, name: str, schema: pa.Schema | None = None) -> pa.Table:
        """A listed Arrow file, parsed from the bytes verified when the store was loaded (never read again)."""
        if name not in self.blobs:
            raise StoreError(f"{self.root / name}: not listed in the manifest; rerun `lotterysite precompute RECIPE`")
        return table_from_bytes(self.blobs[name], self.root / name, schema)

    @property
    def confused_k(self) -> int | None:
        """k when the geometry files hold the angles to each class's k most confused classes (many classes), else
        None (one angle column per class)."""
        return (self.manifest.get("dataset") or {}).get("confused_classes")

    def confused_of(self, arch: str, class_ids) -> dict[str, list[int]]:
        """{class id (as text, a JSON key): its k most confused classes, in angle_c<r> order} for `class_ids`."""
        t = self.tables.get("confused.arrow")
        if t is None or self.confused_k is None:
            return {}
        t = t.filter(pc.equal(t["arch"].cast(pa.string()), arch)).sort_by([("class_id", "ascending"),
                                                                          ("rank", "ascending")])  # fmt: skip
        out: dict[str, list[int]] = {}
        wanted = {int(c) for c in class_ids}
        for c, j in zip(t["class_id"].to_pylist(), t["confused_id"].to_pylist(), strict=True):
            if c in wanted:
                out.setdefault(str(c), []).append(j)
        missing = sorted(wanted - {int(c) for c in out})
        if missing:
            raise StoreError(f"{self.root}/confused.arrow: no confused classes for class {missing[0]} of {arch!r}; "
                             "rerun `lotterysite precompute RECIPE`")  # fmt: skip
        return out

    @property
    def archs(self) -> list[str]:
        return list(dict.fromkeys(self.models.column("arch").to_pylist()))

    def slug(self, arch: str) -> str:
        """The architecture's folder name on the site, unique among the store's architectures."""
        return unique_slugs(self.archs)[arch]

    def models_of(self, arch: str) -> list[dict]:
        rows = [r for r in self.models.to_pylist() if r["arch"] == arch]
        # Dense first, then by method and amount: the pickers' order.
        return sorted(rows, key=lambda r: (r["method"] != "dense", r["method"], r["retrained"], r["amount"]))


def load_store(root: str | Path) -> Store:
    """Read and validate every store file the site needs; a StoreError names the file and the fix.

    Each file is read once, through one handle on the store folder (no link followed), and checked against the
    manifest's size, SHA-256 and run; the site is made from those bytes only, so a store republished or a file
    swapped while the site renders is refused or has no effect, never mixed in."""
    root = Path(root)
    manifest, blobs = read_store(root)
    files = manifest["files"]
    corruptions = list(manifest.get("corruptions") or [])
    wanted = {**TABLES, "outcomes.arrow": outcomes_schema(corruptions)}
    tables = {}
    for name, schema in wanted.items():
        if name in files:
            tables[name] = table_from_bytes(blobs[name], root / name, schema)
        elif name not in OPTIONAL_TABLES:
            raise StoreError(f"{root / name}: not listed in the manifest; rerun `lotterysite precompute RECIPE`")
    for i, thumb in enumerate(tables["samples.arrow"].column("thumbnail").to_pylist()):
        if thumb and not THUMBNAIL.match(thumb):
            raise StoreError(f"{root}/samples.arrow: row {i}: field 'thumbnail' is not a data:image/png, jpeg or "
                             "webp URI; a store never points readers at outside addresses")  # fmt: skip
    classes = list(manifest["dataset"]["classes"])
    check_classes(root, manifest, tables["samples.arrow"])
    if manifest["dataset"].get("confused_classes") is not None and "confused.arrow" not in tables:
        raise StoreError(f"{root}/confused.arrow: not found, but the manifest says the geometry files hold confused-"
                         "class angles; rerun `lotterysite precompute RECIPE`")  # fmt: skip
    models = tables["models.arrow"]
    for key in models.column("model_key").to_pylist():
        if not SAFE_KEY.match(key):
            raise StoreError(f"{root}/models.arrow: model_key {key!r} is not file-name-safe (letters, digits, '._-')")
        if f"geometry/{key}.arrow" not in files:
            raise StoreError(
                f"{root}/geometry/{key}.arrow not found (listed in models.arrow); rerun `lotterysite precompute RECIPE`"
            )
    return Store(root, manifest, classes, models, tables["accuracy.arrow"], tables, blobs)


def gallery_file(store: Store) -> tuple[str, bytes] | None:
    """The store's gallery (gallery.png, or .webp/.jpg for large images): its name and the bytes verified when the
    store was loaded; None when the manifest names none of its files (a file never listed never reaches the site)."""
    name = store.manifest.get("gallery")
    if name not in GALLERY_NAMES or name not in store.blobs:
        return None
    return name, store.blobs[name]


def arrow_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def method_label(row: dict) -> str:
    return row["method"] + ("+retrain" if row["retrained"] else "")


def amount_label(amount: float) -> str:
    return "dense" if amount == 0 else f"{amount * 100:g}%"


def model_label(row: dict) -> str:
    """ "magnitude+retrain 50%", or "dense" alone (never "dense dense")."""
    amount = amount_label(row["amount"])
    return amount if row["method"] == "dense" or amount == method_label(row) else f"{method_label(row)} {amount}"


def variant_labels(store: Store) -> list[str]:
    """Columns of the evaluation table: clean, the mean over corruptions, then each corruption."""
    corruptions = list(store.manifest.get("corruptions") or [])
    return ["clean", *(["corruption mean"] if corruptions else []), *corruptions]


def evaluation_rows(store: Store, arch: str) -> pa.Table:
    """One row per model × (clean, each corruption averaged over severities, corruption mean), ranked per column."""
    models = {r["model_id"]: r for r in store.models_of(arch)}
    acc = store.accuracy.filter(
        pc.and_(pc.equal(store.accuracy["class_id"], -1), pc.equal(store.accuracy["severity"], 0))
    )
    rows = []
    for r in acc.to_pylist():
        m = models.get(r["model_id"])
        if m is None:
            continue
        label = "corruption mean" if r["variant"] == "corruption_mean" else r["variant"]
        rows.append(dict(model_id=r["model_id"], model_label=model_label(m), method_label=method_label(m),
                         amount=float(m["amount"]), amount_label=amount_label(m["amount"]), variant_label=label,
                         accuracy=float(r["accuracy"])))  # fmt: skip
    best: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (r["variant_label"], r["method_label"])
        best[key] = max(best.get(key, 0.0), r["accuracy"])
    seen = set()
    for r in rows:
        # Equal accuracies rank by method name: a set's order changes from run to run, the page must not.
        ranked = sorted({m for (v, m) in best if v == r["variant_label"]},
                        key=lambda m: (-best[(r["variant_label"], m)], m))  # fmt: skip
        r["rank"] = ranked.index(r["method_label"]) + 1
        cell = (r["variant_label"], r["method_label"])
        r["first"] = cell not in seen
        seen.add(cell)
        r["order"] = r["rank"] * 1000 + r["amount"] * 100  # ranked methods top-down, each by amount
        for k in ("subset_accuracy", "subset_lo", "subset_hi", "delta", "delta_lo", "delta_hi"):
            r[k] = None  # set in the browser for the subset chosen
    schema = pa.schema(
        [
            ("model_id", pa.string()),
            ("model_label", pa.string()),
            ("method_label", pa.string()),
            ("amount", pa.float32()),
            ("amount_label", pa.string()),
            ("variant_label", pa.string()),
            ("accuracy", pa.float32()),
            ("rank", pa.int32()),
            ("first", pa.bool_()),
            ("order", pa.float32()),
            ("subset_accuracy", pa.float32()),
            ("subset_lo", pa.float32()),
            ("subset_hi", pa.float32()),
            ("delta", pa.float32()),
            ("delta_lo", pa.float32()),
            ("delta_hi", pa.float32()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


@dataclass(frozen=True)
class Served:
    """The samples the site serves: sorted ids, and per id whether it is in the stratified sample (False: an extra
    exemplar row, for the sample view only)."""

    ids: np.ndarray
    in_sample: np.ndarray


def served_samples(store: Store, max_samples: int) -> Served:
    """The samples the site serves: every stored sample where they fit `max_samples`, else the store's policy
    (`store.sampling.draw_samples`, seeded as the store's draw) applied to the stored rows: a class-stratified
    uniform random sample of the store's sample, then extra exemplar rows with what is left."""
    t = store.tables["samples.arrow"]
    ids = t.column("sample_id").to_numpy()
    labels = t.column("label").to_numpy()
    pie = t.column("pie").to_numpy(zero_copy_only=False).astype(bool)
    in_sample = t.column("in_sample").to_numpy(zero_copy_only=False).astype(bool)
    seed = int(((store.manifest.get("dataset") or {}).get("shipping") or {}).get("seed", 0))
    size = min(int(in_sample.sum()), max_samples)
    drawn = sampling.draw_samples(labels, pie, sample_size=size, budget=max_samples, seed=seed, population=in_sample)
    order = np.argsort(ids[drawn.index], kind="stable")
    return Served(ids[drawn.index][order], drawn.in_sample[order])


def shipped_ids(store: Store, max_samples: int) -> np.ndarray:
    """The ids `served_samples` serves, sorted."""
    return served_samples(store, max_samples).ids


def as_served(store: Store, ids) -> Served:
    """`ids` as Served: as given, or sorted ids with the store's own `in_sample` flags."""
    if isinstance(ids, Served):
        return ids
    t = store.tables["samples.arrow"]
    t = t.filter(pc.is_in(t["sample_id"], pa.array(np.asarray(ids), pa.int32()))).sort_by("sample_id")
    return Served(t.column("sample_id").to_numpy(), t.column("in_sample").to_numpy(zero_copy_only=False).astype(bool))


def shipped_summary(store: Store, served) -> dict:
    """The effective numbers behind every view: samples served, per class (the sample's), exemplars, extra rows,
    and what the store holds."""
    served = as_served(store, served)
    t = store.tables["samples.arrow"]
    t = t.filter(pc.is_in(t["sample_id"], pa.array(served.ids, pa.int32()))).sort_by("sample_id")
    labels = t.column("label").to_numpy()
    pie = t.column("pie").to_numpy(zero_copy_only=False).astype(bool)
    per_class = [int((labels[served.in_sample] == j).sum()) for j in range(len(store.classes))]
    return {"served": len(served.ids), "per_class": per_class, "exemplars": int(pie.sum()),
            "sample": int(served.in_sample.sum()), "extra": int((~served.in_sample).sum()),
            "exemplars_in_sample": int((pie & served.in_sample).sum()),
            "stored": store.tables["samples.arrow"].num_rows,
            "evaluated": int(store.manifest.get("dataset", {}).get("n_eval") or 0),
            "everything": len(served.ids) == int(store.manifest.get("dataset", {}).get("n_eval") or -1)}  # fmt: skip


THUMBS = "thumbs"  # data/thumbs/<sample_id>.<format>: one image file per served sample with a thumbnail


def _thumbnails(store: Store, served: Served) -> tuple[list[str | None], list[str | None]]:
    """Per served sample (in id order), its thumbnail's format ("png", "jpeg", "webp"; None: the store has none) and
    its data URI, checked when the store was loaded (`THUMBNAIL`)."""
    t = store.tables["samples.arrow"]
    t = t.filter(pc.is_in(t["sample_id"], pa.array(served.ids, pa.int32()))).sort_by("sample_id")
    uris = t.column("thumbnail").to_pylist()
    kinds = [THUMBNAIL.match(u).group(1) if u else None for u in uris]
    return kinds, uris


def samples_table(store: Store, served, panel_marks: int | None = None) -> pa.Table:
    """samples.arrow of the served samples, `in_sample` as the site's cut set it, `thumb`: the format of the
    sample's image file (`thumbnail_files`), null where the store has no thumbnail, and `dot` (`dot_samples`): the
    samples the workspace draws as marks where a class has more than `panel_marks` (None: every sample). The images
    themselves are not in it: at 10 000 samples they were 29.7 of its 29.8 MB (bench/RESULTS.md, the site at CIFAR
    scale), and a page shows a few dozen at a time; the grid asks for those files only."""
    served = as_served(store, served)
    t = store.tables["samples.arrow"]
    t = t.filter(pc.is_in(t["sample_id"], pa.array(served.ids, pa.int32()))).sort_by("sample_id")
    dots = dot_samples(store, served, panel_marks)
    t = t.select(["sample_id", "label", "pie"])
    kinds, _ = _thumbnails(store, served)
    thumb = pa.array(kinds, pa.string()).dictionary_encode().cast(pa.dictionary(pa.int8(), pa.string()))
    t = t.append_column("in_sample", pa.array(served.in_sample, pa.bool_())).append_column("thumb", thumb)
    return t.append_column("dot", pa.array(dots, pa.bool_()))


def dot_samples(store: Store, served, panel_marks: int | None) -> np.ndarray:
    """Per served sample (id order), whether the workspace's panels draw it as a mark (a dot, a line) when nothing
    is selected: every sample of the stratified sample where each class has at most `panel_marks` of them, else
    the store's policy (`sampling.draw_samples`, the store's seed) applied to them: a class-stratified uniform
    random subsample sized so that the largest class gets about `panel_marks`. The rest are drawn as a density
    (`densities`), and as marks when selected. The same flags for every view and every combination."""
    served = as_served(store, served)
    if panel_marks is None or not served.in_sample.any():
        return served.in_sample.copy()
    labels = store_labels(store, served)
    counts = np.bincount(labels[served.in_sample])
    if counts.max() <= panel_marks:
        return served.in_sample.copy()
    size = max(1, int(panel_marks * served.in_sample.sum() / counts.max()))
    pie = np.zeros(len(labels), bool)  # no extra rows: the subsample is a uniform sample of the served sample
    seed = int(((store.manifest.get("dataset") or {}).get("shipping") or {}).get("seed", 0))
    drawn = sampling.draw_samples(labels, pie, sample_size=size, budget=size, seed=seed, population=served.in_sample)
    out = np.zeros(len(labels), bool)
    out[drawn.index] = True
    return out


def store_labels(store: Store, served: Served) -> np.ndarray:
    """The labels of the served samples, in id order."""
    t = store.tables["samples.arrow"]
    t = t.filter(pc.is_in(t["sample_id"], pa.array(served.ids, pa.int32()))).sort_by("sample_id")
    return t.column("label").to_numpy().astype(np.int64)


LOCAL_BINS = (30, 20)  # the workspace's local density: bins of length x angle to the true class, per class
PCP_BINS = 24  # the workspace's PCP density: bins per axis


def _padded(lo: float, hi: float) -> list[float]:
    """A range padded by 4 % (±0.5 for a single value), as the views' axes are (workspace.js `pcpRanges`)."""
    if not hi >= lo:
        return [0.0, 1.0]
    pad = (hi - lo) * 0.04 or 0.5
    return [float(lo - pad), float(hi + pad)]


def _group(field_name: str) -> str:
    return "angle" if field_name.startswith("angle") else field_name


def densities(store: Store, arch: str, served, axes: list[str], slices: list[dict]) -> tuple[dict[str, bytes], dict]:
    """The workspace's binned densities of every served sample of the stratified sample, computed here from the
    store: per (model, variant) a file of exact counts per class, of the local view's (length, angle to the true
    class) on LOCAL_BINS and of each PCP axis (`axes`) on PCP_BINS. The bins span, per class, the values of every
    model and variant of the architecture (padded as the axes are): one grid for every combination, so that two
    panels' densities compare bin for bin. Returns ({path under data/: file}, {class: extents}) with extents
    {"x": length range, "y": angle range, "angle" | "length" | "margin": the PCP groups' ranges}.

    A file's rows: cls, k (-1: the local density; else the PCP axis), ix, iy (the bin: length and angle bins for
    the local density, the value's bin on axis k for the PCP with ix 0), n (samples in the bin; empty bins left out).
    Bin b of a range [lo, hi] split in m holds lo + b (hi - lo) / m <= v < lo + (b + 1) (hi - lo) / m."""
    served = as_served(store, served)
    ids = pa.array(served.ids, pa.int32())
    labels = store_labels(store, served)
    keep = served.in_sample
    schema = store_geometry_schema(store.manifest)
    keys = shipped_variants(store)
    fields = sorted({"length", "angle_true", *axes})
    classes = sorted(set(labels[keep].tolist()))

    def parts():
        for m in store.models_of(arch):
            table = store.table(f"geometry/{m['model_key']}.arrow", schema)
            table = table.filter(pc.is_in(table["sample_id"], ids))
            variant = table["variant"].cast(pa.string())
            for v, sev in keys:
                part = table.filter(pc.and_(pc.equal(variant, v), pc.equal(table["severity"], sev)))
                part = part.sort_by("sample_id")
                yield m, (v, sev), {f: part[f].to_numpy(zero_copy_only=False).astype(np.float64) for f in fields}

    lo = {c: {} for c in classes}
    hi = {c: {} for c in classes}
    for _, _, vals in parts():
        for c in classes:
            rows = keep & (labels == c)
            for name, f in [("x", "length"), ("y", "angle_true"), *((_group(a), a) for a in axes)]:
                v = vals[f][rows]
                v = v[np.isfinite(v)]
                if len(v):
                    lo[c][name] = min(lo[c].get(name, np.inf), v.min())
                    hi[c][name] = max(hi[c].get(name, -np.inf), v.max())
    extents = {c: {k: _padded(lo[c][k], hi[c][k]) for k in lo[c]} for c in classes}
    by_key = {(s["variant"], s["severity"]): s["file"] for s in slices}
    files: dict[str, bytes] = {}
    for m, key, vals in parts():
        out = {k: [] for k in ("cls", "k", "ix", "iy", "n")}

        def add(c, k, ix, iy, counts, out=out):
            nz = np.flatnonzero(counts)
            out["cls"] += [c] * len(nz)
            out["k"] += [k] * len(nz)
            out["ix"] += list(ix[nz]) if ix is not None else [0] * len(nz)
            out["iy"] += list(iy[nz])
            out["n"] += list(counts[nz])

        for c in classes:
            rows = keep & (labels == c)
            e = extents[c]
            bx = _bins(vals["length"][rows], e["x"], LOCAL_BINS[0])
            by = _bins(vals["angle_true"][rows], e["y"], LOCAL_BINS[1])
            ok = (bx >= 0) & (by >= 0)
            counts = np.bincount(bx[ok] * LOCAL_BINS[1] + by[ok], minlength=LOCAL_BINS[0] * LOCAL_BINS[1])
            grid = np.arange(len(counts))
            add(c, -1, grid // LOCAL_BINS[1], grid % LOCAL_BINS[1], counts)
            for k, f in enumerate(axes):
                b = _bins(vals[f][rows], e[_group(f)], PCP_BINS)
                add(c, k, None, np.arange(PCP_BINS), np.bincount(b[b >= 0], minlength=PCP_BINS))
        table = pa.table({"cls": pa.array(out["cls"], pa.int16()), "k": pa.array(out["k"], pa.int8()),
                          "ix": pa.array(out["ix"], pa.uint8()), "iy": pa.array(out["iy"], pa.uint8()),
                          "n": pa.array(out["n"], pa.uint16() if len(labels) < 2**16 else pa.int32())})  # fmt: skip
        files[f"{store.slug(arch)}/d/{m['model_key']}/{by_key[key]}"] = arrow_bytes(table)
    return files, {str(c): e for c, e in extents.items()}


def _bins(values: np.ndarray, extent: list[float], m: int) -> np.ndarray:
    """Each value's bin among m equal bins of `extent` (the last bin closed), -1 for a value that is not finite."""
    lo, hi = extent
    b = np.floor((values - lo) / (hi - lo) * m)
    b = np.where(np.isfinite(b), np.clip(b, 0, m - 1), -1)
    return b.astype(np.int64)


def thumbnail_files(store: Store, served) -> dict[str, bytes]:
    """{"thumbs/<sample_id>.<format>": the image's bytes} for every served sample with a thumbnail: the store's data
    URI decoded, so the file is byte for byte the image the store holds."""
    served = as_served(store, served)
    kinds, uris = _thumbnails(store, served)
    return {f"{THUMBS}/{int(i)}.{k}": base64.b64decode(u.split(",", 1)[1], validate=True)
            for i, k, u in zip(served.ids, kinds, uris, strict=True) if k}  # fmt: skip


def _ipc_estimate(store: Store, fields: list[pa.Field], n: int) -> int:
    """Bytes of an Arrow file of `n` rows of `fields` with the store's geometry metadata (as a slice keeps it): the
    empty file (schema and footer) plus the fixed widths and 8 bytes of each column buffer's alignment."""
    first = f"geometry/{store.models.column('model_key')[0].as_py()}.arrow"
    meta = ipc.open_file(pa.BufferReader(store.blobs[first])).schema.metadata
    empty = len(arrow_bytes(pa.schema(fields, metadata=meta).empty_table()))
    return int(empty + n * sum(f.type.bit_width / 8 for f in fields) + 64 * len(fields))


def _narrow_range(lo: int, hi: int) -> pa.DataType:
    return narrow_int(pa.array([lo, hi], pa.int64()))


def workspace_slice_bytes(store: Store, max_axes: int, n: int, per_class: int) -> tuple[int, int]:
    """Bytes of one (model, variant)'s slice files (`workspace_files`), estimated from the columns' widths: (its local
    slice of `n` samples, the angle file a PCP fetches for one class of `per_class` samples; with many classes, the
    one file of all `n`); the angles for at most `max_axes` classes, or the confused classes. Class ids and
    robustness counts narrowed as `narrow_int` does, from their largest values."""
    schema = store_geometry_schema(store.manifest)
    n_cls = len(store.classes)
    most = len(store.manifest.get("corruptions") or []) * len(store.manifest.get("severities") or [])
    types = {"label": _narrow_range(0, n_cls - 1), "pred": _narrow_range(-1, n_cls - 1),
             "robustness": _narrow_range(0, most)}  # fmt: skip
    local = [pa.field(c, types.get(c, schema.field(c).type)) for c in SLICE_COLUMNS]
    local.append(pa.field("class_accuracy", pa.float32()))
    k = store.confused_k
    angles = [f"angle_c{r}" for r in range(k)] if k is not None else [f"angle_{j}" for j in range(
        min(max_axes, n_cls))]  # fmt: skip
    angle_fields = [schema.field("sample_id")] + [schema.field(a) for a in angles]
    return _ipc_estimate(store, local, n), _ipc_estimate(store, angle_fields, n if k is not None else per_class)


def correct_bytes(store: Store, arch: str, n: int) -> int:
    """Bytes of an architecture's correct.arrow of `n` served samples (`correct_table`), estimated: per sample its
    id, label and in_sample flag, and its packed counts (one column per model and clean or corruption)."""
    corruptions = len(store.manifest.get("corruptions") or [])
    columns = len(store.models_of(arch)) * (1 + corruptions)
    bits = count_bits(max(1, len(store.manifest.get("severities") or []) if corruptions else 1))
    width = max(1, -(-columns * bits // 8))
    label = store.tables["samples.arrow"].schema.field("label").type.bit_width // 8
    return int(n * (4 + label + 1 / 8 + width) + 4 * 64 + 1000)


def density_bytes(store: Store, n_axes: int, per_class: list[int]) -> int:
    """Bytes of one combination's density file (`densities`) at most: per class a row per bin its samples can fill
    (at most one a sample), of the local grid and of each PCP axis, 7 bytes a row (cls, k, ix, iy, n)."""
    rows = sum(min(LOCAL_BINS[0] * LOCAL_BINS[1], c) + n_axes * min(PCP_BINS, c) for c in per_class)
    return int(rows * 7 + 5 * 64 + 1000)


def largest_thumbnail(store: Store) -> int:
    """Bytes of the largest thumbnail image in the store (0: none)."""
    uris = store.tables["samples.arrow"].column("thumbnail")
    longest = pc.max(pc.utf8_length(uris)).as_py() or 0
    return longest * 3 // 4  # base64: 3 bytes per 4 characters (an upper bound; the prefix counts too)


@dataclass
class ArchData:
    """What one architecture's pages fetch: the per-sample slice files (`workspace_files`), the evaluation rows,
    per-sample correctness counts."""

    files: dict[str, bytes]  # relative path under data/ -> content
    slices: list[dict]  # [{"label", "variant", "severity", "file"}]
    # [{"slot" (stored in correct.arrow's counts) or "sum" (the slots it adds up), "model_id", "variant_label",
    # "members"}]
    correct_columns: list[dict]
    correct_bits: int = 8  # bits per count in correct.arrow's `counts` (count_bits)
    angle_fields: list[str] = field(default_factory=list)  # the columns of the angle files (WS_ANGLES)
    by_class: bool = True  # the angle files are one per class (else one of every sample, "all")


def geometry_slices(store: Store, arch: str, served, max_axes_classes: list[int]) -> ArchData:
    """Split every model's geometry into per-variant slices, written once as the local and angle files every page
    reads (`workspace_files`); count correct predictions per sample for subset accuracy (correct.arrow, with
    `in_sample`: a class subset counts the stratified sample only)."""
    served = as_served(store, served)
    ids = served.ids
    files: dict[str, bytes] = {}
    counts: list[np.ndarray] = []  # correct.arrow's stored columns, in slot order
    columns: list[dict] = []
    schema = store_geometry_schema(store.manifest)
    if store.confused_k is None:
        wanted = list(SLICE_COLUMNS) + [f"angle_{j}" for j in max_axes_classes]
    else:  # many classes: the angles to each row's class's most confused classes
        wanted = list(SLICE_COLUMNS) + [f"angle_c{r}" for r in range(store.confused_k)]
    id_array = pa.array(ids, pa.int32())
    class_acc = class_accuracies(store)
    # The variants come from the manifest (what precompute shipped), never from scanning a geometry file.
    keys = shipped_variants(store)
    slices = [{"label": v if s == 0 else f"{v} (severity {s})", "variant": v, "severity": s, "file": f"v{i}.arrow"}
              for i, (v, s) in enumerate(keys)]  # fmt: skip
    by_key = {(s["variant"], s["severity"]): s for s in slices}
    for m in store.models_of(arch):
        table = store.table(f"geometry/{m['model_key']}.arrow", schema)
        table = table.filter(pc.is_in(table["sample_id"], id_array))
        variant = table["variant"].cast(pa.string())
        found = set(zip(variant.to_pylist(), table["severity"].to_pylist(), strict=True))
        if found != set(keys):
            raise StoreError(
                f"{store.root}/geometry/{m['model_key']}.arrow holds variants {sorted(found)}, the manifest "
                f"ships {keys}; rebuild the store with one recipe"
            )
        for v, s in keys:
            part = table.filter(pc.and_(pc.equal(variant, v), pc.equal(table["severity"], s))).sort_by("sample_id")
            part = part.select(wanted)
            # The class accuracy the local view shows comes from the full evaluation set, never the shipped subset.
            full = class_acc.get((m["model_id"], v, s), {})
            label_np = part["label"].to_numpy(zero_copy_only=False)
            part = part.append_column("class_accuracy", pa.array(
                [full.get(int(c), float("nan")) for c in label_np], pa.float32()))  # fmt: skip
            files.update(workspace_files(store.slug(arch), m["model_key"], by_key[(v, s)]["file"], part,
                                         wanted[len(SLICE_COLUMNS):], store.confused_k is None))  # fmt: skip
            if part.num_rows != len(ids):
                raise StoreError(f"{store.root}/geometry/{m['model_key']}.arrow: {part.num_rows} rows for {v!r} "
                                 f"severity {s}, expected one per shipped sample ({len(ids)})")  # fmt: skip
        stored = {}  # column -> its entry
        for group, (column, members) in _outcome_counts(store, m["model_id"], ids).items():
            stored[group] = {"slot": len(counts), "model_id": m["model_id"], "variant_label": group, "members": members}
            counts.append(column)
            columns.append(stored[group])
        corruptions = [stored[c] for c in store.manifest.get("corruptions") or []]
        if corruptions:  # derived in the browser: a sample's sum over the corruption columns
            columns.append({"sum": [c["slot"] for c in corruptions], "model_id": m["model_id"],
                            "variant_label": "corruption mean",
                            "members": sum(c["members"] for c in corruptions)})  # fmt: skip
    bits = count_bits(max((c["members"] for c in columns if "slot" in c), default=1))
    labels = samples_table(store, served)["label"]
    correct = correct_table(ids, labels, served.in_sample, counts, bits)
    files[f"{store.slug(arch)}/correct.arrow"] = arrow_bytes(correct)
    files[f"{store.slug(arch)}/evaluation.arrow"] = arrow_bytes(evaluation_rows(store, arch))
    return ArchData(files, slices, columns, bits, wanted[len(SLICE_COLUMNS) :], store.confused_k is None)


def narrow_int(column: pa.ChunkedArray | pa.Array) -> pa.DataType:
    """The narrowest signed integer type that holds every value of an integer column (int8 for class ids below 128
    and robustness counts up to 127): the same numbers in fewer bytes."""
    lo, hi = pc.min(column).as_py(), pc.max(column).as_py()
    for t, bits in ((pa.int8(), 8), (pa.int16(), 16), (pa.int32(), 32)):
        if lo is None or (-(1 << (bits - 1)) <= lo and hi < 1 << (bits - 1)):
            return t
    return pa.int64()


def workspace_files(arch_slug: str, model_key: str, file: str, part: pa.Table, angle_fields: list[str],
                    by_class: bool) -> dict[str, bytes]:  # fmt: skip
    """The files of one (model, slice) that every geometry page reads: its local slice (`WS_LOCAL`: SLICE_COLUMNS
    and the class accuracy, integer columns narrowed by `narrow_int`) and its angles (`WS_ANGLES`: sample_id and
    `angle_fields`), one file per class present (`by_class`) or one of every sample ("all"); rows by sample_id,
    values as the store's.
    `part`: the (model, slice)'s geometry slice (`geometry_slices`)."""
    local = part.select([*SLICE_COLUMNS, "class_accuracy"])
    for name in ("label", "pred", "robustness"):
        i = local.schema.get_field_index(name)
        local = local.set_column(i, name, local[name].cast(narrow_int(local[name])))
    out = {f"{arch_slug}/{WS_LOCAL}/{model_key}/{file}": arrow_bytes(local)}
    angles = part.select(["sample_id", *angle_fields])
    stem = file.removesuffix(".arrow")
    if not by_class:
        out[f"{arch_slug}/{WS_ANGLES}/{model_key}/{stem}/all.arrow"] = arrow_bytes(angles)
        return out
    labels = part["label"]
    for c in sorted(set(labels.to_pylist())):
        out[f"{arch_slug}/{WS_ANGLES}/{model_key}/{stem}/c{c}.arrow"] = arrow_bytes(angles.filter(pc.equal(labels, c)))
    return out


def count_bits(most: int) -> int:
    """Bits a count of at most `most` is packed in: 4 (a corruption's count is 0-5 severities, clean's 0-1), 8, 16."""
    for bits in (4, 8, 16):
        if most < 1 << bits:
            return bits
    raise StoreError(f"correct.arrow: a column counts {most} predictions a sample, more than 16 bits hold")


def pack_counts(counts: list[np.ndarray], bits: int) -> np.ndarray:
    """Per sample the counts of every column, packed at `bits` bits in column order (4: two a byte, the even column
    in the low nibble; 16: little-endian): (samples, bytes a sample) uint8."""
    m = np.stack(counts, axis=1).astype(np.int64) if counts else np.zeros((0, 0), np.int64)
    if m.size and (m.min() < 0 or m.max() >= 1 << bits):
        raise StoreError(f"correct.arrow: counts {m.min()}..{m.max()} do not fit {bits} bits")
    if bits == 4:
        m = np.pad(m, ((0, 0), (0, m.shape[1] % 2)))
        return (m[:, 0::2] | (m[:, 1::2] << 4)).astype(np.uint8)
    return np.ascontiguousarray(m.astype("<u2" if bits == 16 else np.uint8)).view(np.uint8)


def correct_table(ids, labels, in_sample, counts: list[np.ndarray], bits: int) -> pa.Table:
    """correct.arrow: per served sample (samples.arrow's order) its id, label, whether it is in the stratified
    sample, and `counts`: its correct predictions per stored evaluation-table column, packed (`pack_counts`). One
    fixed-size binary a sample, so the browser decodes the counts into typed arrays in one pass over the samples."""
    packed = pack_counts(counts, bits)
    width = max(1, packed.shape[1])
    if packed.shape[1] == 0:
        packed = np.zeros((len(ids), 1), np.uint8)
    field = pa.field("counts", pa.binary(width), nullable=False,
                     metadata={"bits": str(bits), "columns": str(len(counts))})  # fmt: skip
    schema = pa.schema([pa.field("sample_id", pa.int32()), pa.field("label", labels.type),
                        pa.field("in_sample", pa.bool_()), field])  # fmt: skip
    binary = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(ids), [None, pa.py_buffer(packed.tobytes())])
    return pa.table([pa.array(ids, pa.int32()), labels, pa.array(in_sample, pa.bool_()), binary], schema=schema)


def shipped_variants(store: Store) -> list[tuple[str, int]]:
    """(variant, severity) of every geometry slice, from the manifest: clean, then each corruption at each shipped
    severity, by name."""
    severities = store.manifest.get("shipped_severities") or []
    return [("clean", 0)] + [(c, int(s)) for c in sorted(store.manifest.get("corruptions") or []) for s in severities]


SEVERITIES = (1, 2, 3, 4, 5)  # CIFAR-10-C's (and ImageNet-C's) severity levels


@dataclass(frozen=True)
class SeverityCoverage:
    """Which severities of the store's corruptions carry per-sample rows (the geometry views' slices), and, for
    each that does not, why: evaluated but not shipped (`ship.severities` left it out: the evaluation table counts
    it, the geometry views cannot show it), or never evaluated (`corruptions.severities` left it out)."""

    shipped: tuple[int, ...]
    not_shipped: tuple[int, ...]  # evaluated, no per-sample rows: add to the recipe's ship.severities
    not_evaluated: tuple[int, ...]  # add to corruptions.severities (ship.severities ships every evaluated one)

    @property
    def complete(self) -> bool:
        return not self.not_shipped and not self.not_evaluated


def severity_coverage(manifest: dict) -> SeverityCoverage | None:
    """Per severity 1-5, whether the store ships its per-sample rows, from the manifest's `severities` (evaluated)
    and `shipped_severities`; None for a store without corruptions."""
    if not manifest.get("corruptions"):
        return None
    evaluated = {int(s) for s in manifest.get("severities") or []}
    shipped = {int(s) for s in manifest.get("shipped_severities") or []} & evaluated
    return SeverityCoverage(
        tuple(sorted(shipped)),
        tuple(sorted(evaluated - shipped)),
        tuple(s for s in SEVERITIES if s not in evaluated),
    )


def _outcome_counts(store: Store, model_id: str, ids: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    """Per served sample, its correct predictions per evaluation-table column but the corruption mean (the browser
    sums the corruptions' columns), from outcomes.arrow (every evaluated severity, not only the shipped ones):
    {column: (counts aligned with `ids`, predictions per sample)}."""
    t = store.tables["outcomes.arrow"]
    t = t.filter(pc.equal(t["model_id"].cast(pa.string()), model_id))
    t = t.filter(pc.is_in(t["sample_id"], pa.array(ids, pa.int32()))).sort_by("sample_id")
    if t.num_rows != len(ids):
        raise StoreError(f"{store.root}/outcomes.arrow: {t.num_rows} rows for {model_id!r}, expected one per served "
                         f"sample ({len(ids)}); rerun `lotterysite precompute RECIPE`")  # fmt: skip
    n_sev = len(store.manifest.get("severities") or [])
    out = {"clean": (t["correct_clean"].to_numpy(zero_copy_only=False).astype(np.int16), 1)}
    corruptions = list(store.manifest.get("corruptions") or [])
    for c in corruptions:
        out[c] = (t[f"c_{c}"].to_numpy(zero_copy_only=False).astype(np.int16), n_sev)
    return out


def class_accuracies(store: Store) -> dict[tuple[str, str, int], dict[int, float]]:
    """(model_id, variant, severity) -> class -> accuracy, from accuracy.arrow (the full evaluation set)."""
    out: dict[tuple[str, str, int], dict[int, float]] = {}
    for r in store.accuracy.filter(pc.greater_equal(store.accuracy["class_id"], 0)).to_pylist():
        out.setdefault((r["model_id"], r["variant"], r["severity"]), {})[r["class_id"]] = r["accuracy"]
    return out


def axis_classes(store: Store, arch: str, max_axes: int) -> list[int]:
    """The classes given an angle axis: all of them when they fit, else those whose accuracy pruning changes most.

    The paper's stated limitation (§6.3): with many classes a ranking pre-selects the axes; here the ranking is
    the mean absolute change of per-class clean accuracy between the dense and the pruned models.
    """
    n = len(store.classes)
    if n <= max_axes:
        return list(range(n))
    acc = store.accuracy.filter(
        pc.and_(pc.equal(store.accuracy["variant"], "clean"), pc.greater_equal(store.accuracy["class_id"], 0))
    )
    models = {r["model_id"]: r for r in store.models_of(arch)}
    per = {}
    for r in acc.to_pylist():
        m = models.get(r["model_id"])
        if m is not None:
            per.setdefault(r["class_id"], {})[m["method"] == "dense"] = per.get(r["class_id"], {}).get(
                m["method"] == "dense", []) + [r["accuracy"]]  # fmt: skip
    change = {c: abs(np.mean(v.get(True, [0])) - np.mean(v.get(False, v.get(True, [0])))) for c, v in per.items()}
    return sorted(sorted(change, key=lambda c: -change[c])[:max_axes])


def pcp_axes(store: Store, axes: list[int]) -> list[tuple[str, str | None]]:
    """The parallel coordinates' axes: (geometry field, title; None: named by the page per class)."""
    k = store.confused_k
    if k is not None:
        # Many classes (Fig. 5's pre-selection): the true class, the k classes its samples are most confused with
        # (confused.arrow, per class: the page names the axes when it draws a class), length and margin.
        axis_fields = [("angle_true", None)] + [(f"angle_c{r}", None) for r in range(k)]
    else:
        # One angle axis per class (the true class's own axis among them, marked on the page); a "true class" axis
        # only when the classes had to be ranked down to max_axes and the chosen class may have none.
        axis_fields = [(f"angle_{j}", store.classes[j]) for j in axes]
        if len(axes) < len(store.classes):
            axis_fields.insert(0, ("angle_true", "true class"))
    return axis_fields + [("length", "length"), ("margin", "margin")]


def findings_tables(store: Store) -> dict[str, bytes]:
    """The findings page's data and the store's small tables, as downloadable Arrow files."""
    out = {f"store/{name}": arrow_bytes(store.tables[name]) for name in SMALL_TABLES if name in store.tables}
    mc = store.tables["margin_change.arrow"]
    out["margin_change.arrow"] = arrow_bytes(pa.table({
        "model_id": mc["model_id"].cast(pa.string()), "variant": mc["variant"].cast(pa.string()),
        "x": mc["x"], "density": mc["density"]}))  # fmt: skip
    if "curse.arrow" in store.tables:
        curse = store.tables["curse.arrow"]
        out["curse.arrow"] = arrow_bytes(
            pa.table(
                {"study": curse["study"].cast(pa.string()), **{k: curse[k] for k in curse.column_names if k != "study"}}
            )
        )
    corr = store.tables["correlations.arrow"]
    out["correlations.arrow"] = arrow_bytes(
        pa.table(
            {
                k: corr[k].cast(pa.string()) if pa.types.is_dictionary(corr[k].type) else corr[k]
                for k in corr.column_names
            }
        )
    )
    return out
