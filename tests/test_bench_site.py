"""bench/scale_store.py (the CIFAR-sized store of issue 23 §4, generated without training) at tiny sizes: its store
passes `lotterysite info`, `lotterysite render` builds a site from it, and its tables agree with each other."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from click.testing import CliRunner

from lotterysite.cli import main
from lotterysite.store import read_manifest, read_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from scale_store import ScaleConfig, sweep, write_scale_store  # noqa: E402


def test_scale_store_passes_info_and_renders(tmp_path):
    cfg = ScaleConfig(classes=3, samples=60, models=4, corruptions=2, severities=(1, 3), shipped=(1, 3))
    store = write_scale_store(tmp_path / "store", cfg, log=lambda *_: None)
    info = CliRunner().invoke(main, ["info", str(store)])
    assert info.exit_code == 0, info.output
    assert "3 classes, 60 evaluation samples, 60 shipped" in info.output and "models   4 (vgg16;" in info.output
    assert "shipped  60 of 60 evaluated samples: the whole evaluation set" in info.output

    m = read_manifest(store)
    assert [x["model_id"] for x in m["models"]] == ["vgg16/dense", "vgg16/random/0.1", "vgg16/random/0.3",
                                                    "vgg16/random/0.5"]  # fmt: skip
    assert len(sweep(30)) == 30  # the paper's sweep: 30 models per architecture
    # The tables agree: every sample ships at every evaluated severity, so accuracy.arrow (full set) is the mean of
    # the geometry rows' `correct`, and outcomes.arrow's per-corruption counts are their sums over severities.
    acc = read_table(store / "accuracy.arrow").to_pandas()
    out = read_table(store / "outcomes.arrow").to_pandas()
    for model in m["models"]:
        g = read_table(store / f"geometry/{model['model_key']}.arrow").to_pandas()
        assert len(g) == 60 * (1 + 2 * 2)
        a = acc[(acc.model_id == model["model_id"]) & (acc.class_id == -1)]
        for (variant, severity), rows in g.groupby(["variant", "severity"], observed=True):
            want = a[(a.variant == variant) & (a.severity == severity)].accuracy.item()
            assert np.isclose(rows.correct.mean(), want), (model["model_id"], variant, severity)
        # Signed margin: positive exactly when correct; the prediction is the nearest class direction.
        assert ((g.margin > 0) == g.correct).all()
        angles = g[[f"angle_{j}" for j in range(3)]].to_numpy()
        assert (angles.argmin(1) == g.pred).all()
        o = out[out.model_id == model["model_id"]].set_index("sample_id")
        for name in m["corruptions"]:
            counts = g[g.variant == name].groupby("sample_id").correct.sum()
            assert (o.loc[counts.index, f"c_{name}"] == counts).all()
    thumbs = read_table(store / "samples.arrow")["thumbnail"]
    assert pc.all(pc.starts_with(thumbs, "data:image/png;base64,")).as_py()

    docs = tmp_path / "docs"
    docs.mkdir()
    rendered = CliRunner().invoke(main, ["render", str(store), str(docs)])
    assert rendered.exit_code == 0, rendered.output
    for kind in ("evaluation", "local", "global", "samples"):
        assert (docs / f"lotterysite/views/vgg16/{kind}/index.md").is_file(), kind
    slices = sorted(p.name for p in (docs / "lotterysite/data/vgg16/w/vgg16__dense").glob("*.arrow"))
    assert len(slices) == 1 + 2 * 2, slices
    # `lotterysite render` writes the plugin's layout: each slice once, its local columns (w/) and class angles (p/).
    assert not (docs / "lotterysite/data/vgg16/g").exists()
    assert (docs / "lotterysite/data/vgg16/p/vgg16__dense/v0").is_dir()
