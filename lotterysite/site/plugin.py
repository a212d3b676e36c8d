"""The `lotterysite` MkDocs plugin: a thin wrapper around `render`, serving its files to MkDocs without writing them.

    plugins:
      - lotterysite:
          store: store/demo

`lotterysite render STORE DOCS_DIR` writes the same pages as files for builders without plugins (Zensical).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Section

from ..errors import LotterysiteError
from . import data, pages
from .render import SiteOptions, render

log = logging.getLogger("mkdocs.plugins.lotterysite")
ASSETS = "assets/lotterysite"  # where the JavaScript and CSS land in the built site


class LotterysiteConfig(Config):
    store = c.Type(str, default="store/demo")  # the store folder, relative to mkdocs.yml
    max_samples = c.Type(int, default=2000)  # shipped samples served per view (keeps pages under 5 MB)
    max_axes = c.Type(int, default=10)  # class-angle axes of the parallel coordinates; more are ranked
    max_classes = c.Type(int, default=10)  # class panels of the local geometry view; more classes: the reader picks
    picked_classes = c.Type(int, default=8)  # panels the reader picks classes for (more than max_classes)
    page_bytes = c.Type(int, default=5_000_000)  # a page's budget with all it fetches: served samples are cut to it
    equivalence_points = c.Type((int, float), default=1.0)  # accuracy points: "keeps dense's accuracy" margin
    panel_marks = c.Type(int, default=400)  # samples a workspace panel draws as marks; more: a density besides
    node_modules = c.Deprecated(
        message="the pinned JavaScript now ships inside the lotterysite package; "
        "remove `node_modules` from the plugin's options"
    )


class LotterysitePlugin(BasePlugin[LotterysiteConfig]):
    def on_config(self, config):
        self.home = None  # the home page's generated headline and summary, set in on_files
        base = Path(config.config_file_path or ".").parent
        self.store_path = (base / self.config.store).resolve()
        try:
            options = SiteOptions(**{k: self.config[k] for k in ("max_samples", "max_axes", "max_classes",
                                                                  "picked_classes", "page_bytes",
                                                                  "equivalence_points", "panel_marks")})  # fmt: skip
        except LotterysiteError as e:
            raise PluginError(f"lotterysite plugin options in {config.config_file_path or 'mkdocs.yml'}: {e}") from None
        try:
            store = data.load_store(self.store_path)
            self.rendered = render(store, options, assets=ASSETS, standalone=False)
        except LotterysiteError as e:
            raise PluginError(f"lotterysite (store {self.store_path}): {e}") from None
        # On every page, as before `render` existed: hand-written pages may embed views too.
        config.extra_javascript.extend(self.rendered.scripts)
        config.extra_css.extend(self.rendered.styles)
        return config

    def on_files(self, files: Files, config) -> Files:
        # An author's file at a generated path (docs/findings.md, or findings/index.md, which makes the same page)
        # is the author's: kept, with a warning (an error under `mkdocs build --strict`), never replaced.
        taken = {f.src_uri: f for f in files} | {f.dest_uri: f for f in files}
        for uri, content in self.rendered.files.items():
            if isinstance(content, Path):
                generated = File.generated(config, uri, abs_src_path=str(content))
            else:
                generated = File.generated(config, uri, content=content)
            mine = taken.get(generated.src_uri) or taken.get(generated.dest_uri)
            if mine is not None:
                log.warning(f"lotterysite: {config.docs_dir}/{mine.src_uri} is your page, and the plugin generates "
                            f"{uri} at the same address; yours is kept and the generated one left out: rename "
                            "yours to see both")  # fmt: skip
                continue
            files.append(generated)
        # The home page's headline and summary go into the author's index.md (at pages.HOME_MARKER), or make it.
        self.home = self.rendered.home
        if files.get_file_from_path(pages.HOME_URI) is None:
            files.append(File.generated(config, pages.HOME_URI,
                                        content=pages.insert_home("# Findings at a glance\n", self.home)))  # fmt: skip
            self.home = None
        return files

    def on_page_markdown(self, markdown, page, config, files):
        if self.home is not None and page.file.src_uri == pages.HOME_URI:
            return pages.insert_home(markdown, self.home)
        return markdown

    def on_nav(self, nav, config, files: Files):
        return add_sections(nav, files, self.rendered.sections)


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
