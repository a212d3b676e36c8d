"""Structured pruning (`granularity = "channel"`): whole channels and filters removed through Torch-Pruning's
dependency graph, so the pruned network is smaller and faster, not only sparser.

Torch-Pruning (`torch_pruning`) traces the model once and groups every coupled dimension: a conv's output channels
with the batch norm after it, the input channels of every layer that reads them, every layer tied to them by a
residual addition or a concatenation, and the input features a `Flatten` maps them to. One group is one set of
channels that must go together; removing channel j of a group removes it from all of its layers.

- **Scores.** random: seeded uniform scores per channel; magnitude: the group's p-norm (`channel_norm`, 1 or 2;
  Torch-Pruning's `GroupMagnitudeImportance`, sum of |w|^p over each coupled layer's slice, averaged over the
  group's layers); taylor: |w * dL/dw| summed the same way (`GroupTaylorImportance`), the gradient accumulated over
  `taylor_batches` as for weight-level Taylor.
- **Scope.** "global": one ranking of every group's channels, each group's scores divided by their mean (Torch-
  Pruning's default normaliser: raw group norms grow with a layer's fan-in, so without it the widest layers would
  never be pruned); "lamp": the same with Torch-Pruning's LAMP normaliser; "layer": every group loses the same share
  of its channels (interleaved by rank / group size).
- **Amount.** `amount` is the fraction of prunable weights (conv and linear weights, the classifier excepted, as for
  masks) removed. Channels are taken off the ranking one at a time while the exact weight count is tracked, and the
  prefix whose removed count is closest to round(amount * count) is pruned: the reached amount is within one
  channel's weights of the target. Both are recorded (`model.structured`: "target", "reached").
- **The feature space.** The classifier is never pruned (its outputs are the classes), and by default neither is
  the group that feeds it (its input width, the feature dimension the geometry measures), so angles stay
  comparable with the dense model; `prune_penultimate = True` prunes that width too (Fig. 3: angles shrink with
  dimension). Every group keeps at least one channel.

The pruned model keeps its class and forward; `model.structured["modules"]` holds the module attributes that
changed (in_channels, out_features, num_features, ...), which with the state_dict rebuild the architecture from
its registry factory (`checkpoint.resize_modules`), without Torch-Pruning and with `weights_only=True`.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from ..models import find_classifier
from ._data import first_batches
from .config import PruneConfig
from .masks import PRUNABLE, prunable_parameters

_PLAIN = (bool, int, float, str, type(None))


def _tp():
    import torch_pruning as tp  # imported on use: weight-level pruning and loading never need it

    return tp


def weight_count(module: nn.Module, removed_out: int = 0, removed_in: int = 0) -> int:
    """Weights of a conv or linear layer once `removed_out` output and `removed_in` input channels are gone."""
    w = module.weight
    out, rest = w.shape[0] - removed_out, w[0].numel()
    if isinstance(module, nn.Linear):
        return out * (w.shape[1] - removed_in)
    per_in = rest // w.shape[1]  # kernel size
    groups = module.groups
    if groups == 1:
        return out * (w.shape[1] - removed_in) * per_in
    return out * w.shape[1] * per_in  # grouped / depthwise: removing an output channel removes its whole filter


def plain_attributes(module: nn.Module) -> dict:
    """The public, JSON-like attributes of a module (in_channels, kernel_size, ...): what shapes it."""
    out = {}
    for name, value in vars(module).items():
        if name.startswith("_") or name == "training":
            continue
        if isinstance(value, _PLAIN) or (isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value)):
            out[name] = value
    return out


def changed_modules(before: nn.Module, after: nn.Module) -> dict[str, dict]:
    """{module name: {attribute: new value}} for every attribute pruning changed."""
    old = dict(before.named_modules())
    out = {}
    for name, module in after.named_modules():
        a, b = plain_attributes(old[name]), plain_attributes(module)
        diff = {k: v for k, v in b.items() if a.get(k) != v}
        if diff:
            out[name] = diff
    return out


def example_batch(model: nn.Module, data, example_input: torch.Tensor | None, device) -> torch.Tensor:
    if example_input is not None:
        return example_input[:1].to(device)
    if data is None:
        raise ValueError(
            "granularity 'channel' traces the model on one batch: pass data= (the training ImageSet) or "
            "example_input= (a batch the model accepts)"
        )
    x, _ = next(iter(first_batches(data, 1, batch_size=1, device=device)))
    return x[:1]


def _accumulate_gradients(model: nn.Module, cfg: PruneConfig, data, device) -> None:
    """Leave in every parameter's .grad the gradient of the mean cross-entropy over `taylor_batches` batches."""
    model.eval()
    model.zero_grad(set_to_none=True)
    seen = 0
    for x, y in first_batches(data, cfg.taylor_batches, batch_size=cfg.batch_size, device=device):
        F.cross_entropy(model(x), y, reduction="sum").backward()
        seen += len(y)
    if seen == 0:
        raise ValueError("Taylor pruning got no batches from data; pass an ImageSet or a non-empty iterable of batches")
    for p in model.parameters():
        if p.grad is not None:
            p.grad /= seen


def _scores(groups, cfg: PruneConfig, model: nn.Module, data, device) -> list[torch.Tensor]:
    tp = _tp()
    normalizer = {"global": "mean", "lamp": "lamp", "layer": None}[cfg.scope]
    if cfg.method == "random":
        generator = torch.Generator().manual_seed(cfg.seed)
        return [torch.rand(len(g[0].idxs), generator=generator, dtype=torch.float64) for g in groups]
    if cfg.method == "magnitude":
        importance = tp.importance.GroupMagnitudeImportance(p=cfg.channel_norm, normalizer=normalizer)
    else:
        _accumulate_gradients(model, cfg, data, device)
        importance = tp.importance.GroupTaylorImportance(normalizer=normalizer)
    out = []
    with torch.no_grad():
        for g in groups:
            s = importance(g)
            # A group with no weighted layer of the scored kinds gets no score: it is then never pruned first.
            s = torch.zeros(len(g[0].idxs)) if s is None else s
            out.append(torch.nan_to_num(s.detach().double().cpu(), nan=0.0))
    if cfg.method == "taylor":
        model.zero_grad(set_to_none=True)
    return out


def _ranking(scores: list[torch.Tensor], scope: str) -> list[tuple[int, int]]:
    """(group, channel) in removal order; each group's best channel is never listed, so every group keeps one."""
    items = []
    for g, s in enumerate(scores):
        order = torch.argsort(s, stable=True).tolist()[:-1]
        for rank, j in enumerate(order):
            key = (rank + 1) / len(s) if scope == "layer" else float(s[j])
            items.append((key, g, rank, j))
    items.sort(key=lambda t: t[:3])
    return [(g, j) for _, g, _, j in items]


def _costs(groups, layers: dict[nn.Module, str], DG) -> list[list[tuple[str, str, torch.Tensor]]]:
    """Per group: (layer name, "out" or "in", per-channel count of that layer's indices the channel removes)."""
    out = []
    for g in groups:
        n = len(g[0].idxs)
        rows = []
        for item in g:
            name = layers.get(item.dep.target.module)
            if name is None:
                continue
            side = "out" if DG.is_out_channel_pruning_fn(item.dep.handler) else "in"
            roots = torch.as_tensor(item.root_idxs, dtype=torch.long)
            rows.append((name, side, torch.bincount(roots, minlength=n)))
        out.append(rows)
    return out


def _best_prefix(ranking, costs, modules: dict[str, nn.Module], counted: set[str], target: int) -> int:
    """The number k of ranked channels whose removal removes closest to `target` counted weights (ties: fewer)."""
    removed = {name: {"out": 0, "in": 0} for name in modules}
    kept = {name: weight_count(m) for name, m in modules.items()}
    total = sum(kept[n] for n in counted)
    dense = total
    best_k, best_gap = 0, target
    for k, (g, j) in enumerate(ranking, start=1):
        for name, side, per_channel in costs[g]:
            c = int(per_channel[j])
            if not c:
                continue
            removed[name][side] += c
            now = weight_count(modules[name], removed[name]["out"], removed[name]["in"])
            if name in counted:
                total += now - kept[name]
            kept[name] = now
        gap = abs((dense - total) - target)
        if gap < best_gap:
            best_k, best_gap = k, gap
        if dense - total >= target:
            break
    return best_k


def prune_channels(
    model: nn.Module, cfg: PruneConfig, *, data, device, example_input: torch.Tensor | None = None
) -> dict:
    """Remove channels from `model` in place (see the module doc); returns what `model.structured` records."""
    tp = _tp()
    if getattr(model, "masks", None):
        raise ValueError(
            "granularity 'channel' prunes a dense (or channel-pruned) model; this one has weight masks: "
            "prune the dense model instead"
        )
    before = getattr(model, "structured", None) or {}
    head_name, head = find_classifier(model)
    targets = prunable_parameters(model)
    dense_layers = before.get("dense_layers") or {name: p.numel() for name, p in targets.items()}
    dense_total = sum(dense_layers.values())
    dense_feature_dim = before.get("dense_feature_dim", head.in_features)
    goal = round(cfg.amount * dense_total) - (dense_total - sum(p.numel() for p in targets.values()))
    if goal < 0:
        raise ValueError(
            f"the model already has {1 - sum(p.numel() for p in targets.values()) / dense_total:.4f} of its weights "
            f"pruned, more than amount {cfg.amount}; pass an amount at least that"
        )
    x = example_batch(model, data, example_input, device)
    original = copy.deepcopy(model)  # to record which module attributes pruning changes
    model.eval()
    DG = tp.DependencyGraph().build_dependency(model, example_inputs=x, verbose=False)
    groups = []
    for g in DG.get_all_groups(ignored_layers=[head], root_module_types=PRUNABLE):
        feeds_head = any(item.dep.target.module is head and DG.is_in_channel_pruning_fn(item.dep.handler) for item in g)
        if (feeds_head and not cfg.prune_penultimate) or len(g[0].idxs) < 2:
            continue
        groups.append(g)
    modules = {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}
    names = {m: name for name, m in modules.items()}
    counted = {name.rpartition(".")[0] for name in targets}  # module names of the counted weights
    scores = _scores(groups, cfg, model, data, device)
    ranking = _ranking(scores, cfg.scope)
    k = _best_prefix(ranking, _costs(groups, names, DG), modules, counted, goal)
    chosen: dict[int, list[int]] = defaultdict(list)
    for g, j in ranking[:k]:
        chosen[g].append(j)
    roots = [(g[0].dep.target.module, g[0].dep.handler) for g in groups]
    for g, idxs in sorted(chosen.items()):
        module, handler = roots[g]
        group = DG.get_pruning_group(module, handler, sorted(idxs))
        if not DG.check_pruning_group(group):
            raise RuntimeError(f"pruning group of {names.get(module, module)} would remove every channel")
        group.prune()
    now = sum(p.numel() for p in prunable_parameters(model).values())
    modules_changed = changed_modules(original, model)
    for name, attrs in (before.get("modules") or {}).items():
        modules_changed[name] = {**attrs, **modules_changed.get(name, {})}
    return {
        "granularity": "channel",
        "target": cfg.amount,
        "reached": (dense_total - now) / dense_total if dense_total else 0.0,
        "dense_prunable": dense_total,
        "dense_layers": dense_layers,
        "channels_removed": int(before.get("channels_removed", 0)) + k,
        "feature_dim": find_classifier(model)[1].in_features,
        "dense_feature_dim": dense_feature_dim,
        "classifier": head_name,
        "modules": modules_changed,
    }
