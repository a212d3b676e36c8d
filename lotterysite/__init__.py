"""lotterysite: see how pruning changes a network's latent geometry.

Pipeline, one sub-package per stage, data flowing one way:
data -> models -> training -> pruning -> corruptions -> geometry -> store -> site.
"""

__version__ = "0.1.0"
