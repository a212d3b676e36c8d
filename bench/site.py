"""Site speed: per page the bytes transferred, the time to the first chart rendered and the brush-to-update latency.

Builds the site for a store (default store/demo; `--fixture` builds the small test store instead, `--many` the
1000-class store of the foolbox ImageNet photos from tests/conftest.py, `--many-scale [N]` the same study at scale:
N images, default 2000, over all 1000 classes, see `many_scale_store`), serves it over local HTTP and drives
Debian's chromium through Playwright. Targets on a 2-core CPU: first render <= 2 s,
median brush -> update <= 150 ms, no page over 5 MB. A brush must select samples (the view's "N samples selected"
> 0 after every drag), so that its latency is that of a real update.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    MANY_RECIPE,
    _many_store,
    build_site,
    build_store,
    imagenet_names,
)
from test_site_browser import BRUSH_BOX  # noqa: E402

BRUSHES = {"local": "brush_0", "global": "ax0", "evaluation": None, "samples": None}

# conftest's MANY_NET with batch norm: trained briefly at 224 px its ReLUs stay alive (MANY_NET trained one epoch
# at lr 0.01 came out with zero-length features, every geometry row degenerate).
MANY_SCALE_NET = """
from torch import nn

class ManyNet(nn.Module):
    def __init__(self, num_classes, width):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 5, stride=2, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, stride=2, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.head(self.body(x))

def build(num_classes, width=24):
    return ManyNet(num_classes, width)
"""


def many_scale_recipe(data: Path, net: Path, image_size: int) -> str:
    """conftest's MANY_RECIPE at scale: `image_size` px, one epoch at lr 1e-3 (AdamW), batches of 50."""
    text = MANY_RECIPE.format(root=data, net=net)
    for old, new in (("batch_size = 20", "batch_size = 50"), ("image_size = 32", f"image_size = {image_size}"),
                     ("epochs = 60", "epochs = 1"), ("batch_size = 10", "batch_size = 50"), ("lr = 0.01", "lr = 0.001"),
                     ('name = "many-classes"', 'name = "many-classes-at-scale"')):  # fmt: skip
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def many_scale_store(root: Path, n: int, image_size: int) -> Path:
    """The many-class study at scale, reproducibly (seed 0): N JPEGs, random crops and flips of the 20 foolbox
    ImageNet photos (bench/imagefolder.build_set), image i in the folder of ImageNet class i % 1000 (2 per class for
    2000), each in train/ and test/; classes.txt lists all 1000 names. MANY_SCALE_NET trained one epoch, a
    magnitude-pruned copy (60 %), 2 ImageNet-C corruptions, 2 shipped samples per class. Asserts that the features
    are live (nearly every geometry row has length > 0 and is not degenerate) and prints the share."""
    from imagefolder import build_set

    from lotterysite.precompute import load_recipe, precompute

    names = imagenet_names()
    t0 = time.perf_counter()
    build_set(root / "data", n, seed=0, classes=names)
    (root / "data" / "classes.txt").write_text("".join(name + "\n" for name in names))
    (root / "manynet.py").write_text(MANY_SCALE_NET)
    (root / "recipe.toml").write_text(many_scale_recipe(root / "data", root / "manynet.py", image_size))
    t1 = time.perf_counter()
    precompute(load_recipe(root / "recipe.toml"), store=root / "store", device="cpu", progress=False)
    t2 = time.perf_counter()
    print(f"at-scale store: {n} images at {image_size} px in {len(set(names[i % 1000] for i in range(n)))} classes; "
          f"images {t1 - t0:.0f} s, precompute {t2 - t1:.0f} s (load {os.getloadavg()[0]:.1f})")  # fmt: skip
    live_share(root / "store")
    return root / "store"


def live_share(store: Path, least: float = 0.95) -> float:
    """Share of geometry rows with live features (length > 0, not degenerate) over the store's geometry files;
    asserts it is at least `least`."""
    import pyarrow.compute as pc

    from lotterysite.store import read_table

    files = sorted((store / "geometry").glob("*.arrow"))
    assert files, f"no geometry files in {store / 'geometry'}"
    live = total = 0
    for f in files:
        t = read_table(f).select(["length", "degenerate"])
        ok = pc.and_(pc.greater(t["length"], 0), pc.invert(t["degenerate"]))
        live += pc.sum(pc.cast(ok, "int64")).as_py() or 0
        total += len(t)
    share = live / total
    print(f"live geometry rows: {live} of {total} ({share:.1%}) in {len(files)} files")
    assert share >= least, f"features dead: only {share:.1%} of the geometry rows are live"
    return share


SELECTED = re.compile(r"(\d+) samples selected")


def drag(page, box, k, full: bool, y_only: bool = False):
    # A different rectangle each time, so every drag changes the selection. `full` (many classes, a sample or two
    # per class, at the corners of the class's padded range: 3.7 % inside the edges): from 3 % inside the chart (a
    # press nearer the edge misses it) to past the far corner (the brush stops at the edge, so the final rectangle
    # is the same each time), after a double click that cleared the last brush: every drag draws a new brush, over
    # all the class's points.
    # `y_only` (the global view's axes): along the axis, at its middle, where the brush's layer is hit.
    lo, hi = (0.03, 1.02 + 0.01 * k) if full else (0.05 + 0.04 * k, 0.5 + 0.04 * k)
    x0, x1 = (0.5, 0.5) if y_only else (lo, hi)
    page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * (lo if full else 0.05))
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * hi, steps=4)
    page.mouse.up()
    page.wait_for_timeout(150)


def clear(page, box):
    # A double click clears the brush, so that the next drag draws a new one (a press inside a brush moves it).
    page.mouse.dblclick(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.wait_for_timeout(150)


def measure(browser, url: str, brush: str | None, drags: int, full: bool = False) -> dict:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    sizes = []
    page.on("requestfinished", lambda r: sizes.append(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"]))
    page.goto(url)
    page.wait_for_function("window.lotterysiteRuntime && window.lotterysiteRuntime.ready", timeout=60_000)
    page.evaluate("window.lotterysiteRuntime.ready")
    first = page.evaluate("window.lotterysiteRuntime.firstRender")
    latencies, selected = [], []
    if brush:
        page.evaluate("window.lotterysiteRuntime.settled()")  # the slots' classes and data are in place
        box = page.evaluate(BRUSH_BOX, [0, brush])
        assert box, f"{url}: no brush {brush}"
        # Bring the brushed chart well inside the viewport, as the browser tests do.
        page.evaluate("(y) => window.scrollTo(0, y - 200)", box["y"])
        box = page.evaluate(BRUSH_BOX, [0, brush])
        page.evaluate("window.lotterysiteRuntime.latencies = []")
        for k in range(drags):
            if full and k:
                clear(page, box)
                page.evaluate("window.lotterysiteRuntime.latencies = []")  # the drags' updates only
            drag(page, box, k, full, y_only=full and brush.startswith("ax"))
            # Outside the timed span: how many samples the drag selected (the view's info line).
            found = SELECTED.search(page.inner_text(".ls-info"))
            selected.append(int(found.group(1)) if found else 0)
            latencies += page.evaluate("window.lotterysiteRuntime.latencies") if full else []
        if not full:
            latencies = page.evaluate("window.lotterysiteRuntime.latencies")
    page.wait_for_timeout(200)
    context.close()
    return {"bytes": sum(sizes), "first_ms": first, "brush_ms": statistics.median(latencies) if latencies else None,
            "selected": selected}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(REPO / "store/demo"))
    parser.add_argument("--fixture", action="store_true", help="build and use the small test store")
    parser.add_argument("--many", action="store_true", help="build and use the 1000-class test store")
    parser.add_argument("--many-scale", type=int, nargs="?", const=2000, metavar="N",
                        help="build and use the 1000-class store at scale: N images (default 2000)")  # fmt: skip
    parser.add_argument("--image-size", type=int, default=224, help="--many-scale: evaluation image size (px)")
    parser.add_argument("--drags", type=int, default=8)
    parser.add_argument("--compare", action="store_true",
                        help="also the geometry views comparing the first model with the second (clean)")  # fmt: skip
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    work = Path(tempfile.mkdtemp(prefix="lotterysite-bench-"))
    if args.fixture:
        store = build_store(work / "store")
    elif args.many_scale is not None:
        store = many_scale_store(work, args.many_scale, args.image_size)
    else:
        store = _many_store() / "store" if args.many else Path(args.store)
    from lotterysite.site.data import slug
    from lotterysite.store import read_manifest

    # Many classes (confused-class axes): the local view's panels are slots whose classes the reader picks.
    many = (read_manifest(store).get("dataset") or {}).get("confused_classes") is not None
    if many and args.many_scale is None:
        live_share(store, least=0.0)  # the share only (--many-scale asserts it)
    t0 = time.perf_counter()
    site = build_site(work, store)
    print(f"site build {time.perf_counter() - t0:.0f} s (load {os.getloadavg()[0]:.1f})")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}/"
    pages = [("", None), ("findings/", None)]  # the home page draws the headline chart
    for arch in sorted(p.name for p in (site / "views").iterdir() if p.is_dir()):
        for kind, brush in BRUSHES.items():
            pages.append((f"views/{arch}/{kind}/", "brush_slot0" if many and kind == "local" else brush))
        if args.compare:  # the reference against the next model of this architecture: trajectories too
            ids = [m["model_id"] for m in read_manifest(store)["models"] if slug(m["arch"]) == arch]
            for kind in ("local", "global"):
                cmp = f"#ref={quote(ids[0], safe='')}&cmp={quote(ids[1], safe='')}&cmpv=v0.arrow"
                pages.append(
                    (f"views/{arch}/{kind}/{cmp}", "brush_slot0" if many and kind == "local" else BRUSHES[kind])
                )
    print(f"store {store}\n{'page':36s} {'bytes':>10s} {'first chart':>12s} {'brush->update':>14s} selected  load")
    worst = {"bytes": 0, "first_ms": 0.0, "brush_ms": 0.0}
    empty = []  # pages where a drag selected no samples: their latency is not that of a real update
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for path, brush in pages:
            r = measure(browser, base + path, brush, args.drags, full=many)
            brush_text = f"{r['brush_ms']:.0f} ms" if r["brush_ms"] is not None else "-"
            sel = f"{min(r['selected'])}-{max(r['selected'])}" if r["selected"] else "-"
            if r["selected"] and min(r["selected"]) == 0:
                empty.append(path)
            label = path.split("#")[0] + (" (compare)" if "#" in path else "")
            print(f"{label or '(home)':36s} {r['bytes'] / 1e6:8.2f} MB {r['first_ms'] / 1e3:10.2f} s {brush_text:>14s} "
                  f"{sel:>8s} {os.getloadavg()[0]:5.1f}", flush=True)  # fmt: skip
            worst = {k: max(worst[k], r[k] or 0) for k in worst}
        browser.close()
    httpd.shutdown()
    ok = worst["bytes"] <= 5e6 and worst["first_ms"] <= 2000 and worst["brush_ms"] <= 150
    print(
        f"worst: {worst['bytes'] / 1e6:.2f} MB, first chart {worst['first_ms'] / 1e3:.2f} s, "
        f"brush {worst['brush_ms']:.0f} ms; targets (5 MB, 2 s, 150 ms) {'met' if ok else 'MISSED'}; "
        f"load {os.getloadavg()}"
    )
    if empty:
        sys.exit(f"a drag selected no samples on {', '.join(empty)}: those brush latencies are not of a real update")


if __name__ == "__main__":
    main()
