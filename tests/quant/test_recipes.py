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


def test_a_fingerprint_tells_apart_the_programs_a_table_must_not_mix():
    """Recipes that change the graph, or the same recipe at another precision or with other rewrites, differ;
    the same recipe, precision and rewrites give the same fingerprint (what accuracy_table.py compares)."""
    from quant.backends import BACKENDS
    from quant.recipes import RECIPES

    xnnpack = BACKENDS["xnnpack"]
    prints = {(name, precision): r.fingerprint(precision, xnnpack.rewrites(r, precision))
              for name, r in RECIPES.items() if r.backend == "xnnpack" for precision in ("fp32", "int8")}
    int8 = [p for (_, precision), p in prints.items() if precision == "int8"]
    assert len({repr(p) for p in int8}) == len(int8)
    ours = prints["xnnpack", "int8"]
    assert ours["float_dyrelu"] and ours["dense_grouped_pointwise"] and ours["twin_bridges"] and not ours["fused_moves"]
    assert prints["xnnpack", "fp32"]["fused_moves"] and not prints["xnnpack", "fp32"]["twin_bridges"]
    assert not any(prints["xnnpack-stock", p][k] for p in ("fp32", "int8") for k in ("dense_grouped_pointwise", "fused_moves"))
    assert RECIPES["xnnpack"].fingerprint("int8", xnnpack.rewrites(RECIPES["xnnpack"], "int8")) == ours
    assert RECIPES["coreml"].fingerprint("int8", BACKENDS["coreml"].rewrites(RECIPES["coreml"], "int8"))["recipe"] == "coreml"
