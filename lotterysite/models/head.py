"""Find the final linear layer (W, b) of any `nn.Module`, and its input X, the feature the geometry measures.

Where the classifier is, in this order:
  1. `model.classifier` when it is an `nn.Linear` (the model contract, `base.Classifier`);
  2. torchvision's and timm's names: `model.fc` or `model.head` when an `nn.Linear`, else the last `nn.Linear`
     (in module order) inside `model.classifier`, `model.head` or `model.heads`;
  3. otherwise the last `nn.Linear` that runs in `forward`, found with hooks on the first batch.
Whatever was found, the first batch checks that the model's output *is* that layer's output (bit for bit), so a
model whose logits come from something else (a softmax after the layer, a second head, a conv classifier) is an
error naming the model and what was found, not silently wrong numbers.

Models honouring the contract give X by `forward_features`; any other model gives the input of the found layer,
captured with a forward hook.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LotterysiteError


class HeadError(LotterysiteError, ValueError):
    """A model whose logits do not come from a final nn.Linear; the message names the model and what was found."""


def model_name(model: nn.Module) -> str:
    return getattr(model, "arch", "") or type(model).__name__


def _linear_names(model: nn.Module) -> dict[nn.Module, str]:
    return {m: name for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def static_classifier(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The classifier found by name (rules 1-2, or one found by running the model earlier), or None."""
    cached = getattr(model, "head_name", None)
    if cached:
        return cached, model.get_submodule(cached)
    for attr in ("classifier", "fc", "head"):
        module = getattr(model, attr, None)
        if isinstance(module, nn.Linear):
            return attr, module
    for attr in ("classifier", "head", "heads"):
        module = getattr(model, attr, None)
        if isinstance(module, nn.Module):
            inner = [(f"{attr}.{n}", m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
            if inner:
                return inner[-1]
    return None


def find_classifier(model: nn.Module) -> tuple[str, nn.Linear]:
    """The classifier found without running the model; raises HeadError when only running it would tell."""
    found = static_classifier(model)
    if found is not None:
        return found
    linears = _linear_names(model)
    if not linears:
        raise HeadError(f"{model_name(model)} has no nn.Linear layer, so no class directions W to measure; "
                        f"its last module is {_last_module(model)}")  # fmt: skip
    raise HeadError(
        f"{model_name(model)} has no `classifier`, `fc` or `head` nn.Linear; run it once through FeatureHead "
        f"(or lotterysite.geometry.measure_model) to find which of its {len(linears)} nn.Linear layers runs last"
    )


def locate_classifier(model: nn.Module, probe: torch.Tensor) -> tuple[str, nn.Linear]:
    """The classifier by rules 1-3: by name, else by running `probe` once through the model (in eval mode, no
    gradients) and checking its output is that layer's. Remembered in `model.head_name`, so `find_classifier` (used
    by pruning and checkpoints, which do not run the model) knows it from then on; HeadError names what was found."""
    found = static_classifier(model)
    if found is not None:
        return found
    head, was_training = FeatureHead(model), model.training
    model.eval()
    try:
        with torch.no_grad():
            head(probe)
    finally:
        model.train(was_training)
    return head.name, head.linear


def _last_module(model: nn.Module) -> str:
    mods = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    return f"`{mods[-1][0]}` ({type(mods[-1][1]).__name__})" if mods else "none"


def _honours_contract(model: nn.Module) -> bool:
    return callable(getattr(model, "forward_features", None)) and isinstance(
        getattr(model, "classifier", None), nn.Linear
    )


def _same(out: torch.Tensor, logits: torch.Tensor) -> bool:
    return out is logits or (not out.is_meta and torch.equal(out, logits))


class FeatureHead:
    """`head(x)` returns the feature X (N x m) of a batch; `head.linear` is the final layer, `head.name` its path.

    `via="hook"` forces the hook on a contract model too (the tests compare it with `forward_features`).
    """

    def __init__(self, model: nn.Module, *, via: str = "auto"):
        self.model = model
        self.contract = via == "auto" and _honours_contract(model)
        found = static_classifier(model)
        self.name, self.linear = found if found else (None, None)
        self.checked = self.contract  # contract models are right by construction

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.contract:
            return self.model.forward_features(x)
        return self._hooked(x)

    def _hooked(self, x: torch.Tensor) -> torch.Tensor:
        calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
        watched = [self.linear] if self.checked else list(_linear_names(self.model))

        def record(module, inputs, output):
            calls.append((module, inputs[0], output))

        handles = [m.register_forward_hook(record) for m in watched]
        try:
            out = self.model(x)
        finally:
            for h in handles:
                h.remove()
        if not self.checked:
            self._check(out, calls)
        module, feats, logits = [c for c in calls if c[0] is self.linear][-1]
        if feats.ndim != 2:
            raise HeadError(f"{model_name(self.model)}: the input of its final nn.Linear `{self.name}` has shape "
                            f"{tuple(feats.shape)}, not N x features")  # fmt: skip
        return feats

    def _check(self, out, calls) -> None:
        name = model_name(self.model)
        names = _linear_names(self.model)
        if not names:
            raise HeadError(f"{name} has no nn.Linear layer, so no class directions W to measure; its last module is "
                            f"{_last_module(self.model)}")  # fmt: skip
        if self.linear is None:
            if not calls:
                raise HeadError(f"{name}: none of its nn.Linear layers ({', '.join(list(names.values())[:5])}) runs in "
                                "forward, so its logits do not come from a final nn.Linear")  # fmt: skip
            self.linear = calls[-1][0]
            self.name = names[self.linear]
        mine = [c for c in calls if c[0] is self.linear]
        if not mine:
            raise HeadError(f"{name}: its classifier `{self.name}` (nn.Linear) does not run in forward; "
                            "the logits come from elsewhere")  # fmt: skip
        logits = mine[-1][2]
        if isinstance(out, torch.Tensor) and out.is_meta and out.shape == logits.shape and out is not logits:
            # A model built on the meta device to check shapes (recipe validation) has no values to compare
            # (torch.equal has no meta kernel): the check is left to the first real batch, so nothing is remembered.
            return
        if not isinstance(out, torch.Tensor) or out.shape != logits.shape or not _same(out, logits):
            got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
            last = names.get(calls[-1][0], "?") if calls else "none"
            raise HeadError(
                f"{name}: its output ({got}) is not the output of its final nn.Linear `{self.name}` "
                f"(shape {tuple(logits.shape)}; last nn.Linear to run: `{last}`), so its logits do not come from a "
                "final nn.Linear: return the logits of that layer from forward"
            )
        self.model.head_name = self.name  # remembered, so pruning and later passes know the classifier
        self.checked = True
