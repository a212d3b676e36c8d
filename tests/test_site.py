"""The site generator: chart functions, the MkDocs plugin on a real fixture store, escaping, the store docs."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from mkdocs.exceptions import PluginError

from lotterysite.site import charts
from lotterysite.store import TABLES, geometry_schema
from lotterysite.store.schema import outcomes_schema

REPO = Path(__file__).resolve().parents[1]
CLASSES = [(j, f"class {j}") for j in range(10)]
AXES = [("angle_true", "true class"), ("angle_1", "b"), ("length", "length"), ("margin", "margin")]


def local_compare():
    return charts.local_geometry(classes=CLASSES, compare=True)


@functools.cache
def validated(make) -> dict:
    """`make().to_dict()`, schema validation included, once per chart function: the local view's is used twice."""
    return make().to_dict()


@pytest.mark.parametrize(
    "make",
    [
        lambda: charts.evaluation_table(variants=["clean", "corruption mean", "fog"]),
        # More variants than one row of columns: several faceted chunks share the `model` selection.
        lambda: charts.evaluation_table(variants=["clean", "corruption mean", *[f"c{i}" for i in range(19)]]),
        lambda: charts.local_geometry(classes=CLASSES, compare=False),
        local_compare,
        lambda: charts.global_geometry(axes=AXES, compare=False),
        lambda: charts.global_geometry(axes=AXES, compare=True),
        lambda: charts.sample_examination(filters=charts.local_filters(True, [0, 3]), compare=True),
        lambda: charts.margin_change_density(),
        lambda: charts.curse_of_dimensionality(),
        lambda: charts.correlations(),
        lambda: charts.workspace_local(shared=True),
        lambda: charts.workspace_local(shared=False),
        lambda: charts.workspace_pcp(n_axes=len(AXES)),
    ],
)
def test_chart_functions_compile_to_vega_lite(make):
    spec = validated(make)
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert "datasets" not in spec or spec["datasets"] == {}


def test_chart_functions_take_dataframes():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"study": ["random"] * 3, "dimension": [2, 8, 32], "angle_mean": [60.0, 80, 88],
                       "angle_std": [30.0, 15, 8], "accuracy": [float("nan")] * 3})  # fmt: skip
    spec = charts.curse_of_dimensionality(df).to_dict()
    assert len(next(iter(spec["datasets"].values()))) == 3


def test_interval_params_are_named_for_the_url_state():
    spec = validated(local_compare)
    names = {p["name"] for p in spec["params"]}
    assert {"brush_0", "brush_9", "d_angle", "d_length", "d_margin", "outcome"} <= names


def test_view_specs_are_made_once_and_handed_out_as_new_dicts():
    from lotterysite.site import pages

    panels = tuple(CLASSES[:1])  # one panel: the nesting of ten, in a fraction of Altair's time
    first = pages.view_spec("local", False, panels)
    first["vconcat"].clear()  # a caller changing its spec changes no other caller's
    again = pages.view_spec("local", False, panels)
    local = charts.local_geometry(classes=list(panels), compare=False)
    grid = charts.sample_examination(filters=charts.local_filters(False, [0]), compare=False)
    assert again == pages.spec_dict(pages.alt_vconcat(local, grid)) and again["vconcat"]
    assert pages.view_spec("evaluation", False, ("clean", "fog")) == pages.spec_dict(
        charts.evaluation_table(variants=["clean", "fog"])
    )


def test_plugin_builds_every_page_and_data_file(site):
    pages = ["index.html", "method/index.html", "store/index.html", "publish/index.html", "findings/index.html"]
    pages += [f"views/lenet5/{k}/index.html" for k in ("evaluation", "local", "global", "samples")]
    for p in pages:
        assert (site / p).is_file(), p
    for p in ("data/samples.arrow", "data/lenet5/evaluation.arrow", "data/lenet5/correct.arrow",
              "data/lenet5/w/lenet5__dense/v0.arrow", "data/gallery.png", "data/store/models.arrow",
              "assets/lotterysite/vega.min.js", "assets/lotterysite/vega-loader-arrow.min.js"):  # fmt: skip
        assert (site / p).is_file(), p
    html = (site / "views/lenet5/local/index.html").read_text()
    cfg = json.loads(re.search(r'class="ls-config" hidden>(.*?)</div>', html).group(1))
    assert cfg["kind"] == "local" and len(cfg["models"]) == 4 and cfg["slices"][0]["variant"] == "clean"
    assert not list((site / "assets/lotterysite").glob("*.map")), "our assets ship no source maps"


def test_slices_hold_one_variant_of_the_shipped_samples(site):
    import json

    import pyarrow.ipc as ipc

    shipped = json.loads((site.parent / "store" / "manifest.json").read_text())["dataset"]["n_shipped"]
    table = ipc.open_file(str(site / "data/lenet5/w/lenet5__dense/v0.arrow")).read_all()
    assert table.num_rows == shipped and shipped >= 300
    assert {"angle_true", "length", "margin"} <= set(table.column_names) and "angle_9" not in table.column_names
    # The class angles apart, a file per class: together one row per shipped sample, each of its own class.
    angles = [ipc.open_file(str(p)).read_all() for p in (site / "data/lenet5/p/lenet5__dense/v0").glob("c*.arrow")]
    assert sum(t.num_rows for t in angles) == shipped and all("angle_9" in t.column_names for t in angles)


def test_every_per_sample_slice_is_written_once(site):
    """One copy of each (model, slice): its local columns in w/ (one file), its class angles in p/ (a file per class,
    each served sample in one of them); no other per-sample slice (no g/ of full slices beside them)."""
    import pyarrow.ipc as ipc

    arch = site / "data/lenet5"
    assert {p.name for p in arch.iterdir()} <= {"w", "p", "d", "specs", "correct.arrow", "evaluation.arrow"}
    cfg = json.loads(re.search(r'class="ls-config" hidden>(.*?)</div>', (site / "views/lenet5/local/index.html")
                               .read_text()).group(1))  # fmt: skip
    keys, files = [m["key"] for m in cfg["models"]], [s["file"] for s in cfg["slices"]]
    local = sorted(p.relative_to(arch / "w").as_posix() for p in (arch / "w").rglob("*.arrow"))
    assert local == sorted(f"{k}/{f}" for k in keys for f in files)
    served = ipc.open_file(str(site / "data/samples.arrow")).read_all()["sample_id"].to_pylist()
    for k in keys:
        for f in files:
            parts = [ipc.open_file(str(p)).read_all() for p in (arch / "p" / k / f.removesuffix(".arrow")).iterdir()]
            ids = [i for t in parts for i in t["sample_id"].to_pylist()]
            assert sorted(ids) == sorted(served), (k, f)
            columns = set(ipc.open_file(str(arch / "w" / k / f)).schema.names)
            assert all(columns & set(t.column_names) == {"sample_id"} for t in parts), (k, f)


def test_no_page_over_5_mb(site):
    # What a view page can fetch: its HTML, the JavaScript, the samples and two slices with a class's angles.
    js = sum(p.stat().st_size for p in (site / "assets/lotterysite").iterdir())
    samples = (site / "data/samples.arrow").stat().st_size
    slices = 2 * sum(max(p.stat().st_size for p in (site / f"data/lenet5/{d}").rglob("*.arrow")) for d in "wp")
    assert js + samples + slices < 5e6


def test_hostile_names_are_escaped(tmp_path, make_store, make_site, hostile):
    store = make_store(tmp_path / "store", hostile=True)
    site = make_site(tmp_path, store)
    htmls = list(site.rglob("*.html"))
    assert htmls
    for path in htmls:
        text = path.read_text()
        assert hostile not in text, path
        assert "<b>om</b>" not in text, path
    findings = (site / "findings/index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in findings  # the recipe name, escaped
    local = (site / "views/lenet5/local/index.html").read_text()
    assert "\\u003cscript\\u003e" in local  # the class name inside the JSON configuration


def test_missing_store_is_a_plugin_error_with_a_fix(tmp_path):
    from mkdocs.config import load_config

    from lotterysite.site.plugin import LotterysitePlugin

    plugin = LotterysitePlugin()
    plugin.load_config({"store": str(tmp_path / "nowhere")})
    cfg = load_config(str(REPO / "mkdocs.yml"))
    with pytest.raises(PluginError, match="lotterysite precompute"):
        plugin.on_config(cfg)


def test_corrupt_store_file_is_a_plugin_error(tmp_path, make_store):
    from mkdocs.config import load_config

    from lotterysite.site.plugin import LotterysitePlugin

    store = make_store(tmp_path / "store", gallery=False)
    (store / "accuracy.arrow").write_bytes(b"not arrow")
    plugin = LotterysitePlugin()
    plugin.load_config({"store": str(store)})
    with pytest.raises(PluginError, match="accuracy.arrow: 9 bytes, the manifest records"):
        plugin.on_config(load_config(str(REPO / "mkdocs.yml")))


def test_store_docs_name_every_column():
    text = (REPO / "site_src/store.md").read_text()
    names = {n for schema in TABLES.values() for n in schema.names}
    names |= {n for n in geometry_schema(3).names if not n.startswith("angle_") or n == "angle_true"}
    names |= {n for n in outcomes_schema(["fog"]).names if not n.startswith("c_")}
    assert "`c_<corruption>`" in text and "`outcomes.arrow`" in text
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"columns not documented in site_src/store.md: {missing}"
    for name in TABLES:
        assert f"`{name}`" in text
    assert "`angle_0`" in text


def test_site_package_never_imports_torch():
    for path in (REPO / "lotterysite/site").glob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+torch", path.read_text(), re.M), path


def test_site_serves_a_stratified_sample_of_every_class_and_reads_variants_from_the_manifest(tmp_path, make_store):
    from lotterysite.site import data

    store = data.load_store(make_store(tmp_path / "store", gallery=False))
    labels = store.tables["samples.arrow"].column("label").to_numpy()
    served = data.served_samples(store, 40)  # far fewer than stored: a cut is needed
    summary = data.shipped_summary(store, served)
    assert served.in_sample.all() and len(served.ids) == 40  # the sample takes the whole budget
    assert all(n > 0 for n in summary["per_class"]), summary
    assert summary["served"] == 40 and summary["stored"] == len(labels) and summary["sample"] == 40
    assert not summary["everything"] and summary["extra"] == 0
    assert len(data.shipped_ids(store, 10_000)) == len(labels)  # no cut when everything fits
    assert data.shipped_summary(store, data.served_samples(store, 10_000))["everything"]

    ids = data.shipped_ids(store, 10_000)
    arch = store.archs[0]
    got = data.geometry_slices(store, arch, ids, [0, 1])
    manifest = store.manifest
    expected = 1 + len(manifest["corruptions"]) * len(manifest["shipped_severities"])
    assert [s["variant"] for s in got.slices][0] == "clean" and len(got.slices) == expected
    # Subset accuracy counts every evaluated severity, from outcomes.arrow.
    fog = [c for c in got.correct_columns if c["variant_label"] == "fog"]
    assert fog and all(c["members"] == len(manifest["severities"]) for c in fog)
    means = [c for c in got.correct_columns if c["variant_label"] == "corruption mean"]
    assert len(means) == len(store.models_of(arch)) > 1
    assert all(c["members"] == len(manifest["severities"]) * len(manifest["corruptions"]) for c in means)
    check_correct_arrow(store, got, ids)


def check_correct_arrow(store, got, ids):
    """correct.arrow's packed counts, unpacked here bit by bit, are outcomes.arrow's per-sample counts of every
    column (the corruption mean: the sum of its `sum` slots, which are the model's corruption columns)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    manifest = store.manifest
    table = pa.ipc.open_file(pa.py_buffer(got.files["lenet5/correct.arrow"])).read_all()
    assert table.column_names == ["sample_id", "label", "in_sample", "counts"]
    assert table["sample_id"].to_pylist() == sorted(int(i) for i in ids)
    bits = got.correct_bits
    assert bits == 4  # clean 0-1, a corruption 0-5 severities: two a byte
    raw = np.frombuffer(b"".join(table["counts"].to_pylist()), np.uint8).reshape(len(ids), -1)
    stored = [c for c in got.correct_columns if "slot" in c]
    assert sorted(c["slot"] for c in stored) == list(range(len(stored))) and raw.shape[1] == (len(stored) + 1) // 2
    slot = lambda k: (raw[:, k // 2] >> (4 * (k % 2))) & 15  # noqa: E731
    out = store.tables["outcomes.arrow"]
    for c in got.correct_columns:
        t = out.filter(pc.equal(out["model_id"].cast(pa.string()), c["model_id"])).sort_by("sample_id")
        t = t.filter(pc.is_in(t["sample_id"], pa.array(ids, pa.int32())))
        if "slot" in c:
            col = "correct_clean" if c["variant_label"] == "clean" else f"c_{c['variant_label']}"
            assert (slot(c["slot"]) == t[col].to_numpy()).all(), c
        else:
            assert c["variant_label"] == "corruption mean" and len(c["sum"]) == len(manifest["corruptions"])
            total = sum(slot(k).astype(int) for k in c["sum"])
            assert (total == t["robustness"].to_numpy()).all(), c


def test_page_config_carries_outcome_labels_and_effective_numbers(site):
    html = (site / "views/lenet5/local/index.html").read_text()
    cfg = json.loads(re.search(r'class="ls-config" hidden>(.*?)</div>', html).group(1))
    assert cfg["outcomes"] == charts.OUTCOMES and cfg["correctness"] == charts.CORRECTNESS
    assert cfg["shipped"]["served"] == sum(cfg["shipped"]["per_class"]) > 0
    js = (REPO / "lotterysite/site/assets/lotterysite.js").read_text()
    for label in [*charts.OUTCOMES, *charts.CORRECTNESS]:
        assert f'"{label}"' not in js, f"{label!r} retyped in lotterysite.js: take it from the page config"
    glob = (site / "views/lenet5/global/index.html").read_text()
    cfg = json.loads(re.search(r'class="ls-config" hidden>(.*?)</div>', glob).group(1))
    # One axis per class angle (the true class's own among them), then length and margin: no duplicate.
    assert cfg["axes"] == [f"angle_{j}" for j in range(10)] + ["length", "margin"]


def test_evaluation_ranks_equal_accuracies_by_method_name(site_store):
    """The evaluation table's rows are ranked per column; methods with the same accuracy used to rank in a set's
    iteration order, which changes with the process's hash seed (the page differed from build to build)."""
    from lotterysite.site import data

    store = data.load_store(site_store)
    for arch in store.manifest["architectures"]:
        rows = data.evaluation_rows(store, arch).to_pylist()
        for variant in {r["variant_label"] for r in rows}:
            best = {}
            for r in rows:
                if r["variant_label"] == variant:
                    best[r["method_label"]] = max(best.get(r["method_label"], 0.0), r["accuracy"])
            rank = {r["method_label"]: r["rank"] for r in rows if r["variant_label"] == variant}
            expected = sorted(best, key=lambda m: (-best[m], m))
            assert [m for m, _ in sorted(rank.items(), key=lambda kv: kv[1])] == expected, variant
