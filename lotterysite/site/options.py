"""The site's options (`SiteOptions`) and its error (`RenderError`): what `render`, the view model and the page
budget share, in a module of their own so that each of them imports it without importing the others."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LotterysiteError


class RenderError(LotterysiteError):
    """The generated folder cannot be written, or the installed package is incomplete."""


@dataclass(frozen=True)
class SiteOptions:
    max_samples: int = 2000  # shipped samples served per view (keeps pages under 5 MB)
    max_axes: int = 10  # class-angle axes of the parallel coordinates; more are ranked
    max_classes: int = 10  # class panels of the local geometry view; with more classes the reader picks them
    picked_classes: int = 8  # panels of the local view when the reader picks the classes (more than max_classes)
    page_bytes: int = 5_000_000  # budget of a page with everything it fetches; served samples are cut to fit
    # Accuracy points: a pruned model keeps dense's accuracy when the paired interval of its drop lies below this,
    # and two models are equally accurate when their difference's lies within ± this (site_src/method.md,
    # "Paired comparisons", says why 1).
    equivalence_points: float = 1.0
    # Samples a workspace panel draws as marks: a class with more is drawn as the density of all of them plus a
    # uniform random subsample (and the selected samples), so six panels stay fast (bench/RESULTS.md, issue 23 §4).
    panel_marks: int = 400

    def __post_init__(self):
        for name in ("max_samples", "max_axes", "max_classes", "picked_classes", "page_bytes", "panel_marks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RenderError(f"site option {name} = {value!r}: must be a whole number >= 1")
        value = self.equivalence_points
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 100:
            raise RenderError(f"site option equivalence_points = {value!r}: must be a number of accuracy points "
                              "above 0 and below 100, e.g. 1.0")  # fmt: skip
