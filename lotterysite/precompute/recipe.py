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
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DataConfig, ModelConfig, TrainConfig
from ..pruning import PruneConfig, list_methods


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class ArchConfig:
    model: ModelConfig  # architecture and its factory options
    train: TrainConfig  # how the dense model is trained (ignored when `checkpoint` is given)
    checkpoint: str | None = None  # a dense lotterysite checkpoint to load instead of training
    weights: str | None = None  # a state_dict file (any layout `models.load_weights` reads) to load instead of training


@dataclass(frozen=True)
class ExternalModel:
    file: str  # state_dict or checkpoint of a model pruned by another tool
    base: str  # arch of the [[architectures]] entry it was pruned from
    label: str  # method name shown on the site
    amount: float | None = None  # position on the amount axis; None: its measured sparsity


@dataclass(frozen=True)
class PruneSweep:
    method: str  # a registered pruning method
    amounts: tuple[float, ...]  # fractions of prunable weights removed, one model each
    options: dict[str, Any] = field(default_factory=dict)  # other PruneConfig fields (scope, taylor_batches, ...)
    retrain_epochs: int = 0  # > 0: also ship a retrained copy of every pruned model
    train_subset: int | None = None  # training images Taylor, MPT and retraining see (first N; None: all)

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
    names: tuple[str, ...]  # CIFAR-10-C corruption names (default: all 19)
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)  # severity levels evaluated
    source: str = "generate"  # "generate" on the fly, or the path of a CIFAR-10-C folder of .npy files
    params: str = "cifar"  # parameter tables when generating: "cifar" (CIFAR-10-C) or "imagenet" (ImageNet-C)
    seed: int = 0  # seed of the random corruptions


@dataclass(frozen=True)
class ShipConfig:
    samples_per_class: int = 50  # class-stratified samples shipped to the browser (plus every exemplar)
    severities: tuple[int, ...] = (3,)  # severities whose per-sample geometry is shipped (aggregates use all)
    max_rows_per_model: int = 10_000  # per-model geometry file limit, keeps each view responsive
    seed: int = 0  # seeds the stratified draw
    thumbnails: bool = True  # embed a PNG thumbnail of every shipped sample


@dataclass(frozen=True)
class CurseConfig:
    enabled: bool = True  # run the §5.4 study
    random_dims: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)  # vector dimensions
    random_samples: int = 10_000  # random vector pairs per dimension
    arch: str = "lenet5"  # architecture whose penultimate width is swept (needs a feature_dim option)
    widths: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256)  # penultimate widths trained
    epochs: int = 1  # training epochs per width
    train_subset: int | None = 20_000  # training images per width (None: all)


@dataclass(frozen=True)
class Recipe:
    name: str  # names the store and the site; letters, digits, - and _
    title: str  # human title shown on the site
    data: DataConfig
    eval_subset: int | None  # evaluation images, first N of the test split (None: all)
    seeds: tuple[int, ...]
    architectures: tuple[ArchConfig, ...]
    pruning: tuple[PruneSweep, ...]
    corruptions: CorruptionConfig
    ship: ShipConfig
    curse: CurseConfig
    batch_size: int = 512  # evaluation batch size
    path: str = ""  # where the recipe was read from
    models: tuple[ExternalModel, ...] = ()  # models pruned elsewhere ([[models]] tables)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


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

    def get(self, key: str, kind, default=dataclasses.MISSING):
        self.consumed.add(key)
        if key not in self.table:
            if default is dataclasses.MISSING:
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
        return value

    def get_list(self, key: str, kind, default=dataclasses.MISSING) -> tuple:
        value = self.get(key, list, default)
        if value is default:
            return value
        out = []
        for i, v in enumerate(value):
            if float in (kind if isinstance(kind, tuple) else (kind,)) and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if isinstance(v, bool) or not isinstance(v, kind):
                self.fail(f"{key}[{i}]", f"must be {getattr(kind, '__name__', kind)}, got {v!r}")
            out.append(v)
        return tuple(out)

    def config(self, cls, **fixed):
        """Build dataclass `cls` from every remaining field of the table (all of them must be fields of `cls`)."""
        known = _fields(cls)
        self.done(allowed=set(known) - set(fixed))
        values = {**self.table, **fixed}
        try:
            return cls(**values)
        except (TypeError, ValueError) as e:
            raise RecipeError(f"{self.path}: table {self.where!r}: {e}") from None

    def done(self, allowed: set[str] = frozenset()):
        for key in self.table:
            if key not in allowed:
                options = sorted(set(allowed) | self.consumed)
                close = difflib.get_close_matches(key, options, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else (f"; allowed: {', '.join(options)}" if options else "")
                self.fail(key, f"is not a recipe field{hint}")


def _positive(r: _Reader, key: str, value, *, allow_none=False):
    if value is None and allow_none:
        return None
    if value < 1:
        r.fail(key, f"must be >= 1, got {value}")
    return value


def parse_recipe(text: str, path: str = "<recipe>") -> Recipe:
    """Parse and validate recipe TOML text; every error is one line naming `path` and the field."""
    from ..corruptions import NAMES
    from ..models import is_model

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML ({e}); fix the syntax at that line") from None
    top = _Reader(path, "", doc)
    name = top.get("name", str)
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        top.fail("name", f"must be letters, digits, '-' or '_' (it names a folder), got {name!r}")
    title = top.get("title", str, name)
    seeds = top.get_list("seeds", int, (0,))
    if not seeds or len(set(seeds)) != len(seeds):
        top.fail("seeds", f"must be a non-empty list of distinct integers, got {list(seeds)}")
    batch_size = _positive(top, "batch_size", top.get("batch_size", int, 512))

    data_r = _Reader(path, "data", top.get("data", dict))
    eval_subset = data_r.get("eval_subset", int, None)
    _positive(data_r, "eval_subset", eval_subset, allow_none=True)
    data = _check_data(data_r, data_r.config(DataConfig), path)

    archs = []
    arch_tables = top.get("architectures", list)
    if not arch_tables:
        top.fail("architectures", "must list at least one [[architectures]] table")
    for i, table in enumerate(arch_tables):
        r = _Reader(path, f"architectures[{i}]", table)
        arch = r.get("arch", str)
        if not is_model(arch):
            from ..models import list_models

            r.fail("arch", f"is {arch!r}, not a known architecture; known: {', '.join(list_models())}, tv:<name>")
        options = r.get("options", dict, {})
        checkpoint = r.get("checkpoint", str, None)
        weights = r.get("weights", str, None)
        arch, options, weights = _check_own_arch(r, arch, options, checkpoint, weights, path)
        train = _Reader(path, f"architectures[{i}].train", r.get("train", dict, {})).config(TrainConfig)
        r.done()
        archs.append(ArchConfig(ModelConfig(arch=arch, options=options), train, checkpoint, weights))
    if len({a.model.arch for a in archs}) != len(archs):
        top.fail("architectures", "lists an architecture twice; give each [[architectures]] a different arch")

    externals = tuple(
        _external_model(_Reader(path, f"models[{i}]", t), archs, path) for i, t in enumerate(top.get("models", list, []))
    )
    if len({(m.base, m.label, m.amount) for m in externals}) != len(externals):
        top.fail("models", "lists two models with the same base, label and amount; give each a different label or amount")

    sweeps = []
    for i, table in enumerate(top.get("pruning", list, [])):
        r = _Reader(path, f"pruning[{i}]", table)
        method = r.get("method", str)
        if method not in list_methods():
            r.fail("method", f"is {method!r}, not a pruning method; known: {', '.join(list_methods())}")
        amounts = r.get_list("amounts", float)
        if not amounts:
            r.fail("amounts", "must list at least one amount")
        for j, a in enumerate(amounts):
            if not 0.0 < a < 1.0:
                r.fail(f"amounts[{j}]", f"is {a}, outside (0, 1): an amount is the fraction of weights removed")
        retrain_epochs = r.get("retrain_epochs", int, 0)
        if retrain_epochs < 0:
            r.fail("retrain_epochs", f"must be >= 0, got {retrain_epochs}")
        train_subset = _positive(r, "train_subset", r.get("train_subset", int, None), allow_none=True)
        allowed = set(_fields(PruneConfig)) - {"method", "amount", "seed", "retrain_epochs", "progress"}
        r.done(allowed=allowed)
        sweep = PruneSweep(method, amounts, dict(r.table), retrain_epochs, train_subset)
        try:
            sweep.config(amounts[0], seeds[0], retrain=True)
        except (TypeError, ValueError) as e:
            raise RecipeError(f"{path}: table 'pruning[{i}]': {e}") from None
        sweeps.append(sweep)
    if len({s.method for s in sweeps}) != len(sweeps):
        top.fail("pruning", "lists a method twice; merge their amounts into one [[pruning]] table")

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
    severities = c.get_list("severities", int, (1, 2, 3, 4, 5))
    for j, s in enumerate(severities):
        if not 1 <= s <= 5:
            c.fail(f"severities[{j}]", f"is {s}, outside 1-5")
    source = c.get("source", str, "generate")
    if source != "generate":
        folder = (Path(path).parent / source) if not Path(source).is_absolute() else Path(source)
        source = str(folder)
    params = c.get("params", str, "cifar")
    if params not in ("cifar", "imagenet"):
        c.fail("params", f"is {params!r}; use 'cifar' or 'imagenet'")
    corruptions = CorruptionConfig(tuple(names), tuple(sorted(set(severities))), source, params, c.get("seed", int, 0))
    c.done()

    s = _Reader(path, "ship", top.get("ship", dict, {}))
    ship_sev = s.get_list("severities", int, (3,))
    for j, v in enumerate(ship_sev):
        if v not in corruptions.severities:
            s.fail(f"severities[{j}]", f"is {v}, which is not evaluated (corruptions.severities = {list(corruptions.severities)})")
    ship = ShipConfig(
        samples_per_class=_positive(s, "samples_per_class", s.get("samples_per_class", int, 50)),
        severities=tuple(sorted(set(ship_sev))),
        max_rows_per_model=_positive(s, "max_rows_per_model", s.get("max_rows_per_model", int, 10_000)),
        seed=s.get("seed", int, 0),
        thumbnails=s.get("thumbnails", bool, True),
    )
    s.done()

    k = _Reader(path, "curse", top.get("curse", dict, {}))
    curse = k.config(CurseConfig)
    curse = dataclasses.replace(curse, random_dims=tuple(curse.random_dims), widths=tuple(curse.widths))
    for key in ("random_dims", "widths"):
        if any((not isinstance(v, int)) or v < 1 for v in getattr(curse, key)):
            k.fail(key, f"must list positive integers, got {list(getattr(curse, key))}")
    top.done()

    return Recipe(
        name=name,
        title=title,
        data=data,
        eval_subset=eval_subset,
        seeds=seeds,
        architectures=tuple(archs),
        pruning=tuple(sweeps),
        corruptions=corruptions,
        ship=ship,
        curse=curse,
        batch_size=batch_size,
        path=path,
        models=externals,
    )


def _beside(recipe_path: str, value: str) -> str:
    """A path from the recipe, relative to the recipe's folder unless absolute."""
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else Path(recipe_path).parent / p)


def _check_data(r: _Reader, data: DataConfig, path: str) -> DataConfig:
    if data.name != "imagefolder":
        for key in ("image_size", "classes"):
            if getattr(data, key) is not None:
                r.fail(key, f'applies to name = "imagefolder" only, not {data.name!r}; remove it')
        return data
    if not data.root:
        r.fail("root", 'is missing; name = "imagefolder" needs root = "DIR" holding DIR/train/<class> and DIR/test/<class>')
    if data.image_size is None or isinstance(data.image_size, bool) or not isinstance(data.image_size, int) or data.image_size < 8:
        r.fail("image_size", f"must be an integer >= 8 (pixels per side after resize and centre crop), got {data.image_size!r}")
    # Files and folders are checked when the recipe runs (precompute.custom.check_inputs), so a recipe parses
    # on any machine.
    classes = _beside(path, data.classes) if data.classes else None
    return dataclasses.replace(data, root=_beside(path, data.root), classes=classes)


def _check_own_arch(r: _Reader, arch: str, options: dict, checkpoint, weights, path: str):
    """Import paths resolve now (not after an hour of work); weights files exist; tv: models with weights from a
    file default to the ImageNet normalisation torchvision's published weights were trained with."""
    from ..models import ModelError
    from ..models.imported import is_import_path, resolve_factory

    if is_import_path(arch):
        module = arch.partition(":")[0]
        if module.endswith(".py"):
            arch = f"{_beside(path, module)}:{arch.partition(':')[2]}"
        try:
            resolve_factory(arch)
        except ModelError as e:
            r.fail("arch", f"does not resolve: {e}")
    if weights is not None:
        if checkpoint is not None:
            r.fail("weights", "and 'checkpoint' both given; a checkpoint already holds weights, keep one")
        weights = _beside(path, weights)
        if arch.startswith("tv:") and "input_norm" not in options:
            options = {**options, "input_norm": "imagenet"}
    return arch, options, weights


def _external_model(r: _Reader, archs: list[ArchConfig], path: str) -> ExternalModel:
    file = _beside(path, r.get("file", str))
    base = r.get("base", str)
    known = [a.model.arch for a in archs]
    if base not in known:
        r.fail("base", f"is {base!r}, not the arch of an [[architectures]] table; known: {', '.join(known)}")
    label = r.get("label", str)
    if not label or not all(c.isalnum() or c in "-_ " for c in label) or label == "dense":
        r.fail("label", f"must be a method name of letters, digits, '-', '_' or spaces (not 'dense'), got {label!r}")
    amount = r.get("amount", float, None)
    if amount is not None and not 0.0 <= amount < 1.0:
        r.fail("amount", f"is {amount}, outside [0, 1): an amount is the fraction of weights removed")
    r.done()
    return ExternalModel(file, base, label, amount)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe not found; pass the path of a TOML recipe such as precompute/demo.toml") from None
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


def model_key(model_id: str) -> str:
    """A file-name-safe key: letters, digits, '-', '_', '.' only."""
    out = model_id.replace("/", "__").replace("+", "-").replace(":", "-")
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in out)


