"""Render a store into the ordinary files a static site needs: Markdown pages, chart specs, data slices, the pinned
JavaScript and CSS, and one small loader script the pages reference.

Data flow one way: store -> rendered files -> builder. `lotterysite render STORE DOCS_DIR` writes them into a
folder of DOCS_DIR that any builder reading Markdown (MkDocs, Zensical) turns into the site; the MkDocs plugin
hands the same files to MkDocs without writing them. The JavaScript comes from package data (`vendor/`, pinned by
package-lock.json through scripts/update-js.sh), so neither step needs Node.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np

from ..errors import LotterysiteError
from ..fileio import storage_error
from ..store.publish import exchange
from . import charts, data, pages
from .model import build_view_model

HERE = Path(__file__).parent
VENDOR = HERE / "vendor"
ASSETS = HERE / "assets"
OWN_SCRIPT = "lotterysite.js"
# Loaded before OWN_SCRIPT: the workspace's shared selection store, then its views (they register with the runtime
# that OWN_SCRIPT starts, so they must be there when it looks at the page).
WORKSPACE_SCRIPTS = ("selection.js", "workspace.js", "lines.js", "workspace-views.js")
OWN_STYLE = "lotterysite.css"
LOADER = "loader.js"
PAGE_OVERHEAD = 400_000  # a page's HTML, theme CSS and scripts, chart specs and small data besides the vendored JS
WORKSPACE_COMBINATIONS = 6  # the workspace's combinations a page budget allows for (issue 23 §4: "6 on screen")
SAMPLES_GRID = 120  # thumbnails the samples page's grid shows at most (pages.view_spec: its `limit`)
MARKER = ".lotterysite-render.json"  # in the generated folder: what wrote it (hidden files are not published)


class RenderError(LotterysiteError):
    """The generated folder cannot be written, or the installed package is incomplete."""


@dataclass(frozen=True)
class SiteOptions:
    max_samples: int = 2000  # shipped samples served per view (keeps pages under 5 MB)
    max_axes: int = 10  # class-angle axes of the parallel coordinates; more are ranked
    max_classes: int = 10  # class panels of the local geometry view; with more classes the reader picks them
    picked_classes: int = 8  # panels of the local view when the reader picks the classes (more than max_classes)
    page_bytes: int = 5_000_000  # budget of a page with everything it fetches; served samples are cut to fit
    # Accuracy points: a pruned model keeps dense's accuracy when the paired interval of its drop lies below this,
    # and two models are equally accurate when their difference's lies within ± this (site_src/method.md).
    equivalence_points: float = 1.0
    # Samples a workspace panel draws as marks: a class with more is drawn as the density of all of them plus a
    # uniform random subsample (and the selected samples), so six panels stay fast (bench/RESULTS.md, issue 23 §4).
    panel_marks: int = 400

    def __post_init__(self):
        for name in ("max_samples", "max_axes", "max_classes", "picked_classes", "page_bytes", "panel_marks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RenderError(f"site option {name} = {value!r}: must be a whole number >= 1")
        value = self.equivalence_points
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 100:
            raise RenderError(f"site option equivalence_points = {value!r}: must be a number of accuracy points "
                              "above 0 and below 100, e.g. 1.0")  # fmt: skip


@dataclass
class Rendered:
    """Every generated file, by its path inside the generated tree."""

    files: dict[str, str | bytes | Path] = field(default_factory=dict)  # content, or a package file to copy
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # nav: (title, [page paths])
    scripts: list[str] = field(default_factory=list)  # JavaScript paths, in load order
    styles: list[str] = field(default_factory=list)
    home: str = ""  # the home page's headline chart and summary (Markdown, placed at pages.HOME_MARKER)


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


def render(
    store: data.Store, options: SiteOptions | None = None, *, assets: str = "assets", standalone: bool = True
) -> Rendered:
    """Every file of the site generated from `store`, with the JavaScript and CSS under `assets`.

    `standalone` adds what a builder without the plugin needs: a script tag for the loader on every generated page,
    the loader itself, an index page linking every generated page, and the store's documentation.
    """
    options = options or SiteOptions()
    out = Rendered()
    view = build_view_model(store, options)  # every number the pages show, computed once
    ids, samples = served_samples(store, options)
    out.files["data/samples.arrow"] = samples
    out.files.update({f"data/{k}": v for k, v in data.thumbnail_files(store, ids).items()})
    served = data.shipped_summary(store, ids)
    # Some class has more samples than a workspace panel draws as marks: the panels draw densities besides.
    dense = not (data.dot_samples(store, ids, options.panel_marks) == ids.in_sample).all()
    generated: list[pages.Page] = []
    for arch in store.archs:
        axes = view.archs[arch].axes
        if len(store.classes) > options.max_classes:  # the reader picks the panels' classes (the page's link)
            n_served = sum(1 for n in served["per_class"] if n)
            shown = charts.class_slots(max(1, min(options.picked_classes, n_served)))
        else:
            shown = view.archs[arch].classes
        arch_data = data.geometry_slices(store, arch, ids, axes)
        out.files.update({f"data/{k}": v for k, v in arch_data.files.items()})
        density = None
        if dense:
            fields = [f for f, _ in pages.pcp_axes(store, axes)]
            files, extents = data.densities(store, arch, ids, fields, arch_data.slices)
            out.files.update({f"data/{k}": v for k, v in files.items()})
            density = {"extents": extents}
        arch_pages, specs = pages.arch_pages(view, arch, arch_data, axes, shown, served, density)
        out.files.update({k: _spec_json(v) for k, v in specs.items()})
        generated += arch_pages
        out.sections.append((f"Views — {arch}", [p.src_uri for p in arch_pages]))
    # Only a verified regular file inside the store: a link to a private file never reaches the public site.
    gallery = data.gallery_file(store)  # (name, the bytes verified when the store was read), never a path
    findings, specs, files = pages.findings_page(view, gallery=None if gallery is None else gallery[0])
    out.files.update({k: _spec_json(v) for k, v in specs.items()})
    out.files.update(files)
    out.files.update({f"data/{k}": v for k, v in data.findings_tables(store).items()})
    if gallery is not None:
        out.files[f"data/{gallery[0]}"] = gallery[1]
    generated.append(findings)
    out.sections.append(("Findings", [findings.src_uri]))
    home, specs, files = pages.home_page(view)
    out.files.update({k: _spec_json(v) for k, v in specs.items()})
    out.files.update(files)
    out.home = home
    if standalone:
        # Without the plugin there is no author's home page to fill: the finding gets a page of its own, first in the
        # generated index. (Not the index itself: the index is where a reader lands while the scripts still load.)
        summary, _, _ = pages.home_page(view, "summary.md")
        generated.insert(0, pages.Page("summary.md", "What this study found", "# Results at a glance\n\n" + summary))
        out.sections.insert(0, ("What this study found", ["summary.md"]))

    for path in vendor_files():
        out.files[f"{assets}/{path.name}"] = path
        out.scripts.append(f"{assets}/{path.name}")
    for name in (*WORKSPACE_SCRIPTS, OWN_SCRIPT, OWN_STYLE):
        out.files[f"{assets}/{name}"] = ASSETS / name
    out.scripts += [f"{assets}/{name}" for name in (*WORKSPACE_SCRIPTS, OWN_SCRIPT)]
    out.styles.append(f"{assets}/{OWN_STYLE}")

    if standalone:
        loader = f"{assets}/{LOADER}"
        out.files[loader] = loader_js([p.rsplit("/", 1)[1] for p in out.scripts], OWN_STYLE)
        for page in generated:
            page.markdown += f'\n<script src="{escape(pages.rel(page.src_uri, loader))}"></script>\n'
            page.src_uri = as_index(page.src_uri)
        out.sections = [(title, [as_index(u) for u in uris]) for title, uris in out.sections]
        out.files["store/index.md"] = (HERE / "store.md").read_text(encoding="utf-8")
        out.files["index.md"] = index_page(store, out.sections)
        out.sections.insert(0, ("Overview", ["index.md", "store/index.md"]))
    out.files.update({p.src_uri: p.markdown for p in generated})
    return out


def served_samples(store: data.Store, options: SiteOptions) -> tuple:
    """The samples the site serves (`data.Served`) and their samples.arrow: at most `max_samples`, and fewer when
    the heaviest page (`budget_estimate`: a single view page or the workspace with its 6 combinations) would pass
    `page_bytes`; the cut is the store's own policy (`data.served_samples`: a class-stratified uniform random
    sample, extra exemplar rows after it, every class kept). The thumbnails are files of their own that a page
    fetches only for the samples its grid shows, so they no longer cut the served samples."""
    served = data.served_samples(store, options.max_samples)
    samples = data.arrow_bytes(data.samples_table(store, served, options.panel_marks))
    while budget_estimate(store, served, samples, options) > options.page_bytes and len(served.ids) > 1:
        fixed = budget_estimate(store, data.Served(served.ids[:0], served.in_sample[:0]), b"", options)
        per_sample = (budget_estimate(store, served, samples, options) - fixed) / len(served.ids)
        fewer = int((options.page_bytes - fixed) / per_sample * 0.97)
        smaller = data.served_samples(store, max(1, min(fewer, len(served.ids) - 1)))
        if len(smaller.ids) >= len(served.ids):
            break  # one sample per class alone does not fit: it is served anyway
        served = smaller
        samples = data.arrow_bytes(data.samples_table(store, served, options.panel_marks))
    return served, samples


def budget_estimate(store: data.Store, served: data.Served, samples: bytes, options: SiteOptions) -> int:
    """Bytes of the heaviest page for `served`: the heavier of a single view page (`page_estimate`) and the
    workspace with WORKSPACE_COMBINATIONS combinations (`workspace_estimate`)."""
    return max(page_estimate(store, served, samples, options), workspace_estimate(store, served, samples, options))


def page_estimate(store: data.Store, served: data.Served, samples: bytes, options: SiteOptions) -> int:
    """Bytes of the heaviest single view page for `served`: the vendored scripts and the page itself
    (PAGE_OVERHEAD), samples.arrow, the slice files of a comparison (the global view's: two local slices and the
    two models' angle files of the largest class, from the columns' widths, `data.workspace_slice_bytes`), and a
    full sample grid's thumbnail files (SAMPLES_GRID of the largest). The workspace's own estimate is
    `workspace_estimate`."""
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
        n_axes = len(pages.pcp_axes(store, data.axis_classes(store, arch, options.max_axes)))
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


def as_index(uri: str) -> str:
    """`a/b.md` -> `a/b/index.md`. The page's URLs are relative to the page's address (`a/b/`); written as
    `a/b/index.md` the source file sits in that folder too, so they stay right whether a builder leaves raw HTML
    alone (MkDocs) or resolves it against the source file (Zensical), with or without directory URLs."""
    return uri if uri.endswith("index.md") else f"{uri[: -len('.md')]}/index.md"


def _spec_json(spec: dict) -> str:
    return json.dumps(spec, separators=(",", ":"))


def loader_js(scripts: list[str], style: str) -> str:
    """The one script the generated pages reference: loads the others once per tab, from its own folder."""
    return (
        (ASSETS / LOADER)
        .read_text(encoding="utf-8")
        .replace("/*SCRIPTS*/[]", json.dumps(scripts))
        .replace('/*STYLE*/""', json.dumps(style))
    )


def index_page(store: data.Store, sections: list[tuple[str, list[str]]]) -> str:
    """The generated folder's home: every generated page, linked in view order."""
    recipe = escape(str(store.manifest.get("recipe", {}).get("name", "")))
    dataset = escape(str(store.manifest.get("dataset", {}).get("name", "")))
    titles = {kind: title for kind, title in (*pages.VIEWS, pages.WORKSPACE)}
    lines = [
        "# Results",
        "",
        f"Generated by `lotterysite render` from the store of recipe <code>{recipe}</code>: "
        f"{len(store.manifest.get('models', []))} models on {dataset}.",
        "",
        "- [What this study found](summary/index.md): accuracy against sparsity per method, and the summary",
        "- [Findings](findings/index.md): Table 1, relative margin change, the curse of dimensionality, the gallery",
        "- [The store](store/index.md): the files behind these pages, column by column",
    ]
    for title, uris in sections:
        if title in ("Findings", "What this study found"):
            continue
        lines += ["", f"## {escape(title)}", ""]
        for uri in uris:
            kind = uri.removesuffix("/index.md").rsplit("/", 1)[-1]
            lines.append(f"- [{titles.get(kind, kind)}]({uri})")
    return "\n".join(lines) + "\n"


def check_folder(folder: Path) -> None:
    """Refuse to replace a folder that `lotterysite render` did not write, or to write where nothing can be."""
    if folder.is_symlink():
        raise RenderError(f"{folder} is a symbolic link; render replaces its folder as a whole and never through a "
                          "link: remove the link or pass another --folder")  # fmt: skip
    if folder.exists() and not (folder / MARKER).is_file():
        raise RenderError(
            f"{folder} exists and was not written by `lotterysite render` (no {MARKER} in it); "
            "move it away or pass another --folder: render replaces its folder as a whole"
        )
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        read_only = parent.stat().st_mode & 0o222 == 0 or not os.access(parent, os.W_OK)
    except OSError as e:
        raise storage_error(parent, "inspect the docs folder", e) from None
    if read_only:
        raise RenderError(f"{parent}: is read-only, and render writes {folder.name}/ there; make it writable "
                          "(chmod u+w) or give another DOCS_DIR")  # fmt: skip


def _leftovers(folder: Path) -> list[Path]:
    """What an interrupted render left beside `folder`: its hidden work folders (`.NAME.*.tmp`, `.NAME.*.old`)."""
    try:
        names = os.listdir(folder.parent)
    except OSError:
        return []
    prefix = f".{folder.name}."
    return [folder.parent / n for n in names if n.startswith(prefix) and n.endswith((".tmp", ".old"))]


def write(rendered: Rendered, folder: str | os.PathLike) -> list[tuple[str, int]]:
    """Write `rendered` as `folder`, replacing what a previous render wrote there; returns [(path, bytes)].

    The files go to a hidden sibling first, then one atomic exchange swaps it in (Linux; elsewhere two renames,
    whose leftovers the next render clears): a builder watching DOCS_DIR sees the old folder or the new one, never
    a half-written mix and never none. A folder lotterysite did not write is never replaced. The OS refusing a
    write (read-only, full disk) is one line, with the previous folder kept."""
    folder = Path(folder)
    check_folder(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        for old in _leftovers(folder):
            if not folder.exists() and old.name.endswith(".old") and (old / MARKER).is_file():
                os.rename(old, folder)  # a render killed between its two renames: the previous pages come back
            else:
                shutil.rmtree(old, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    except OSError as e:
        raise storage_error(folder.parent, "create the generated folder in", e) from None
    umask = os.umask(0)
    os.umask(umask)
    written = []
    try:
        tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the pages from a web server serving DOCS_DIR
        for rel, content in sorted(rendered.files.items()):
            path = tmp / rel
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, Path):
                    shutil.copyfile(content, path)
                elif isinstance(content, str):
                    path.write_text(content, encoding="utf-8")
                else:
                    path.write_bytes(content)
            except OSError as e:
                raise storage_error(folder / rel, "write", e) from None
            written.append((rel, path.stat().st_size))
        (tmp / MARKER).write_text(json.dumps({"files": [p for p, _ in written]}, indent=1) + "\n", encoding="utf-8")
        if not folder.exists():
            tmp.rename(folder)
        elif exchange(tmp, folder):
            pass  # tmp now holds the previous pages
        else:
            old = folder.parent / f"{tmp.name[:-4]}.old"
            folder.rename(old)
            tmp.rename(folder)  # killed before this line: the next render renames `old` back first
            tmp = old
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise storage_error(folder, "write the generated folder", e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # the previous pages
    return written


@dataclass
class Written:
    """What `lotterysite render` wrote: the folder, every file with its size, the pages in nav order."""

    folder: Path
    files: list[tuple[str, int]]
    sections: list[tuple[str, list[str]]]

    def report(self) -> str:
        """Every page, the other files counted by kind, and the `nav` entries for a mkdocs.yml that lists its nav."""
        total = sum(n for _, n in self.files)
        lines = [f"wrote {self.folder}/ ({len(self.files)} files, {total / 1e6:.1f} MB):"]
        lines += [f"  page  {p}" for p, _ in self.files if p.endswith(".md")]
        kinds = {"data": "data files", "spec": "chart specs", "asset": "JavaScript and CSS"}
        counts = dict.fromkeys(kinds, 0)
        for p, _ in self.files:
            if not p.endswith(".md"):
                counts["spec" if "/specs/" in p else "data" if p.startswith("data/") else "asset"] += 1
        lines += [f"  {counts[k]} {kinds[k]}" for k in kinds]
        lines += [
            "Build with `mkdocs build` or `zensical build` (no plugin needed); the pages start at "
            f"{self.folder.name}/index.md. A mkdocs.yml without `nav` lists them by itself; one with `nav` needs:",
            "  - Results:",
        ]
        for title, uris in self.sections:
            lines.append(f"    - {json.dumps(title, ensure_ascii=False)}:")
            lines += [f"      - {self.folder.name}/{u}" for u in uris]
        return "\n".join(lines)


def render_store(
    store: str | os.PathLike,
    docs_dir: str | os.PathLike,
    *,
    folder: str = "lotterysite",
    options: SiteOptions | None = None,
) -> Written:
    """`lotterysite render`: read the store, write its pages into DOCS_DIR/`folder`, replacing an earlier render."""
    if not folder or Path(folder).name != folder or folder.startswith("."):
        raise RenderError(f"--folder {folder!r}: give a plain folder name such as 'lotterysite'")
    target = Path(docs_dir) / folder
    check_folder(target)  # before the minutes of rendering
    rendered = render(data.load_store(store), options)
    return Written(target, write(rendered, target), rendered.sections)
