"""The home page and the findings page in Chromium: the headline chart and its click-through, the summary on two
different stores, the Fig. 10 picker, Table 1 beside the paper's values."""

from __future__ import annotations

import functools
import http.server
import re
import threading

import pytest
from findings_store import derive_store
from site_store import build_site
from test_findings import DENSE, MAG5, RAND, STORE_A, STORE_B
from test_site_browser import browser, open_view, shot  # noqa: F401  (the shared Chromium fixture)

pytestmark = pytest.mark.browser

# The first plotted point with a link (a pruned model, not dense at 0), in page coordinates.
HEADLINE_POINT = """(index) => {
  const view = window.lotterysiteRuntime.views[index].view;
  let found = null;
  const walk = (mark, x, y) => {
    if (found) return;
    if (mark.marktype === 'symbol') {
      for (const it of mark.items) if (it.href && it.datum && it.datum.amount > 0) {
        found = {x: x + it.x, y: y + it.y, href: it.href, id: it.datum.model_id}; return;
      }
    }
    if (mark.marktype === 'group') mark.items.forEach(g => (g.items || []).forEach(m => walk(m, x + (g.x || 0), y + (g.y || 0))));
  };
  walk(view.scenegraph().root, 0, 0);
  const canvas = view.container().querySelector('canvas').getBoundingClientRect();
  const [ox, oy] = view.origin();
  const pad = view.padding();  // origin() leaves out the padding
  return found && {x: canvas.x + ox + (pad.left || 0) + found.x, y: canvas.y + oy + (pad.top || 0) + found.y,
                   href: found.href, id: found.id};
}"""
# Model ids of the lines Fig. 10 draws.
DRAWN_MODELS = """(index) => {
  const ids = new Set();
  const walk = (mark) => {
    if (mark.marktype === 'line') mark.items.forEach(it => it.datum && ids.add(it.datum.model_id));
    else if (mark.marktype === 'group') mark.items.forEach(g => (g.items || []).forEach(walk));
  };
  walk(window.lotterysiteRuntime.views[index].view.scenegraph().root);
  return Array.from(ids).sort();
}"""


def _serve(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_port}/"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    out, running = {}, []
    for name, spec in (("a", STORE_A), ("b", STORE_B)):
        root = tmp_path_factory.mktemp(f"site-{name}")
        httpd, url = _serve(build_site(root, derive_store(root / "store", **spec)))
        running.append(httpd)
        out[name] = url
    yield out
    for httpd in running:
        httpd.shutdown()


@pytest.fixture
def page(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.problems = []
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    yield pg
    context.close()


def summary_text(page) -> str:
    return re.sub(r"\s+", " ", page.inner_text("article"))


def test_headline_chart_comes_first_and_a_click_opens_the_model(page, servers):
    open_view(page, servers["a"])
    # The chart is the first thing of the page: before the summary and before the page's own introduction.
    order = page.evaluate("""() => Array.from(document.querySelectorAll('article .ls-headline, article .ls-summary, article h2'))
                             .map(e => e.classList.contains('ls-headline') ? 'chart' : e.classList.contains('ls-summary') ? 'summary' : e.textContent)""")
    assert order[:3] == ["What this study found", "chart", "summary"], order
    shot(page, "home-a")
    point = page.evaluate(HEADLINE_POINT, 0)
    assert point and point["href"].endswith("#ref=" + point["id"].replace("/", "%2F")), point
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url(re.compile(r".*/views/lenet5/local/#ref="), timeout=20_000)
    page.wait_for_function("window.lotterysiteRuntime && window.lotterysiteRuntime.ready", timeout=30_000)
    page.evaluate("window.lotterysiteRuntime.ready")
    reference = page.locator("label.ls-control", has_text="reference").locator("select").first.input_value()
    assert reference == point["id"]
    assert page.problems == []


def test_summary_follows_the_data_on_two_stores(page, servers):
    open_view(page, servers["a"])
    a = summary_text(page)
    open_view(page, servers["b"])
    b = summary_text(page)
    shot(page, "home-b")
    assert "keeps dense's clean accuracy to the highest sparsity, 50 % of the weights pruned" in a
    assert "keeps dense's clean accuracy to the highest sparsity, 80 % of the weights pruned" in b
    assert "the largest gain is random at 30 %" in a and "+10.0 points" in a
    assert "no pruned model beats dense beyond the intervals" in b and "largest gain" not in b
    assert "no MPT model in this study" in a and "MPT's margins move less under corruption" in b
    assert "400 evaluation images" in a and "400 evaluation images" in b


def test_fig10_picker_defaults_to_dense_and_closest_mpt_and_switches(page, servers):
    open_view(page, servers["b"] + "findings/")
    index = page.evaluate("window.lotterysiteRuntime.views.findIndex(v => v.root.classList.contains('ls-fig10'))")
    view = f"window.lotterysiteRuntime.views[{index}].view"
    assert page.evaluate(f"[{view}.signal('mc_a'), {view}.signal('mc_b')]") == [DENSE, RAND]
    assert page.evaluate(DRAWN_MODELS, index) == sorted([DENSE, RAND])
    selects = page.locator(".ls-fig10 select")
    assert selects.count() == 2 and selects.nth(1).locator("option").count() == 4
    selects.nth(1).select_option(MAG5)
    page.wait_for_function(f"{view}.signal('mc_b') === {MAG5!r}")
    page.evaluate(f"{view}.runAsync().then(() => 0)")
    assert page.evaluate(DRAWN_MODELS, index) == sorted([DENSE, MAG5])
    shot(page, "findings-b")
    assert page.problems == []


def test_table1_sits_beside_the_papers_values(page, servers):
    open_view(page, servers["a"] + "findings/")
    rows = page.eval_on_selector_all("table.ls-table1 tbody tr", "rs => rs.map(r => Array.from(r.cells).map(c => c.innerText))")
    ours = [(r[0], r[1]) for r in rows if "paper" not in r[1]]
    assert ours == [("lenet5", "dense"), ("lenet5", "magnitude"), ("lenet5", "random")]
    paper = {r[0]: r[3:6] for r in rows if "paper" in r[1]}
    assert paper["VGG16"] == ["-0.8107", "+0.5783", "+0.8234"] and set(paper) == {"ResNet18", "VGG16", "AlexNet"}
    assert rows[0][3].startswith("-0.50") and "[-0.55, -0.45]" in rows[0][3]
    details = page.locator("details.ls-details")
    details.locator("summary").first.click()
    assert details.locator("table.ls-per-model tbody tr").count() == 4
    assert "400 evaluation images" in page.inner_text("article")
    shot(page, "findings-a")
