"""The three geometric metrics of paper §5 on the logit layer's input X and the class directions W.

For a sample with feature X (m), label y and the final layer's weight W (C x m) and bias b (C):
- angle_j  = angle between X and class direction W_j, in degrees (§5.2);
- length   = ||X||;
- margin   = min over j != y of |(W_y - W_j)·X + b_y - b_j| / ||W_y - W_j||  (eq. 5 with the bias, so the hyperplanes
             are the model's true decision boundaries), negated when the prediction is wrong;
- margin_eq5 = min over j != y of |(W_y - W_j)·X| / ||W_y - W_j||, the paper's eq. 5 as printed (no bias: the
             hyperplanes through the origin), negated when the model's prediction (with its bias) is wrong, as the
             paper negates it. With a zero bias the two are equal; site_src/method.md works a 2-D example.
Degenerate cases have defined values: a zero-length X has NaN angles and `degenerate=True`; a pair of identical
class directions W_y = W_j has no hyperplane between them, so it is left out of the minimum when its biases differ
(the class with the larger bias always wins) and contributes 0 when the biases tie as well (the two classes tie
everywhere); without the bias (margin_eq5) such a pair always contributes 0. A sample with no boundary at all
gets margin +inf / -inf.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .errors import LotterysiteError
from .models import FeatureHead, HeadError, find_classifier

METRICS = ("angle", "length", "margin", "margin_eq5", "pred", "correct", "prob_true", "loss", "degenerate")


class GeometryError(LotterysiteError, ValueError):
    """Inputs of the wrong shape or class count; the message names the shapes."""


@dataclass(frozen=True)
class Geometry:
    angle: torch.Tensor  # N x C float, degrees between X and each class direction (NaN when ||X|| = 0)
    length: torch.Tensor  # N float, ||X||
    margin: torch.Tensor  # N float, signed distance to the nearest decision boundary (eq. 5), < 0 when wrong
    margin_eq5: torch.Tensor  # N float, the same without the bias (eq. 5 as printed), < 0 when wrong
    pred: torch.Tensor  # N int64, argmax of the logits
    correct: torch.Tensor  # N bool, pred == label
    prob_true: torch.Tensor  # N float, softmax probability of the true class
    loss: torch.Tensor  # N float, cross-entropy loss
    degenerate: torch.Tensor  # N bool, ||X|| == 0 (angles undefined)

    def angle_to(self, labels: torch.Tensor) -> torch.Tensor:
        """Angle of each sample to class `labels[i]` (its true class when given the labels)."""
        return self.angle.gather(1, labels.view(-1, 1).to(self.angle.device)).squeeze(1)

    def to(self, device) -> Geometry:
        return Geometry(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @staticmethod
    def cat(parts: list[Geometry]) -> Geometry:
        return Geometry(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(Geometry)})


def _check(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, labels: torch.Tensor) -> None:
    if features.ndim != 2:
        raise GeometryError(f"features must be N x m, got shape {tuple(features.shape)}")
    if weight.ndim != 2 or weight.shape[1] != features.shape[1]:
        raise GeometryError(
            f"weight must be C x m with m = {features.shape[1]} (the feature width), got shape {tuple(weight.shape)}"
        )
    if weight.shape[0] < 2:
        raise GeometryError(f"need at least 2 classes, the weight has {weight.shape[0]} row(s)")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise GeometryError(f"bias must have C = {weight.shape[0]} entries, got shape {tuple(bias.shape)}")
    if labels.shape != (features.shape[0],):
        raise GeometryError(f"labels must have N = {features.shape[0]} entries, got shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= weight.shape[0]):
        raise GeometryError(
            f"labels range {int(labels.min())}..{int(labels.max())} but the classifier has {weight.shape[0]} classes;"
            " the model and the data set disagree on the class count"
        )


def measure(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, labels: torch.Tensor) -> Geometry:
    """Angle, length and margin (plus prediction, correctness, true-class probability, loss) of every sample.

    Batched; runs on the features' device in float32, or float64 when given float64.
    """
    _check(features, weight, bias, labels)
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    x = features.to(dtype)
    w = weight.to(x.device, dtype)
    b = torch.zeros(w.shape[0], device=x.device, dtype=dtype) if bias is None else bias.to(x.device, dtype)
    y = labels.to(x.device, torch.long)

    length = x.norm(dim=1)
    w_norm = w.norm(dim=1)
    dots = x @ w.T
    # Kahan's angle formula 2 atan2(|x^ - w^|, |x^ + w^|) on unit vectors: acos(cos) loses half the digits near
    # 0 and 180 degrees, and so does anything computed from the dot product. The direct (non-matmul) distance keeps
    # them; it costs N x C x m, small next to the forward pass that produced X.
    x_unit = x / length.clamp_min(torch.finfo(dtype).tiny)[:, None]
    w_unit = w / w_norm.clamp_min(torch.finfo(dtype).tiny)[:, None]
    mode = "donot_use_mm_for_euclid_dist"
    minus = torch.cdist(x_unit[None], w_unit[None], compute_mode=mode)[0]
    plus = torch.cdist(x_unit[None], -w_unit[None], compute_mode=mode)[0]
    angle = torch.rad2deg(2 * torch.atan2(minus, plus))
    degenerate = length == 0
    angle = torch.where(degenerate[:, None] | (w_norm == 0)[None, :], torch.nan, angle)

    logits = dots + b
    pred = logits.argmax(dim=1)
    correct = pred == y
    log_probs = F.log_softmax(logits, dim=1)
    logp_true = log_probs.gather(1, y[:, None]).squeeze(1)

    # Distance to each hyperplane between the true class y and every other class j.
    diff_norm = torch.cdist(w, w)  # C x C, ||W_i - W_j||
    z_true = logits.gather(1, y[:, None])
    gap = (z_true - logits).abs()  # N x C, |z_y - z_j|
    denom = diff_norm[y]  # N x C
    dist = gap / denom
    same_direction = denom == 0
    dist = torch.where(same_direction, torch.where(gap == 0, 0.0, torch.inf), dist)
    dist = dist.scatter(1, y[:, None], torch.inf)  # j != y
    margin = dist.min(dim=1).values
    margin = torch.where(correct, margin, -margin)
    # Eq. 5 as the paper prints it: the same distances with the bias left out, to the hyperplanes through the
    # origin. Two identical directions tie everywhere there, so they contribute 0 (0 / 0 otherwise).
    gap5 = (dots.gather(1, y[:, None]) - dots).abs()
    dist5 = torch.where(same_direction, 0.0, gap5 / denom).scatter(1, y[:, None], torch.inf)
    margin_eq5 = dist5.min(dim=1).values
    margin_eq5 = torch.where(correct, margin_eq5, -margin_eq5)
    return Geometry(
        angle=angle,
        length=length,
        margin=margin,
        margin_eq5=margin_eq5,
        pred=pred,
        correct=correct,
        prob_true=logp_true.exp(),
        loss=-logp_true,
        degenerate=degenerate,
    )


def classifier_of(model: nn.Module) -> nn.Linear:
    """The final nn.Linear of any model, found by name (`lotterysite.models.find_classifier`)."""
    try:
        return find_classifier(model)[1]
    except HeadError as e:
        raise GeometryError(str(e)) from None


def feature_head(model: nn.Module):
    """(features(x) -> X, the final nn.Linear) of any model: `forward_features` for the model contract, else the
    input of the final nn.Linear captured by a hook (`lotterysite.models.FeatureHead`; the linear is known once the
    first batch has run)."""
    return FeatureHead(model)


AUTO = "auto"  # measure_model's default for autocast and channels_last: on for CUDA, off elsewhere

# Measured on a LeNet-5 trained one epoch on 4000 Fashion-MNIST images, 1000 test images, CPU autocast against
# float32 (tests/test_geometry.py repeats it): bfloat16 (8-bit mantissa) moves ||X|| by 1e-3 (median) to 2e-3
# relative and margins by 5e-3, outside the 1e-3 the metrics must keep; float16 (11-bit mantissa) moves them by
# 5e-5 and 6e-4, inside. Tensor cores run both at the same rate, so CUDA evaluation autocasts to float16, and a
# batch whose features overflow float16's range (65504) is measured again in float32.
ACCURATE_AUTOCAST = torch.float16


def _is_channels_last(model: nn.Module) -> bool:
    weights = [p for p in model.parameters() if p.dim() == 4]
    return bool(weights) and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


@torch.no_grad()
def measure_model(
    model: nn.Module,
    batches,
    *,
    device: torch.device | str = "cpu",
    autocast: torch.dtype | None | str = AUTO,
    channels_last: bool | str = AUTO,
) -> tuple[Geometry, torch.Tensor]:
    """Run `model` over (images, labels) batches and measure every sample; returns (geometry, labels), on the CPU.

    autocast: the dtype the forward pass to the features runs in (None: float32). The default, "auto", is
    float16 on CUDA (accurate to 1e-3, see ACCURATE_AUTOCAST; bfloat16 is not) and float32 elsewhere.
    channels_last: NHWC memory for convolutions; "auto" turns it on for CUDA, where cuDNN's tensor-core kernels
    want it. The model is converted for the call and back, unless it already is channels_last: a caller that
    measures one model many times converts it once, `model.to(memory_format=torch.channels_last)`.
    The final layer and every metric always run in float32 from float32 features.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    dtype = (ACCURATE_AUTOCAST if cuda else None) if isinstance(autocast, str) and autocast == AUTO else autocast
    nhwc = cuda if isinstance(channels_last, str) and channels_last == AUTO else bool(channels_last)
    if dtype is not None and dtype not in (torch.float16, torch.bfloat16):
        raise GeometryError(f"autocast={dtype!r}: use torch.float16, torch.bfloat16 or None (float32)")
    model.eval().to(device)
    # A model already in channels_last (converted once by a caller that measures it many times) is left so.
    convert = nhwc and not _is_channels_last(model)
    if convert:
        model.to(memory_format=torch.channels_last)
    head = feature_head(model)
    parts, all_labels = [], []
    try:
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if nhwc and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            feats = None
            if dtype is not None:
                with torch.autocast(device_type=device.type, dtype=dtype):
                    feats = head(x).float()
                if not bool(torch.isfinite(feats).all()):  # float16 overflowed: this batch in float32
                    feats = None
            if feats is None:
                feats = head(x).float()
            parts.append(measure(feats, head.linear.weight.float(), head.linear.bias, y).to("cpu"))
            all_labels.append(y.cpu())
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)
    if not parts:
        raise GeometryError("no batches to measure: the evaluation set is empty")
    return Geometry.cat(parts), torch.cat(all_labels)
