"""What a page weighs, and the served-sample cut that keeps the heaviest page under `SiteOptions.page_bytes`.

A page fetches the pinned JavaScript (`vendor/`, checked against its manifest), the page itself, samples.arrow and
slice files; `page_estimate` and `workspace_estimate` add them up from the columns' widths, and `served_samples`
cuts the served samples until the heavier of the two fits. The view model (`model.build_view_model`) calls it once
per site and keeps the cut and its estimates; `render` writes what the model holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data
from .options import RenderError, SiteOptions

VENDOR = Path(__file__).parent / "vendor"
PAGE_OVERHEAD = 400_000  # a page's HTML, theme CSS and scripts, chart specs and small data besides the vendored JS
WORKSPACE_COMBINATIONS = 6  # the workspace's combinations a page budget allows for (issue 23 §4: "6 on screen")
SAMPLES_GRID = 120  # thumbnails the samples page's grid shows at most (pages.view_spec: its `limit`)


def vendor_manifest() -> list[dict]:
    """The pinned packages in load order: name, version, license, file, sha256 (vendor/manifest.json)."""
    path = VENDOR / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))["packages"]
    except (OSError, ValueError, KeyError) as e:
        raise RenderError(f"{path}: {e}; reinstall lotterysite (the wheel ships the pinned JavaScript)") from None


def vendor_files() -> list[Path]:
    """The vendored UMD builds in load order, each checked against its SHA-256 in the manifest."""
    out = []
    for pkg in vendor_manifest():
        path = VENDOR / pkg["file"]
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as e:
            raise RenderError(f"{path}: {e.strerror}; reinstall lotterysite") from None
        if digest != pkg["sha256"]:
            raise RenderError(
                f"{path}: SHA-256 {digest} differs from {pkg['sha256']} in vendor/manifest.json; "
                "reinstall lotterysite, or run scripts/update-js.sh if you changed the JavaScript on purpose"
            )
        out.append(path)
    return out


@dataclass(frozen=True)
class Cut:
    """The samples the site serves (`data.Served`), their samples.arrow, and the bytes of the heaviest single view
    page (`page_estimate`) and of the heaviest workspace (`workspace_estimate`) that serve them."""

    served: data.Served
    samples: bytes
    page: int
    workspace: int

    @property
    def estimate(self) -> int:
        """Bytes of the heaviest page (`budget_estimate`)."""
        return max(self.page, self.workspace)


def served_samples(store: data.Store, options: SiteOptions) -> Cut:
    """The samples the site serves and their samples.arrow: at most `max_samples`, and fewer when the heaviest page
    (`budget_estimate`: a single view page or the workspace with its 6 combinations) would pass `page_bytes`; the
    cut is the store's own policy (`data.served_samples`: a class-stratified uniform random sample, extra exemplar
    rows after it, every class kept). The thumbnails are files of their own that a page fetches only for the samples
    its grid shows, so they no longer cut the served samples."""
    served = data.served_samples(store, options.max_samples)
    cut = _cut(store, served, options)
    fixed = None  # the heaviest page serving no sample
    while cut.estimate > options.page_bytes and len(served.ids) > 1:
        if fixed is None:
            fixed = budget_estimate(store, data.Served(served.ids[:0], served.in_sample[:0]), b"", options)
        per_sample = (cut.estimate - fixed) / len(served.ids)
        fewer = int((options.page_bytes - fixed) / per_sample * 0.97)
        smaller = data.served_samples(store, max(1, min(fewer, len(served.ids) - 1)))
        if len(smaller.ids) >= len(served.ids):
            break  # one sample per class alone does not fit: it is served anyway
        served = smaller
        cut = _cut(store, served, options)
    return cut


def _cut(store: data.Store, served: data.Served, options: SiteOptions) -> Cut:
    samples = data.arrow_bytes(data.samples_table(store, served, options.panel_marks))
    return Cut(served, samples, page_estimate(store, served, samples, options),
               workspace_estimate(store, served, samples, options))  # fmt: skip


def budget_estimate(store: data.Store, served: data.Served, samples: bytes, options: SiteOptions) -> int:
    """Bytes of the heaviest page for `served`: the heavier of a single view page (`page_estimate`) and the
    workspace with WORKSPACE_COMBINATIONS combinations (`workspace_estimate`)."""
    return max(page_estimate(store, served, samples, options), workspace_estimate(store, served, samples, options))


def page_estimate(store: data.Store, served: data.Served, samples: bytes, options: SiteOptions) -> int:
    """Bytes of the heaviest single view page for `served`: the vendored scripts and the page itself
    (PAGE_OVERHEAD), samples.arrow, the slice files of a comparison (the global view's: two local slices and the
    two models' angle files of the largest class, from the columns' widths, `data.workspace_slice_bytes`), and a
    full sample grid's thumbnail files (SAMPLES_GRID of the largest). The workspace's own estimate is
    `workspace_estimate`. The single evaluation page is not counted here: its files (the table's rows and counts,
    samples.arrow, the scripts) are a subset of the workspace's, which `budget_estimate` takes the larger of."""
    fixed = sum(p.stat().st_size for p in vendor_files()) + PAGE_OVERHEAD
    n = len(served.ids)
    labels = np.asarray(data.store_labels(store, served) if n else [], np.int64)
    largest = int(np.bincount(labels, minlength=len(store.classes)).max(initial=0))
    local, angles = data.workspace_slice_bytes(store, options.max_axes, n, largest)
    return fixed + len(samples) + 2 * (local + angles) + SAMPLES_GRID * data.largest_thumbnail(store)


def workspace_estimate(store: data.Store, served: data.Served, samples: bytes, options: SiteOptions,
                       combos: int = WORKSPACE_COMBINATIONS) -> int:  # fmt: skip
    """Bytes of the heaviest architecture's workspace with `combos` combinations on one class: the scripts and page
    (PAGE_OVERHEAD), samples.arrow, the evaluation table's rows and counts (evaluation.arrow, correct.arrow), per
    combination its local slice, the largest class's angle file and (where the panels draw densities) its density
    file, and a full sample grid of the largest thumbnail. `workspace_parts` itemises it."""
    return sum(workspace_parts(store, served, samples, options, combos).values())


def workspace_parts(store: data.Store, served: data.Served, samples: bytes, options: SiteOptions,
                    combos: int = WORKSPACE_COMBINATIONS) -> dict[str, int]:  # fmt: skip
    """`workspace_estimate` by file: {"scripts and page", "samples.arrow", "evaluation.arrow", "correct.arrow",
    "local slices", "class angles", "densities", "thumbnails"} of its heaviest architecture."""
    n = len(served.ids)
    labels = np.asarray(data.store_labels(store, served) if n else [], np.int64)
    # A class's angle file holds every served sample of it (extra exemplar rows too); its density, the stratified
    # sample's only.
    served_per_class = np.bincount(labels, minlength=len(store.classes))
    per_class = np.bincount(labels[served.in_sample], minlength=len(store.classes)).tolist() if n else []
    dense = n > 0 and not (data.dot_samples(store, served, options.panel_marks) == served.in_sample).all()
    local, angles = data.workspace_slice_bytes(store, options.max_axes, n, int(served_per_class.max(initial=0)))
    best: dict[str, int] = {}
    for arch in store.archs:
        n_axes = len(data.pcp_axes(store, data.axis_classes(store, arch, options.max_axes)))
        parts = {"scripts and page": sum(p.stat().st_size for p in vendor_files()) + PAGE_OVERHEAD,
                 "samples.arrow": len(samples),
                 "evaluation.arrow": len(data.arrow_bytes(data.evaluation_rows(store, arch))),
                 "correct.arrow": data.correct_bytes(store, arch, n),
                 "local slices": combos * local, "class angles": combos * angles,
                 "densities": combos * data.density_bytes(store, n_axes, per_class) if dense else 0,
                 "thumbnails": SAMPLES_GRID * data.largest_thumbnail(store)}  # fmt: skip
        if sum(parts.values()) > sum(best.values()):
            best = parts
    return best
