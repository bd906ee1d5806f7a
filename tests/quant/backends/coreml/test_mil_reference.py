"""The MIL reference executor, op by op: each op it implements against an independent computation
(numpy or PyTorch written here; quantize against PT2E's own op) on small random inputs, and an op
it does not implement refused by name."""
import numpy as np
import pytest
import torch
import torchao.quantization.pt2e  # noqa: F401 (registers torch.ops.quantized_decomposed, PT2E's quantize ops)
import coremltools as ct
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types

from quant.backends.coreml.mil_reference import FAMILIES, IMPLEMENTED, Executor, UnsupportedOpError, load_program, run

RNG = np.random.default_rng(0)
SHAPE = (1, 4, 5, 6)


def _run(body, x: np.ndarray, dtype=types.fp32) -> np.ndarray:
    """``body(x)`` built as a one-input MIL program (iOS 17 ops) and run by the executor."""
    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape, dtype=dtype)], opset_version=ct.target.iOS17)
    def program(x):
        return body(x)

    out, _ = run(program, x)
    return np.asarray(out)


def _x(shape=SHAPE) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _close(ours, expected, tol=1e-5) -> None:
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=tol, atol=tol)


Y = _x()
ELEMENTWISE = {
    "add": (lambda x: mb.add(x=x, y=Y), lambda x: x + Y),
    "sub": (lambda x: mb.sub(x=x, y=Y), lambda x: x - Y),
    "mul": (lambda x: mb.mul(x=x, y=Y), lambda x: x * Y),
    "real_div": (lambda x: mb.real_div(x=x, y=np.abs(Y) + 0.5), lambda x: x / (np.abs(Y) + 0.5)),
    "maximum": (lambda x: mb.maximum(x=x, y=Y), lambda x: np.where(x > Y, x, Y)),
    "minimum": (lambda x: mb.minimum(x=x, y=Y), lambda x: np.where(x < Y, x, Y)),
    "exp": (lambda x: mb.exp(x=x), lambda x: torch.exp(torch.from_numpy(x)).numpy()),
    "rsqrt": (lambda x: mb.rsqrt(x=mb.mul(x=x, y=x), epsilon=np.float32(1e-3)),
              lambda x: 1 / torch.sqrt(torch.from_numpy(x * x) + 1e-3).numpy()),
    "sqrt": (lambda x: mb.sqrt(x=mb.mul(x=x, y=x)), lambda x: np.abs(x)),
}
ACTIVATIONS = {
    "relu": (lambda x: mb.relu(x=x), lambda x: torch.relu(torch.from_numpy(x)).numpy()),
    "relu6": (lambda x: mb.relu6(x=mb.mul(x=x, y=np.float32(5))), lambda x: np.clip(5 * x, 0, 6)),
    "clip": (lambda x: mb.clip(x=x, alpha=np.float32(-0.5), beta=np.float32(0.7)), lambda x: np.clip(x, -0.5, 0.7)),
    "gelu": (lambda x: mb.gelu(x=x, mode="EXACT"), lambda x: torch.nn.functional.gelu(torch.from_numpy(x)).numpy()),
    "sigmoid": (lambda x: mb.sigmoid(x=x), lambda x: torch.sigmoid(torch.from_numpy(x)).numpy()),
    "sigmoid_hard": (lambda x: mb.sigmoid_hard(x=x, alpha=np.float32(1 / 6), beta=np.float32(0.5)),
                     lambda x: torch.nn.functional.hardsigmoid(torch.from_numpy(x)).numpy()),
    "thresholded_relu": (lambda x: mb.thresholded_relu(x=x, alpha=np.float32(0.3)), lambda x: np.where(x > 0.3, x, 0)),
    "softmax": (lambda x: mb.softmax(x=x, axis=1), lambda x: torch.softmax(torch.from_numpy(x), 1).numpy()),
    "reduce_mean": (lambda x: mb.reduce_mean(x=x, axes=[2, 3], keep_dims=True),
                    lambda x: torch.from_numpy(x).mean((2, 3), keepdim=True).numpy()),
}
LAYOUT = {
    "reshape": (lambda x: mb.reshape(x=x, shape=[1, 4, 30]), lambda x: torch.from_numpy(x).reshape(1, 4, 30).numpy()),
    "transpose": (lambda x: mb.transpose(x=x, perm=[0, 3, 1, 2]),
                  lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).numpy()),
    "concat": (lambda x: mb.concat(values=[x, Y], axis=1),
               lambda x: torch.cat([torch.from_numpy(x), torch.from_numpy(Y)], 1).numpy()),
    "slice_by_index": (lambda x: mb.slice_by_index(x=x, begin=[0, 1, 0, 2], end=[1, 3, 5, 6], stride=[1, 1, 2, 1]),
                       lambda x: torch.from_numpy(x)[:, 1:3, 0:5:2, 2:6].numpy()),
    "expand_dims": (lambda x: mb.expand_dims(x=x, axes=[2]), lambda x: torch.from_numpy(x).unsqueeze(2).numpy()),
    "squeeze": (lambda x: mb.squeeze(x=x, axes=[0]), lambda x: torch.from_numpy(x).squeeze(0).numpy()),
}
W, B = _x((7, 6)), _x((7,))
GEMM = {
    "linear": (lambda x: mb.linear(x=x, weight=W, bias=B), lambda x: torch.nn.functional.linear(
        torch.from_numpy(x), torch.from_numpy(W), torch.from_numpy(B)).numpy()),
    "matmul": (lambda x: mb.matmul(x=x, y=Y, transpose_y=True),
               lambda x: (torch.from_numpy(x) @ torch.from_numpy(Y).transpose(-1, -2)).numpy()),
}


@pytest.mark.parametrize("op", [*ELEMENTWISE, *ACTIVATIONS, *LAYOUT, *GEMM])
def test_op_matches_an_independent_computation(op):
    build, expected = {**ELEMENTWISE, **ACTIVATIONS, **LAYOUT, **GEMM}[op]
    x = _x()
    _close(_run(build, x), expected(x))


def test_reshape_keeps_a_zero_dimension_and_infers_minus_one():
    x = _x()
    _close(_run(lambda v: mb.reshape(x=v, shape=[0, 0, -1, 3]), x), x.reshape(1, 4, 10, 3))


def test_quantize_of_fp16_values_matches_pytorch_on_the_widened_values():
    x = _x()
    ours = _run(lambda v: mb.quantize(input=mb.cast(x=v, dtype="fp16"), scale=SCALES.astype(np.float16),
                                      zero_point=ZERO_POINTS, axis=1, output_dtype="int8"), x)
    expected = torch.ops.quantized_decomposed.quantize_per_channel(
        torch.from_numpy(x.astype(np.float16).astype(np.float32)), torch.from_numpy(SCALES.astype(np.float16)).float(),
        torch.from_numpy(ZERO_POINTS).long(), 1, -128, 127, torch.int8).numpy()
    np.testing.assert_array_equal(ours, expected)


def test_weights_are_computed_once_per_program_not_per_image():
    """The executor folds what depends on no input (int8 weights dequantized, their transposes) when it is
    built; a run computes only what depends on the image, and gives what the unfolded ops would."""
    q = RNG.integers(-128, 128, (4, 6)).astype(np.int8)

    @mb.program(input_specs=[mb.TensorSpec(shape=(3, 6))], opset_version=ct.target.iOS17)
    def program(v):
        w = mb.constexpr_affine_dequantize(quantized_data=q, scale=SCALES, zero_point=ZERO_POINTS, axis=0)
        return mb.matmul(x=v, y=mb.transpose(x=w, perm=[1, 0]))

    executor = Executor(program)
    assert [op.op_type for op in executor.ops] == ["matmul"]
    x = _x((3, 6))
    weight = (q.astype(np.float32) - ZERO_POINTS[:, None]) * SCALES[:, None]
    for _ in range(2):
        _close(executor(x)[0], x @ weight.T)


def _naive_conv2d(x, w, b, stride, pad, dilation, groups):
    """Direct convolution as a sum over the kernel taps, in float64."""
    top, bottom, left, right = pad
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    for oc in range(o):
        g = oc // (o // groups)
        for i in range(kh):
            for j in range(kw):
                patch = x[:, g * cg:(g + 1) * cg, i * dilation[0]:i * dilation[0] + stride[0] * oh:stride[0],
                          j * dilation[1]:j * dilation[1] + stride[1] * ow:stride[1]]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, i, j])
        out[:, oc] += b[oc]
    return out


@pytest.mark.parametrize("groups,stride,pad,dilation", [(1, (1, 1), (1, 1, 1, 1), (1, 1)),
                                                       (4, (2, 2), (0, 1, 1, 0), (1, 1)),
                                                       (2, (1, 2), (2, 2, 2, 2), (2, 1))])
def test_conv_matches_a_direct_convolution(groups, stride, pad, dilation):
    x, w, b = _x(SHAPE), _x((8, 4 // groups, 3, 3)), _x((8,))
    ours = _run(lambda v: mb.conv(x=v, weight=w, bias=b, strides=list(stride), pad_type="custom", pad=list(pad),
                                  dilations=list(dilation), groups=groups), x)
    _close(ours, _naive_conv2d(x, w, b, stride, pad, dilation, groups), 1e-4)


def test_conv_in_fp16_keeps_fp16_between_ops():
    x, w = _x(SHAPE), _x((2, 4, 1, 1)).astype(np.float16)
    ours = _run(lambda v: mb.conv(x=mb.cast(x=v, dtype="fp16"), weight=w, pad_type="valid"), x)
    assert ours.dtype == np.float16
    _close(ours, _naive_conv2d(x.astype(np.float16), w, np.zeros(2), (1, 1), (0, 0, 0, 0), (1, 1), 1), 1e-2)


def test_an_fp16_softmax_after_a_transpose_sums_every_position():
    """96m's fp32 package was refused at its first Mobile->Former bridge (22.4 dB): the twin's
    softmax runs over 12,544 positions after a transpose, where numpy's fp16 sum (strided axis)
    adds term by term and stops at 2048, so the weights came out 4 to 6 times too large (-12.8 dB). The
    executor now computes each op in fp32 and rounds its result to the declared fp16."""
    x = (RNG.standard_normal((1, 4096, 2)) * 0.1).astype(np.float32)
    ours = _run(lambda v: mb.softmax(x=mb.transpose(x=mb.cast(x=v, dtype="fp16"), perm=[0, 2, 1]), axis=-1), x)
    assert ours.dtype == np.float16
    expected = torch.softmax(torch.from_numpy(x.astype(np.float16).astype(np.float32)).transpose(1, 2), -1)
    np.testing.assert_allclose(ours.astype(np.float32), expected.numpy(), rtol=2e-3, atol=0)


def test_batch_norm_matches_pytorch():
    mean, var, gamma, beta = _x((4,)), np.abs(_x((4,))) + 0.1, _x((4,)), _x((4,))
    x = _x()
    ours = _run(lambda v: mb.batch_norm(x=v, mean=mean, variance=var, gamma=gamma, beta=beta,
                                        epsilon=np.float32(1e-3)), x)
    expected = torch.nn.functional.batch_norm(torch.from_numpy(x), torch.from_numpy(mean), torch.from_numpy(var),
                                              torch.from_numpy(gamma), torch.from_numpy(beta), eps=1e-3)
    _close(ours, expected.numpy())


SCALES = np.array([0.02, 0.05, 0.1, 0.03], dtype=np.float32)
ZERO_POINTS = np.array([-3, 0, 7, 12], dtype=np.int8)


def test_quantize_per_channel_with_zero_points_matches_pytorch():
    x = _x()
    ours = _run(lambda v: mb.quantize(input=v, scale=SCALES, zero_point=ZERO_POINTS, axis=1, output_dtype="int8"), x)
    expected = torch.ops.quantized_decomposed.quantize_per_channel(
        torch.from_numpy(x), torch.from_numpy(SCALES), torch.from_numpy(ZERO_POINTS).long(), 1, -128, 127,
        torch.int8).numpy()
    assert ours.dtype == np.int8
    np.testing.assert_array_equal(ours, expected)


def test_quantize_per_tensor_uint8_saturates():
    x = _x() * 10
    ours = _run(lambda v: mb.quantize(input=v, scale=np.float32(0.05), zero_point=np.uint8(128),
                                      output_dtype="uint8"), x)
    expected = torch.ops.quantized_decomposed.quantize_per_tensor(torch.from_numpy(x), 0.05, 128, 0, 255,
                                                                  torch.uint8).numpy()
    assert ours.dtype == np.uint8 and ours.min() == 0 and ours.max() == 255
    np.testing.assert_array_equal(ours, expected)


def test_dequantize_per_channel_with_zero_points_matches_pytorch():
    q = RNG.integers(-128, 128, SHAPE).astype(np.int8)
    ours = _run(lambda v: mb.dequantize(input=mb.quantize(input=v, scale=np.float32(1), output_dtype="int8"),
                                        scale=SCALES, zero_point=ZERO_POINTS, axis=1), q.astype(np.float32))
    expected = (torch.from_numpy(q).float() - torch.from_numpy(ZERO_POINTS).float().view(1, 4, 1, 1)) \
        * torch.from_numpy(SCALES).view(1, 4, 1, 1)
    _close(ours, expected.numpy())


def test_constexpr_affine_dequantize_per_channel_weights():
    q = RNG.integers(-128, 128, (4, 6)).astype(np.int8)
    def body(v):
        w = mb.constexpr_affine_dequantize(quantized_data=q, scale=SCALES, zero_point=ZERO_POINTS, axis=0)
        return mb.linear(x=v, weight=w)

    x = _x((3, 6))
    weight = (q.astype(np.float32) - ZERO_POINTS[:, None]) * SCALES[:, None]
    _close(_run(body, x), x @ weight.T)


def test_every_implemented_op_is_tested_here():
    tested = {*ELEMENTWISE, *ACTIVATIONS, *LAYOUT, *GEMM, "conv", "batch_norm", "quantize", "dequantize",
              "constexpr_affine_dequantize", "cast", "const"}
    assert set(IMPLEMENTED) == tested, set(IMPLEMENTED) ^ tested
    assert sum(len(ops) for ops, _ in FAMILIES.values()) == len(IMPLEMENTED)  # no op in two families


def test_an_op_it_does_not_implement_is_refused_by_name():
    with pytest.raises(UnsupportedOpError, match="does not implement: tanh"):
        _run(lambda v: mb.tanh(x=v), _x())


@pytest.mark.slow  # converts a small program with coremltools (about 20 s)
def test_loading_a_package_leaves_its_bytes_alone(tmp_path):
    """coremltools rewrites the Manifest.json of a package it opens; the exported artifact's sha256 was
    changed by its own validation (and then differed from export to export)."""
    from quant.backends.coreml import _deterministic_manifest
    from quant.files import sha256_of

    weight = RNG.standard_normal((3, 6)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 6))], opset_version=ct.target.iOS17)
    def program(x):
        return mb.linear(x=x, weight=weight)

    package = tmp_path / "m.mlpackage"
    ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
               compute_precision=ct.precision.FLOAT32, skip_model_load=True).save(str(package))
    _deterministic_manifest(package)
    before = sha256_of(package)
    x = _x((2, 6))
    out, _ = run(load_program(package), x)
    assert sha256_of(package) == before
    _close(out, x @ weight.T)
