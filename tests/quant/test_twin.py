"""quant.twin: the quantizable twin computes what the float model computes, with the same parameters."""
import pytest
import torch

import mobileformer as mf
from quant.twin import fold_into_linear, quantizable
from tests.reference import reference_input, reference_keys, reference_state_dict


@pytest.mark.parametrize("variant", ["26m", pytest.param("151m", marks=pytest.mark.slow)])
def test_twin_matches_float_model(variant):
    model = mf.create_model(variant)
    model.load_state_dict(reference_state_dict(reference_keys(variant)["state_dict"]))
    twin = quantizable(model)
    assert list(twin.state_dict()) == list(model.state_dict())
    x = reference_input(2, 224, seed=1)
    with torch.no_grad():
        assert (twin(x) - model(x)).abs().max().item() <= 1e-4
    assert type(model.features[1].act1).__name__ == "DyReLU"  # the original is untouched
    float_dyrelu = quantizable(model, int8_dyrelu=False, bridges=False)  # what our fp32 export runs
    assert type(float_dyrelu.features[1].act1).__name__ == "DyReLU"
    assert type(float_dyrelu.features[1].local_global).__name__ == "Mobile2Former"
    with torch.no_grad():
        assert (float_dyrelu(x) - model(x)).abs().max().item() <= 1e-4


def test_head_batchnorm_is_folded_exactly():
    linear, bn = torch.nn.Linear(5, 6), torch.nn.BatchNorm1d(6)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    x = torch.randn(4, 5)
    expected = bn.eval()(linear(x))
    fold_into_linear(linear, bn)
    torch.testing.assert_close(linear(x), expected)
    torch.testing.assert_close(bn.eval()(linear(x)), expected)  # what is left is an identity
