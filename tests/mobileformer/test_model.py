"""The network is the authors' network: keys, order, shapes, params and logits."""
import pytest
import torch

import mobileformer as mf
from mobileformer.dyrelu import DyReLU
from mobileformer.layers import ChannelShuffle, LayerNorm, attention
from tests.reference import REFERENCE_DIR, reference_input, reference_keys, reference_state_dict

VARIANTS = [name.removeprefix("mobile_former_") for name in mf.list_models()]


@pytest.fixture(scope="module", params=VARIANTS)
def reference_model(request):
    """(variant, model loaded with the reference weights, reference keys)."""
    ref = reference_keys(request.param)
    model = mf.create_model(request.param)
    model.load_state_dict(reference_state_dict(ref["state_dict"]))
    return request.param, model, ref


def test_state_dict_is_the_authors(reference_model):
    _, model, ref = reference_model
    ours = model.state_dict()
    assert list(ours) == list(ref["state_dict"]), "keys or their order differ"
    assert {k: list(v.shape) for k, v in ours.items()} == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == ref["params"]


def test_logits_match_golden_vectors(reference_model):
    variant, model, _ = reference_model
    golden = torch.load(REFERENCE_DIR / f"mobile_former_{variant}.logits.pt", weights_only=True)
    with torch.no_grad():
        logits = model(reference_input(golden["batch"], golden["size"], golden["seed"]))
    assert logits.shape == golden["logits"].shape
    assert (logits - golden["logits"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("size", [160, 192, 256])
def test_other_sizes_and_batch_independence(size):
    """Each image's logits do not depend on its batch mates, at any input size."""
    ref = reference_keys("52m")
    model = mf.create_model("52m")
    model.load_state_dict(reference_state_dict(ref["state_dict"], seed=size))
    x = reference_input(3, size, seed=size)
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert batched.shape == (3, 1000)
    assert torch.isfinite(batched).all()
    assert (batched - single).abs().max().item() <= 1e-4


def test_weights_change_the_output():
    """Guard against a forward that ignores a part of the network."""
    model = mf.create_model("26m")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = model(x)
        model.features[3].global_block.q.weight.mul_(3.0)
        after = model(x)
    assert not torch.allclose(before, after)


def test_dyrelu_is_max_of_two_slopes():
    x = torch.randn(2, 4, 3, 3)
    coeffs = torch.rand(2, 8, 1, 1)
    h1, h2 = coeffs[:, :4], coeffs[:, 4:]
    expected = torch.maximum(x * 2 * h1, x * (2 * h2 - 1))
    torch.testing.assert_close(DyReLU()(x, coeffs), expected)


def test_layernorm_matches_torch():
    ln = LayerNorm(16)
    torch.nn.init.normal_(ln.weight)
    torch.nn.init.normal_(ln.bias)
    x = torch.randn(2, 5, 16) * 3 + 1
    torch.testing.assert_close(ln(x), torch.nn.functional.layer_norm(x, (16,), ln.weight, ln.bias), atol=1e-5, rtol=1e-5)


def test_attention_matches_reference_formula():
    q, k_t, v = torch.randn(2, 2, 3, 8), torch.randn(2, 2, 8, 10), torch.randn(2, 2, 10, 8)
    expected = torch.softmax(q @ k_t * 0.5, dim=-1) @ v
    torch.testing.assert_close(attention(q, k_t, v, 0.5), expected)


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_no_multihead_attention_module():
    model = mf.create_model("508m")
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules())


def test_paper_blocks_cover_every_parameter():
    model = mf.create_model("96m")
    names = [name for name, _ in model.paper_blocks()]
    assert names[:2] == ["stem", "bneck-lite"] and names[-1] == "head"
    for key, _ in model.named_parameters():
        assert model.paper_block(key.rsplit(".", 1)[0]) in names
    assert model.paper_block("features.2.global_block.q") == "block 2: former"
    assert model.paper_block("features.2.conv1.0") == "block 2: mobile"
    assert model.paper_block("local_global.q") == "head"
    with pytest.raises(KeyError):
        model.paper_block("nonexistent.layer")


def _lowered_outside_ops(model: torch.nn.Module, size: int) -> dict[str, int]:
    """The ops that ExecuTorch's stock XNNPACK partitioner, as shipped, leaves outside its delegates."""
    from collections import Counter

    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(model.eval(), (torch.randn(1, 3, size, size),))
    graph = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).exported_program().graph
    return dict(Counter(str(n.target) for n in graph.nodes
                        if n.op == "call_function" and "delegate" not in str(n.target) and "getitem" not in str(n.target)))


def test_tiny_float_model_lowers_whole_with_the_stock_partitioner(tiny_model_factory):
    """Users bring their own pipelines: nothing of the float model is left outside XNNPACK."""
    assert _lowered_outside_ops(tiny_model_factory(), 64) == {}


@pytest.mark.slow
def test_26m_float_model_lowers_whole_with_the_stock_partitioner():
    assert _lowered_outside_ops(mf.create_model("26m"), 224) == {}
