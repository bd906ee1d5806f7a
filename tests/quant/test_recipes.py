"""quant.recipes: the recipe table is data, each recipe names a quantizer that exists, and what it quantizes."""
import pytest

import quant.quantizer
from quant.errors import UserError
from quant.recipes import RECIPES, get_recipe


def test_every_recipe_names_a_quantizer_and_its_own_backend_recipe_exists():
    for recipe in RECIPES.values():
        assert callable(getattr(quant.quantizer, recipe.quantizer)), recipe.name
        assert recipe.backend in RECIPES and RECIPES[recipe.backend].backend == recipe.backend


def test_an_unknown_recipe_is_one_error_naming_the_valid_ones():
    with pytest.raises(UserError, match="unknown recipe 'nope'; valid: xnnpack, "):
        get_recipe("nope")


def test_row_labels_and_what_a_recipe_quantizes(tiny_model_factory):
    stock, ours = get_recipe("xnnpack-stock"), get_recipe("xnnpack")
    assert (stock.row_label("int8"), stock.row_label("fp32")) == ("stock quantizer", "stock")
    assert (ours.row_label("int8"), ours.row_label("fp32")) == ("mobileformer", None)
    model = tiny_model_factory()
    assert stock.source(model) is model  # the float model as it is
    twin = ours.source(model)
    assert twin is not model and twin.state_dict().keys() == model.state_dict().keys()
