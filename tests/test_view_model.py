"""The view model (lotterysite/site/model.py): every number the pages show is computed there, once per render, and
the modules that write pages only format it. Its numbers are checked against float64 NumPy computed straight from
the store's Arrow files, never through the site's own loaders."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pyarrow.ipc as ipc
import pytest

from lotterysite.site import data, model, render
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
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math":
            if node.attr not in MATH_ALLOWED:
                found.append(f"math.{node.attr} at line {node.lineno}")
    assert found == [], f"{name} computes: {found}; compute it in site/model.py and format the model's value"


def test_the_rule_catches_computation(tmp_path, monkeypatch):
    """The rule above is not vacuous: a statistic slipped into a page module fails it."""
    (tmp_path / "pages.py").write_text(
        "import numpy as np\nfrom .model import keeps_accuracy\n"
        "def f(d, xs):\n    return sum(xs), d.within(0.01), math.fsum(xs)\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SITE", tmp_path)
    with pytest.raises(AssertionError) as e:
        test_page_modules_only_format("pages.py")
    for what in ("numpy", "keeps_accuracy", "sum()", ".within()", "math.fsum"):
        assert what in str(e.value)


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
