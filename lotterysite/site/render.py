"""Render a store into the ordinary files a static site needs: Markdown pages, chart specs, data slices, the pinned
JavaScript and CSS, and one small loader script the pages reference.

Data flow one way: store -> view model (`model.build_view_model`, once: every number, the served-sample cut and
the slice files) -> rendered files -> builder. `lotterysite render STORE DOCS_DIR` writes them into a folder of
DOCS_DIR that any builder reading Markdown (MkDocs, Zensical) turns into the site; the MkDocs plugin hands the same
files to MkDocs without writing them. The JavaScript comes from package data (`vendor/`, pinned by
package-lock.json through scripts/update-js.sh), so neither step needs Node.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from ..fileio import storage_error
from ..store.publish import exchange
from . import data, pages
from .budget import VENDOR, vendor_files, vendor_manifest
from .model import build_view_model
from .options import RenderError, SiteOptions

__all__ = ["VENDOR", "RenderError", "SiteOptions", "render", "render_store", "vendor_files", "vendor_manifest", "write"]

HERE = Path(__file__).parent
ASSETS = HERE / "assets"
OWN_SCRIPT = "lotterysite.js"
# Loaded before OWN_SCRIPT: the workspace's shared selection store, then its views (they register with the runtime
# that OWN_SCRIPT starts, so they must be there when it looks at the page).
# The workspace's modules, in load order: the store, the rows, the PCP's line layer, the views' shared parts, one
# module per view, the coordinator.
WORKSPACE_SCRIPTS = ("selection.js", "workspace.js", "lines.js", "ws-parts.js", "ws-table.js", "ws-controls.js",
                     "ws-panels.js", "ws-grid.js", "coordinator.js")  # fmt: skip
OWN_STYLE = "lotterysite.css"
LOADER = "loader.js"
MARKER = ".lotterysite-render.json"  # in the generated folder: what wrote it (hidden files are not published)


@dataclass
class Rendered:
    """Every generated file, by its path inside the generated tree."""

    files: dict[str, str | bytes | Path] = field(default_factory=dict)  # content, or a package file to copy
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # nav: (title, [page paths])
    scripts: list[str] = field(default_factory=list)  # JavaScript paths, in load order
    styles: list[str] = field(default_factory=list)
    home: str = ""  # the home page's headline chart and summary (Markdown, placed at pages.HOME_MARKER)


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
    served = view.serving.cut.served  # the samples the page budget serves (`budget.served_samples`)
    out.files["data/samples.arrow"] = view.serving.cut.samples
    out.files.update({f"data/{k}": v for k, v in data.thumbnail_files(store, served).items()})
    generated: list[pages.Page] = []
    for arch in store.archs:
        arch_model = view.archs[arch]
        out.files.update({f"data/{k}": v for k, v in arch_model.slices.files.items()})
        out.files.update({f"data/{k}": v for k, v in arch_model.density_files.items()})
        arch_pages, specs = pages.arch_pages(view, arch)
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
