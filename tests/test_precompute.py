"""precompute end to end on a tiny recipe of real Fashion-MNIST: the store, resuming, and bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from click.testing import CliRunner

from lotterysite.checkpoint import load_checkpoint, save_checkpoint
from lotterysite.cli import main
from lotterysite.data import load_dataset
from lotterysite.models import create_model
from lotterysite.precompute import RecipeError, load_recipe, parse_recipe, plan_models, precompute
from lotterysite.store import SCHEMA_VERSION, read_manifest, read_table
from lotterysite.store.info import describe
from lotterysite.store.publish import work_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_recipe):
    folder = tmp_path_factory.mktemp("tiny")
    recipe_path = folder / "tiny.toml"
    recipe_path.write_text(tiny_recipe)
    recipe = load_recipe(recipe_path)
    store = folder / "store"
    result = precompute(recipe, store=store, device="cpu", progress=False)
    return recipe, store, result


def test_plan_lists_every_model(tiny_recipe):
    recipe = parse_recipe(tiny_recipe)
    ids = [e.model_id for e in plan_models(recipe)]
    assert ids == [
        "lenet5/dense", "lenet5/magnitude/0.5", "lenet5/magnitude+retrain/0.5", "lenet5/magnitude/0.9",
        "lenet5/magnitude+retrain/0.9", "lenet5/random/0.5", "lenet5/taylor/0.5", "lenet5/mpt/0.5",
    ]  # fmt: skip


def test_store_holds_every_declared_file(tiny):
    recipe, store, result = tiny
    m = read_manifest(store)
    assert m["dataset"]["n_eval"] == 150 and m["dataset"]["classes"][9] == "Ankle boot"
    assert len(m["models"]) == 8 and result.models == 8
    for name in ("models.arrow", "accuracy.arrow", "correlations.arrow", "margin_change.arrow", "exemplars.arrow",
                 "curse.arrow", "samples.arrow", "outcomes.arrow", "paired.arrow"):  # fmt: skip
        assert name in m["files"], name
    assert sum(n.startswith("geometry/") for n in m["files"]) == 8
    assert (store / "gallery.png").stat().st_size > 1000
    text = describe(store)  # reads back every file against its schema
    assert "8 (lenet5" in text and "geometry/lenet5__dense.arrow" in text


def test_aggregates_use_the_full_evaluation_set(tiny):
    recipe, store, _ = tiny
    acc = read_table(store / "accuracy.arrow").to_pylist()
    clean = next(r for r in acc if r["model_id"] == "lenet5/dense" and r["variant"] == "clean" and r["class_id"] == -1)
    assert clean["n"] == 150  # not the shipped subset
    # The same number from the checkpoint, evaluated directly.
    model, _ = load_checkpoint(next((work_dir(store) / "models").glob("lenet5__dense-*.pt")))
    test = load_dataset("fashion_mnist").test.head(150)
    with torch.no_grad():
        direct = (model(test.float_images()).argmax(1) == test.labels).sum().item()
    assert clean["correct"] == direct
    models = {r["model_id"]: r for r in read_table(store / "models.arrow").to_pylist()}
    assert models["lenet5/dense"]["clean_accuracy"] == pytest.approx(direct / 150)
    assert models["lenet5/magnitude/0.9"]["sparsity"] == pytest.approx(0.9, abs=1e-4)
    assert models["lenet5/dense"]["sparsity"] == 0
    fog = [r for r in acc if r["model_id"] == "lenet5/dense" and r["variant"] == "fog" and r["class_id"] == -1]
    assert sorted(r["severity"] for r in fog) == [0, 1, 3]


def test_geometry_rows_and_types(tiny):
    recipe, store, _ = tiny
    m = read_manifest(store)
    n = m["dataset"]["n_shipped"]
    table = read_table(store / "geometry/lenet5__dense.arrow")
    assert table.num_rows == n * (1 + 2)  # clean + 2 corruptions at the shipped severity 3
    assert table.schema.field("variant").type == pa.dictionary(pa.int32(), pa.string())
    assert table.schema.field("margin").type == pa.float32()
    assert not any(pa.types.is_int64(f.type) for f in table.schema)  # the browser cannot plot BigInt
    rows = table.to_pylist()
    clean = [r for r in rows if r["variant"] == "clean"]
    assert all(r["rel_margin_change"] == 0 for r in clean)
    assert all(r["correct"] == (r["margin"] > 0) for r in clean if np.isfinite(r["margin"]))
    assert all(r["correct"] == (r["pred"] == r["label"]) for r in rows)
    assert all(abs(r["angle_true"] - r[f"angle_{r['label']}"]) < 1e-6 for r in rows)


def test_shipped_angles_equal_a_direct_evaluation_and_only_shipped_variants_keep_them(tiny):
    recipe, store, _ = tiny
    (path,) = (work_dir(store) / "results").glob("lenet5__dense-*.npz")
    with np.load(path) as z:
        # Angles to every class: clean and the shipped severity (3) only, every sample; 2 of 5 variants never held.
        assert json.loads(str(z["angle_variants"])) == [0, 2, 4] and z["angle"].shape == (3, 150, 10)
        assert z["angle_true"].shape == (5, 150)
    model, _ = load_checkpoint(next((work_dir(store) / "models").glob("lenet5__dense-*.pt")))
    test = load_dataset("fashion_mnist").test.head(150)
    with torch.no_grad():
        x = model.forward_features(test.float_images()).double().numpy()
    w = model.classifier.weight.detach().double().numpy()
    cos = (x @ w.T) / np.linalg.norm(x, axis=1)[:, None] / np.linalg.norm(w, axis=1)[None, :]
    expected = np.degrees(np.arccos(np.clip(cos, -1, 1)))  # float64 numpy, by hand
    rows = [r for r in read_table(store / "geometry/lenet5__dense.arrow").to_pylist() if r["variant"] == "clean"]
    assert len(rows) == read_manifest(store)["dataset"]["n_shipped"]
    for r in rows:
        got = [r[f"angle_{j}"] for j in range(10)]
        np.testing.assert_allclose(got, expected[r["sample_id"]], atol=2e-3)


def test_the_whole_evaluation_set_ships_where_it_fits_with_exemplars_flagged(tiny):
    recipe, store, _ = tiny
    samples = read_table(store / "samples.arrow").to_pylist()
    pies = {r["sample_id"] for r in read_table(store / "exemplars.arrow").to_pylist()}
    # 150 images x 3 rows fit max_rows_per_model: every one ships, all in the sample (samples_per_class = 4 is
    # the sample's size only where the set does not fit).
    assert [r["sample_id"] for r in samples] == list(range(150)) and all(r["in_sample"] for r in samples)
    assert all(r["thumbnail"].startswith("data:image/png;base64,") for r in samples)
    assert all(r["pie"] == (r["sample_id"] in pies) for r in samples)
    rec = read_manifest(store)["dataset"]["shipping"]
    assert rec["everything"] and not rec["cut"] and rec["seed"] == 0 and rec["extra_exemplars"] == 0
    assert rec["policy"].startswith("class-stratified uniform random sample")


def test_store_reads_in_pandas_and_duckdb(tiny):
    import duckdb
    import pandas as pd

    _, store, _ = tiny
    frame = pd.read_feather(store / "models.arrow")
    assert len(frame) == 8 and frame["method"].dtype.name == "category"
    acc = read_table(store / "accuracy.arrow")  # noqa: F841  (DuckDB finds the Arrow table by its name)
    best = duckdb.sql("SELECT model_id, accuracy FROM acc WHERE variant = 'clean' AND class_id = -1 "
                      "ORDER BY accuracy DESC LIMIT 1").fetchall()  # fmt: skip
    assert len(best) == 1


def test_rerun_resumes_without_recomputing(tiny, tiny_recipe):
    recipe, store, _ = tiny
    work = work_dir(store)
    before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and p.name != "lock"}
    result = precompute(recipe, store=store, device="cpu", progress=False)
    assert result.reused["evaluate"] == 8
    after = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and p.name != "lock"}
    assert after == before
    # One model's results lost: only that model is evaluated again.
    lost = next(work.glob("results/lenet5__random__0.5-*.npz"))
    lost.unlink()
    result = precompute(recipe, store=store, device="cpu", progress=False)
    assert result.reused["evaluate"] == 7
    assert lost.exists()
    # A changed setting recomputes what it shapes and only that: here the magnitude sweep's retraining.
    changed = parse_recipe(tiny_recipe.replace("retrain_epochs = 1", "retrain_epochs = 2"), recipe.path)
    result = precompute(changed, store=store, device="cpu", progress=False)
    assert result.reused["evaluate"] == 6
    # --force recomputes everything.
    result = precompute(recipe, store=store, device="cpu", progress=False, force=True)
    assert result.reused == {}
    assert all(p.stat().st_mtime_ns > before[p] for p in before if p.suffix in (".pt", ".npz") and p.exists())


def test_corrupt_arrow_file_is_a_clear_error_and_precompute_repairs_it(tiny):
    recipe, store, _ = tiny
    target = store / "accuracy.arrow"
    good = target.read_bytes()
    target.write_bytes(good[: len(good) // 3])
    result = CliRunner().invoke(main, ["info", str(store)])
    assert result.exit_code == 1
    assert "accuracy.arrow: " in result.output and "the manifest records" in result.output
    assert result.output.strip().count("\n") == 0
    work_files = sorted(p for p in work_dir(store).rglob("*") if p.is_file())
    precompute(recipe, store=store, device="cpu", progress=False)
    assert read_table(target).num_rows > 0
    assert sorted(p for p in work_dir(store).rglob("*") if p.is_file()) == work_files  # nothing deleted


def test_a_cut_store_ships_the_policys_stratified_sample_plus_extra_exemplars(tiny, tiny_recipe, tmp_path,
                                                                            monkeypatch):  # fmt: skip
    import shutil

    from lotterysite.store import sampling

    recipe, store, _ = tiny
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    shutil.copytree(work_dir(store), work_dir(copy))
    calls = []
    real = sampling.draw_samples
    monkeypatch.setattr(sampling, "draw_samples", lambda *a, **k: calls.append(k) or real(*a, **k))
    # 3 rows per sample (clean + 2 corruptions at severity 3): 60 rows allow 20 samples per model; 1 per class asks
    # for a sample of 10, so exemplars outside it fill the other 10 rows.
    cut = parse_recipe(tiny_recipe.replace("samples_per_class = 4", "samples_per_class = 1\nmax_rows_per_model = 60"),
                       recipe.path)  # fmt: skip
    result = precompute(cut, store=copy, device="cpu", progress=False)
    assert result.reused["evaluate"] == 8  # only the store stage ran again
    assert calls and calls[-1]["sample_size"] == 10 and calls[-1]["budget"] == 20  # the one policy
    manifest = read_manifest(copy)
    rec = manifest["dataset"]["shipping"]
    samples = read_table(copy / "samples.arrow")
    ids = samples.column("sample_id").to_numpy()
    labels = samples.column("label").to_numpy()
    pie = np.asarray(samples.column("pie").to_pylist(), dtype=bool)
    in_sample = np.asarray(samples.column("in_sample").to_pylist(), dtype=bool)
    pies = np.unique(read_table(copy / "exemplars.arrow").column("sample_id").to_numpy())
    # Exactly the policy's draw on the full evaluation set (the first 150 test images).
    full = load_dataset("fashion_mnist").test.head(150).labels.numpy()
    expected = real(full, np.isin(np.arange(150), pies), sample_size=10, budget=20, seed=0)
    assert ids.tolist() == expected.index.tolist() and in_sample.tolist() == expected.in_sample.tolist()
    assert pie.tolist() == np.isin(ids, pies).tolist()  # exemplars flagged, in the sample or not
    assert pie[~in_sample].all()  # every extra row is an exemplar
    assert np.bincount(labels[in_sample], minlength=10).tolist() == [1] * 10  # stratified, every class
    assert rec["limit"] == 20 and rec["cut"] == (len(pies) > int(pie.sum())) and not rec["everything"]
    assert rec["sample_per_class"] == [1] * 10 and rec["extra_exemplars"] == int((~in_sample).sum())
    assert len(ids) == min(20, 10 + len(np.setdiff1d(pies, ids[in_sample])))
    assert rec["per_class"] == np.bincount(labels, minlength=10).tolist()
    assert rec["exemplars_found"] == len(pies) and rec["exemplars_shipped"] == int(pie.sum())
    text = describe(copy)
    assert (f"a class-stratified uniform random sample of 10 (seed 0, asked 1 per class), plus "
            f"{int((~in_sample).sum())} pruning-identified exemplars outside it as extra rows") in text  # fmt: skip
    # The untouched store was not cut.
    assert "not cut: ship.max_rows_per_model = 50000 allows 16666 samples" in describe(store)
    assert "the whole evaluation set" in describe(store)


def test_kill_9_then_resume(tmp_path, tiny_recipe):
    recipe_path = tmp_path / "tiny.toml"
    recipe_path.write_text(tiny_recipe.replace("[curse]", "[curse]\nenabled = false"))
    store = tmp_path / "store"
    cmd = [
        sys.executable,
        "-m",
        "lotterysite.cli",
        "precompute",
        str(recipe_path),
        "--store",
        str(store),
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120

    def first_results():
        return next((work_dir(store) / "results").glob("lenet5__dense-*.npz"), None)

    while first_results() is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    first = first_results()
    assert first is not None, "precompute never finished its first model"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stamp = first.stat().st_mtime_ns
    # Whatever finished is whole: every visible results file loads (a write cut short stays a hidden temporary).
    for path in (work_dir(store) / "results").glob("*.npz"):
        with np.load(path) as z:
            assert z["pred"].shape[1] == 150
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert first.stat().st_mtime_ns == stamp  # the finished model was not redone
    assert "reused" in result.stdout
    assert read_manifest(store)["files"]


# Broken recipes and the one-line error each gives (tests/test_recipe_schema.py checks the JSON Schema rejects them
# too, where a setting alone can tell).
BROKEN = [
    (lambda t: t.replace('name = "tiny"', 'name = "tiny'), r"tiny\.toml: not valid TOML"),
    (
        lambda t: t.replace("eval_subset = 150", "eval_subst = 150"),
        r"field 'data\.eval_subst' is not a recipe field; did you mean 'eval_subset'",
    ),
    (
        lambda t: t.replace('arch = "lenet5"', 'arch = "lenet6"'),
        r"field 'architectures\[0\]\.arch' is 'lenet6', not a known architecture",
    ),
    (
        lambda t: t.replace('method = "random"', 'method = "randon"'),
        r"field 'pruning\[1\]\.method' is 'randon', not a pruning method",
    ),
    (
        lambda t: t.replace("amounts = [0.5, 0.9]", "amounts = [0.5, 1.2]"),
        r"field 'pruning\[0\]\.amounts\[1\]' is 1\.2, outside \(0, 1\)",
    ),
    (
        lambda t: t.replace('"fog"', '"fogg"'),
        r"field 'corruptions\.names\[0\]' is 'fogg', not a CIFAR-10-C corruption; did you mean 'fog'",
    ),
    (
        lambda t: t.replace("severities = [3]", "severities = [5]"),
        r"field 'ship\.severities\[0\]' is 5, which is not evaluated",
    ),
    (
        lambda t: t.replace("epochs = 1\n[[pruning]]", "epochs = 'one'\n[[pruning]]", 1),
        r"architectures\[0\]\.train",
    ),
    (
        lambda t: t.replace("taylor_batches = 2", "taylor_batches = 0"),
        r"field 'pruning\[2\]\.taylor_batches' must be >= 1, got 0",
    ),
    (
        lambda t: t.replace("severities = [3]", "severities = [3]\nconfused_classes = 0"),
        r"field 'ship\.confused_classes' must be >= 1, got 0",
    ),
    (
        lambda t: t.replace("severities = [3]", "severities = [3]\nconfused_classes = 100"),
        r"field 'ship\.confused_classes' must be <= 32, got 100",
    ),
    (
        lambda t: t.replace("severities = [3]", 'severities = [3]\nconfused_classes = "8"'),
        r"field 'ship\.confused_classes' must be int, got '8'",
    ),
]


@pytest.mark.parametrize("edit, message", BROKEN)
def test_broken_recipes_name_file_and_field(tmp_path, tiny_recipe, edit, message):
    path = tmp_path / "tiny.toml"
    path.write_text(edit(tiny_recipe))
    with pytest.raises(RecipeError, match=message):
        load_recipe(path)
    result = CliRunner().invoke(main, ["precompute", str(path)])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0


def test_missing_recipe_and_missing_data(tmp_path, tiny_recipe):
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1 and "recipe not found" in result.output
    path = tmp_path / "r.toml"
    path.write_text(tiny_recipe.replace('name = "fashion_mnist"', f'name = "mnist"\nroot = "{tmp_path / "nowhere"}"'))
    result = CliRunner().invoke(main, ["precompute", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 1 and "data set 'mnist' not found" in result.output


def test_checkpoint_of_another_architecture_or_class_count(tmp_path, tiny_recipe):
    vgg = tmp_path / "vgg.pt"
    torch.manual_seed(0)
    save_checkpoint(
        vgg, create_model("small_vgg", num_classes=10, in_channels=1, image_size=28), in_channels=1, image_size=28
    )
    lenet100 = tmp_path / "lenet100.pt"
    save_checkpoint(
        lenet100, create_model("lenet5", num_classes=100, in_channels=1, image_size=28), in_channels=1, image_size=28
    )
    for ckpt, message in ((vgg, "field 'arch' is 'small_vgg', expected 'lenet5'"),
                          (lenet100, "field 'num_classes' is 100, but the data set has 10 classes")):  # fmt: skip
        path = tmp_path / "r.toml"
        path.write_text(tiny_recipe.replace('arch = "lenet5"', f'arch = "lenet5"\ncheckpoint = "{ckpt}"'))
        result = CliRunner().invoke(main, ["precompute", str(path), "--store", str(tmp_path / "s")])
        assert result.exit_code == 1, result.output
        error = result.output.strip().splitlines()[-1]
        assert error.startswith("Error: ") and message in error
        assert not (tmp_path / "s.work" / "corruptions").exists()  # checked before any heavy work


def test_paired_differences_agree_with_the_models_accuracies(tiny):
    """paired.arrow on the full evaluation set: every two models, model minus ref, consistent with models.arrow
    and with its own discordant counts."""
    _, store, _ = tiny
    models = {r["model_id"]: r for r in read_table(store / "models.arrow").to_pylist()}
    rows = read_table(store / "paired.arrow").to_pylist()
    corr = {r["model_id"]: r for r in read_table(store / "correlations.arrow").to_pylist()}
    ids = list(models)
    pairs = {(r["model_id"], r["ref_id"]) for r in rows if r["quantity"] == "clean_accuracy"}
    assert pairs == {(m, r) for i, m in enumerate(ids) for r in ids[:i]}  # the dense model is every pruned one's ref
    variants = len(read_manifest(store)["corruptions"]) * len(read_manifest(store)["severities"])
    for r in rows:
        m, ref = models[r["model_id"]], models[r["ref_id"]]
        assert r["n"] == 150 and r["diff_lo"] <= r["diff"] + 1e-6 and r["diff"] <= r["diff_hi"] + 1e-6, r
        if r["quantity"] == "corrupted_vs_clean":
            assert r["ref_id"] == r["model_id"]
            assert r["diff"] == pytest.approx(m["corrupted_accuracy"] - m["clean_accuracy"], abs=1e-6)
            assert r["diff"] == pytest.approx((r["better"] - r["worse"]) / (150 * variants), abs=1e-6)
        elif r["quantity"] in ("clean_accuracy", "corrupted_accuracy"):
            q = r["quantity"]
            assert r["diff"] == pytest.approx(m[q] - ref[q], abs=1e-6)
            n = 150 * (1 if q == "clean_accuracy" else variants)
            assert r["diff"] == pytest.approx((r["better"] - r["worse"]) / n, abs=1e-6)
        else:
            assert r["quantity"] == "mc_abs_mean" and r["better"] == r["worse"] == -1
            spread = corr[r["model_id"]]["mc_abs_mean"] - corr[r["ref_id"]]["mc_abs_mean"]
            assert r["diff"] == pytest.approx(spread, abs=1e-5)


def test_manifest_is_json_with_provenance(tiny):
    _, store, _ = tiny
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["recipe"]["name"] == "tiny" and manifest["schema_version"] == SCHEMA_VERSION
    meta = read_table(store / "models.arrow").schema.metadata
    assert meta[b"lotterysite.recipe"] == b"tiny" and b"lotterysite.config" in meta


def test_demo_recipe_parses_and_is_the_embedded_default():
    recipe = load_recipe(Path(__file__).parents[1] / "precompute" / "demo.toml")
    assert recipe.data.name == "fashion_mnist" and len(recipe.corruptions.names) == 19
    assert len(recipe.corruptions.severities) == 5 and len(recipe.architectures) >= 2
    assert {s.method for s in recipe.pruning} == {"random", "magnitude", "taylor", "mpt"}
    # A curve per method; MPT (the dearest model of the demo) only at the amount where it reaches the regime
    # (README, "The demo study": the 5-minute budget holds one MPT model, not two).
    assert all(len(s.amounts) >= 2 for s in recipe.pruning if s.method != "mpt")
    assert any(s.retrain_epochs for s in recipe.pruning)
    # MPT from an untrained network where it can work (README, "The demo study"): long enough, at >= 50 %.
    mpt = next(s for s in recipe.pruning if s.method == "mpt")
    assert mpt.options["mpt_epochs"] >= 8 and mpt.train_subset is None and max(mpt.amounts) >= 0.5
    # Where the regime is checked: magnitude without retraining at 50 %.
    assert 0.5 in next(s for s in recipe.pruning if s.method == "magnitude").amounts


def test_a_sweep_can_be_limited_to_some_architectures(tmp_path):
    recipe = load_recipe(Path(__file__).parents[1] / "precompute" / "demo.toml")
    methods = {(e.arch, e.method) for e in plan_models(recipe)}
    assert ("lenet5", "mpt") in methods and ("small_vgg", "mpt") not in methods
    assert ("small_vgg", "magnitude") in methods
    text = (Path(__file__).parents[1] / "precompute" / "demo.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('archs = ["lenet5"]', 'archs = ["lenet"]'))
    with pytest.raises(RecipeError, match=r"pruning\[3\].archs\[0\]' is 'lenet', not an architecture of this recipe"):
        load_recipe(bad)


def test_paper_recipe_parses():
    recipe = load_recipe(Path(__file__).parents[1] / "precompute" / "cifar10-paper.toml")
    assert [a.model.arch for a in recipe.architectures] == ["vgg16", "resnet18", "alexnet"]
    assert recipe.data.name == "cifar10" and recipe.eval_subset is None
    assert len(plan_models(recipe)) == 3 * (1 + 5 + 7 * 2 + 5 + 5)


def test_cifar10_with_a_cifar10c_folder(tmp_path):
    """The 32-px RGB path on real CIFAR-10 images (foolbox's 20), with corruptions read from a CIFAR-10-C folder."""
    import pickle

    from lotterysite.corruptions import corrupt
    from lotterysite.data import foolbox_samples, load_cifar10c

    real = foolbox_samples("cifar10")
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rows = real.images.numpy().reshape(20, -1)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(real.classes)}, f)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({"data": rows, "labels": real.labels.tolist()}, f)
    c10c = tmp_path / "CIFAR-10-C"
    c10c.mkdir()
    for name in ("contrast", "shot_noise"):
        sev = [corrupt(real.float_images(), name, s) for s in range(1, 6)]
        arr = (torch.cat(sev) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        np.save(c10c / f"{name}.npy", arr)
    np.save(c10c / "labels.npy", np.tile(real.labels.numpy(), 5).astype(np.uint8))
    recipe = tmp_path / "c.toml"
    recipe.write_text(f"""
name = "c10"
[data]
name = "cifar10"
root = "{root}"
trust_pickles = true  # hand-made pickles: not the official archive's MD5
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
[[pruning]]
method = "magnitude"
amounts = [0.5]
[corruptions]
names = ["contrast", "shot_noise"]
source = "{c10c}"
[ship]
samples_per_class = 2
[curse]
enabled = false
""")
    store = tmp_path / "store"
    precompute(load_recipe(recipe), store=store, device="cpu", progress=False)
    m = read_manifest(store)
    assert m["dataset"]["image_size"] == 32 and m["dataset"]["channels"] == 3
    assert m["corruption_source"] == str(c10c) and m["gallery"] is None
    # The shipped shot_noise rows are the folder's images, measured: same predictions as a direct forward pass.
    model, _ = load_checkpoint(next((work_dir(store) / "models").glob("lenet5__dense-*.pt")))
    images = load_cifar10c(c10c, "shot_noise", 3)
    with torch.no_grad():
        direct = model(images.float_images()).argmax(1)
    rows = [r for r in read_table(store / "geometry/lenet5__dense.arrow").to_pylist() if r["variant"] == "shot_noise"]
    assert rows and all(r["pred"] == direct[r["sample_id"]].item() for r in rows)
    acc = read_table(store / "accuracy.arrow").to_pylist()
    assert {(r["variant"], r["severity"]) for r in acc if r["class_id"] == -1} >= {("contrast", s) for s in range(1, 6)}


LABELLED = """
name = "labelled"
[data]
name = "fashion_mnist"
train_subset = 1000
eval_subset = 100
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
[[pruning]]
method = "magnitude"
amounts = [0.5]
[[pruning]]
method = "magnitude"
label = "magnitude-lamp"
scope = "lamp"
amounts = [0.5]
[corruptions]
names = ["fog"]
severities = [3]
[curse]
enabled = false
"""


def test_two_tables_of_one_method_with_labels(tmp_path):
    """Global and LAMP magnitude pruning side by side: the second table's label names its models. Each model is
    what its own table asked for, checked on the dense checkpoint's weights in numpy: global keeps the largest |w|
    over all layers, LAMP the largest |w| within each layer at its own layer shares, both exactly 50 %."""
    from lotterysite.pruning.checkpoint import load_pruned

    with pytest.raises(RecipeError, match="lists a method twice; merge .* or give the tables different labels"):
        parse_recipe(LABELLED.replace('label = "magnitude-lamp"\n', ""))
    for bad, message in (("taylor", "another method's name"), ("mag retrain", "must be letters"),
                         ("magnitude_retrain", "ends in retrain")):  # fmt: skip
        with pytest.raises(RecipeError, match=f"field 'pruning\\[1\\].label' is .*{message}|{message}"):
            parse_recipe(LABELLED.replace("magnitude-lamp", bad))
    with pytest.raises(RecipeError, match="field 'models\\[0\\].label' is 'magnitude-lamp', the label of a"):
        parse_recipe(LABELLED + '[[models]]\nfile = "x.pt"\nbase = "lenet5"\nlabel = "magnitude-lamp"\n')
    recipe = parse_recipe(LABELLED, str(tmp_path / "labelled.toml"))
    assert [e.model_id for e in plan_models(recipe)] == [
        "lenet5/dense", "lenet5/magnitude/0.5", "lenet5/magnitude-lamp/0.5"]  # fmt: skip
    store = tmp_path / "store"
    precompute(recipe, store=store, device="cpu", progress=False)
    models = {m["model_id"]: m for m in read_table(store / "models.arrow").to_pylist()}
    assert models["lenet5/magnitude-lamp/0.5"]["method"] == "magnitude-lamp"
    assert models["lenet5/magnitude/0.5"]["method"] == "magnitude"
    work = work_dir(store) / "models"
    dense, _ = load_checkpoint(next(work.glob("lenet5__dense-*.pt")))
    weights = {n: m.weight.detach().numpy().ravel() for n, m in dense.named_modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m is not dense.classifier}  # fmt: skip
    total = sum(w.size for w in weights.values())
    cut = np.sort(np.abs(np.concatenate(list(weights.values()))))[round(0.5 * total) - 1]
    shares = {}
    for key, scope in (("magnitude__0.5", "global"), ("magnitude-lamp__0.5", "lamp")):
        model, _ = load_pruned(next(work.glob(f"lenet5__{key}-*.pt")))
        masks = {k[: -len(".weight")]: v.numpy().ravel() for k, v in model.masks.items()}
        assert set(masks) == set(weights) and sum(int((~m).sum()) for m in masks.values()) == round(0.5 * total)
        for name, w in weights.items():
            pruned = np.abs(w[~masks[name]])
            kept = np.abs(w[masks[name]])
            if scope == "global":
                assert pruned.size == 0 or pruned.max() <= cut <= (kept.min() if kept.size else np.inf)
            else:  # within each layer, every pruned |w| is at most every kept one
                assert pruned.size == 0 or kept.size == 0 or pruned.max() <= kept.min()
        shares[scope] = [float((~masks[n]).mean()) for n in weights]
    assert shares["global"] != shares["lamp"], "LAMP's layer shares are global magnitude's: the label lost its table"
