"""gluonloss.torch: every loss as a torch.nn.Module, checked against the NumPy
API (values bitwise, gradients to rounding), torch.autograd.gradcheck in
float64 for every case and reduction, and every error of the NumPy API
raised with the same message."""
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gluonloss as gl  # noqa: E402
import gluonloss.torch as glt  # noqa: E402
from _bridge_cases import (  # noqa: E402
    BRIDGE_CASES,
    CASE_IDS,
    FIRST_PER_CLASS,
    check_constructor_error,
    check_public_surface,
    numpy_error,
)
from _error_catalog import CALL_ENTRIES, CONSTRUCTOR_ENTRIES, SUBJECT  # noqa: E402
from _package_under_test import run_python as run_in_child  # noqa: E402
from gluonloss._bridge import LOSS_NAMES  # noqa: E402

REDUCTIONS = ["none", "mean", "sum"]
FIRST_IDS = [c.id for c in FIRST_PER_CLASS]


def tensors(case, dtype=np.float64, requires_grad=True):
    """(args, options) as CPU tensors; the differentiable ones require grad."""
    args, options = case.arrays(dtype)
    args = [torch.from_numpy(np.array(a)) for a in args]
    for i in case.differentiable:
        args[i].requires_grad_(requires_grad)
    return args, {k: torch.as_tensor(v) for k, v in options.items()}


def numpy_of(args, options):
    return ([a.detach().numpy() for a in args],
            {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in options.items()})


def as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def run_python(code, cwd):
    """``code`` in a fresh interpreter in ``cwd``, on the gluonloss under test."""
    return run_in_child(["-c", textwrap.dedent(code)], cwd=cwd, timeout=120)


# -- the module's surface ---------------------------------------------------------

def test_public_surface():
    check_public_surface(glt)
    assert all(issubclass(getattr(glt, name), torch.nn.Module) for name in LOSS_NAMES)
    assert "reduction='sum'" in repr(glt.L2Loss(reduction="sum"))


def test_import_gluonloss_imports_no_framework(tmp_path):
    result = run_python("""
        import sys
        import gluonloss, gluonloss.reference
        gluonloss.L2Loss()([[1.0]], [[0.0]])
        print(sorted(m for m in ('torch', 'jax', 'optax') if m in sys.modules))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module, extra", [("gluonloss.torch", "torch"),
                                           ("gluonloss.jax", "jax")])
def test_missing_framework_gives_the_install_command(module, extra, tmp_path):
    # A meta-path finder that refuses the framework, as if it were not installed.
    result = run_python(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split('.')[0] == {extra!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
        sys.meta_path.insert(0, Block())
        import gluonloss
        try:
            import {module}
        except ImportError as exc:
            print(type(exc).__name__, exc)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ImportError")
    assert f'pip install "gluonloss[{extra}]"' in result.stdout


# -- values and gradients against the NumPy API ---------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", BRIDGE_CASES, ids=CASE_IDS)
def test_matches_the_numpy_api(case, dtype):
    args, options = tensors(case, dtype)
    module = case.make(glt)
    out = module(*args, **options)
    numpy_args, numpy_options = numpy_of(args, options)
    numpy_loss = case.make()
    expected = numpy_loss.forward(*numpy_args, **numpy_options)
    assert out.dtype == torch.from_numpy(expected).dtype
    np.testing.assert_array_equal(out.detach().numpy(), expected)      # one kernel, bitwise
    upstream = np.random.default_rng(1).uniform(-2, 2, expected.shape).astype(expected.dtype)
    out.backward(torch.from_numpy(upstream))
    expected_grads = as_tuple(numpy_loss.gradient(*numpy_args, **numpy_options,
                                                  out_grad=upstream))
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    for i, expected_grad in zip(case.differentiable, expected_grads, strict=False):
        assert args[i].grad.dtype == args[i].dtype
        np.testing.assert_allclose(args[i].grad.numpy(), expected_grad, rtol=rtol,
                                   atol=rtol * np.abs(expected_grad).max())


@pytest.mark.parametrize("case", BRIDGE_CASES, ids=CASE_IDS)
def test_gradcheck_float64(case):
    args, options = tensors(case)
    differentiable = [args[i] for i in case.differentiable]

    for reduction in REDUCTIONS:
        module = case.make(glt, reduction=reduction)

        def loss(*inputs):
            full = list(args)
            for i, x in zip(case.differentiable, inputs, strict=False):
                full[i] = x
            return module(*full, **options)

        assert torch.autograd.gradcheck(loss, differentiable, eps=1e-6, atol=1e-7,
                                        rtol=1e-6), reduction


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reductions(reduction):
    case = BRIDGE_CASES[0]
    args, options = tensors(case)
    out = case.make(glt, reduction=reduction)(*args, **options)
    per_sample = torch.from_numpy(case.make()(*numpy_of(args, options)[0], **options))
    expected = {"none": per_sample, "mean": per_sample.mean(), "sum": per_sample.sum()}
    assert out.shape == expected[reduction].shape
    torch.testing.assert_close(out.detach(), expected[reduction], rtol=1e-15, atol=0)


@pytest.mark.parametrize("shape, batch_axis", [((6, 5), 0), ((4, 6, 5), 1),
                                               ((1030, 1024), 0), ((2, 515, 1024), 1)],
                         ids=["small", "small-batch_axis1", "large", "large-batch_axis1"])
def test_every_kind_of_upstream_gradient(shape, batch_axis):
    # per-sample, one value expanded (the backward of sum() and mean()), a fused
    # reduction; small gradients are scaled by NumPy, large ones by PyTorch
    rng = np.random.default_rng(3)
    pred_np, label_np = rng.standard_normal(shape), rng.standard_normal(shape)
    n = shape[batch_axis]
    numpy_loss = gl.HuberLoss(batch_axis=batch_axis)
    per_sample = rng.uniform(-1, 2, n)
    cases = [("none", lambda out: out.backward(torch.from_numpy(per_sample)), per_sample),
             ("none", lambda out: out.sum().backward(), np.ones(n)),
             ("none", lambda out: out.mean().backward(), np.full(n, 1 / n)),
             ("none", lambda out: (3 * out.sum()).backward(), np.full(n, 3.0)),
             ("mean", lambda out: out.backward(), np.full(n, 1 / n)),
             ("mean", lambda out: (2 * out).backward(), np.full(n, 2 / n)),
             ("sum", lambda out: out.backward(), np.ones(n)),
             ("sum", lambda out: (-out).backward(), -np.ones(n))]
    for reduction, backward, upstream in cases:
        pred = torch.from_numpy(pred_np.copy()).requires_grad_()
        backward(glt.HuberLoss(batch_axis=batch_axis, reduction=reduction)(
            pred, torch.from_numpy(label_np)))
        expected = numpy_loss.gradient(pred_np, label_np, out_grad=upstream)
        np.testing.assert_allclose(pred.grad.numpy(), expected, rtol=1e-14, atol=1e-15,
                                   err_msg=reduction)


def test_inputs_of_any_strides():
    pred = torch.randn(5, 3, dtype=torch.float64).t().requires_grad_()   # (3, 5), transposed
    label = torch.randn(5, 3, dtype=torch.float64).t()
    out = glt.L1Loss()(pred, label)
    expected = gl.L1Loss()(pred.detach().numpy(), label.numpy())
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    out.sum().backward()
    np.testing.assert_array_equal(pred.grad.numpy(),
                                  gl.L1Loss().gradient(pred.detach().numpy(), label.numpy()))


def test_non_tensor_arguments_go_to_numpy_as_they_are():
    pred = torch.tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)
    out = glt.SoftmaxCELoss()(pred, [1, 0], sample_weight=np.array([[2.0], [1.0]]))
    expected = gl.SoftmaxCELoss()(pred.detach().numpy(), [1, 0], np.array([[2.0], [1.0]]))
    np.testing.assert_array_equal(out.detach().numpy(), expected)


def test_empty_batch():
    pred = torch.zeros((0, 4), requires_grad=True)
    out = glt.L2Loss()(pred, torch.zeros((0, 4)))
    assert out.shape == (0,)
    out.sum().backward()
    assert pred.grad.shape == (0, 4)
    assert torch.isnan(glt.L2Loss(reduction="mean")(pred, torch.zeros((0, 4))))


# -- arguments ----------------------------------------------------------------------

def test_arguments_by_position_and_keyword():
    pred = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    label = (torch.rand(3, 4, dtype=torch.float64) > 0.5).double()
    pos_weight = torch.rand(1, 4, dtype=torch.float64) + 0.5
    sample_weight = torch.rand(3, 1, dtype=torch.float64)
    loss = glt.SigmoidBCELoss()
    by_position = loss(pred, label, sample_weight, pos_weight)
    by_keyword = loss(label=label, pred=pred, pos_weight=pos_weight, sample_weight=sample_weight)
    assert torch.equal(by_position, by_keyword)
    expected = gl.SigmoidBCELoss()(pred.detach().numpy(), label.numpy(), sample_weight.numpy(),
                                   pos_weight.numpy())
    np.testing.assert_array_equal(by_position.detach().numpy(), expected)


@pytest.mark.parametrize("call, message", [
    (lambda loss, x: loss(x), r"missing required argument\(s\): label"),
    (lambda loss, x: loss(x, x, x, x), r"takes 3 arguments \(pred, label, sample_weight\)"),
    (lambda loss, x: loss(x, x, weight=x), "unexpected keyword argument 'weight'"),
    (lambda loss, x: loss(x, x, label=x), "multiple values for argument 'label'"),
])
def test_bad_call_signature(call, message):
    with pytest.raises(TypeError, match=message):
        call(glt.L2Loss(), torch.zeros(2, 2))


def test_labels_lengths_and_weights_get_no_gradient():
    case = next(c for c in BRIDGE_CASES if c.id == "ctc")
    args, options = tensors(case)
    options["sample_weight"] = options["sample_weight"].clone().requires_grad_()
    out = glt.CTCLoss()(*args, **options)
    out.sum().backward()
    assert args[0].grad is not None
    assert options["sample_weight"].grad is None


# -- what runs when ------------------------------------------------------------------

class Spy:
    """Counts the NumPy API's calls and records the arrays it is given."""

    def __init__(self, loss, monkeypatch):
        self.calls, self.arrays = [], []
        for method in ("forward", "gradient", "value_and_gradient"):
            original = getattr(loss, method)

            def spy(*args, _method=method, _original=original, **kwargs):
                self.calls.append(_method)
                self.arrays.append(args)
                return _original(*args, **kwargs)
            monkeypatch.setattr(loss, method, spy)


def test_forward_only_when_no_input_requires_grad(monkeypatch):
    module = glt.L2Loss()
    spy = Spy(module.loss, monkeypatch)
    pred, label = torch.randn(3, 4), torch.randn(3, 4)
    module(pred, label)
    with torch.no_grad():
        module(pred.requires_grad_(), label)
    assert spy.calls == ["forward", "forward"]


def test_one_fused_call_serves_forward_and_backward(monkeypatch):
    module = glt.TripletLoss(reduction="mean")
    spy = Spy(module.loss, monkeypatch)
    inputs = [torch.randn(3, 4, requires_grad=True) for _ in range(3)]
    module(*inputs).backward()
    assert spy.calls == ["value_and_gradient"]
    assert all(x.grad is not None for x in inputs)


def test_sdml_recomputes_its_coupled_gradient(monkeypatch):
    module = glt.SDMLLoss()
    spy = Spy(module.loss, monkeypatch)
    x1, x2 = (torch.randn(4, 3, dtype=torch.float64, requires_grad=True) for _ in range(2))
    upstream = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    module(x1, x2).backward(upstream)
    assert spy.calls == ["forward", "gradient"]
    expected = gl.SDMLLoss().gradient(x1.detach().numpy(), x2.detach().numpy(),
                                      out_grad=upstream.numpy())
    np.testing.assert_allclose(x1.grad.numpy(), expected[0], rtol=1e-14)
    np.testing.assert_allclose(x2.grad.numpy(), expected[1], rtol=1e-14)


def test_contiguous_tensors_reach_numpy_without_a_copy(monkeypatch):
    module = glt.SoftmaxCELoss()
    spy = Spy(module.loss, monkeypatch)
    pred = torch.randn(4, 5, requires_grad=True)
    label = torch.tensor([0, 4, 2, 1])
    module(pred, label)
    received_pred, received_label = spy.arrays[0]
    assert received_pred.ctypes.data == pred.data_ptr()
    assert received_label.ctypes.data == label.data_ptr()


def test_second_backward_through_a_retained_graph():
    for case in FIRST_PER_CLASS:
        args, options = tensors(case)
        out = case.make(glt)(*args, **options)
        upstream = torch.linspace(-1, 2, out.shape[0], dtype=torch.float64)
        out.backward(upstream, retain_graph=True)
        first = [args[i].grad.clone() for i in case.differentiable]
        out.backward(2 * upstream)
        for i, g in zip(case.differentiable, first, strict=False):
            torch.testing.assert_close(args[i].grad, 3 * g, rtol=1e-13, atol=1e-13)


def test_input_modified_in_place_before_a_second_backward():
    pred = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    label = torch.randn(3, 4, dtype=torch.float64)
    out = glt.L2Loss()(pred, label)
    out.sum().backward(retain_graph=True)
    label.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place after the forward pass"):
        out.sum().backward()
    # an option (here a weight) too
    weight = torch.ones(3, 1, dtype=torch.float64)
    out = glt.L2Loss()(pred, label, sample_weight=weight)
    out.sum().backward(retain_graph=True)
    weight.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified in place after the forward pass"):
        out.sum().backward()


# -- dtypes ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_dtype_policy_is_the_numpy_apis(dtype):
    pred = torch.randn(3, 4).to(dtype).requires_grad_()
    label = torch.randn(3, 4, dtype=torch.float64)
    out = glt.HuberLoss()(pred, label)
    expected = gl.HuberLoss()(pred.detach().numpy(), label.numpy())
    assert out.dtype == torch.from_numpy(expected).dtype
    out.sum().backward()
    assert pred.grad.dtype == dtype


def test_mixed_precision_inputs():
    pred = torch.randn(3, 4, requires_grad=True)                          # float32
    positive = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    negative = torch.randn(3, 4, requires_grad=True)
    out = glt.TripletLoss()(pred, positive, negative)
    assert out.dtype == torch.float64                     # as the NumPy API: not all float32
    out.sum().backward()
    assert (pred.grad.dtype, positive.grad.dtype) == (torch.float32, torch.float64)


def test_bfloat16_is_read_as_float32():
    pred = torch.randn(3, 4).bfloat16().requires_grad_()
    label = torch.randn(3, 4)
    out = glt.L2Loss()(pred, label)
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.detach().numpy(),
                                  gl.L2Loss()(pred.detach().float().numpy(), label.numpy()))
    out.sum().backward()
    assert pred.grad.dtype == torch.bfloat16


# -- errors ---------------------------------------------------------------------------

def _tensor_or_as_is(value):
    """A tensor where torch can hold the value (numbers, complex), else the value."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        return torch.from_numpy(value.copy())
    return value


BRIDGE_CALL_ENTRIES = [e for e in CALL_ENTRIES if "out_grad" not in e.call]


@pytest.mark.parametrize("entry", BRIDGE_CALL_ENTRIES, ids=[e.id for e in BRIDGE_CALL_ENTRIES])
def test_call_errors_as_the_numpy_api(entry):
    subject = SUBJECT[entry.subject]
    args = {**subject.args, **entry.call}
    expected = numpy_error(lambda: getattr(gl, subject.cls)(**subject.ctor)(**args))
    module = getattr(glt, subject.cls)(**subject.ctor)
    tensor_args = {k: _tensor_or_as_is(v) for k, v in args.items()}
    first = next(iter(tensor_args))                # pred, input1 or x1
    for requires_grad in (False, True):
        if isinstance(tensor_args[first], torch.Tensor) and tensor_args[first].is_floating_point():
            tensor_args[first].requires_grad_(requires_grad)
        with pytest.raises(type(expected)) as info:
            module(**tensor_args)
        assert str(info.value) == str(expected)


@pytest.mark.parametrize("entry", CONSTRUCTOR_ENTRIES, ids=[e.id for e in CONSTRUCTOR_ENTRIES])
def test_constructor_errors_as_the_numpy_api(entry):
    check_constructor_error(glt, SUBJECT[entry.subject], entry, _tensor_or_as_is)


@pytest.mark.parametrize("argument", ["pred", "label"])
def test_tensor_on_another_device(argument):
    pred, label = torch.zeros(3, 4, requires_grad=True), torch.zeros(3, 4)
    arguments = {"pred": pred, "label": label}
    arguments[argument] = torch.zeros(3, 4, device="meta")
    with pytest.raises(ValueError, match=f"{argument} is a tensor on device 'meta'.*CPU"):
        glt.L2Loss()(**arguments)


def test_double_backward_is_an_error():
    pred = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    label = torch.randn(3, 4, dtype=torch.float64)
    out = glt.L2Loss()(pred, label).sum()
    with pytest.raises(RuntimeError, match="no second derivative.*create_graph=True"):
        torch.autograd.grad(out, pred, create_graph=True)
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.autograd.gradgradcheck(lambda p: glt.L2Loss()(p, label), (pred,))


# -- in a model ------------------------------------------------------------------------

def test_trains_a_model():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()          # three classes
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = glt.SoftmaxCELoss(reduction="mean")
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
