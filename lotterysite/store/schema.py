"""The store's Arrow schemas, declared in one place (documented in site_src/store.md; SCHEMA_VERSION versions both).

A store is a folder:

    manifest.json                   what is there: models, variants, classes, every file with its row count
    models.arrow                    one row per model (dense and pruned)
    accuracy.arrow                  accuracy per model x variant x severity x class, on the full evaluation set
    correlations.arrow              Pearson correlation of robustness with angle, length, margin (with the bias and as
                                    eq. 5 prints it, without) per model (Table 1)
    margin_change.arrow             density of the relative margin change per model (Fig. 10), full data
    paired.arrow                    paired differences of two models (or clean vs corrupted) on the same images
    exemplars.arrow                 pruning-identified exemplars per architecture, full data
    curse.arrow                     angle statistics vs dimension (random vectors; LeNet-5 width study, §5.4)
    samples.arrow                   the shipped samples (a stratified random sample, store.sampling): id, label, ...
    outcomes.arrow                  per shipped sample x model: correct on clean, and per corruption (subset accuracy)
    geometry/<model_key>.arrow      per shipped sample x variant: prediction and the three metrics, one file per model
    confused.arrow                  per architecture x class: the classes its samples are most confused with (only
                                    with more than WIDE_CLASSES classes: the geometry files then hold k angles a row)
    gallery.png                     every corruption x severity on a few real images (gallery.webp, or .jpg, for
                                    images larger than 96 px: scaled down, lossy; the manifest's "gallery" names it)

Every file is Arrow IPC (file format), float32 for measurements, int32 or smaller for integers (the browser's
Arrow reader turns int64 into BigInt, which Vega cannot plot), dictionary-encoded strings. Readable as is by
pyarrow, pandas (`pd.read_feather`) and DuckDB.
"""

from __future__ import annotations

import pyarrow as pa

# 1.3: paired.arrow, samples.arrow in_sample, the store signature; 1.4: the margin without the bias (the paper's
# eq. 5 as printed) beside ours: geometry files' margin_eq5, correlations.arrow rc_margin_eq5 and its interval;
# 1.5: models.arrow granularity, feature dimensions and cost (parameters, MACs, measured latency).
SCHEMA_VERSION = "1.5"
# models.arrow columns measured as wall time, not computed: they differ from run to run (tests comparing stores
# leave them out)
MEASURED = ("latency_b1_ms", "latency_batch_ms")

STR = pa.dictionary(pa.int32(), pa.string())
GALLERY_NAMES = ("gallery.png", "gallery.webp", "gallery.jpg")  # the gallery file a store may hold

MODELS = pa.schema(
    [
        ("model_id", pa.string()),  # unique, e.g. "lenet5/magnitude/0.5" or "lenet5/magnitude+retrain/0.5"
        ("model_key", pa.string()),  # file-name-safe form of model_id: geometry/<model_key>.arrow
        ("arch", STR),  # architecture registry name
        ("method", STR),  # "dense", "random", "magnitude", "taylor", "mpt"
        ("retrained", pa.bool_()),  # fine-tuned with its mask held fixed after pruning
        ("amount", pa.float32()),  # requested fraction of prunable weights removed (0 for dense)
        ("sparsity", pa.float32()),  # fraction of prunable weights removed by the mask (exact count / total)
        ("prunable", pa.int32()),  # number of prunable weights
        ("seed", pa.int32()),
        ("bn_recalibration_batches", pa.int16()),  # training batches batch norm was recalibrated on after pruning
        ("clean_accuracy", pa.float32()),  # on the full clean evaluation set
        ("clean_accuracy_lo", pa.float32()),  # bootstrap interval over evaluation samples (manifest "bootstrap")
        ("clean_accuracy_hi", pa.float32()),
        ("corrupted_accuracy", pa.float32()),  # mean over every corruption x severity evaluated
        ("corrupted_accuracy_lo", pa.float32()),
        ("corrupted_accuracy_hi", pa.float32()),
        ("granularity", STR),  # "none" (dense), "weight" (masks) or "channel" (channels removed, structured)
        ("feature_dim", pa.int32()),  # the classifier's input width: the dimension of the latent space measured
        ("dense_feature_dim", pa.int32()),  # the same for the dense model (differs only with prune_penultimate)
        ("parameters", pa.int32()),  # every parameter of the model; masked models: the dense count
        ("macs", pa.float64()),  # conv + linear multiply-accumulates per image (float64: exact, and no BigInt)
        ("latency_b1_ms", pa.float32()),  # median forward time of 1 image on the precompute device
        ("latency_batch_ms", pa.float32()),  # median forward time of `latency_batch` images
        ("latency_batch", pa.int16()),  # the large batch's size
    ]
)

ACCURACY = pa.schema(
    [
        ("model_id", STR),
        ("variant", STR),  # "clean", a corruption name, or "corruption_mean" (mean over all corrupted variants)
        ("severity", pa.int8()),  # 1-5 for a corruption; 0 for clean and for a corruption's mean over severities
        ("class_id", pa.int16()),  # -1: all classes
        ("n", pa.int32()),  # samples counted
        ("correct", pa.int32()),  # correctly predicted among them
        ("accuracy", pa.float32()),  # correct / n
        ("accuracy_lo", pa.float32()),  # bootstrap interval over evaluation samples (manifest "bootstrap")
        ("accuracy_hi", pa.float32()),
    ]
)

CORRELATIONS = pa.schema(
    [
        ("model_id", STR),
        ("arch", STR),
        ("method", STR),
        ("amount", pa.float32()),
        ("n", pa.int32()),  # samples in the evaluation set
        ("rc_angle", pa.float32()),  # Pearson r of per-sample robustness (eq. 7) with the clean angle to the true class
        ("rc_length", pa.float32()),  # ... with the clean length
        ("rc_margin", pa.float32()),  # ... with the clean margin
        ("rc_margin_eq5", pa.float32()),  # ... with the clean margin without the bias (the paper's eq. 5 as printed)
        ("rc_angle_lo", pa.float32()),  # bootstrap intervals over evaluation samples (manifest "bootstrap")
        ("rc_angle_hi", pa.float32()),
        ("rc_length_lo", pa.float32()),
        ("rc_length_hi", pa.float32()),
        ("rc_margin_lo", pa.float32()),
        ("rc_margin_hi", pa.float32()),
        ("rc_margin_eq5_lo", pa.float32()),
        ("rc_margin_eq5_hi", pa.float32()),
        ("mc_abs_mean", pa.float32()),  # mean |relative margin change| over every corrupted variant, 0.5% tails trimmed
        ("mc_abs_mean_lo", pa.float32()),  # its bootstrap interval
        ("mc_abs_mean_hi", pa.float32()),
    ]
)

MARGIN_CHANGE = pa.schema(
    [
        ("model_id", STR),
        ("variant", STR),  # a corruption name, or "all" over every corruption and severity
        ("x", pa.float32()),  # bin centre of (m_orig - m_corr) / m_orig, 0.5% tails trimmed per model
        ("density", pa.float32()),  # probability density at x
    ]
)

PAIRED = pa.schema(
    [
        ("model_id", STR),
        ("ref_id", STR),  # the model compared with (listed before model_id); = model_id for "corrupted_vs_clean"
        # "clean_accuracy", "corrupted_accuracy" (corruption mean), "mc_abs_mean" (Fig. 10's mean |relative margin
        # change|): model minus ref; "corrupted_vs_clean": the model's corruption mean minus its clean accuracy
        ("quantity", STR),
        ("n", pa.int32()),  # evaluation samples (every one: the full evaluation set)
        ("diff", pa.float32()),  # the difference on the full evaluation set
        ("diff_lo", pa.float32()),  # paired bootstrap interval: both sides resampled on the same images
        ("diff_hi", pa.float32()),
        ("better", pa.int32()),  # images (x corrupted variants) the model gets right and ref wrong; -1: n/a
        ("worse", pa.int32()),  # ... wrong and ref right (McNemar's discordant pairs)
    ]
)

EXEMPLARS = pa.schema(
    [
        ("arch", STR),
        ("sample_id", pa.int32()),  # index in the evaluation set
        ("label", pa.int16()),
        ("dense_pred", pa.int16()),  # modal prediction of the dense models (over seeds)
        ("pruned_pred", pa.int16()),  # modal prediction of the pruned models
        ("pruned_agreement", pa.float32()),  # fraction of pruned models that predict pruned_pred
    ]
)

CURSE = pa.schema(
    [
        ("study", STR),  # "random" (uniform random vectors) or an architecture name (penultimate width sweep)
        ("dimension", pa.int32()),  # vector dimension / penultimate width m
        ("angle_mean", pa.float32()),  # degrees
        ("angle_std", pa.float32()),
        ("accuracy", pa.float32()),  # test accuracy of the trained model (NaN for random vectors)
    ]
)

SAMPLES = pa.schema(
    [
        ("sample_id", pa.int32()),  # index in the evaluation set
        ("label", pa.int16()),
        ("class_name", STR),
        ("thumbnail", pa.string()),  # data:image/png;base64,... of the clean image, usable as a Vega image URL
        ("pie", pa.bool_()),  # a pruning-identified exemplar for some architecture
        # In the class-stratified uniform random sample (store.sampling); false: an extra exemplar row, for the
        # sample view only (densities and class statistics leave it out)
        ("in_sample", pa.bool_()),
    ]
)


def outcomes_schema(corruptions) -> pa.Schema:
    """Correctness of every shipped sample under every model, compact enough (int8 counts per corruption) for the
    browser to recompute accuracy on any selected subset of samples."""
    return pa.schema(
        [
            ("model_id", STR),
            ("sample_id", pa.int32()),
            ("correct_clean", pa.bool_()),
            ("robustness", pa.int16()),  # correct predictions over all corrupted versions (eq. 7)
        ]
        # One column per corruption: correct predictions over its evaluated severities.
        + [(f"c_{name}", pa.int8()) for name in corruptions]
    )


WIDE_CLASSES = 20  # up to this many classes a geometry row holds the angle to every class direction (angle_<j>)

CONFUSED = pa.schema(
    [
        ("arch", STR),
        ("class_id", pa.int16()),  # a true class with evaluation samples
        ("rank", pa.int8()),  # 0 = most confused; the geometry files' column angle_c<rank>
        ("confused_id", pa.int16()),  # the class its samples are confused with
        ("wrong", pa.int32()),  # predictions of confused_id for the class's samples, over the arch's models x variants
        ("mean_angle", pa.float32()),  # mean angle of the class's samples to confused_id's direction, degrees
    ]
)


def confused_columns(num_classes: int, confused_classes: int) -> int | None:
    """How many confused-class angle columns a geometry row holds: None (one angle column per class) up to
    WIDE_CLASSES classes, else `confused_classes` (k), capped at the other classes' count."""
    return None if num_classes <= WIDE_CLASSES else min(confused_classes, num_classes - 1)


def geometry_schema(num_classes: int, confused: int | None = None) -> pa.Schema:
    """Per-sample rows of one model: one per shipped sample and variant (clean, or corruption x severity).

    The angle columns: `angle_<j>` for every class j when `confused` is None, else `angle_c<r>` for r < `confused`,
    the angle to the r-th class the row's true class is most confused with (confused.arrow names it).
    """
    angles = (
        [(f"angle_{j}", pa.float32()) for j in range(num_classes)]
        if confused is None
        else [(f"angle_c{r}", pa.float32()) for r in range(confused)]
    )
    return pa.schema(
        [
            ("model_id", STR),
            ("sample_id", pa.int32()),
            ("variant", STR),  # "clean" or a corruption name
            ("severity", pa.int8()),  # 0 for clean
            ("label", pa.int16()),
            ("pred", pa.int16()),
            ("correct", pa.bool_()),
            ("prob_true", pa.float32()),
            ("loss", pa.float32()),
            ("length", pa.float32()),  # ||X||
            ("margin", pa.float32()),  # signed distance to the nearest decision boundary
            ("margin_eq5", pa.float32()),  # the same without the bias (eq. 5 as printed): to hyperplanes through 0
            ("angle_true", pa.float32()),  # angle to the true class direction, degrees
            ("rel_margin_change", pa.float32()),  # (m_clean - m) / m_clean of the same sample and model; 0 for clean
            ("robustness", pa.int16()),  # correct predictions over all corrupted versions of the sample (eq. 7)
            ("degenerate", pa.bool_()),  # ||X|| == 0, angles NaN
        ]
        # One column per class direction (few classes), or per confused class (many): the parallel coordinates.
        + angles
    )


def store_geometry_schema(manifest: dict) -> pa.Schema:
    """The geometry files' schema of the store described by `manifest` (its class count and confused classes)."""
    dataset = manifest.get("dataset") or {}
    return geometry_schema(len(dataset.get("classes") or ()), dataset.get("confused_classes"))


TABLES = {
    "models.arrow": MODELS,
    "accuracy.arrow": ACCURACY,
    "correlations.arrow": CORRELATIONS,
    "margin_change.arrow": MARGIN_CHANGE,
    "paired.arrow": PAIRED,
    "exemplars.arrow": EXEMPLARS,
    "curse.arrow": CURSE,
    "samples.arrow": SAMPLES,
    "confused.arrow": CONFUSED,
}
# Stages a recipe can switch off (the page leaves their figure out), and confused.arrow (many classes only); every
# other table, and outcomes.arrow, is in every store.
OPTIONAL_TABLES = ("curse.arrow", "confused.arrow", "paired.arrow")  # paired.arrow: written from schema 1.3 on
REQUIRED_FILES = tuple(n for n in TABLES if n not in OPTIONAL_TABLES) + ("outcomes.arrow",)
