"""Publishing: the store unit, which writes the whole store beside the old one and switches it in (store.publish).

The tables (precompute/tables.py), the corruption gallery and the manifest are written into a staging folder; only
when every file is whole does the new store replace the old, so a failure or a kill leaves the previous store as it
was. The manifest records what the store was made from (`inputs_key`), so a rerun of the same plan publishes
nothing (`store_current`).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..data import ImageSet
from ..fileio import atomic_write, seal, unseal, write_bytes
from ..store import geometry_schema, to_table, write_manifest, write_table
from ..store.publish import publish, staging_dir
from ..store.schema import (
    ACCURACY,
    CONFUSED,
    CORRELATIONS,
    CURSE,
    EXEMPLARS,
    MARGIN_CHANGE,
    MODELS,
    PAIRED,
    SAMPLES,
    confused_columns,
    outcomes_schema,
)
from . import aggregate as agg
from . import custom
from .executors import Unit
from .plan import DamagedWork, fingerprint
from .tables import (
    StoredResults,
    accuracy_table,
    confused_table,
    correlations_table,
    draw_shipped,
    exemplars_table,
    geometry_table,
    margin_change_table,
    models_table,
    outcomes_table,
    paired_table,
    samples_table,
)


class Publishing:
    """The runner's (run._Runner's) store unit. Uses the runner's recipe, store, run id, meta, entries, inputs
    and result, and its planning (`Planning`: where each work file is, whether it is whole)."""

    def store_key(self) -> str:
        """What the store is made from: every work file it reads (named by fingerprints) and the whole recipe."""
        files = [self.results_path(e).name for e in self.entries]
        if self.recipe.curse.enabled:
            files.append(self.curse_path().name)
        config = {k: v for k, v in self.recipe.to_dict().items() if k != "path"}  # the same recipe read elsewhere
        return fingerprint(files, config)

    def store_current(self, units: list[Unit]) -> bool:
        """Whether the published store was made from exactly this plan's work (a rerun then publishes nothing)."""
        if self.force or any(not u.done for u in units):
            return False
        try:
            from ..store.io import verify_store

            manifest = json.loads((self.store / "manifest.json").read_text(encoding="utf-8"))
            verify_store(self.store)
        except Exception:  # missing, damaged or altered: publish it again
            return False
        return isinstance(manifest, dict) and manifest.get("inputs_key") == self.store_key()

    def all_results(self, eval_set: ImageSet, variants) -> StoredResults:
        """Every model's (entry, results, extra), the results read lazily from the work files the evaluate units
        wrote (results_file.py): the store stage holds one model's arrays at a time, not every model's."""
        out = {}
        for entry in self.entries:
            path = self.results_path(entry)
            head = self.load_header(path, variants, eval_set.labels.numpy()) if path.exists() else None
            if head is None:
                unseal(path)
                raise DamagedWork(path, "missing, unreadable or made for other data")
            out[entry.model_id] = (path, custom.placed(entry, head["extra"]), head["extra"])
        return StoredResults(out, variants, self.kept_variants(variants))

    def write_store(self, results: dict, eval_set: ImageSet, variants, curse_rows) -> None:
        """Write the whole new store beside the old one, then switch it in; on any failure the old one stays."""
        staging = staging_dir(self.store, self.run_id)
        try:
            self.write_store_files(staging, results, eval_set, variants, curse_rows)
            publish(staging, self.store)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def write_store_files(self, root: Path, results: dict, eval_set: ImageSet, variants, curse_rows) -> None:
        files: dict[str, int | None] = {}

        def put(name: str, columns: dict, schema) -> None:
            files[name] = write_table(root / name, to_table(columns, schema, where=name),
                                      metadata={**self.meta, "run_id": self.run_id})  # fmt: skip

        labels = eval_set.labels.numpy()
        exm = put_aggregates(put, results, len(eval_set.classes), labels, corrupted=len(variants) > 1)
        drawn, shipping, k = self.put_shipped(put, results, eval_set, variants, exm)
        if curse_rows is not None:
            put("curse.arrow", curse_rows, CURSE)
        gallery_file = self.write_gallery(root, eval_set)
        if gallery_file is not None:
            files[gallery_file] = None
        write_manifest(root, self.manifest(results, eval_set, drawn.index, shipping, k, gallery_file, files))

    def put_shipped(self, put, results: dict, eval_set: ImageSet, variants, exm: dict):
        """The shipped samples' tables: samples, outcomes, the confused classes (many classes) and every model's
        geometry rows. Returns the draw, the shipping record and the confused classes per row (None: every one)."""
        r = self.recipe
        classes = eval_set.classes
        C = len(classes)
        labels = eval_set.labels.numpy()
        drawn, pie, shipping = draw_shipped(r, labels, exm, C)
        shipped = drawn.index
        self.result.shipped = len(shipped)
        put("samples.arrow", samples_table(eval_set, drawn, pie, thumbnails=r.ship.thumbnails), SAMPLES)
        names = list(r.corruptions.names)
        put("outcomes.arrow", outcomes_table(results, shipped, names), outcomes_schema(names))
        ship_variants = self.kept_variants(variants)
        # Many classes: a row holds the angles to the k classes its true class is most confused with (per
        # architecture, over the full data), not one angle per class (1000 columns would not reach a browser).
        k = confused_columns(C, r.ship.confused_classes)
        confused = {}
        if k is not None:
            confused, columns = confused_table(results, C, k)
            put("confused.arrow", columns, CONFUSED)
        for mid in self.bar(list(results), desc="store", unit="model"):
            entry, res, _ = results[mid]
            put(
                f"geometry/{entry.key}.arrow",
                geometry_table(entry, res, shipped, labels, ship_variants, C, confused.get(entry.arch)),
                geometry_schema(C, k),
            )
        return drawn, shipping, k

    def write_gallery(self, root: Path, eval_set: ImageSet) -> str | None:
        """The generated corruptions shown on a few evaluation images (cached in the work folder, named by what
        shapes it), copied into the store; its file name, or None without generated corruptions."""
        r = self.recipe
        if not (r.corruptions.source == "generate" and r.corruptions.names):
            return None
        from ..corruptions.gallery import gallery, gallery_name

        labels = eval_set.labels.numpy()
        C = len(eval_set.classes)
        picks = [int(np.flatnonzero(labels == c)[0]) for c in range(min(C, 3)) if (labels == c).any()]
        images = custom.images_at(eval_set, picks).float().div(255)
        c = r.corruptions
        gallery_file = gallery_name(min(images.shape[-2:]))
        suffix = Path(gallery_file).suffix
        code = self.inputs.get("corruptions", "")
        key = fingerprint(self.inputs.get("data", ""), code, picks, c.names, c.params, c.seed, gallery_file)
        cached = self.work / f"gallery-{key}{suffix}"
        if not self.done(cached) or not self.sealed(cached):
            atomic_write(cached, lambda tmp: gallery(images, Path(tmp), names=c.names, params=c.params, seed=c.seed))
            seal(cached)
        write_bytes(root / gallery_file, cached.read_bytes())
        return gallery_file

    def manifest(self, results, eval_set: ImageSet, shipped, shipping: dict, confused, gallery_file, files) -> dict:
        """manifest.json: what the store holds and what made it (store.write_manifest adds sizes and digests)."""
        r = self.recipe
        entries = results.entries()
        return {
            "run_id": self.run_id,
            "inputs_key": self.store_key(),
            "lotterysite_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "recipe": {"name": r.name, "title": r.title, "path": r.path, "config": r.to_dict()},
            "dataset": {
                "name": r.data.name, "classes": list(eval_set.classes), "n_eval": len(eval_set),
                "n_shipped": len(shipped), "channels": eval_set.in_channels, "image_size": eval_set.image_size,
                "shipping": shipping, "confused_classes": confused, "skipped_unreadable": dict(self.result.skipped),
            },
            "architectures": list(dict.fromkeys(e.arch for e in entries)),
            "methods": list(dict.fromkeys(e.method for e in entries)),
            # "settings": every setting that made each model (UnitWork.model_settings), defaults spelt out
            "models": [{k: getattr(e, k) for k in ("model_id", "arch", "method", "amount", "retrained", "seed")}
                       | {"model_key": e.key, "settings": results.extra(e.model_id).get("settings")}
                       for e in entries],
            "corruptions": list(r.corruptions.names),
            "severities": list(r.corruptions.severities),
            "shipped_severities": list(r.ship.severities),
            "corruption_source": r.corruptions.source,
            "bootstrap": agg.BOOTSTRAP.as_dict(),
            "gallery": gallery_file,
            "files": {name: {"rows": rows} for name, rows in sorted(files.items())},  # sizes, digests: write_manifest
        }  # fmt: skip


def put_aggregates(put, results: dict, C: int, labels: np.ndarray, *, corrupted: bool) -> dict:
    """The tables of aggregates on the full evaluation set, with bootstrap intervals from one set of resampled
    evaluation sets shared by every model. Returns the exemplars' columns (they decide what ships)."""
    weights = agg.BOOTSTRAP.weights(len(labels))
    acc, overall = accuracy_table(results, C, weights)
    put("models.arrow", models_table(results, overall), MODELS)
    put("accuracy.arrow", acc, ACCURACY)
    put("correlations.arrow", correlations_table(results, weights, corrupted=corrupted), CORRELATIONS)
    put("margin_change.arrow", margin_change_table(results, corrupted=corrupted), MARGIN_CHANGE)
    put("paired.arrow", paired_table(results, weights), PAIRED)
    exm = exemplars_table(results, labels)
    put("exemplars.arrow", exm, EXEMPLARS)
    return exm
