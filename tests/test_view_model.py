"""The view model (lotterysite/site/model.py): every number the pages show is computed there, once per render, and
the modules that write pages only format it. Its numbers are checked against float64 NumPy computed straight from
the store's Arrow files, never through the site's own loaders."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from lotterysite.site import budget, data, model, render
from lotterysite.site.render import SiteOptions

SITE = Path(model.__file__).parent
FORMAT_ONLY = ("pages.py", "findings.py", "cost.py")  # they write what the model holds, and compute nothing
# Numeric libraries a formatting module has no use for.
NUMERIC_MODULES = ("numpy", "pyarrow.compute", "statistics", "scipy", "pandas")
# Reductions and rounding: what turns the store's numbers into new ones.
NUMERIC_BUILTINS = {"sum", "min", "max", "abs", "round", "sorted", "divmod", "pow"}
# The paired decisions (model.Diff, model.Value): a verdict is the model's, the page only words it.
VERDICTS = {"within", "below_zero", "above_zero", "not_below", "above", "overlaps", "negated"}
# math: only the guards that print "n/a" for a missing value.
MATH_ALLOWED = {"isfinite", "isnan"}
# What the site serves and fetches, decided in the model: the served-sample cut and its page budget, the classes
# of the axes and panels, the slice and density files, which classes have served samples and their confused ones.
DECISIONS = {"served_samples", "budget_estimate", "page_estimate", "workspace_estimate", "workspace_parts",
             "samples_table", "shipped_summary", "dot_samples", "geometry_slices", "densities", "axis_classes",
             "pcp_axes", "class_slots", "confused_of"}  # fmt: skip
RAND = "lenet5/random/0.3"


def _tree(name: str) -> ast.Module:
    return ast.parse((SITE / name).read_text(encoding="utf-8"), name)


@pytest.mark.parametrize("name", FORMAT_ONLY)
def test_page_modules_only_format(name):
    found = []
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(NUMERIC_MODULES)]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").startswith(NUMERIC_MODULES):
                found.append(node.module)
            if node.module == "model" and node.level == 1:  # classes and constants, never a computing function
                found += [a.name for a in node.names if a.name[0].islower() and a.name != "value_of"]
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in NUMERIC_BUILTINS:
                found.append(f"{f.id}() at line {node.lineno}")
            elif isinstance(f, ast.Attribute) and f.attr in VERDICTS:
                found.append(f".{f.attr}() at line {node.lineno}")
            elif isinstance(f, ast.Attribute) and f.attr == "build_view_model":
                found.append(f"build_view_model() at line {node.lineno}")
            elif getattr(f, "id", getattr(f, "attr", "")) in DECISIONS:
                found.append(f"{getattr(f, 'id', getattr(f, 'attr', ''))}() at line {node.lineno}")
        elif isinstance(node, ast.Constant) and node.value == "per_class":  # which classes have served samples
            found.append(f"'per_class' at line {node.lineno}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math":
            if node.attr not in MATH_ALLOWED:
                found.append(f"math.{node.attr} at line {node.lineno}")
    assert found == [], f"{name} computes: {found}; compute it in site/model.py and format the model's value"


def test_the_rule_catches_computation(tmp_path, monkeypatch):
    """The rule above is not vacuous: a statistic slipped into a page module fails it."""
    (tmp_path / "pages.py").write_text(
        "import numpy as np\nfrom .model import keeps_accuracy\n"
        "def f(d, xs, s):\n    return sum(xs), d.within(0.01), math.fsum(xs), s['per_class'], s.confused_of('a', xs)\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SITE", tmp_path)
    with pytest.raises(AssertionError) as e:
        test_page_modules_only_format("pages.py")
    for what in ("numpy", "keeps_accuracy", "sum()", ".within()", "math.fsum", "'per_class'", "confused_of()"):
        assert what in str(e.value)


def _render_decides(tree: ast.Module) -> list[str]:
    """What render.py decides itself rather than writing what the model holds: numeric imports, a call to a cut,
    budget or slice function (`DECISIONS`), one of them defined there, a served sample count read."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [n for n in names if n.startswith(NUMERIC_MODULES)]
            if isinstance(node, ast.ImportFrom):
                found += [f"import {a.name}" for a in node.names if a.name in DECISIONS]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in DECISIONS:
            found.append(f"{getattr(node.func, 'id', getattr(node.func, 'attr', ''))}() at line {node.lineno}")
        elif isinstance(node, ast.FunctionDef) and node.name in DECISIONS:
            found.append(f"def {node.name} at line {node.lineno}")
        elif isinstance(node, ast.Constant) and node.value == "per_class":
            found.append(f"'per_class' at line {node.lineno}")
    return found


def test_render_only_writes_what_the_model_decided():
    """render.py orchestrates and writes: the served cut, the page budget, the axes, panels and slice files are the
    view model's (model.py, budget.py), computed once."""
    found = _render_decides(_tree("render.py"))
    assert found == [], f"render.py decides: {found}; compute it in site/model.py (or budget.py) and write its value"


def test_the_render_rule_catches_a_decision():
    planted = ast.parse(
        "import numpy as np\nfrom .budget import served_samples\n"
        "def budget_estimate(s):\n    return 0\n"
        "def render(store, o, served):\n"
        "    ids = data.geometry_slices(store, 'a', served, [])\n    return served['per_class']\n"
    )
    found = " ".join(_render_decides(planted))
    for what in ("numpy", "import served_samples", "def budget_estimate", "geometry_slices()", "'per_class'"):
        assert what in found, what


def test_render_calls_build_view_model_once_in_one_place():
    calls = [
        n
        for n in ast.walk(_tree("render.py"))
        if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", "")) == "build_view_model"
    ]
    assert len(calls) == 1


@pytest.mark.parametrize("standalone", [True, False])
def test_the_model_is_built_once_per_render(site_store, monkeypatch, standalone):
    calls = []
    real = model.build_view_model

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "build_view_model", counted)
    monkeypatch.setattr(model, "build_view_model", counted)
    store = data.load_store(site_store)
    out = render.render(store, SiteOptions(), standalone=standalone)
    assert len(calls) == 1 and calls[0][0] is store
    assert out.home and any(k.startswith("findings") for k in out.files)  # the pages written from that one model


@pytest.fixture(scope="module")
def half_budget(site_store) -> int:
    """A page budget with room for about half the site store's samples: between the heaviest page serving none and
    serving them all (`budget.budget_estimate`)."""
    store = data.load_store(site_store)
    full = budget.served_samples(store, SiteOptions())
    none = data.Served(full.served.ids[:0], full.served.in_sample[:0])
    lo = budget.budget_estimate(store, none, b"", SiteOptions())
    return int(lo + (full.estimate - lo) / 2)


@pytest.mark.parametrize("standalone", [True, False])
def test_the_served_cut_is_computed_once_per_render(site_store, monkeypatch, standalone, half_budget):
    """One cut per render (however many sizes the budget tries), and every file the site serves is of that cut: its
    samples.arrow, a thumbnail per served sample, each architecture's slices and the class summary."""
    cuts, slices, summaries = [], [], []

    def counted(real, calls):
        def f(*args, **kwargs):
            calls.append((args, real(*args, **kwargs)))
            return calls[-1][1]

        return f

    cut = counted(budget.served_samples, cuts)
    monkeypatch.setattr(budget, "served_samples", cut)
    monkeypatch.setattr(model, "served_samples", cut)
    monkeypatch.setattr(model, "geometry_slices", counted(data.geometry_slices, slices))
    monkeypatch.setattr(model, "shipped_summary", counted(data.shipped_summary, summaries))
    store = data.load_store(site_store)
    out = render.render(store, SiteOptions(page_bytes=half_budget), standalone=standalone)
    assert len(cuts) == 1 and len(summaries) == 1 and len(slices) == len(store.archs)
    (_, served), *_ = cuts
    assert 1 < len(served.served.ids) < store.tables["samples.arrow"].num_rows  # the budget cut it
    assert out.files["data/samples.arrow"] is served.samples
    assert len([k for k in out.files if k.startswith("data/thumbs/")]) == len(served.served.ids)
    assert all(args[2] is served.served for args, _ in slices) and summaries[0][0][1] is served.served


def test_the_served_cut_is_class_stratified_within_the_budget(site_store, half_budget):
    """The cut, against NumPy on the store's samples.arrow: per class a share proportional to its size (within one
    sample), the first samples of the class's permutation seeded by (the store's seed, class), no extra rows; the
    heaviest page within the budget; the model's per-class counts and served classes the cut's."""
    options = SiteOptions(page_bytes=half_budget, panel_marks=2)
    view = model.build_view_model(data.load_store(site_store), options)
    cut = view.serving.cut
    stored = _read(site_store / "samples.arrow")
    ids, labels = np.array(stored["sample_id"]), np.array(stored["label"], np.int64)
    in_sample = np.array(stored["in_sample"], bool)
    seed = int(json.loads((site_store / "manifest.json").read_text())["dataset"]["shipping"]["seed"])
    n = len(cut.served.ids)
    assert 1 < n < in_sample.sum() and cut.estimate <= half_budget and cut.served.in_sample.all()
    k = int(labels.max()) + 1
    counts = np.bincount(labels[in_sample], minlength=k)
    got = np.bincount(labels[np.isin(ids, cut.served.ids)], minlength=k)
    assert got.sum() == n and (got >= 1).all() and (np.abs(got - counts * n / counts.sum()) < 1).all(), got
    for c in range(k):
        members = np.flatnonzero(in_sample & (labels == c))
        drawn = members[np.random.default_rng([seed, c]).permutation(len(members))[: got[c]]]
        assert np.array_equal(np.sort(ids[drawn]), np.sort(cut.served.ids[np.isin(cut.served.ids, ids[labels == c])]))
    served = ipc.open_file(pa.BufferReader(cut.samples)).read_all()
    assert np.array_equal(served["sample_id"].to_numpy(), np.sort(cut.served.ids))
    assert view.serving.summary["per_class"] == got.tolist() and view.serving.summary["served"] == n
    assert view.serving.classes == np.flatnonzero(got).tolist()
    assert view.serving.dense and got.max() > options.panel_marks  # the panels draw densities
    assert all(a.density_files and a.density is not None for a in view.archs.values())


# -- the model's numbers against NumPy, straight from the store's Arrow files ---------------------------------
def _read(path: Path) -> dict:
    return ipc.open_file(path).read_all().to_pydict()


def _pearson_r(store: Path, model_id: str) -> float:
    """Pearson r of a sample's robustness (outcomes.arrow) with its clean angle to the true class (geometry/)."""
    geometry = next(
        g for g in (_read(p) for p in sorted((store / "geometry").glob("*.arrow"))) if g["model_id"][0] == model_id
    )
    clean = np.array(geometry["variant"]) == "clean"
    ids = np.array(geometry["sample_id"])[clean]
    angle = np.array(geometry["angle_true"], np.float64)[clean]
    out = _read(store / "outcomes.arrow")
    mine = np.array(out["model_id"]) == model_id
    robustness = dict(zip(np.array(out["sample_id"])[mine], np.array(out["robustness"], np.float64)[mine], strict=True))
    return float(np.corrcoef([robustness[i] for i in ids], angle)[0, 1])


def test_table1_is_the_mean_pearson_r_of_robustness_and_angle(site_store):
    view = model.build_view_model(data.load_store(site_store))
    models = _read(site_store / "models.arrow")
    r = {m: _pearson_r(site_store, m) for m in models["model_id"]}
    for row in view.table1:
        ids = [m for m, a, meth in zip(models["model_id"], models["arch"], models["method"], strict=True)
               if (a, meth) == (row["arch"], row["method"])]  # fmt: skip
        assert row["models"] == len(ids) > 0
        assert row["rc_angle"] == pytest.approx(np.mean([r[m] for m in ids]), abs=1e-6), row["method"]
    assert len(view.table1) == 3 and [row["models"] for row in view.table1] == [1, 2, 1]
    (arch, dense_row), *_ = view.home_table1
    assert dense_row["rc_angle"] == pytest.approx(r["lenet5/dense"], abs=1e-6) and r["lenet5/dense"] < -0.3


def test_severity_coverage_counts_what_the_store_files_hold(site_store):
    view = model.build_view_model(data.load_store(site_store))
    shipped = set()
    for p in (site_store / "geometry").glob("*.arrow"):
        shipped |= {int(s) for s in np.unique(_read(p)["severity"]) if s > 0}
    evaluated = {int(s) for s in np.unique(_read(site_store / "accuracy.arrow")["severity"]) if s > 0}
    cov = view.coverage
    assert set(cov.shipped) == shipped and len(cov.shipped) == len(shipped) > 0
    assert set(cov.shipped) | set(cov.not_shipped) == evaluated
    assert set(cov.not_evaluated) == {1, 2, 3, 4, 5} - evaluated


def _paired(store: Path) -> dict[tuple[str, str, str], np.ndarray]:
    """(model, ref, quantity) -> [diff, lo, hi], float64, in both orders (b - a is -(a - b))."""
    t = _read(store / "paired.arrow")
    out = {}
    for m, ref, q, d, lo, hi in zip(*(t[k] for k in ("model_id", "ref_id", "quantity", "diff", "diff_lo", "diff_hi")),
                                    strict=True):  # fmt: skip
        out[m, ref, q] = np.array([d, lo, hi], np.float64)
        if q != "corrupted_vs_clean":
            out.setdefault((ref, m, q), -np.array([d, hi, lo], np.float64))
    return out


@pytest.mark.parametrize("points", [1.0, 3.0, 10.0, 50.0])
def test_pruned_vs_dense_verdicts_follow_the_paired_intervals(site_store, points):
    view = model.build_view_model(data.load_store(site_store), SiteOptions(equivalence_points=points))
    paired, margin = _paired(site_store), np.float64(points) / 100
    models = _read(site_store / "models.arrow")
    dense = {a: m for m, a, meth in zip(models["model_id"], models["arch"], models["method"], strict=True)
             if meth == "dense"}  # fmt: skip
    got = {r["model"]["model_id"]: r["verdict"] for r in view.pruned_vs_dense}
    want, wins, worse = {}, 0, 0
    for m, a, meth in zip(models["model_id"], models["arch"], models["method"], strict=True):
        if meth == "dense":
            continue
        _, lo, hi = paired[m, dense[a], "clean_accuracy"]
        drop_lo, drop_hi = -hi, -lo  # the drop: dense minus pruned
        want[m] = "keeps" if drop_hi <= margin else "below" if drop_lo > margin else "inconclusive"
        corr = paired[m, dense[a], "corrupted_accuracy"]
        wins, worse = wins + (corr[1] > 0), worse + (corr[2] < 0)
    assert got == want
    (v,) = view.verdicts
    assert (len(v.wins), v.worse, v.total) == (wins, worse, len(want))


def test_verdicts_differ_across_margins(site_store):
    """The margins above give different verdicts, so the comparison with NumPy can tell a wrong one."""
    seen = set()
    for points in (1.0, 50.0):
        view = model.build_view_model(data.load_store(site_store), SiteOptions(equivalence_points=points))
        seen |= {r["verdict"] for r in view.pruned_vs_dense}
    assert {"keeps", "below"} <= seen


def test_fig10_readouts_follow_the_paired_intervals(tmp_path, make_derived_store):
    """Every ordered pair of models of Fig. 10's picker: equally accurate when B minus A's clean interval lies
    within ± the margin, B's margins moving less when its spread interval lies below 0."""
    store = make_derived_store(tmp_path / "s", relabel={RAND: "mpt"})
    paired = _paired(store)
    for points in (1.0, 10.0):
        view = model.build_view_model(data.load_store(store), SiteOptions(equivalence_points=points))
        margin = np.float64(points) / 100
        assert len(view.readouts) == len(set(_read(store / "models.arrow")["model_id"])) ** 2
        for r in view.readouts:
            clean = paired.get((r.b, r.a, "clean_accuracy"))
            assert r.equal == (clean is not None and -margin <= clean[1] and clean[2] <= margin), (r.a, r.b)
            spread = paired.get((r.b, r.a, "mc_abs_mean"))
            if spread is not None and np.isfinite(spread).all():
                assert r.moves == ("less" if spread[2] < 0 else "more" if spread[1] > 0 else "neither more nor less")
    (f,) = view.fig10
    assert f.mpt["model_id"] == RAND and f.verdict in ("less", "more", "same")
