"""Fixtures shared by the test modules: the real Fashion-MNIST, the tiny recipe, the site store and its built site,
Chromium and a local HTTP server for the browser tests, the foolbox ImageNet photos as a class-folder data set, and
a separate Ray cluster to join."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HOSTILE = "<script>alert(1)</script>"
HOSTILE_METHOD = 'rand"<b>om</b>'

# precompute end to end in seconds: every pruning method, two corruptions, a few shipped samples.
TINY_RECIPE = """
name = "tiny"
[data]
name = "fashion_mnist"
train_subset = 2000
eval_subset = 150
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
[[pruning]]
method = "magnitude"
amounts = [0.5, 0.9]
retrain_epochs = 1
[[pruning]]
method = "random"
amounts = [0.5]
[[pruning]]
method = "taylor"
amounts = [0.5]
taylor_batches = 2
[[pruning]]
method = "mpt"
amounts = [0.5]
mpt_epochs = 1
[corruptions]
names = ["fog", "gaussian_noise"]
severities = [1, 3]
[ship]
samples_per_class = 4
severities = [3]
[curse]
widths = [4, 16]
random_dims = [2, 512]
random_samples = 500
train_subset = 500
"""

# The site store: a small but real store written by `lotterysite precompute` itself. LeNet-5 trained one epoch on a
# subset, magnitude and random pruning, eight corruptions at two severities (more columns than one row of the
# evaluation table holds), the geometry of every shipped sample. The site therefore reads exactly what precompute
# writes.
SITE_RECIPE = """
name = "site-fixture"
[data]
name = "fashion_mnist"
train_subset = 6000
eval_subset = 400
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
[[pruning]]
method = "magnitude"
amounts = [0.5, 0.8]
[[pruning]]
method = "random"
amounts = [0.3]
[corruptions]
names = ["gaussian_noise", "brightness", "fog", "contrast", "pixelate", "shot_noise", "defocus_blur", "saturate"]
severities = [1, 3]
[ship]
samples_per_class = 30
[curse]
widths = [4, 16]
random_dims = [2, 8, 32, 128, 512]
random_samples = 2000
train_subset = 1000
"""


@pytest.fixture(scope="session")
def fmnist():
    """The real Fashion-MNIST (Debian's dataset-fashion-mnist), both splits."""
    from lotterysite.data import load_dataset

    return load_dataset("fashion_mnist")


@pytest.fixture(scope="session")
def tiny_recipe() -> str:
    """TOML text of a recipe precompute runs in seconds on 2 cores."""
    return TINY_RECIPE


@pytest.fixture(scope="session")
def hostile() -> str:
    """The HTML `make_store(..., hostile=True)` puts into a class name and the recipe name."""
    return HOSTILE


@functools.lru_cache(maxsize=1)
def _precomputed() -> Path:
    """Run the recipe once per test session (about 15 s on 2 idle cores)."""
    from lotterysite.precompute import parse_recipe, precompute

    root = Path(tempfile.mkdtemp(prefix="lotterysite-site-store-"))
    precompute(parse_recipe(SITE_RECIPE, "site-fixture.toml"), store=root / "store", device="cpu", progress=False)
    shutil.rmtree(root / "store.work")  # what a published store ships: no checkpoints (they live beside it)
    return root / "store"


def _rewrite_names(root: Path) -> None:
    """Put HTML into the first class name, the random method's name and the recipe name, in every file."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lotterysite.store import read_table, write_manifest, write_table

    manifest = json.loads((root / "manifest.json").read_text())

    def swap(text: str) -> str:
        return text.replace("random", HOSTILE_METHOD)

    for name in manifest["files"]:
        if not name.endswith(".arrow"):
            continue  # gallery.png
        table = read_table(root / name)
        columns = []
        for field, column in zip(table.schema, table.columns, strict=True):
            kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
            if pa.types.is_string(kind) and field.name in ("model_id", "method"):
                plain = pa.array([None if v is None else swap(v) for v in column.cast(pa.string()).to_pylist()])
                column = plain.dictionary_encode().cast(field.type) if pa.types.is_dictionary(field.type) else plain
            if field.name == "class_name":
                column = pc.if_else(pc.equal(column.cast(pa.string()), manifest["dataset"]["classes"][0]), HOSTILE,
                                    column.cast(pa.string())).dictionary_encode().cast(field.type)  # fmt: skip
            columns.append(column)
        meta = {k.decode().removeprefix("lotterysite."): v.decode() for k, v in (table.schema.metadata or {}).items()
                if k != b"lotterysite.schema_version"}  # fmt: skip
        write_table(root / name, pa.Table.from_arrays(columns, schema=table.schema.remove_metadata()), metadata=meta)
    manifest["dataset"]["classes"][0] = HOSTILE
    manifest["recipe"]["name"] = f"fixture {HOSTILE}"
    for m in manifest["models"]:
        m["method"] = swap(m["method"])
        m["model_id"] = swap(m["model_id"])
    manifest["methods"] = [swap(m) for m in manifest["methods"]]
    manifest.pop("schema_version")
    write_manifest(root, manifest)


def build_store(root: str | Path, *, hostile: bool = False, gallery: bool = True) -> Path:
    """Copy the session's precomputed store to `root`; `hostile` puts HTML in a class, a method and the recipe."""
    root = Path(root)
    shutil.copytree(_precomputed(), root)
    if hostile:
        _rewrite_names(root)
    if not gallery:
        from lotterysite.store import read_manifest, write_manifest

        (root / "gallery.png").unlink()
        manifest = read_manifest(root)
        del manifest["files"]["gallery.png"]
        write_manifest(root, {**manifest, "gallery": None})
    return root


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
    text = text.replace("store: store/demo", f"store: {store}")
    text = text.replace("docs_dir: site_src", f"docs_dir: {repo / 'site_src'}")
    text = text.replace("site_dir: site", f"site_dir: {workdir / 'site'}")
    cfg_path = workdir / "mkdocs.yml"
    cfg_path.write_text(text, encoding="utf-8")
    build(load_config(str(cfg_path)))
    _SITES[key] = workdir / "site"
    return _SITES[key]


@pytest.fixture(scope="session")
def make_store():
    """`make_store(root, hostile=False, gallery=True)`: a copy of the session's site store (see `build_store`)."""
    return build_store


@pytest.fixture(scope="session")
def make_site():
    """`make_site(workdir, store)`: the plugin-built site of `store` (see `build_site`)."""
    return build_site


@pytest.fixture(scope="session")
def site_store(tmp_path_factory) -> Path:
    """The plain site store (`make_store` without options), one copy shared by the modules that only read it
    (tests/test_site.py, test_site_browser.py, test_render.py). Never write into it: copy it, or call `make_store`."""
    return build_store(tmp_path_factory.mktemp("shared-site") / "store")


@pytest.fixture(scope="session")
def site(site_store) -> Path:
    """The plugin-built site of `site_store`, built once per session for the unit and the browser tests (its
    workdir holds `store/` beside `site/`). Never write into it: copy it first."""
    return build_site(site_store.parent, site_store)


@pytest.fixture(scope="session")
def serve():
    """`serve(folder)`: the base URL of a local HTTP server for `folder`, running until the session ends."""
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def start(folder: Path) -> str:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_port}/"

    yield start
    for httpd in servers:
        httpd.shutdown()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright; skips when either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: `apt-get install chromium` (scripts/setup.sh test does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    """`new_page(base_url)`: a fresh page recording in `page.problems` console errors, page errors and any request
    leaving `base_url`."""
    contexts = []

    def make(base_url: str):
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        contexts.append(context)
        pg = context.new_page()
        pg.problems = []
        pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))

        def request(r):
            if not r.url.startswith((base_url, "data:", "blob:")):
                pg.problems.append(f"request leaving the site: {r.url}")

        pg.on("request", request)
        return pg

    yield make
    for context in contexts:
        context.close()


# -- browser helpers, as fixtures ------------------------------------------------------------------------------
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"  # look at them: the tests' pages end up here


def _open_view(page, url):
    # A URL that differs from the open page's only after '#' is a same-document navigation: the page's scripts do
    # not run again, and mkdocs-material's instant navigation swaps the page on its own clock, so `ready` could be
    # the previous page's promise (CI once read a view that was still being made). Open it as a reader opening a
    # shared link does: a fresh load.
    if page.url.split("#")[0] == url.split("#")[0]:
        page.goto("about:blank")
    page.goto(url)
    page.wait_for_function("window.lotterysiteRuntime && window.lotterysiteRuntime.ready", timeout=30_000)
    page.evaluate("window.lotterysiteRuntime.ready")
    assert page.evaluate("window.lotterysiteRuntime.errors") == []


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="session")
def open_view():
    """`open_view(page, url)`: load a page and wait until every view on it has drawn without an error."""
    return _open_view


@pytest.fixture(scope="session")
def shot():
    """`shot(page, name)`: a full-page screenshot under build/screenshots/."""
    return _shot


# -- stores whose findings differ (the home page's words must follow the data) ----------------------------------
def _rewrite_rows(path: Path, changes: dict[str, dict[str, object]], key: str = "model_id") -> None:
    """changes: {model_id: {column: value}} applied to the rows of that model; every other value kept."""
    import pyarrow as pa

    from lotterysite.store import read_table, write_table

    table = read_table(path)
    rows = table.to_pylist()
    for row in rows:
        row.update(changes.get(row[key], {}))
    meta = {k.decode().removeprefix("lotterysite."): v.decode() for k, v in (table.schema.metadata or {}).items()
            if k != b"lotterysite.schema_version"}  # fmt: skip
    write_table(path, pa.Table.from_pylist(rows, schema=table.schema.remove_metadata()), metadata=meta)


def outcome_numbers(outcomes: dict[str, dict], seed: int = 0) -> tuple[dict, dict]:
    """Store rows made by precompute's own aggregates from per-sample outcomes you set: `outcomes` maps a model_id
    to {"clean": N bools (right on the clean image), "corrupted": V x N bools (right on each corrupted version),
    optionally "margin": (1 + V) x N clean-then-corrupted margins}. Returns ({model_id: models.arrow columns}, the
    paired.arrow columns over every two models given and each model's corrupted vs clean), with the store's
    bootstrap (1000 resamples of `seed`)."""
    import numpy as np

    from lotterysite.precompute import aggregate as agg

    boot = agg.Bootstrap(seed=seed)
    inputs, numbers = {}, {}
    weights = None
    for mid, o in outcomes.items():
        correct = np.vstack([np.asarray(o["clean"], bool)[None], np.asarray(o["corrupted"], bool)])
        V, N = correct.shape
        weights = boot.weights(N) if weights is None else weights
        margin = np.asarray(o.get("margin", np.ones((V, N))), np.float32)
        z = np.zeros((V, N), np.float32)
        res = agg.ModelResults.from_angles(
            variants=[("clean", 0)] + [("fog", s) for s in range(1, V)], labels=np.zeros(N, np.int64),
            pred=np.where(correct, 0, 1).astype(np.int16), margin=margin, margin_eq5=margin, length=z + 1,
            angle=np.full((V, N, 2), 45, np.float32), prob_true=z, loss=z, degenerate=np.zeros((V, N), bool),
        )  # fmt: skip
        inputs[mid] = agg.PairedInputs.of(res)
        rows = agg.accuracy_rows(mid, res, 1, weights, boot)
        at = {v: i for i, (v, c) in enumerate(zip(rows["variant"], rows["class_id"], strict=True)) if c == -1}
        numbers[mid] = {f"{name}{end}": rows[f"accuracy{end}"][at[variant]]
                        for name, variant in (("clean_accuracy", "clean"), ("corrupted_accuracy", "corruption_mean"))
                        for end in ("", "_lo", "_hi")}  # fmt: skip
    ids = list(outcomes)
    pairs = [(m, m) for m in ids] + [(m, r) for i, m in enumerate(ids) for r in ids[:i]]
    return numbers, agg.paired_rows(pairs, inputs, weights, boot)


def derive_store(root: str | Path, *, models: dict | None = None, correlations: dict | None = None,
                 relabel: dict[str, str] | None = None, outcomes: dict[str, dict] | None = None) -> Path:  # fmt: skip
    """The site fixture store at `root` with `models` / `correlations` ({model_id: {column: value}}) overwritten
    and `relabel` ({model_id: new method}) applied to models.arrow, correlations.arrow and the manifest (the fixture
    has no MPT model: relabelling its random model "mpt" gives Fig. 10 a pair without training one more model).

    `outcomes` (see `outcome_numbers`; the fixture has 400 evaluation images) sets per-sample correctness: the
    accuracies of those models in models.arrow and the whole of paired.arrow are recomputed from it by precompute's
    aggregates (paired.arrow then holds only the models given), before `models` is applied."""
    import pyarrow as pa

    from lotterysite.store import read_table, write_manifest, write_table
    from lotterysite.store.schema import PAIRED

    root = build_store(root)
    paired_rows = None
    if outcomes:
        numbers, paired_rows = outcome_numbers(outcomes)
        models = {k: {**numbers.get(k, {}), **v} for k, v in {**dict.fromkeys(numbers, {}), **(models or {})}.items()}
        old = read_table(root / "paired.arrow").schema.metadata or {}
        meta = {k.decode().removeprefix("lotterysite."): v.decode() for k, v in old.items()
                if k != b"lotterysite.schema_version"}  # fmt: skip
        write_table(root / "paired.arrow", pa.table(paired_rows, schema=PAIRED), metadata=meta)
    models = {k: dict(v) for k, v in (models or {}).items()}
    correlations = {k: dict(v) for k, v in (correlations or {}).items()}
    for model_id, method in (relabel or {}).items():
        models.setdefault(model_id, {})["method"] = method
        correlations.setdefault(model_id, {})["method"] = method
    _rewrite_rows(root / "models.arrow", models)
    _rewrite_rows(root / "correlations.arrow", correlations)
    manifest = json.loads((root / "manifest.json").read_text())
    for m in manifest["models"]:
        m["method"] = (relabel or {}).get(m["model_id"], m["method"])
    manifest["methods"] = list(dict.fromkeys(m["method"] for m in manifest["models"]))
    if paired_rows is not None:
        manifest["files"]["paired.arrow"]["rows"] = len(paired_rows["model_id"])
    manifest.pop("schema_version")
    write_manifest(root, manifest)
    return root


@pytest.fixture(scope="session")
def make_derived_store():
    """`make_derived_store(root, models=..., correlations=..., relabel=..., outcomes=...)`: see `derive_store`."""
    return derive_store


def foolbox_imagenet_files() -> list[tuple[Path, int]]:
    """The 20 real ImageNet photos in the foolbox wheel (imagenet_<i>_<label>.jpg), with their labels."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None or spec.origin is None:
        pytest.skip("foolbox is not installed (pip install --no-deps foolbox)")
    files = sorted((Path(spec.origin).parent / "data").glob("imagenet_*.jpg"))
    return [(f, int(re.match(r"imagenet_\d+_(\d+)\.jpg", f.name).group(1))) for f in files]


def imagenet_class(label: int) -> str:
    return f"c{label:04d}"


@pytest.fixture(scope="session")
def imagenet_folder(tmp_path_factory) -> Path:
    """The foolbox ImageNet photos as a class-folder data set: 19 classes named c<label>, every photo in train/
    and in val/; `classes.txt` lists all 1000 ImageNet class indices as names (c0000 ... c0999)."""
    root = tmp_path_factory.mktemp("imagenet-folder")
    for split in ("train", "val"):
        for f, label in foolbox_imagenet_files():
            folder = root / split / imagenet_class(label)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, folder / f.name)
    (root / "classes.txt").write_text("".join(imagenet_class(i) + "\n" for i in range(1000)))
    return root


# -- many classes: the foolbox photos under real ImageNet class names, a 1000-class classifier -------------------
MANY_NET = """
from torch import nn

class ManyNet(nn.Module):
    def __init__(self, num_classes, width):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 5, stride=2), nn.ReLU(), nn.Conv2d(width, width, 3, stride=2),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.head(self.body(x))

def build(num_classes, width=24):
    return ManyNet(num_classes, width)
"""
MANY_HOSTILE = '<img src=x onerror=alert(1)> & "quoted", it\'s'  # markup, a comma, an apostrophe (no "/": a folder)


def imagenet_names() -> list[str]:
    """The 1000 ImageNet class names (torchvision's list; its two repeated names made distinct), the class of the
    first foolbox photo replaced by MANY_HOSTILE."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    names, seen = [], set()
    for i, n in enumerate(_IMAGENET_CATEGORIES):
        names.append(n if n not in seen else f"{n} ({i})")
        seen.add(n)
    names[foolbox_imagenet_files()[0][1]] = MANY_HOSTILE
    return names


MANY_RECIPE = """
name = "many-classes"
batch_size = 20
[data]
name = "imagefolder"
root = "{root}"
image_size = 32
classes = "{root}/classes.txt"
[[architectures]]
arch = "{net}:build"
[architectures.train]
epochs = 60
batch_size = 10
lr = 0.01
[[pruning]]
method = "magnitude"
amounts = [0.6]
[corruptions]
names = ["gaussian_noise", "fog"]
severities = [3]
params = "imagenet"
[ship]
samples_per_class = 2
confused_classes = 8
[curse]
enabled = false
"""


@functools.lru_cache(maxsize=1)
def _many_store() -> Path:
    """The foolbox photos as a class-folder set named by the real ImageNet classes, a 1000-class net trained on
    them, one magnitude-pruned copy, two ImageNet-C corruptions: a many-class store (work files kept)."""
    from lotterysite.precompute import load_recipe, precompute

    root = Path(tempfile.mkdtemp(prefix="lotterysite-many-"))
    names = imagenet_names()
    for split in ("train", "val"):
        for f, label in foolbox_imagenet_files():
            folder = root / "data" / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, folder / f.name)
    (root / "data" / "classes.txt").write_text("".join(n + "\n" for n in names))
    (root / "manynet.py").write_text(MANY_NET)
    (root / "recipe.toml").write_text(MANY_RECIPE.format(root=root / "data", net=root / "manynet.py"))
    precompute(load_recipe(root / "recipe.toml"), store=root / "store", device="cpu", progress=False)
    return root


@pytest.fixture(scope="session")
def many_store() -> Path:
    """Folder of the many-class study: data/ (class folders, classes.txt), manynet.py, recipe.toml, store/,
    store.work/; removed when the session ends (a few MB of work files)."""
    root = _many_store()
    yield root
    _many_store.cache_clear()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def many_site(many_store) -> Path:
    """The plugin-built site of the many-class store."""
    return build_site(many_store / "sitework", many_store / "store")


# -- a Ray cluster of its own, to join ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_head():
    """A one-CPU Ray cluster started by `ray start --head` in its own processes, as a researcher's cluster is:
    `address` to join it, `node_id` (read from its session folder, not from Ray), `logs` (its session's log folder)
    and `env` for the processes that join it."""
    pytest.importorskip("ray")
    ray_bin = shutil.which("ray")
    if ray_bin is None:
        pytest.skip("the `ray` command is not on PATH")
    # Ray's Unix sockets live in the temp folder and their paths must stay under 107 characters: a short one.
    temp = Path(tempfile.mkdtemp(prefix="rayhead-"))
    port = free_port()
    # Token authentication turns on by itself where ~/.ray/auth_token exists (whoever made it): off, on both sides.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    log = temp / "head.log"
    with open(log, "wb") as out:
        head = subprocess.Popen(
            [ray_bin, "start", "--head", "--block", "--num-cpus=1", f"--port={port}", "--include-dashboard=false",
             f"--temp-dir={temp}", "--disable-usage-stats"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while b"Ray runtime started" not in log.read_bytes():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ray start --head` did not come up:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        session = temp / "session_latest"
        node_id = next(session.glob("gcs_server_port_*")).name.removeprefix("gcs_server_port_")
        yield SimpleNamespace(address=f"127.0.0.1:{port}", node_id=node_id, logs=session / "logs", env=env)
    finally:
        # Stopped by its own process id: `ray stop` would stop every Ray cluster of this user on the machine.
        head.terminate()
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)
