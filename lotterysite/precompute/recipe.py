"""Recipes: a TOML file describing a whole experiment, parsed into frozen configs with errors naming the field.

name = "demo"                      # names the store (store/<name>) and the site
title = "..."                      # shown on the site
seeds = [0]                        # one dense model (and its pruned family) per seed

[data]                             # DataConfig, plus:
name = "fashion_mnist"             # or "imagefolder" with root = "DIR" and image_size = N (see data.imagefolder)
eval_subset = 1000                 # evaluation images (first N of the test split); aggregates use all of them

[[architectures]]                  # ModelConfig: arch, options; checkpoint = "..." loads instead of training
arch = "lenet5"                    # registry name, tv:<name>, or package.module:function / file.py:function
# weights = "FILE"                 # a state_dict file to load instead of training (any arch)
[architectures.train]              # TrainConfig fields
epochs = 4

[[models]]                         # a model pruned elsewhere, shown beside lotterysite's own
file = "pruned.pt"                 # its state_dict (torch.nn.utils.prune masks or zeros)
base = "lenet5"                    # the [[architectures]] arch it was pruned from
label = "my-method"                # the method name shown on the site
amount = 0.5                       # optional: where it sits on the amount axis (default: measured sparsity)

[[pruning]]                        # PruneConfig fields, with `amounts` (a list) instead of `amount`
method = "magnitude"
amounts = [0.1, 0.3, 0.5, 0.7, 0.9]
retrain_epochs = 1                 # > 0: ship both the pruned and the retrained model

[corruptions]                      # CorruptionConfig
[ship]                             # ShipConfig: what per-sample data the browser gets
[curse]                            # CurseConfig: §5.4 study

Every setting is declared once, as a `setting(...)` field of the config it parses into (lotterysite/settings.py):
the parser below reads each table from those declarations (`TABLES`, `table_settings`), and the JSON Schema and
docs/recipe-reference.md are generated from them (precompute/declare.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import tomllib
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from ..config import SEED_MAX, DataConfig, ModelConfig, TrainConfig
from ..corruptions import NAMES, PARAMS, SEVERITIES
from ..errors import LotterysiteError
from ..pruning import PruneConfig, list_methods
from ..settings import Declared, declared, setting, value_error

MAX_PARAMETERS = 2**31  # a model's parameters: far beyond any model lotterysite prunes (8 GiB of float32 weights)
MAX_RANDOM_VALUES = 2**27  # curse: random_samples x the largest random_dims, per array (1 GiB of float64)
MAX_NAME = 100  # bytes of a recipe name: the store's folder name, plus ".work" and ".NAME.staging-RUN" beside it
MAX_CONFUSED = 32  # ship.confused_classes: more angle axes than a parallel-coordinates plot keeps readable


class RecipeError(LotterysiteError, ValueError):
    """A recipe that cannot run; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class ArchConfig:
    model: ModelConfig  # architecture and its factory options ([[architectures]] arch, options)
    train: TrainConfig  # how the dense model is trained ([architectures.train]; ignored when loaded instead)
    checkpoint: str | None = setting(None, "a dense lotterysite checkpoint to load instead of training, relative to "
                                     "the recipe")  # fmt: skip
    weights: str | None = setting(None, "a state_dict file (any layout `models.load_weights` reads) to load instead "
                                  "of training, relative to the recipe")  # fmt: skip


@dataclass(frozen=True)
class ExternalModel:
    file: str = setting(help="state_dict or checkpoint of a model pruned by another tool, relative to the recipe")
    base: str = setting(help="the arch of the [[architectures]] table it was pruned from")
    label: str = setting(help="the method name shown on the site (not one of lotterysite's own method names)")
    amount: float | None = setting(None, "where it sits on the amount axis (unset: its measured sparsity)", low=0,
                                   high=1, high_open=True, out_of_range="is {value}, outside [0, 1): an amount is the "
                                   "fraction of weights removed")  # fmt: skip


@dataclass(frozen=True)
class PruneSweep:
    method: str = setting(help="a registered pruning method: random, magnitude, taylor, mpt (`lotterysite.pruning."
                          "list_methods()`)")  # fmt: skip
    amounts: tuple[float, ...] = setting(help="fractions of prunable weights removed, one model each", low=0,
                                         high=1, low_open=True, high_open=True, out_of_range="is {value}, outside "
                                         "(0, 1): an amount is the fraction of weights removed")  # fmt: skip
    options: dict[str, Any] = field(default_factory=dict)  # the table's PruneConfig settings (scope, taylor_batches...)
    # The table's PruneConfig.retrain_epochs, kept apart from `options`: it shapes the retrained copies only, so a
    # change to it leaves the pruned models' work files as they are.
    retrain_epochs: int = PruneConfig.retrain_epochs
    train_subset: int | None = setting(None, "training images Taylor, MPT, retraining and batch-norm recalibration "
                                       "see (the first N; unset: all)", low=1)  # fmt: skip
    archs: tuple[str, ...] | None = setting(None, "the architectures this table prunes (unset: every one)")
    label: str | None = setting(None, "the method name its models carry (unset: method), e.g. \"magnitude-lamp\": "
                                "two tables of one method need different labels")  # fmt: skip

    @property
    def name(self) -> str:
        """The method name in model ids, the store and the site: the label, else the method."""
        return self.label or self.method

    def config(self, amount: float, seed: int, *, retrain: bool, progress: bool = True) -> PruneConfig:
        return PruneConfig(
            method=self.method,
            amount=amount,
            seed=seed,
            retrain_epochs=self.retrain_epochs if retrain else 0,
            progress=progress,
            **self.options,
        )


@dataclass(frozen=True)
class CorruptionConfig:
    names: tuple[str, ...] = setting(help="\"all\" (the 19 CIFAR-10-C corruptions) or a list of their names",
                                     choices=NAMES, default_text='"all"')  # fmt: skip
    severities: tuple[int, ...] = setting(SEVERITIES, "severity levels evaluated", low=min(SEVERITIES),
                                          high=max(SEVERITIES))  # fmt: skip
    source: str = setting("generate", "\"generate\" on the fly, or a CIFAR-10-C folder of .npy files, relative to "
                          "the recipe")  # fmt: skip
    params: str = setting("cifar", "parameter tables when generating: \"cifar\" (CIFAR-10-C) or \"imagenet\" "
                          "(ImageNet-C)", choices=PARAMS)  # fmt: skip
    seed: int = setting(0, "seed of the random corruptions", low=0, high=SEED_MAX)


@dataclass(frozen=True)
class ShipConfig:
    samples_per_class: int = setting(50, "size of the class-stratified uniform random sample shipped to the browser "
                                     "(x the classes, proportional to class size), where the whole evaluation set "
                                     "does not fit max_rows_per_model (then all of it ships)", low=1)  # fmt: skip
    # A page fetches one slice (one variant) per model it draws, so shipping more severities adds files to the store
    # and the site, never bytes to a page (bench/RESULTS.md, "Severities"): by default every evaluated one ships.
    severities: tuple[int, ...] = setting(tuple(SEVERITIES), "severities whose per-sample geometry is shipped "
                                          "(aggregates use all); each must be evaluated", low=min(SEVERITIES),
                                          high=max(SEVERITIES), default_text="every evaluated severity "
                                          "(corruptions.severities)")  # fmt: skip
    # 50 000 holds the default sample (50 per class, 10 classes) at all 19 corruptions x 5 severities (96 rows a
    # sample): about 4 MB of Arrow per model.
    max_rows_per_model: int = setting(50_000, "per-model geometry file limit, keeps each view responsive: the whole "
                                      "evaluation set ships where it fits (rows = samples x (1 + corruptions x "
                                      "shipped severities)), else the sample", low=1)  # fmt: skip
    seed: int = setting(0, "seeds the stratified draw (store.sampling)", low=0, high=SEED_MAX)
    thumbnails: bool = setting(True, "embed a PNG thumbnail of every shipped sample")
    confused_classes: int = setting(8, "k: with more than 20 classes a geometry row holds the angles to the k "
                                    "classes its true class is most confused with, not one angle per class", low=1,
                                    high=MAX_CONFUSED)  # fmt: skip


@dataclass(frozen=True)
class CurseConfig:
    enabled: bool = setting(True, "run the §5.4 study")
    random_dims: tuple[int, ...] = setting((2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096), "dimensions of "
                                           "the random vector pairs", low=1)  # fmt: skip
    random_samples: int = setting(10_000, "random vector pairs per dimension", low=2)
    arch: str = setting("lenet5", "architecture whose penultimate width is swept (needs a feature_dim option)")
    widths: tuple[int, ...] = setting((2, 4, 8, 16, 32, 64, 128, 256), "penultimate widths trained", low=1)
    epochs: int = setting(1, "training epochs per width", low=0)
    train_subset: int | None = setting(20_000, "training images per width (unset: all; the default is cut to the "
                                       "data's size)", low=1)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Recipe:
    name: str = setting(help="names the store (store/<name>) and the site: letters, digits, - and _")
    title: str = setting(help="human title shown on the site", default_text="the name")
    data: DataConfig
    eval_subset: int | None = setting(None, "evaluation images, the first N of the test split (unset: all); every "
                                      "aggregate uses all of them", low=1, table="data")  # fmt: skip
    seeds: tuple[int, ...] = setting((0,), "one dense model (and its pruned family) per seed", low=0, high=SEED_MAX)
    architectures: tuple[ArchConfig, ...]
    pruning: tuple[PruneSweep, ...]
    corruptions: CorruptionConfig
    ship: ShipConfig
    curse: CurseConfig
    batch_size: int = setting(512, "evaluation batch size", low=1)
    path: str = ""  # where the recipe was read from
    models: tuple[ExternalModel, ...] = ()  # models pruned elsewhere ([[models]] tables)
    sources: tuple[tuple[str, str], ...] = ()  # (arch spelt "file.py:function", the file it names), see imported.py

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Table:
    """One table of the recipe format: where it sits, the classes whose declared settings it holds, whether it is
    an array of tables ([[pruning]]) and whether a recipe must have it."""

    where: str  # "" for the top level; "architectures.train" for a table inside each [[architectures]]
    classes: tuple[type, ...]
    array: bool
    required: bool
    help: str


# The recipe's tables. The parser reads each table's settings from its classes' declarations; precompute.declare
# derives the JSON Schema and the recipe reference from the same list.
TABLES: tuple[Table, ...] = (
    Table("", (Recipe,), False, True, "the top level"),
    Table("data", (DataConfig,), False, True, "the data set"),
    Table(
        "architectures", (ModelConfig, ArchConfig), True, True, "one per architecture: trained, or loaded from a file"
    ),  # fmt: skip
    Table(
        "architectures.train",
        (TrainConfig,),
        False,
        False,
        "how the dense model is trained (ignored when it is loaded from checkpoint or weights)",
    ),  # fmt: skip
    Table("models", (ExternalModel,), True, False, "a model pruned elsewhere, shown beside lotterysite's own"),
    Table(
        "pruning",
        (PruneSweep, PruneConfig),
        True,
        False,
        "one per pruning method (or variant of one); each amount makes one model per architecture and seed",
    ),  # fmt: skip
    Table("corruptions", (CorruptionConfig,), False, False, "the corrupted variants every model is evaluated on"),
    Table("ship", (ShipConfig,), False, False, "the per-sample data the browser gets"),
    Table("curse", (CurseConfig,), False, False, "the §5.4 curse-of-dimensionality study"),
)


def table_settings(where: str) -> list[Declared]:
    """Every setting of the recipe table `where` ("" for the top level), in declaration order."""
    classes = next(t.classes for t in TABLES if t.where == where)
    out = [d for cls in classes for d in declared(cls)]
    if where == "data":
        out += declared(Recipe, table="data")
    return out


class _Reader:
    """Pops fields from one TOML table, so leftovers can be reported as unknown."""

    def __init__(self, path: str, where: str, table: Any):
        self.path, self.where = path, where
        if not isinstance(table, dict):
            self.fail("", f"must be a table, got {type(table).__name__}")
        self.table = dict(table)
        self.consumed: set[str] = set()  # fields already read, offered as suggestions for a misspelt one

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where and key else (key or self.where)

    def fail(self, key: str, message: str):
        raise RecipeError(f"{self.path}: field {self.name(key)!r} {message}")

    def get(self, key: str, kind, default=MISSING):
        self.consumed.add(key)
        if key not in self.table:
            if default is MISSING:
                self.fail(key, "is missing")
            return default
        value = self.table.pop(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(key, f"must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            self.fail(key, f"must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value!r}")
        return value

    def get_list(self, key: str, kind, default=MISSING) -> tuple:
        value = self.get(key, list, default)
        if value is default:
            return value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        out = []
        for i, v in enumerate(value):
            if float in kinds and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if isinstance(v, bool) or not isinstance(v, kinds):
                self.fail(f"{key}[{i}]", f"must be {' or '.join(k.__name__ for k in kinds)}, got {v!r}")
            if isinstance(v, float) and not math.isfinite(v):
                self.fail(f"{key}[{i}]", f"must be a finite number, got {v!r}")
            if v in out:
                self.fail(f"{key}[{i}]", f"repeats {v!r}; list each value once")
            out.append(v)
        return tuple(out)

    def setting(self, d: Declared):
        """One declared setting: its type (strict booleans, integers that are integers, finite floats; a list's
        items each, once each), range and choices, as declared; absent, its default (None where it may be left
        out for the code to fill)."""
        default = None if d.default is MISSING and d.default_text is not None else d.default
        if d.is_list:
            value = self.get_list(d.name, d.types, default)
            items = () if value is default else enumerate(value)
            for j, v in items:
                problem = value_error(d, v)
                if problem:
                    self.fail(f"{d.name}[{j}]", problem)
            return value
        value = self.get(d.name, d.types, default)
        if value is not None:
            problem = value_error(d, value)
            if problem:
                self.fail(d.name, problem)
        return value

    def read(self, settings: list[Declared], *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """The declared `settings` of this table, by name (tables, such as `options`, and `skip` left to the
        caller)."""
        return {d.name: self.setting(d) for d in settings if not d.is_table and d.name not in skip}

    def build(self, cls, settings: list[Declared], **fixed):
        """`cls` from this table's declared settings (and `fixed`); a value the class refuses names the table."""
        values = self.read(settings)
        self.done()
        try:
            return cls(**values, **fixed)
        except (TypeError, ValueError) as e:
            raise RecipeError(f"{self.path}: table {self.where!r}: {e}") from None

    def check(self, key: str, value, low=None, high=None, low_open: bool = False):
        if low is not None and (value <= low if low_open else value < low):
            self.fail(key, f"must be {'>' if low_open else '>='} {low}, got {value}")
        if high is not None and value > high:
            self.fail(key, f"must be <= {high}, got {value}")
        return value

    def done(self, allowed: set[str] = frozenset()):
        for key in self.table:
            if key not in allowed:
                options = sorted(set(allowed) | self.consumed)
                close = difflib.get_close_matches(key, options, n=1)
                hint = (
                    f"; did you mean {close[0]!r}?"
                    if close
                    else (f"; allowed: {', '.join(options)}" if options else "")
                )
                self.fail(key, f"is not a recipe field{hint}")


def _factory_options(arch: str) -> set[str] | None:
    """Keyword options a registered architecture's factory takes (None: any, e.g. torchvision's)."""
    from ..models import _registry

    factory = _registry._MODELS.get(arch)
    if factory is None:
        return None
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params} - {"num_classes", "in_channels", "image_size"}


def _resolve(recipe_path: str, value: str) -> str:
    """A path in a recipe is relative to the recipe's folder, not to where the command runs."""
    # Absolute and resolved: the same recipe read as r.toml or dir/r.toml (or through a link) names the same files.
    p = Path(value).expanduser()
    return str((p if p.is_absolute() else Path(recipe_path).parent / p).resolve())


def parse_recipe(text: str, path: str = "<recipe>") -> Recipe:
    """Parse and validate recipe TOML text; every error is one line naming `path` and the field.

    Every setting's type, range and choices are read from its declaration (`table_settings`); what is checked
    here by hand is what no one setting knows: names in registries, settings that depend on each other, and
    duplicates. What needs the data (subsets, model shapes) is `check_against_data`, run before any work.
    """
    try:
        doc = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML ({e}); fix the syntax at that line") from None
    top = _Reader(path, "", doc)
    values = top.read(table_settings(""))
    name = values["name"]
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        top.fail("name", f"must be letters, digits, '-' or '_' (it names a folder), got {name!r}")
    if len(name.encode()) > MAX_NAME:
        top.fail("name", f"is {len(name.encode())} bytes long, more than {MAX_NAME}: it names the store folder and "
                         "the folders written beside it (a file name holds 255 bytes); shorten it")  # fmt: skip
    title = values["title"] if values["title"] is not None else name
    if not values["seeds"]:
        top.fail("seeds", "must be a non-empty list of distinct integers, got []")

    data, eval_subset = _data_table(top, path)
    archs, sources = _architectures(top, path)
    externals = _externals(top, archs, path)
    sweeps = _sweeps(top, archs, externals, values["seeds"], path)
    corruptions = _corruptions(top, path)
    ship = _ship(top, path, corruptions)
    curse = _curse(top, path)
    top.done()

    return Recipe(
        name=name,
        title=title,
        data=data,
        eval_subset=eval_subset,
        seeds=values["seeds"],
        architectures=tuple(archs),
        pruning=tuple(sweeps),
        corruptions=corruptions,
        ship=ship,
        curse=curse,
        batch_size=values["batch_size"],
        path=path,
        models=externals,
        sources=tuple(sources.items()),
    )


def _data_table(top: _Reader, path: str) -> tuple[DataConfig, int | None]:
    """The [data] table, and the top-level eval_subset checked against its test_subset."""
    data_r = _Reader(path, "data", top.get("data", dict))
    eval_subset = data_r.setting(next(d for d in table_settings("data") if d.name == "eval_subset"))
    data = data_r.build(DataConfig, declared(DataConfig))
    if data.name != "imagefolder" and data.name not in _datasets():
        known = ", ".join([*_datasets(), "imagefolder"])
        data_r.fail("name", f"is {data.name!r}, not a known data set; known: {known}")
    data = _check_data(data_r, data, path)
    if eval_subset is not None and data.test_subset is not None and eval_subset > data.test_subset:
        data_r.fail("eval_subset", f"is {eval_subset}, more than test_subset = {data.test_subset}")
    return data, eval_subset


def _corruptions(top: _Reader, path: str) -> CorruptionConfig:
    """The [corruptions] table: known CIFAR-10-C names, each once; a folder source relative to the recipe."""
    c = _Reader(path, "corruptions", top.get("corruptions", dict, {}))
    names = c.get("names", (list, str), "all")
    if names == "all":
        names = NAMES
    elif isinstance(names, str):
        c.fail("names", f'must be "all" or a list of corruption names, got {names!r}')
    for j, n in enumerate(names):
        if n not in NAMES:
            close = difflib.get_close_matches(str(n), NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(NAMES)}"
            c.fail(f"names[{j}]", f"is {n!r}, not a CIFAR-10-C corruption{hint}")
        if n in names[:j]:
            c.fail(f"names[{j}]", f"repeats {n!r}; list each corruption once")
    corruption = c.read(declared(CorruptionConfig), skip=("names",))
    if corruption["source"] != "generate":
        corruption["source"] = _resolve(path, corruption["source"])
    c.done()
    return CorruptionConfig(**{**corruption, "names": tuple(names),
                               "severities": tuple(sorted(corruption["severities"]))})  # fmt: skip


def _ship(top: _Reader, path: str, corruptions: CorruptionConfig) -> ShipConfig:
    """The [ship] table: the shipped severities must be evaluated ones."""
    s = _Reader(path, "ship", top.get("ship", dict, {}))
    given = "severities" in s.table  # default: every evaluated severity (not ShipConfig's 1-5)
    shipping = s.read(declared(ShipConfig))
    if not given:
        shipping["severities"] = corruptions.severities
    for j, v in enumerate(shipping["severities"]):
        if v not in corruptions.severities:
            s.fail(
                f"severities[{j}]",
                f"is {v}, which is not evaluated (corruptions.severities = {list(corruptions.severities)})",
            )
    s.done()
    return ShipConfig(**{**shipping, "severities": tuple(sorted(shipping["severities"]))})


def _curse(top: _Reader, path: str) -> CurseConfig:
    """The [curse] table: a registered architecture with a feature_dim to sweep, and arrays that fit memory."""
    k = _Reader(path, "curse", top.get("curse", dict, {}))
    curse = k.build(CurseConfig, declared(CurseConfig))
    from ..models import is_model, list_models

    if not is_model(curse.arch) or curse.arch.startswith("tv:"):
        k.fail("arch", f"is {curse.arch!r}, not a registered architecture; known: {', '.join(list_models())}")
    if "feature_dim" not in (_factory_options(curse.arch) or set()):
        k.fail("arch", f"is {curse.arch!r}, which has no feature_dim option to sweep; use lenet5")
    for key in ("random_dims", "widths"):
        if not getattr(curse, key):
            k.fail(key, "must list at least one value")
    n_values = curse.random_samples * max(curse.random_dims)
    if curse.enabled and n_values > MAX_RANDOM_VALUES:
        k.fail("random_samples", f"is {curse.random_samples}: with random_dims up to {max(curse.random_dims)} that "
                                 f"is {n_values:,} random values per array, more than {MAX_RANDOM_VALUES:,} "
                                 f"({MAX_RANDOM_VALUES * 8 / 2**30:.1f} GiB); lower random_samples or "
                                 "random_dims")  # fmt: skip
    return curse


def _datasets() -> list[str]:
    from ..data import list_datasets

    return list_datasets()


def _architectures(top: _Reader, path: str) -> tuple[list[ArchConfig], dict[str, str]]:
    """The [[architectures]] tables; `sources` maps a "file.py:function" arch to the file it names."""
    from ..models import is_model, list_models

    archs, sources = [], {}
    arch_tables = top.get("architectures", list)
    if not arch_tables:
        top.fail("architectures", "must list at least one [[architectures]] table")
    for i, table in enumerate(arch_tables):
        r = _Reader(path, f"architectures[{i}]", table)
        values = r.read(table_settings("architectures"))
        arch = values["arch"]
        if not is_model(arch):
            r.fail("arch", f"is {arch!r}, not a known architecture; known: {', '.join(list_models())}, tv:<name>")
        options = r.get("options", dict, {})
        allowed = _factory_options(arch)
        for key, value in options.items():
            if allowed is not None and key not in allowed:
                r.fail(
                    f"options.{key}", f"is not an option of {arch}; its options: {', '.join(sorted(allowed)) or 'none'}"
                )
            if not isinstance(value, (int, float, str, bool)):
                r.fail(f"options.{key}", f"must be a number, string or boolean, got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                r.fail(f"options.{key}", f"must be a finite number, got {value!r}")
        checkpoint = values["checkpoint"]
        if checkpoint is not None:
            checkpoint = _resolve(path, checkpoint)
        options, weights = _check_own_arch(r, arch, options, checkpoint, values["weights"], path, sources)
        train_r = _Reader(path, f"architectures[{i}].train", r.get("train", dict, {}))
        train = train_r.build(TrainConfig, table_settings("architectures.train"))
        r.done()
        archs.append(ArchConfig(ModelConfig(arch=arch, options=options), train, checkpoint, weights))
    if len({a.model.arch for a in archs}) != len(archs):
        top.fail("architectures", "lists an architecture twice; give each [[architectures]] a different arch")
    return archs, sources


def _externals(top: _Reader, archs: list[ArchConfig], path: str) -> tuple[ExternalModel, ...]:
    """The [[models]] tables: models pruned elsewhere."""
    externals = tuple(
        _external_model(_Reader(path, f"models[{i}]", t), archs, path)
        for i, t in enumerate(top.get("models", list, []))
    )
    if len({(m.base, m.label, m.amount) for m in externals}) != len(externals):
        top.fail(
            "models", "lists two models with the same base, label and amount; give each a different label or amount"
        )
    keys = [model_key(external_id(m)) for m in externals]  # the names of their work files
    for i, key in enumerate(keys):
        if key in keys[:i]:
            other = externals[keys.index(key)]
            top.fail(f"models[{i}].label", f"is {externals[i].label!r}, which names the same work files as "
                     f"{other.label!r} (spaces, '-' and '_' read alike there); choose another")  # fmt: skip
    return externals


def _sweeps(top: _Reader, archs: list[ArchConfig], externals, seeds, path: str) -> list[PruneSweep]:
    """The [[pruning]] tables: the PruneSweep settings, and the PruneConfig settings as each sweep's options."""
    sweeps = []
    own = declared(PruneSweep)
    for i, table in enumerate(top.get("pruning", list, [])):
        r = _Reader(path, f"pruning[{i}]", table)
        values = r.read(own)
        method, label = values["method"], values["label"]
        if method not in list_methods():
            r.fail("method", f"is {method!r}, not a pruning method; known: {', '.join(list_methods())}")
        if label is not None:
            # Two tables of one method (global and LAMP magnitude, say) need two names; a label naming another
            # method, or dense, would put these models on that method's curve.
            if not label or not all(c.isalnum() or c in "-_" for c in label):
                r.fail("label", f"must be letters, digits, '-' or '_', got {label!r}")
            plain = "".join(c for c in label.lower() if c.isalnum())
            if plain in ({m for m in list_methods() if m != method} | {"dense"}) or plain.endswith("retrain"):
                r.fail("label", f"is {label!r}: another method's name (or dense, or ends in retrain, which the "
                                f"retrained copies add); name this variant of {method}, e.g. {method}-v2")  # fmt: skip
        if not values["amounts"]:
            r.fail("amounts", "must list at least one amount")
        known = [a.model.arch for a in archs]
        for j, a in enumerate(values["archs"] or ()):
            if a not in known:
                r.fail(
                    f"archs[{j}]",
                    f"is {a!r}, not an architecture of this recipe; its architectures: {', '.join(known)}",
                )
        # Only the settings the table gives go into `options` (they, not the code's defaults, key its work files).
        settings = declared(PruneConfig)
        options = r.read([d for d in settings if d.name in r.table])
        r.consumed.update(d.name for d in settings)  # a misspelt one is offered its closest setting
        r.done()
        retrain_epochs = options.pop("retrain_epochs", PruneSweep.retrain_epochs)
        sweep = PruneSweep(**values, options=options, retrain_epochs=retrain_epochs)
        try:
            sweep.config(sweep.amounts[0], seeds[0], retrain=True)
        except (TypeError, ValueError) as e:
            raise RecipeError(f"{path}: table 'pruning[{i}]': {e}") from None
        sweeps.append(sweep)
    if len({model_key(s.name) for s in sweeps}) != len(sweeps):
        top.fail("pruning", "lists a method twice; merge their amounts into one [[pruning]] table, or give the "
                            "tables different labels (label = \"magnitude-lamp\")")  # fmt: skip
    own_names = {model_key(s.name) for s in sweeps}
    for i, m in enumerate(externals):  # a model pruned elsewhere under a [[pruning]] label would join that curve
        if model_key(m.label) in own_names:
            top.fail(f"models[{i}].label", f"is {m.label!r}, the label of a [[pruning]] table; choose another")
    return sweeps


def check_against_data(recipe: Recipe, train, test) -> None:
    """The checks that need the data set (its sizes and image shape), run before any work: subsets no larger
    than the data, every architecture buildable with its options. `train` / `test` are the full ImageSets."""
    import torch

    from ..models import create_model

    p, d = recipe.path, recipe.data

    def fail(field: str, message: str):
        raise RecipeError(f"{p}: field {field!r} {message}")

    if train.num_classes < 2:  # a classifier of one class trains to nothing, and its angles have no other class
        names = ", ".join(map(repr, train.classes))
        field_name = "data.root" if d.name == "imagefolder" else "data.name"
        fail(field_name, f"gives {train.num_classes} class ({names}); a classifier needs 2 or more: add a class folder")
    for key, n, have in (
        ("data.train_subset", d.train_subset, len(train)),
        ("data.test_subset", d.test_subset, len(test)),
    ):
        if n is not None and n > have:
            fail(key, f"is {n}, but {d.name} has only {have} images in that split")
    n_train = min(len(train), d.train_subset or len(train))
    n_test = min(len(test), d.test_subset or len(test))
    if recipe.eval_subset is not None and recipe.eval_subset > n_test:
        fail("data.eval_subset", f"is {recipe.eval_subset}, but only {n_test} test images are used")
    for i, sweep in enumerate(recipe.pruning):
        if sweep.train_subset is not None and sweep.train_subset > n_train:
            fail(f"pruning[{i}].train_subset", f"is {sweep.train_subset}, but only {n_train} training images are used")
    default_curse = CurseConfig().train_subset  # the default clamps silently; a value the recipe sets must fit
    c = recipe.curse
    if c.enabled and c.train_subset is not None and c.train_subset != default_curse and c.train_subset > n_train:
        fail("curse.train_subset", f"is {c.train_subset}, but only {n_train} training images are used")
    shape = dict(num_classes=train.num_classes, in_channels=train.in_channels, image_size=train.image_size)
    builds = [
        (f"architectures[{i}].options", a.model.arch, a.model.options) for i, a in enumerate(recipe.architectures)
    ]
    if c.enabled:
        builds += [("curse.widths", c.arch, {"feature_dim": w}) for w in c.widths]
    for field_name, arch, options in builds:
        try:
            with torch.device("meta"):  # shapes only: no memory, no time
                model = create_model(arch, **shape, **options)
        except Exception as e:  # noqa: BLE001 - factories raise many types for a bad option
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            fail(
                field_name,
                f"does not build {arch} for {train.image_size}-px, {train.in_channels}-channel images ({first})",
            )
        n = sum(p.numel() for p in model.parameters())
        if n > MAX_PARAMETERS:  # a size that passes the shape check, then fails to allocate after minutes of work
            fail(field_name, f"builds {arch} with {n:,} parameters, more than {MAX_PARAMETERS:,} "
                             f"({MAX_PARAMETERS * 4 / 2**30:.0f} GiB of float32 weights); lower the option "
                             f"{' or '.join(sorted(map(str, options))) or 'values'}")  # fmt: skip


def _check_data(r: _Reader, data: DataConfig, path: str) -> DataConfig:
    if data.name != "imagefolder":
        for key in ("image_size", "resize", "interpolation", "classes"):
            if getattr(data, key) is not None:
                r.fail(key, f'applies to name = "imagefolder" only, not {data.name!r}; remove it')
        return data if data.root is None else dataclasses.replace(data, root=_resolve(path, data.root))
    if not data.root:
        r.fail(
            "root", 'is missing; name = "imagefolder" needs root = "DIR" holding DIR/train/<class> and DIR/test/<class>'
        )
    if (
        data.image_size is None
        or isinstance(data.image_size, bool)
        or not isinstance(data.image_size, int)
        or data.image_size < 8
    ):
        r.fail(
            "image_size",
            f"must be an integer >= 8 (pixels per side after resize and centre crop), got {data.image_size!r}",
        )
    if data.resize is not None and data.resize < data.image_size:
        r.fail("resize", f"is {data.resize}, smaller than image_size {data.image_size}: it is the shorter side "
                         "before the centre crop (ImageNet's evaluation: resize = 256, image_size = 224)")  # fmt: skip
    # Files and folders are checked when the recipe runs (precompute.custom.check_inputs), so a recipe parses
    # on any machine.
    classes = _resolve(path, data.classes) if data.classes else None
    return dataclasses.replace(data, root=_resolve(path, data.root), classes=classes)


def _check_own_arch(r: _Reader, arch: str, options: dict, checkpoint, weights, path: str, sources: dict):
    """Import paths resolve now (not after an hour of work); weights files exist; tv: models with weights from a
    file default to the ImageNet normalisation torchvision's published weights were trained with. A "file.py"
    arch keeps its spelling; the file it names, relative to the recipe, goes into `sources`."""
    from ..models import ModelError
    from ..models.imported import is_import_path, register_sources, resolve_factory
    from ..models.torchvision_adapter import AUX_LOGITS

    if is_import_path(arch):
        module = arch.partition(":")[0]
        if module.endswith(".py"):
            sources[arch] = _resolve(path, module)
            register_sources({arch: sources[arch]})
        try:
            resolve_factory(arch)
        except ModelError as e:
            r.fail("arch", f"does not resolve: {e}")
    if weights is not None:
        if checkpoint is not None:
            r.fail("weights", "and 'checkpoint' both given; a checkpoint already holds weights, keep one")
        weights = _resolve(path, weights)
        if arch.startswith("tv:") and "input_norm" not in options:
            options = {**options, "input_norm": "imagenet"}
        if arch.startswith("tv:") and arch[3:] in AUX_LOGITS and "transform_input" not in options:
            options = {**options, "transform_input": True}  # as torchvision builds them for its published weights
    return options, weights


def _external_model(r: _Reader, archs: list[ArchConfig], path: str) -> ExternalModel:
    from ..pruning import list_methods

    values = r.read(table_settings("models"))
    r.done()
    base, label = values["base"], values["label"]
    known = [a.model.arch for a in archs]
    if base not in known:
        r.fail("base", f"is {base!r}, not the arch of an [[architectures]] table; known: {', '.join(known)}")
    if not label or not all(c.isalnum() or c in "-_ " for c in label) or label != label.strip() or label == "dense":
        r.fail("label", f"must be a method name of letters, digits, '-', '_' or inner spaces (not 'dense'), got "
                        f"{label!r}")  # fmt: skip
    # lotterysite's own models carry the method names (and "<method>+retrain"): a model pruned elsewhere under one
    # of them would sit on that method's curve on the site, or share its work files at the same amount.
    plain = "".join(c for c in label.lower() if c.isalnum())
    taken = {name for m in list_methods() for name in (m, m + "retrain")} | {"dense"}
    if plain in taken:
        r.fail("label", f"is {label!r}, a name lotterysite's own models use ({', '.join(list_methods())}, with "
                        "'+retrain', and dense); name the tool or method that pruned this model")  # fmt: skip
    return ExternalModel(**{**values, "file": _resolve(path, values["file"])})


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors write one) is not TOML
    except FileNotFoundError:
        raise RecipeError(
            f"{path}: recipe not found; pass the path of a TOML recipe such as precompute/demo.toml"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"{path}: cannot read the recipe ({e})") from None
    return parse_recipe(text, str(path))


def shipped_rows(recipe: Recipe, n_shipped: int) -> int:
    """Rows of one model's geometry file: shipped samples x (clean + corruptions x shipped severities)."""
    return n_shipped * (1 + len(recipe.corruptions.names) * len(recipe.ship.severities))


def model_id(arch: str, method: str, amount: float, *, retrained: bool, seed: int, many_seeds: bool) -> str:
    if method == "dense":
        base = f"{arch}/dense"
    else:
        base = f"{arch}/{method}{'+retrain' if retrained else ''}/{amount:g}"
    return f"{base}/s{seed}" if many_seeds else base


def external_id(m: ExternalModel) -> str:
    """Model id of a [[models]] entry: base/label, and /amount when the recipe places it."""
    return f"{m.base}/{m.label}" + (f"/{m.amount:g}" if m.amount is not None else "")


def model_key(model_id: str) -> str:
    """A file-name-safe key: letters, digits, '-', '_', '.' only."""
    out = model_id.replace("/", "__").replace("+", "-").replace(":", "-")
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in out)
