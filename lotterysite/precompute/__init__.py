"""Precompute: from a recipe to an Arrow store of every metric the site shows."""

from .recipe import Recipe, RecipeError, load_recipe, parse_recipe
from .run import PrecomputeResult, plan_models, precompute

__all__ = ["PrecomputeResult", "Recipe", "RecipeError", "load_recipe", "parse_recipe", "plan_models", "precompute"]
