"""Load a recipe's own scripts (recipes/NAME/local/SCRIPT.py) in a test.

Recipes share some helpers (kaldi_dir, stage, ...: symlinks to the digits recipe's) and each has scripts of
the same name but its own content (download.py, prepare.py). Imported plainly, the first recipe test of a
session would put its `download` in sys.modules and every later one would get it; this loads a recipe's script
under a name of its own ("speechocean762_download") instead.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def recipe_local(recipe: str) -> Path:
    """recipes/RECIPE/local, put on sys.path so that its scripts find the helpers they import."""
    local = RECIPES / recipe / "local"
    if str(local) not in sys.path:
        sys.path.insert(0, str(local))
    return local


def recipe_script(recipe: str, name: str) -> ModuleType:
    """recipes/RECIPE/local/NAME.py as the module RECIPE_NAME."""
    module_name = f"{recipe}_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, recipe_local(recipe) / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
