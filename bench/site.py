"""Site speed: per page the bytes transferred, the time to the first chart rendered and the brush-to-update latency.

Builds the site for a store (default store/demo; `--fixture` builds the small test store instead, `--many` the
1000-class store of the foolbox ImageNet photos from tests/conftest.py), serves it over local HTTP and drives
Debian's chromium through Playwright. Targets on a 2-core CPU: first render <= 2 s,
median brush -> update <= 150 ms, no page over 5 MB.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import CHROMIUM, CHROMIUM_ARGS, _many_store, build_site, build_store  # noqa: E402
from test_site_browser import BRUSH_BOX  # noqa: E402

BRUSHES = {"local": "brush_0", "global": "ax0", "evaluation": None, "samples": None}


def drag(page, box, k):
    # A different rectangle each time, so every drag changes the selection.
    x0, y0 = box["x"] + box["width"] * (0.05 + 0.04 * k), box["y"] + box["height"] * 0.05
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * (0.5 + 0.04 * k), box["y"] + box["height"] * (0.5 + 0.04 * k), steps=4)
    page.mouse.up()
    page.wait_for_timeout(150)


def measure(browser, url: str, brush: str | None, drags: int) -> dict:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    sizes = []
    page.on("requestfinished", lambda r: sizes.append(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"]))
    page.goto(url)
    page.wait_for_function("window.lotterysiteRuntime && window.lotterysiteRuntime.ready", timeout=60_000)
    page.evaluate("window.lotterysiteRuntime.ready")
    first = page.evaluate("window.lotterysiteRuntime.firstRender")
    latencies = []
    if brush:
        box = page.evaluate(BRUSH_BOX, [0, brush])
        page.evaluate("window.lotterysiteRuntime.latencies = []")
        for k in range(drags):
            drag(page, box, k)
        latencies = page.evaluate("window.lotterysiteRuntime.latencies")
    page.wait_for_timeout(200)
    context.close()
    return {"bytes": sum(sizes), "first_ms": first, "brush_ms": statistics.median(latencies) if latencies else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(REPO / "store/demo"))
    parser.add_argument("--fixture", action="store_true", help="build and use the small test store")
    parser.add_argument("--many", action="store_true", help="build and use the 1000-class test store")
    parser.add_argument("--drags", type=int, default=8)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="lotterysite-bench-"))
    store = build_store(work / "store") if args.fixture else _many_store() / "store" if args.many else Path(args.store)
    site = build_site(work, store)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}/"
    pages = [("", None), ("findings/", None)]  # the home page draws the headline chart
    for arch in sorted(p.name for p in (site / "views").iterdir() if p.is_dir()):
        for kind, brush in BRUSHES.items():
            # Many classes: the local view's panels are slots whose classes the reader picks.
            pages.append((f"views/{arch}/{kind}/", "brush_slot0" if args.many and kind == "local" else brush))
    print(f"store {store}\n{'page':36s} {'bytes':>10s} {'first chart':>12s} {'brush->update':>14s}")
    worst = {"bytes": 0, "first_ms": 0.0, "brush_ms": 0.0}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for path, brush in pages:
            r = measure(browser, base + path, brush, args.drags)
            brush_text = f"{r['brush_ms']:.0f} ms" if r["brush_ms"] is not None else "-"
            print(f"{path or '(home)':36s} {r['bytes'] / 1e6:8.2f} MB {r['first_ms'] / 1e3:10.2f} s {brush_text:>14s}")
            worst = {k: max(worst[k], r[k] or 0) for k in worst}
        browser.close()
    httpd.shutdown()
    ok = worst["bytes"] <= 5e6 and worst["first_ms"] <= 2000 and worst["brush_ms"] <= 150
    print(
        f"worst: {worst['bytes'] / 1e6:.2f} MB, first chart {worst['first_ms'] / 1e3:.2f} s, "
        f"brush {worst['brush_ms']:.0f} ms; targets (5 MB, 2 s, 150 ms) {'met' if ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
