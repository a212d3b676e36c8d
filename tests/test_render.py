"""`lotterysite render`: the generated folder, its atomic replacement, the vendored JavaScript, and the site built
from rendered pages by MkDocs and Zensical without the plugin, and by a wheel installed without Node."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lotterysite.cli import main
from lotterysite.site import budget, render

REPO = Path(__file__).resolve().parents[1]
HAND_WRITTEN = "# My study\n\nWritten by hand: [the results](lotterysite/index.md).\n"
# A mkdocs.yml that knows nothing of lotterysite: the rendered pages must be enough.
PLAIN_MKDOCS_YML = """site_name: my study
theme:
  name: material
  font: false
  features:
    - navigation.instant
"""
VIEWS = [f"lotterysite/views/lenet5/{k}/" for k in ("evaluation", "local", "global", "samples", "workspace")]
MARKS = """() => window.lotterysiteRuntime.views.map(v => {
  let n = 0;
  const walk = (item) => { if (item.items) item.items.forEach(walk); else n++; };
  walk(v.view.scenegraph().root);
  return n;
})"""


@pytest.fixture(scope="module")
def store(site_store):
    return site_store  # the session's shared plain store (conftest.py): only read here


@pytest.fixture(scope="module")
def docs(tmp_path_factory, store):
    """A researcher's docs folder with one hand-written page, after `lotterysite render STORE DOCS_DIR`."""
    project = tmp_path_factory.mktemp("project")
    (project / "docs").mkdir()
    (project / "docs/index.md").write_text(HAND_WRITTEN)
    result = CliRunner().invoke(main, ["render", str(store), str(project / "docs")])
    assert result.exit_code == 0, result.output
    return project / "docs", result.output


def test_render_writes_its_folder_only_and_says_what(docs):
    docs, output = docs
    assert sorted(p.name for p in docs.iterdir()) == ["index.md", "lotterysite"]
    assert (docs / "index.md").read_text() == HAND_WRITTEN
    out = docs / "lotterysite"
    pages = {"index.md", "findings/index.md", "store/index.md"}
    pages |= {f"views/lenet5/{k}/index.md" for k in ("evaluation", "local", "global", "samples", "workspace")}
    assert pages <= {str(p.relative_to(out)) for p in out.rglob("*.md")}
    for page in pages:
        assert f"page  {page}" in output
    assert "chart specs" in output and "data files" in output
    for name in (
        "vega.min.js",
        "vega-lite.min.js",
        "vega-embed.min.js",
        "vega-loader-arrow.min.js",
        "lotterysite.js",
        "selection.js",
        "workspace.js",
        "lines.js",
        "ws-parts.js",
        "ws-table.js",
        "ws-controls.js",
        "ws-panels.js",
        "ws-grid.js",
        "coordinator.js",
        "lotterysite.css",
        "loader.js",
    ):
        assert (out / "assets" / name).is_file(), name
    assert (out / "data/samples.arrow").is_file() and (out / "data/gallery.png").is_file()


def test_pages_reference_the_loader_and_files_that_exist(docs):
    out = docs[0] / "lotterysite"
    for page in ["findings"] + [f"views/lenet5/{k}" for k in ("evaluation", "local", "global", "samples")]:
        text = (out / page / "index.md").read_text()
        # The page's folder is its URL's folder, with or without directory URLs: relative paths resolve from it.
        url_dir = out / page
        src = re.search(r'<script src="([^"]+loader\.js)"></script>', text).group(1)
        assert (url_dir / src).resolve() == (out / "assets/loader.js").resolve(), page
        for cfg in re.findall(r'class="ls-config" hidden>(.*?)</div>', text):
            cfg = json.loads(cfg)
            for key in ("spec", "samples", "evaluation", "correct"):
                if key in cfg:
                    assert (url_dir / cfg[key]).resolve().is_file(), (page, key)
            for path in list(cfg.get("specs", {}).values()) + list(cfg.get("datasets", {}).values()):
                assert (url_dir / path).resolve().is_file(), (page, path)
    loader = (out / "assets/loader.js").read_text()
    assert (
        '["vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "vega-loader-arrow.min.js", "selection.js", '
        '"workspace.js", "lines.js", "ws-parts.js", "ws-table.js", "ws-controls.js", "ws-panels.js", "ws-grid.js", '
        '"coordinator.js", "lotterysite.js"]' in loader
    )


def test_index_page_escapes_the_store_names(hostile):
    from types import SimpleNamespace

    store = SimpleNamespace(manifest={"recipe": {"name": hostile}, "dataset": {"name": hostile}, "models": [{}]})
    text = render.index_page(store, [(f"Views — {hostile}", ["views/x/local/index.md"]), ("Findings", [])])
    assert hostile not in text and "&lt;script&gt;" in text
    assert "- [Local geometry](views/x/local/index.md)" in text


def test_render_again_replaces_the_folder_as_a_whole(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    target = docs / "lotterysite"
    render.write(render.Rendered(files={"index.md": "# old", "old/stale.md": "gone"}), target)
    written = render.write(render.Rendered(files={"index.md": "# new", "data/x.arrow": b"x"}), target)
    assert (target / "index.md").read_text() == "# new" and not (target / "old").exists()
    assert sorted(p.name for p in docs.iterdir()) == ["lotterysite"], "no temporary folder left behind"
    assert (
        json.loads((target / render.MARKER).read_text())["files"]
        == [p for p, _ in written]
        == ["data/x.arrow", "index.md"]
    )
    assert target.stat().st_mode & 0o777 != 0o700, "mkdtemp's private mode would hide the pages from a web server"


def test_a_failed_render_keeps_the_previous_folder(tmp_path):
    target = tmp_path / "docs/lotterysite"
    render.write(render.Rendered(files={"index.md": "# old"}), target)
    with pytest.raises(TypeError):
        render.write(render.Rendered(files={"index.md": "# new", "bad.md": 42}), target)
    assert (target / "index.md").read_text() == "# old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["lotterysite"]


def test_a_folder_render_did_not_write_is_never_replaced(tmp_path, store):
    docs = tmp_path / "docs"
    (docs / "lotterysite").mkdir(parents=True)
    (docs / "lotterysite/notes.md").write_text("mine")
    result = CliRunner().invoke(main, ["render", str(store), str(docs)])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "was not written by `lotterysite render`" in result.output and "--folder" in result.output
    assert (docs / "lotterysite/notes.md").read_text() == "mine"
    assert sorted(p.name for p in docs.iterdir()) == ["lotterysite"]


def test_a_missing_store_is_one_line_with_the_fix(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "docs").mkdir()
    result = CliRunner().invoke(main, ["render", str(tmp_path / "store"), str(tmp_path / "docs")])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0, result.output
    assert "lotterysite precompute" in result.output
    assert list((tmp_path / "docs").iterdir()) == []


def test_vendored_javascript_matches_its_manifest_and_the_lockfile():
    packages = render.vendor_manifest()
    assert [p["name"] for p in packages] == ["vega", "vega-lite", "vega-embed", "vega-loader-arrow"]
    lock = json.loads((REPO / "package-lock.json").read_text())["packages"]
    for p in packages:
        for file, digest in ((p["file"], p["sha256"]), (p["license_file"], p["license_sha256"])):
            assert hashlib.sha256((render.VENDOR / file).read_bytes()).hexdigest() == digest, file
        assert p["version"] == lock[f"node_modules/{p['name']}"]["version"], p["name"]
        assert p["license"] == "BSD-3-Clause" and "Copyright" in (render.VENDOR / p["license_file"]).read_text()
    shipped = {p.name for p in render.VENDOR.iterdir()}
    assert shipped == {"manifest.json"} | {p["file"] for p in packages} | {p["license_file"] for p in packages}


def test_a_changed_vendored_file_is_an_error(tmp_path, monkeypatch):
    vendor = tmp_path / "vendor"
    shutil.copytree(render.VENDOR, vendor)
    (vendor / "vega.min.js").write_text("/* not vega */")
    monkeypatch.setattr(budget, "VENDOR", vendor)
    with pytest.raises(render.RenderError, match="vega.min.js: SHA-256 .* differs .* reinstall lotterysite"):
        render.vendor_files()


def _build(builder: str, docs: Path, workdir: Path, site_url: str) -> Path:
    """Build `docs` (copied) with `builder` and a mkdocs.yml without the plugin; returns the site folder."""
    shutil.copytree(docs, workdir / "docs")
    # Material's instant navigation follows only links under site_url: the address the site is served from.
    (workdir / "mkdocs.yml").write_text(PLAIN_MKDOCS_YML.replace("\ntheme:", f"\nsite_url: {site_url}\ntheme:"))
    if builder == "mkdocs":
        cmd = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    else:
        cmd = [shutil.which("zensical") or "zensical", "build"]
    result = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir / "site"


@pytest.fixture(scope="module", params=["mkdocs", "zensical"])
def built(request, docs, tmp_path_factory, serve):
    if request.param == "zensical" and not shutil.which("zensical"):
        pytest.skip("zensical not installed: `pip install -e .[test]` (scripts/setup.sh test does)")
    workdir = tmp_path_factory.mktemp(request.param)
    (workdir / "site").mkdir()
    base = serve(workdir / "site")  # served from before the build, so that site_url can name it
    return request.param, _build(request.param, docs[0], workdir, base), base


def test_builders_without_the_plugin_publish_every_rendered_page(built):
    _, site, _ = built
    for page in VIEWS + ["lotterysite/", "lotterysite/findings/", "lotterysite/store/", ""]:
        assert (site / page / "index.html").is_file(), page
    for name in ("vega.min.js", "loader.js", "lotterysite.js", "lotterysite.css"):
        assert (site / "lotterysite/assets" / name).is_file(), name
    assert (site / "lotterysite/data/lenet5/evaluation.arrow").is_file()
    html = (site / "lotterysite/views/lenet5/local/index.html").read_text()
    assert 'class="ls-config"' in html and "loader.js" in html


def _draws(page) -> list[int]:
    page.wait_for_function(
        "window.lotterysiteRuntime && window.lotterysiteRuntime.ready && document.querySelector('.ls-view')",
        timeout=30_000,
    )
    page.evaluate("window.lotterysiteRuntime.ready")
    page.wait_for_function(
        "window.lotterysiteRuntime.views.length > 0 && window.lotterysiteRuntime.views.every(v => v.view)",
        timeout=30_000,
    )
    page.evaluate("window.lotterysiteRuntime.ready")
    assert page.evaluate("window.lotterysiteRuntime.errors") == []
    return page.evaluate(MARKS)


@pytest.mark.browser
@pytest.mark.parametrize("path", VIEWS + ["lotterysite/findings/"])
def test_rendered_pages_draw_in_chromium(built, new_page, path):
    _, _, base = built
    page = new_page(base)
    page.goto(base + path)
    counts = _draws(page)
    assert counts and all(n > 10 for n in counts), counts
    assert page.problems == []


@pytest.mark.browser
def test_rendered_views_draw_the_store(built, new_page, open_view, store):
    """The view oracle (tests/oracle.py) over every view of the rendered pages: each mark is the store's value."""
    import oracle

    _, site, base = built
    views = [("lotterysite/" + path, checks) for path, checks in oracle.every_view("summary/")]
    got = oracle.check_pages(new_page, open_view, base, oracle.Store(store), site / "lotterysite/data", views)
    assert len(got) == 13 and all(n for counts in got.values() for n in counts.values()), got


@pytest.mark.browser
def test_instant_navigation_from_a_hand_written_page(built, new_page):
    """The first page has no lotterysite script; the builder's instant navigation runs the view page's loader."""
    builder, _, base = built
    page = new_page(base)
    page.goto(base)
    assert page.evaluate("window.lotterysiteRuntime === undefined")
    page.evaluate("window.sameDocument = true")  # survives instant navigation, not a page load
    page.click("article >> text=the results")
    page.wait_for_url(base + "lotterysite/")
    page.click("article >> text=Local geometry")  # the views write their state into the address's hash
    page.wait_for_url(re.compile(re.escape(base + "lotterysite/views/lenet5/local/") + r"(#.*)?$"))
    assert all(n > 10 for n in _draws(page)), builder
    assert page.evaluate("window.sameDocument === true"), f"{builder} reloaded the page: no instant navigation"
    # Instant navigation kept the page: the loader ran once, the Vega scripts are not loaded twice.
    # (Counted as network loads: the builder may swap the head's script tags, the scripts stay loaded.)
    loads = "performance.getEntriesByType('resource').filter(e => e.name.endsWith('/vega.min.js')).length"
    assert page.evaluate(loads) == 1
    page.go_back()
    page.click("article >> text=Global geometry")
    page.wait_for_url(re.compile(re.escape(base + "lotterysite/views/lenet5/global/") + r"(#.*)?$"))
    assert all(n > 10 for n in _draws(page))
    assert page.problems == []


@pytest.mark.slow
def test_wheel_builds_a_site_without_node(tmp_path, store, serve, new_page):
    """Wheel -> fresh virtual environment -> a folder with only mkdocs.yml and a store -> `mkdocs build` -> Chromium."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "lotterysite", src / "lotterysite", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = dict(capture_output=True, text=True, env=env, timeout=600)
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(src)],
        **run,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    wheel = next((tmp_path / "dist").glob("lotterysite-*.whl"))
    # The test environment already holds torch, mkdocs and the rest; the venv adds only the wheel on top.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp_path / "venv")], check=True, **run)
    python = tmp_path / "venv/bin/python"
    r = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall", str(wheel)], **run
    )
    assert r.returncode == 0, r.stdout + r.stderr

    project = tmp_path / "project"
    (project / "docs").mkdir(parents=True)
    (project / "docs/index.md").write_text("# My study\n")
    shutil.copytree(store, project / "store")
    (project / "mkdocs.yml").write_text(PLAIN_MKDOCS_YML + "plugins:\n  - lotterysite:\n      store: store\n")
    r = subprocess.run([python, "-c", "import lotterysite; print(lotterysite.__file__)"], cwd=project, **run)
    assert r.stdout.strip().startswith(str(tmp_path / "venv")), r.stdout + r.stderr  # the wheel, not the checkout
    r = subprocess.run([python, "-m", "mkdocs", "build"], cwd=project, **run)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in project.iterdir()) == ["docs", "mkdocs.yml", "site", "store"]  # no node_modules
    site = project / "site"
    assert (site / "assets/lotterysite/vega.min.js").read_bytes() == (render.VENDOR / "vega.min.js").read_bytes()

    base = serve(site)
    for path in ("views/lenet5/local/", "findings/"):
        page = new_page(base)
        page.goto(base + path)
        assert all(n > 10 for n in _draws(page)), path
        assert page.problems == []


def test_served_samples_are_cut_to_the_page_budget(store):
    from lotterysite.site import data

    st = data.load_store(store)
    cut = budget.served_samples(st, render.SiteOptions())
    everything, samples = cut.served, cut.samples
    ids = everything.ids
    assert len(ids) == st.tables["samples.arrow"].num_rows  # the fixture fits: everything is served
    # The estimate, recomputed: scripts and page, samples.arrow, two local slices and two class-angle files as
    # rendered (the global view comparing two models), a full grid of the largest thumbnail files as rendered (the
    # thumbnails of the grid only: the others are never fetched with the page).
    fixed = sum(p.stat().st_size for p in render.vendor_files()) + budget.PAGE_OVERHEAD
    rendered = render.render(st)
    slice_bytes = sum(max(len(v) for k, v in rendered.files.items() if k.startswith(f"data/lenet5/{d}/")) for d in "wp")
    thumbs = [len(v) for k, v in rendered.files.items() if k.startswith("data/thumbs/")]
    assert len(thumbs) == len(ids) and rendered.files["data/samples.arrow"] == samples
    full = fixed + len(samples) + 2 * slice_bytes + budget.SAMPLES_GRID * max(thumbs)
    assert abs(budget.page_estimate(st, everything, samples, render.SiteOptions()) - full) < 0.05 * (full - fixed)
    # The scripts, a grid of thumbnails and the files' headers cost the same whatever the samples: a budget with
    # room for about half the samples.
    none = budget.page_estimate(st, data.Served(ids[:0], everything.in_sample[:0]), b"", render.SiteOptions())
    assert none < full and abs(none - fixed - budget.SAMPLES_GRID * max(thumbs)) < 0.2 * (full - fixed)
    # The cut budgets the heaviest page: a single view page or the workspace with its 6 combinations (heavier: the
    # evaluation table's counts and a slice per combination). A budget with room for about half the samples.
    empty = data.Served(ids[:0], everything.in_sample[:0])
    lo, hi = (budget.budget_estimate(st, s, b, render.SiteOptions()) for s, b in ((empty, b""), (everything, samples)))
    workspace = budget.workspace_estimate(st, everything, samples, render.SiteOptions())
    assert hi >= workspace > full
    # The single evaluation page (page_estimate leaves it out) fetches the table's rows and counts besides the
    # scripts and samples.arrow: files the workspace fetches too, so the cut budgets it through the workspace.
    table = ("evaluation.arrow", "correct.arrow")
    evaluation = fixed + len(samples) + sum(len(rendered.files[f"data/lenet5/{f}"]) for f in table)
    assert evaluation < workspace <= hi
    # The cut keeps the estimates it was decided on (the view model's budget numbers).
    page = budget.page_estimate(st, everything, samples, render.SiteOptions())
    assert (cut.page, cut.workspace, cut.estimate) == (page, workspace, hi)
    limit = int(lo + (hi - lo) / 2)
    smaller = budget.served_samples(st, render.SiteOptions(page_bytes=limit))
    fewer = smaller.served
    assert budget.budget_estimate(st, fewer, smaller.samples, render.SiteOptions()) == smaller.estimate <= limit
    assert budget.page_estimate(st, fewer, smaller.samples, render.SiteOptions()) == smaller.page <= limit
    assert len(ids) / 3 < len(fewer.ids) < len(ids)
    labels = st.tables["samples.arrow"].column("label").to_numpy()
    served = np.isin(st.tables["samples.arrow"].column("sample_id").to_numpy(), fewer.ids)
    assert set(labels[served]) == set(labels)  # every class kept
    # The same fraction of every class (the policy's proportional allocation), within one sample.
    share = np.bincount(labels[served], minlength=10) / np.bincount(labels, minlength=10)
    assert share.max() - share.min() < 2 / np.bincount(labels).min()


def test_equivalence_margin_is_a_render_option_and_the_pages_state_it(tmp_path, store):
    (tmp_path / "docs").mkdir()
    (tmp_path / "d2").mkdir()
    result = CliRunner().invoke(main, ["render", str(store), str(tmp_path / "docs"), "--equivalence-points", "2.5"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "docs/lotterysite"
    assert "equivalence margin of **2.5 points**" in (out / "summary/index.md").read_text()
    findings = (out / "findings/index.md").read_text()
    assert "equivalence margin of\n**2.5 points**" in findings and 'table class="ls-paired"' in findings
    bad = CliRunner().invoke(main, ["render", str(store), str(tmp_path / "d2"), "--equivalence-points", "0"])
    assert bad.exit_code == 2 and "--equivalence-points" in bad.output
    with pytest.raises(render.RenderError, match="equivalence_points = -1"):
        render.SiteOptions(equivalence_points=-1)


def test_equivalence_margin_is_a_plugin_option(monkeypatch, tmp_path):
    from lotterysite.site import plugin

    cfg = plugin.LotterysiteConfig()
    cfg.load_dict({"equivalence_points": 2})  # a whole number in mkdocs.yml is fine
    assert cfg.validate() == ([], []) and cfg["equivalence_points"] == 2
    seen = {}
    monkeypatch.setattr(plugin.data, "load_store", lambda path: None)

    class MkdocsConfig(dict):
        config_file_path = str(tmp_path / "mkdocs.yml")
        extra_javascript, extra_css = [], []

    p = plugin.LotterysitePlugin()
    p.config = cfg
    monkeypatch.setattr(
        plugin, "render", lambda store, options, **kw: seen.update(options=options) or render.Rendered()
    )
    p.on_config(MkdocsConfig())
    assert seen["options"].equivalence_points == 2


def test_panel_marks_is_a_render_option(tmp_path, store):
    """`--panel-marks N` (the plugin's `panel_marks`): a class with more served samples than N gets drawn in the
    workspace as the store's density plus a uniform random subsample (samples.arrow's `dot`), sized so that the
    largest class has about N; at the default every sample of the fixture is a mark. A nonsense value is one line."""
    import pyarrow as pa

    def render_with(*extra):
        docs = tmp_path / f"docs{len(extra)}"
        docs.mkdir()
        result = CliRunner().invoke(main, ["render", str(store), str(docs), *extra])
        assert result.exit_code == 0, result.output
        out = docs / "lotterysite"
        table = pa.ipc.open_file(pa.memory_map(str(out / "data/samples.arrow"))).read_all()
        return out, np.array(table["dot"]), np.array(table["in_sample"]), np.array(table["label"])

    out, dot, in_sample, labels = render_with()
    assert (dot == in_sample).all() and not list(out.glob("data/*/d/**/*.arrow"))
    out, dot, in_sample, labels = render_with("--panel-marks", "5")
    per_class = np.bincount(labels[in_sample])
    assert dot[~in_sample].sum() == 0 and 0 < dot.sum() < in_sample.sum()
    # The class-stratified subsample: each class in proportion, the largest about 5 (rounding: within one).
    assert abs(np.bincount(labels[dot]).max() - 5) <= 1, np.bincount(labels[dot])
    assert dot.sum() == int(5 * in_sample.sum() / per_class.max())
    assert list(out.glob("data/*/d/**/*.arrow"))  # the store's densities, for the panels' rects
    bad = CliRunner().invoke(main, ["render", str(store), str(tmp_path / "bad"), "--panel-marks", "0"])
    assert bad.exit_code != 0 and "--panel-marks" in bad.output
