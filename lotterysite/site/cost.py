"""Structured pruning on the site: accuracy against cost (models.arrow's cost columns) and a note where pruning
changed the feature dimension. Shown only for stores with channel-pruned models (schema 1.5); a masks-only store's
pages stay as they were. The rows and the changed models are the view model's (`model.cost_rows`,
`model.feature_dim_changed`); this module only writes them."""

from __future__ import annotations

from .data import arrow_bytes
from .findings import with_links
from .model import ViewModel

FIG3 = "#the-curse-of-dimensionality-fig-3"  # the findings page's Fig. 3 heading


def cost_table(view: ViewModel, views: dict[str, str]) -> bytes:
    """The cost chart's file (`charts.accuracy_vs_cost`): the model's cost rows, each with its link to the view that
    opens its model (`views` maps an architecture to that view's URL)."""
    return arrow_bytes(with_links(view.cost, views))


def feature_dim_note(view: ViewModel, findings: str = "findings.md") -> str:
    """A Markdown note naming the models whose feature dimension differs from their dense model's ('' if none);
    `findings`: the findings page's path relative to the page the note is on."""
    changed = view.feature_dim_changed
    if not changed:
        return ""
    names = ", ".join(f"`{m['model_id']}` ({m['dense_feature_dim']} → {m['feature_dim']})" for m in changed[:8])
    more = f" and {len(changed) - 8} more" if len(changed) > 8 else ""
    return (
        f"**The feature dimension changed** for {names}{more}: their structured pruning removed channels of the "
        "classifier's input. Angles between features and class directions shrink as the dimension grows, and grow "
        f"as it falls ([Fig. 3]({findings}{FIG3})), so compare their angles with the dense model's with that in "
        "mind.\n\n"
    )
