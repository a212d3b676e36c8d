"""The `lotterysite` MkDocs plugin: turns a store into the site's generated pages, data files and charts.

    plugins:
      - lotterysite:
          store: store/demo

Hooks stay short and hand off to `data` (what the browser fetches) and `pages` (what it shows).
"""

from __future__ import annotations

import json
from pathlib import Path

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Section

from ..store import StoreError
from . import data, pages

# The UMD builds, in load order: vega-lite and vega-embed expect the global `vega`; vega-loader-arrow registers
# vega.format.arrow. Copied from node_modules (pinned by package-lock.json) at build time, never committed.
VENDOR = (
    "vega/build/vega.min.js",
    "vega-lite/build/vega-lite.min.js",
    "vega-embed/build/vega-embed.min.js",
    "vega-loader-arrow/build/vega-loader-arrow.min.js",
)
ASSETS = Path(__file__).parent / "assets"
OWN = ("lotterysite.js", "lotterysite.css")


class LotterysiteConfig(Config):
    store = c.Type(str, default="store/demo")  # the store folder, relative to mkdocs.yml
    node_modules = c.Type(str, default="node_modules")  # where `npm ci` put the pinned JavaScript
    max_samples = c.Type(int, default=2000)  # shipped samples served per view (keeps pages under 5 MB)
    max_axes = c.Type(int, default=10)  # class-angle axes of the parallel coordinates; more are ranked
    max_classes = c.Type(int, default=10)  # class panels of the local geometry view


class LotterysitePlugin(BasePlugin[LotterysiteConfig]):
    def on_config(self, config):
        self.home = None  # the home page's generated headline and summary, set in on_files
        base = Path(config.config_file_path or ".").parent
        self.store_path = (base / self.config.store).resolve()
        try:
            self.store = data.load_store(self.store_path)
        except StoreError as e:
            raise PluginError(f"lotterysite: cannot read the store {self.store_path}: {e}") from None
        self.node_modules = (base / self.config.node_modules).resolve()
        missing = [p for p in VENDOR if not (self.node_modules / p).exists()]
        if missing:
            raise PluginError(
                f"lotterysite: {self.node_modules / missing[0]} not found; run `npm ci` in {base} "
                "(scripts/setup.sh does) to install the pinned Vega packages"
            )
        config.extra_javascript.extend(f"assets/lotterysite/{Path(p).name}" for p in VENDOR)
        config.extra_javascript.append("assets/lotterysite/lotterysite.js")
        config.extra_css.append("assets/lotterysite/lotterysite.css")
        return config

    def on_files(self, files: Files, config) -> Files:
        try:
            generated, self.sections = build(self.store, self.config)
        except StoreError as e:
            raise PluginError(f"lotterysite: the store {self.store_path} is inconsistent: {e}") from None
        # The home page's headline and summary go into the author's index.md (at pages.HOME_MARKER), or make it.
        self.home = generated.pop(pages.HOME_URI)
        if files.get_file_from_path(pages.HOME_URI) is None:
            generated[pages.HOME_URI] = pages.insert_home("# Findings at a glance\n", self.home)
            self.home = None
        for uri, content in generated.items():
            files.append(File.generated(config, uri, content=content))
        for p in VENDOR:
            files.append(File.generated(config, f"assets/lotterysite/{Path(p).name}", abs_src_path=str(self.node_modules / p)))
        for name in OWN:
            files.append(File.generated(config, f"assets/lotterysite/{name}", abs_src_path=str(ASSETS / name)))
        gallery = self.store_path / "gallery.png"
        if gallery.exists():
            files.append(File.generated(config, "data/gallery.png", abs_src_path=str(gallery)))
        return files

    def on_page_markdown(self, markdown, page, config, files):
        if self.home is not None and page.file.src_uri == pages.HOME_URI:
            return pages.insert_home(markdown, self.home)
        return markdown

    def on_nav(self, nav, config, files: Files):
        return add_sections(nav, files, self.sections)


def build(store: data.Store, cfg: LotterysiteConfig) -> tuple[dict[str, bytes | str], list[tuple[str, list[str]]]]:
    """Every generated file {site path: content} and the nav sections [(title, [page uris])]."""
    out: dict[str, bytes | str] = {}
    ids = data.shipped_ids(store, cfg.max_samples)
    out["data/samples.arrow"] = data.arrow_bytes(data.samples_table(store, ids))
    sections = []
    for arch in store.archs:
        axes = data.axis_classes(store, arch, cfg.max_axes)
        shown = data.axis_classes(store, arch, cfg.max_classes)
        arch_data = data.geometry_slices(store, arch, ids, axes)
        out.update({f"data/{k}": v for k, v in arch_data.files.items()})
        arch_pages, specs = pages.arch_pages(store, arch, arch_data, axes, shown)
        out.update({k: json.dumps(v, separators=(",", ":")) for k, v in specs.items()})
        out.update({p.src_uri: p.markdown for p in arch_pages})
        sections.append((f"Views — {arch}", [p.src_uri for p in arch_pages]))
    home, specs, files = pages.home_page(store)
    out[pages.HOME_URI] = home
    out.update({k: json.dumps(v, separators=(",", ":")) for k, v in specs.items()})
    out.update(files)
    findings, specs = pages.findings_page(store, gallery=(store.root / "gallery.png").exists())
    out[findings.src_uri] = findings.markdown
    out.update({k: json.dumps(v, separators=(",", ":")) for k, v in specs.items()})
    out.update({f"data/{k}": v for k, v in data.findings_tables(store).items()})
    sections.append(("Findings", [findings.src_uri]))
    return out, sections


def add_sections(nav, files: Files, sections):
    """Put the generated pages in the navigation after the home page, in view order."""
    items = []
    for title, uris in sections:
        found = [files.get_file_from_path(u).page for u in uris]
        found = [p for p in found if p is not None]
        if len(found) == 1 and title == "Findings":
            items.append(found[0])
        else:
            items.append(Section(title, found))
    generated = {u for _, uris in sections for u in uris}
    keep = [i for i in nav.items if not (getattr(i, "file", None) and i.file.src_uri in generated)]
    nav.items = keep[:1] + items + keep[1:]
    for item in items:
        for child in getattr(item, "children", None) or []:
            child.parent = item
    nav.pages = [p for p in _walk(nav.items)]
    return nav


def _walk(items):
    for item in items:
        if getattr(item, "children", None):
            yield from _walk(item.children)
        elif getattr(item, "is_page", False):
            yield item
