"""Precompute: from a recipe to an Arrow store of every metric the site shows."""

from .plan import plan_models
from .recipe import Recipe, RecipeError, load_recipe, parse_recipe
from .run import PrecomputeResult, precompute

__all__ = ["PrecomputeResult", "Recipe", "RecipeError", "load_recipe", "parse_recipe", "plan_models", "precompute"]
