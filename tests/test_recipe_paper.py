"""Issue 24, item 2: precompute/cifar10-paper.toml parses into the paper's study, with the paper's choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from lotterysite.precompute import load_recipe
from lotterysite.precompute.recipe import shipped_rows

PAPER = Path(__file__).resolve().parents[1] / "precompute" / "cifar10-paper.toml"


@pytest.fixture(scope="module")
def paper():
    return load_recipe(PAPER)


def test_paper_recipe_trains_as_the_paper_says(paper):
    assert [a.model.arch for a in paper.architectures] == ["vgg16", "resnet18", "alexnet"]  # §5.3, Table 1
    for a in paper.architectures:
        t = a.train
        assert t.epochs == 200, a.model.arch  # §7.3: the dense VGG16, 200 epochs
        assert (t.optimizer, t.schedule, t.augment, t.crop_padding, t.flip) == ("sgd", "cosine", True, 4, True)
    assert paper.data.name == "cifar10" and paper.eval_subset is None and paper.data.test_subset is None


def test_paper_recipe_prunes_as_the_paper_says(paper):
    sweeps = {s.method: s for s in paper.pruning}
    assert sorted(sweeps) == ["magnitude", "mpt", "random", "taylor"]  # §3.1
    for s in paper.pruning:
        cfg = s.config(s.amounts[0], 0, retrain=True)
        assert cfg.bn_recalibration_batches == 0, s.method  # the paper has no recalibration step
        assert not cfg.prune_classifier and s.train_subset is None, s.method
    assert sweeps["taylor"].config(0.5, 0, retrain=False).taylor_batches == "all"  # §3.1: D, the training set
    assert {0.1, 0.3, 0.5, 0.7, 0.99} <= set(sweeps["magnitude"].amounts)  # §7.2, Figs. 7 and 8
    assert sweeps["magnitude"].retrain_epochs > 0  # §7.2, Fig. 8 (5): retrained after 99 %
    assert 0.1 in sweeps["random"].amounts  # §7.2, Fig. 8 (3)
    mpt = sweeps["mpt"].config(0.95, 0, retrain=False)
    assert 0.95 in sweeps["mpt"].amounts and mpt.mpt_epochs == 200 and not mpt.mpt_learn_classifier  # §7.3
    assert mpt.train_config("mpt").augment and mpt.train_config("mpt").crop_padding == 4


def test_paper_recipe_evaluates_and_ships_every_test_image(paper):
    c = paper.corruptions
    assert len(c.names) == 19 and c.severities == (1, 2, 3, 4, 5)  # §3.2: 95 variants of every image
    # Whole classes (§7.1, §7.3): the whole 10 000-image test set fits the row limit, so the sampling policy takes
    # every image (store.sampling: everything ships where it fits).
    assert shipped_rows(paper, 10_000) == 200_000 <= paper.ship.max_rows_per_model
    assert paper.ship.samples_per_class >= 1000  # CIFAR-10's test classes, 1000 each


def test_every_paper_setting_names_its_section_or_says_the_paper_is_silent():
    """The recipe's comments: each setting's line or the comment block above its table cites a section (§) or
    says the paper is silent."""
    text = PAPER.read_text()
    for key in ("epochs = 200", "bn_recalibration_batches", 'taylor_batches = "all"', "max_rows_per_model",
                "mpt_epochs", "retrain_epochs", "amounts"):  # fmt: skip
        for i, line in enumerate(text.splitlines()):
            if line.startswith(key):
                window = "\n".join(text.splitlines()[max(0, i - 8) : i + 1])
                assert "§" in window or "silent" in window.lower(), line
