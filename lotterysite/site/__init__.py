"""The published site: the `lotterysite` MkDocs plugin (`plugin`), its pages (`pages`), the data it serves
(`data`, pyarrow only) and one pure function per chart (`charts`). Reads the store; never imports torch."""

from . import charts

__all__ = ["charts"]
