"""The options beyond MXNet: SoftmaxCrossEntropyLoss's class_weight,
ignore_label and label_smoothing, CTCLoss's blank_label, float16 inputs and
the keyword-only arguments of gradient and value_and_gradient.

Where PyTorch defines the value (``F.cross_entropy``, ``F.ctc_loss``) the
loss and its gradient are compared with PyTorch's, gradients through
``torch.autograd``; the NumPy reference is checked against PyTorch the same
way.  Without torch those tests are skipped.
"""
import itertools
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import log_softmax

import gluonloss as gl
from _all_losses import LOSS_IDS, LOSSES
from _cases import stable_rng, tolerances
from gluonloss import reference

IMPLS = [pytest.param(gl, id="compiled"), pytest.param(reference, id="reference")]
DTYPES = [np.float32, np.float64]

N, C = 6, 5
CLASS_WEIGHT = np.array([0.5, 2.0, 1.0, 0.0, 3.0])


def _torch():
    return pytest.importorskip("torch")


def _assert_close(actual, expected, dtype):
    rtol, atol = tolerances(dtype)
    assert actual.dtype == np.dtype(dtype)
    assert_allclose(actual, expected, rtol=rtol, atol=atol)


# -- SoftmaxCrossEntropyLoss against torch.nn.functional.cross_entropy ----------------

def _sparse_labels(rng, ignore, shape=(N,)):
    label = rng.integers(0, C, shape)
    if ignore is not None:
        label.flat[1::3] = ignore
    return label


# Every combination PyTorch accepts: sparse labels with or without ignored
# positions (outside [0, C) and inside it), dense (probability) labels, each
# with and without class weights and smoothing.
SPARSE_COMBOS = list(itertools.product([None, -100, -1, 2], [False, True], [0.0, 0.3]))
DENSE_COMBOS = list(itertools.product([False, True], [0.0, 0.3]))


def _torch_cross_entropy(torch, pred, label, out_grad, dtype, **options):
    """PyTorch's per-position loss and its gradient (autograd) for a (N, C, ...) pred."""
    tp = torch.tensor(pred.astype(dtype), requires_grad=True)
    weight = options.pop("weight")
    kwargs = {"weight": None if weight is None else torch.tensor(weight, dtype=tp.dtype),
              **options}
    target = torch.tensor(label) if label.dtype.kind in "iu" else torch.tensor(label.astype(dtype))
    out = torch.nn.functional.cross_entropy(tp, target, reduction="none", **kwargs)
    og = torch.tensor(out_grad, dtype=tp.dtype).reshape((-1,) + (1,) * (out.ndim - 1))
    (grad,) = torch.autograd.grad((out * og).sum(), tp)
    return out.detach().numpy(), grad.numpy()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore, weighted, eps", SPARSE_COMBOS)
def test_sparse_matches_torch(impl, dtype, ignore, weighted, eps):
    torch = _torch()
    rng = stable_rng("sparse-torch", ignore, weighted, eps)
    pred = (rng.standard_normal((N, C)) * 3).astype(dtype)
    label = _sparse_labels(rng, ignore)
    og = rng.uniform(0.5, 2, N)
    cw = CLASS_WEIGHT if weighted else None
    want_out, want_grad = _torch_cross_entropy(
        torch, pred, label, og, dtype, weight=cw, label_smoothing=eps,
        **({} if ignore is None else {"ignore_index": ignore}))
    loss = impl.SoftmaxCELoss(class_weight=cw, ignore_label=ignore, label_smoothing=eps)
    out, grad = loss.value_and_gradient(pred, label, out_grad=og)
    _assert_close(out, want_out, dtype)
    _assert_close(grad, want_grad, dtype)
    _assert_close(loss(pred, label), want_out, dtype)
    _assert_close(loss.gradient(pred, label, out_grad=og), want_grad, dtype)
    if ignore is not None:
        ignored = label == ignore
        assert np.all(out[ignored] == 0) and np.all(grad[ignored] == 0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted, eps", DENSE_COMBOS)
def test_dense_matches_torch(impl, dtype, weighted, eps):
    torch = _torch()
    rng = stable_rng("dense-torch", weighted, eps)
    pred = (rng.standard_normal((N, C)) * 3).astype(dtype)
    label = rng.dirichlet(np.ones(C), N).astype(dtype)
    og = rng.uniform(0.5, 2, N)
    cw = CLASS_WEIGHT if weighted else None
    want_out, want_grad = _torch_cross_entropy(torch, pred, label, og, dtype, weight=cw,
                                               label_smoothing=eps)
    loss = impl.SoftmaxCELoss(sparse_label=False, class_weight=cw, label_smoothing=eps)
    out, grad = loss.value_and_gradient(pred, label, out_grad=og)
    _assert_close(out, want_out, dtype)
    _assert_close(grad, want_grad, dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore, weighted, eps", SPARSE_COMBOS[::3] + [(-100, True, 0.3)])
def test_positions_are_averaged_per_sample(impl, dtype, ignore, weighted, eps):
    """(N, C, D) with the classes on axis 1: PyTorch's per-position values, averaged
    over the D positions of each sample, ignored ones counting 0."""
    torch = _torch()
    rng = stable_rng("positions-torch", ignore, weighted, eps)
    pred = (rng.standard_normal((N, C, 4)) * 2).astype(dtype)
    label = _sparse_labels(rng, ignore, (N, 4))
    og = rng.uniform(0.5, 2, N)
    cw = CLASS_WEIGHT if weighted else None
    per_position, grad_sum = _torch_cross_entropy(
        torch, pred, label, og / 4, dtype, weight=cw, label_smoothing=eps,
        **({} if ignore is None else {"ignore_index": ignore}))
    loss = impl.SoftmaxCELoss(axis=1, class_weight=cw, ignore_label=ignore,
                              label_smoothing=eps)
    out, grad = loss.value_and_gradient(pred, label, out_grad=og)
    _assert_close(out, per_position.mean(axis=1), dtype)
    _assert_close(grad, grad_sum, dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sparse", [True, False])
def test_options_with_any_axis_and_sample_weight(impl, sparse):
    """Class axis first, batch axis last, per-position sample weights: the
    compiled loss and the reference agree (they are written independently)."""
    rng = stable_rng("axis-options", sparse)
    pred = rng.standard_normal((C, 3, N))
    label = (_sparse_labels(rng, -1, (3, N)) if sparse
             else np.moveaxis(rng.dirichlet(np.ones(C), (3, N)), -1, 0))
    options = dict(axis=0, batch_axis=-1, sparse_label=sparse, class_weight=CLASS_WEIGHT,
                   label_smoothing=0.2, ignore_label=-1 if sparse else None)
    sw = rng.uniform(0.5, 2, (1, 3, N))
    og = rng.standard_normal(N)
    out, grad = impl.SoftmaxCELoss(**options).value_and_gradient(
        pred, label, sample_weight=sw, out_grad=og)
    other = reference if impl is gl else gl
    want_out, want_grad = other.SoftmaxCELoss(**options).value_and_gradient(
        pred, label, sample_weight=sw, out_grad=og)
    _assert_close(out, want_out, np.float64)
    _assert_close(grad, want_grad, np.float64)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sparse", [True, False])
def test_from_logits_uses_pred_as_log_probabilities(impl, sparse):
    """from_logits=True: the same target, with pred itself as log p."""
    rng = stable_rng("from-logits-options", sparse)
    log_p = log_softmax(rng.standard_normal((N, C)), axis=1)
    label = _sparse_labels(rng, -100) if sparse else rng.dirichlet(np.ones(C), N)
    eps = 0.25
    options = dict(sparse_label=sparse, from_logits=True, class_weight=CLASS_WEIGHT,
                   label_smoothing=eps, ignore_label=-100 if sparse else None)
    og = rng.uniform(0.5, 2, N)
    out, grad = impl.SoftmaxCELoss(**options).value_and_gradient(log_p, label, out_grad=og)
    if sparse:
        onehot = np.zeros((N, C))
        kept = label >= 0
        onehot[np.flatnonzero(kept), label[kept]] = 1
        target = ((1 - eps) * onehot + eps / C * kept[:, None]) * CLASS_WEIGHT
    else:
        target = ((1 - eps) * label + eps / C) * CLASS_WEIGHT
    assert_allclose(out, -np.sum(target * log_p, axis=1), rtol=1e-13, atol=1e-15)
    assert_allclose(grad, -target * og[:, None], rtol=1e-13, atol=1e-15)


def test_class_weight_alone_scales_like_a_row_weight():
    """Sparse, no smoothing: class_weight[label] is a per-row weight (bitwise)."""
    rng = stable_rng("row-weight")
    pred = rng.standard_normal((N, C)).astype(np.float32)
    label = rng.integers(0, C, N)
    weighted = gl.SoftmaxCELoss(class_weight=CLASS_WEIGHT)
    plain = gl.SoftmaxCELoss()
    row_weight = CLASS_WEIGHT[label].astype(np.float32)
    assert_array_equal(weighted(pred, label), plain(pred, label) * row_weight)


def test_ignored_positions_never_read():
    """An ignored position's NaN logits do not reach the loss or the gradient."""
    pred = np.array([[np.nan, 1.0, 2.0], [0.0, 1.0, 2.0]])
    loss = gl.SoftmaxCELoss(ignore_label=-1, label_smoothing=0.1)
    out, grad = loss.value_and_gradient(pred, np.array([-1, 2]))
    assert out[0] == 0 and np.all(grad[0] == 0) and np.isfinite(out[1])


def test_ignore_label_inside_the_classes():
    rng = stable_rng("ignore-inside")
    pred = rng.standard_normal((N, C))
    label = np.array([0, 1, 2, 3, 4, 1])
    out = gl.SoftmaxCELoss(ignore_label=1)(pred, label)
    plain = gl.SoftmaxCELoss()(pred, label)
    assert_array_equal(out, np.where(label == 1, 0.0, plain))


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int64, np.uint64, np.float32])
def test_ignore_label_with_every_label_dtype(label_dtype):
    pred = np.zeros((3, 4))
    ignore = 3 if np.dtype(label_dtype).kind == "u" else -1
    label = np.array([0, ignore, 2], label_dtype)
    out = gl.SoftmaxCELoss(ignore_label=ignore)(pred, label)
    assert_allclose(out, [np.log(4), 0.0, np.log(4)])


def test_smoothing_with_large_logits_is_finite():
    """Logits of +-1e4: every term is computed as M - x_j >= 0, nothing overflows."""
    pred = np.array([[1e4, -1e4, 0.0]], np.float32)
    out = gl.SoftmaxCELoss(label_smoothing=0.3)(pred, np.array([0]))
    want = 0.1 * (0 + 2e4 + 1e4)
    assert_allclose(out, [want], rtol=1e-6)


def test_options_bitwise_independent_of_threads():
    rng = stable_rng("options-threads")
    pred = rng.standard_normal((3000, 37)).astype(np.float32)
    label = _sparse_labels(rng, -100, (3000,))
    loss = gl.SoftmaxCELoss(class_weight=rng.uniform(0, 2, 37), ignore_label=-100,
                            label_smoothing=0.1)
    with gl.num_threads(1):
        one = loss.value_and_gradient(pred, label)
    with gl.num_threads(2):
        two = loss.value_and_gradient(pred, label)
    assert_array_equal(one[0], two[0])
    assert_array_equal(one[1], two[1])


def test_option_properties_and_repr():
    loss = gl.SoftmaxCELoss(class_weight=[1, 2], ignore_label=-100, label_smoothing=0.1)
    assert loss.class_weight.tolist() == [1.0, 2.0] and not loss.class_weight.flags.writeable
    assert loss.ignore_label == -100 and loss.label_smoothing == 0.1
    assert repr(loss).endswith("class_weight=[1.0, 2.0], ignore_label=-100, "
                               "label_smoothing=0.1)")
    assert repr(gl.SoftmaxCELoss()) == "SoftmaxCrossEntropyLoss(batch_axis=0, w=None)"


# -- CTCLoss(blank_label='first') against torch.nn.functional.ctc_loss --------------

def _ctc_batch(rng, n=4, frames=12, classes=6, width=5):
    pred = rng.standard_normal((n, frames, classes)) * 2
    lengths = np.array([0, 2, width, 3])[:n]
    label = rng.integers(1, classes, (n, width))
    label[np.arange(width) >= lengths[:, None]] = 0
    label[1, :2] = [3, 3]                                   # an adjacent repeat
    return pred, label, lengths


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("zero_infinity", [True, False])
@pytest.mark.parametrize("given_lengths", [True, False])
def test_ctc_blank_first_matches_torch(impl, dtype, zero_infinity, given_lengths):
    torch = _torch()
    rng = stable_rng("ctc-first", zero_infinity, given_lengths)
    pred, label, lengths = _ctc_batch(rng)
    pred = pred.astype(dtype)
    frames = np.array([12, 10, 12, 2])                     # the last one is infeasible
    og = rng.uniform(0.5, 2, len(frames))
    tp = torch.tensor(pred, requires_grad=True)
    log_probs = torch.log_softmax(tp, dim=2).transpose(0, 1)          # (T, N, C)
    want = torch.nn.functional.ctc_loss(
        log_probs, torch.tensor(label), torch.tensor(frames), torch.tensor(lengths),
        blank=0, reduction="none", zero_infinity=zero_infinity)
    (want_grad,) = torch.autograd.grad((want * torch.tensor(og, dtype=tp.dtype)).sum(), tp)
    loss = impl.CTCLoss(blank_label="first", zero_infinity=zero_infinity)
    out, grad = loss.value_and_gradient(
        pred, label, pred_lengths=frames,
        label_lengths=lengths if given_lengths else None, out_grad=og)
    _assert_close(out, want.detach().numpy(), dtype)
    want_grad = want_grad.numpy()
    if not zero_infinity:
        # PyTorch's gradient of an infinite loss is NaN on its frames; gluonloss's
        # is 0 (documented).
        assert np.isnan(want_grad[3, :2]).all() and np.all(grad[3] == 0)
        want_grad[3] = 0
    _assert_close(grad, want_grad, dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout, label_layout", [("NTC", "NT"), ("TNC", "TN")])
def test_ctc_blank_first_is_blank_last_with_the_classes_rotated(impl, layout, label_layout):
    """Moving the blank from class C-1 to class 0 (labels + 1, padding 0) gives
    the same loss and the gradient with its class axis rotated (to rounding:
    the softmax sums the classes in another order)."""
    rng = stable_rng("ctc-rotate", layout)
    pred, label, lengths = _ctc_batch(rng)
    last_label = np.where(label == 0, -1, label - 1)
    first_pred = np.roll(pred, 1, axis=2)                  # class C-1 -> 0
    if layout == "TNC":
        pred, first_pred = pred.transpose(1, 0, 2), first_pred.transpose(1, 0, 2)
    if label_layout == "TN":
        label, last_label = label.T, last_label.T
    last = impl.CTCLoss(layout, label_layout)
    first = impl.CTCLoss(layout, label_layout, blank_label="first")
    out_last, grad_last = last.value_and_gradient(pred, last_label)
    out_first, grad_first = first.value_and_gradient(first_pred, label)
    assert_allclose(out_first, out_last, rtol=1e-14)
    assert_allclose(grad_first, np.roll(grad_last, 1, axis=2), rtol=1e-12, atol=1e-15)
    assert_array_equal(first(first_pred, label, None, lengths), out_first)


def test_ctc_blank_first_repr_and_property():
    loss = gl.CTCLoss(blank_label="first")
    assert loss.blank_label == "first" and repr(loss).endswith("blank_label='first')")
    assert gl.CTCLoss().blank_label == "last" and "blank_label" not in repr(gl.CTCLoss())


# -- float16 ---------------------------------------------------------------------------

def _as(args, kwargs, dtype):
    def cast(a):
        return a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype == np.float16 else a
    return [cast(a) for a in args], {k: cast(v) for k, v in kwargs.items()}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("entry", LOSSES, ids=LOSS_IDS)
def test_float16_computes_in_float32(entry, impl):
    """float16 differentiable inputs: results as for the same values in float32,
    returned as float32."""
    rng = stable_rng("float16", entry.cls)
    args, kwargs = entry.call_args(rng, "small", np.float16)
    og = entry.upstream(rng, args)
    loss = entry.make(impl)
    out, grads = loss.value_and_gradient(*args, **kwargs, out_grad=og)
    args32, kwargs32 = _as(args, kwargs, np.float32)
    want_out, want_grads = entry.make(impl).value_and_gradient(*args32, **kwargs32, out_grad=og)
    grads = grads if isinstance(grads, tuple) else (grads,)
    want_grads = want_grads if isinstance(want_grads, tuple) else (want_grads,)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    assert_array_equal(out, want_out)
    for g, w in zip(grads, want_grads, strict=True):
        assert_array_equal(g, w)
    assert loss(*args, **kwargs).dtype == np.float32


@pytest.mark.parametrize("impl", IMPLS)
def test_float16_with_float64_computes_in_float64(impl):
    x = np.ones((2, 3), np.float16)
    out, grads = impl.TripletLoss().value_and_gradient(x, x.astype(np.float64), x)
    assert out.dtype == np.float64 and all(g.dtype == np.float64 for g in grads)
    assert impl.L2Loss()(x, np.zeros((2, 3), np.float16)).dtype == np.float32
    assert impl.L2Loss()(x.astype(np.int32), x).dtype == np.float64


# -- keyword-only arguments of gradient and value_and_gradient ----------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("entry", LOSSES, ids=LOSS_IDS)
def test_positional_extra_is_a_type_error(entry, impl):
    rng = stable_rng("keyword-only", entry.cls)
    args, _ = entry.call_args(rng, "small", np.float64)
    loss = entry.make(impl)
    cls = getattr(gl, entry.cls)
    keywords = [option for option, _ in cls._options] + ["out_grad"]
    for method in (loss.gradient, loss.value_and_gradient):
        with pytest.raises(TypeError) as info:
            method(*args, None)
        if impl is gl:
            assert f"pass {keywords[0]}=..." in str(info.value)
            assert f"{method.__name__}() takes only the inputs" in str(info.value)
    loss.forward(*args, *(default for _, default in cls._options))   # forward: positional


def test_keyword_only_signature():
    import inspect
    text = str(inspect.signature(gl.CTCLoss.gradient))
    assert re.search(r"label: .*, \*, pred_lengths", text), text
    text = str(inspect.signature(gl.CTCLoss.forward))
    assert "*" not in text.replace("'", ""), text


def test_two_positional_extras_name_both_keywords():
    loss = gl.SigmoidBCELoss()
    with pytest.raises(TypeError, match=r"pass sample_weight=\.\.\., pos_weight=\.\.\."):
        loss.value_and_gradient(np.zeros(3), np.ones(3), None, None)


# -- the conformance kit's option cases ------------------------------------------------

def _runner(impl, drop=()):
    def run(case):
        params = {k: v for k, v in case.params.items() if k not in drop}
        loss = getattr(impl, case.loss)(**params)
        return loss.value_and_gradient(*case.inputs.values(), **case.kwargs,
                                       out_grad=case.out_grad)
    return run


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["SoftmaxCELoss", "CTCLoss"])
def test_conformance_option_cases_pass(impl, name):
    from gluonloss import testing
    derived = [c for c in testing.cases(name, options=True) if c not in testing.cases(name)]
    assert derived and all(c.source.startswith("derived from MXNet 1.9.1") for c in derived)
    assert all(("blank_label" in c.params) or ("class_weight" in c.params) for c in derived)
    result = testing.check(_runner(impl), name, options=True)
    assert result, result


@pytest.mark.parametrize("name, option", [("SoftmaxCELoss", "class_weight"),
                                          ("SoftmaxCELoss", "ignore_label"),
                                          ("CTCLoss", "blank_label")])
def test_conformance_option_cases_catch_a_forgotten_option(name, option):
    from gluonloss import testing
    if option == "ignore_label":
        # Without ignore_label the -1 labels are invalid: every derived case fails.
        run = _runner(gl, drop=("ignore_label",))
    else:
        run = _runner(gl, drop=(option,))
    result = testing.check(run, name, options=True)
    n_derived = len(testing.cases(name, options=True)) - len(testing.cases(name))
    assert len(result.failed) == n_derived


# -- through the PyTorch and JAX bridges and on Dask arrays ------------------------------

OPTIONS = {"class_weight": CLASS_WEIGHT, "ignore_label": -100, "label_smoothing": 0.1}
CTC_LABEL_FIRST = np.array([[2, 1, 0, 0], [3, 2, 2, 0], [1, 2, 1, 3]])


def _option_data():
    rng = stable_rng("bridges-options")
    pred = rng.standard_normal((N, C))
    label = np.array([0, -100, 2, 3, 4, 1])
    og = rng.uniform(0.5, 2, N)
    ctc_pred = rng.standard_normal((3, 6, 4))
    return pred, label, og, ctc_pred


def test_options_through_torch():
    torch = _torch()
    import gluonloss.torch as glt
    pred, label, og, ctc_pred = _option_data()
    want_out, want_grad = gl.SoftmaxCELoss(**OPTIONS).value_and_gradient(pred, label,
                                                                         out_grad=og)
    tp = torch.tensor(pred, requires_grad=True)
    out = glt.SoftmaxCELoss(**OPTIONS)(tp, torch.tensor(label))
    (out * torch.tensor(og)).sum().backward()
    assert_array_equal(out.detach().numpy(), want_out)
    assert_allclose(tp.grad.numpy(), want_grad, rtol=1e-13, atol=1e-16)
    want_out, want_grad = gl.CTCLoss(blank_label="first").value_and_gradient(ctc_pred,
                                                                             CTC_LABEL_FIRST)
    tp = torch.tensor(ctc_pred, requires_grad=True)
    out = glt.CTCLoss(blank_label="first")(tp, torch.tensor(CTC_LABEL_FIRST))
    out.sum().backward()
    assert_array_equal(out.detach().numpy(), want_out)
    assert_allclose(tp.grad.numpy(), want_grad, rtol=1e-13, atol=1e-16)


def test_options_through_jax():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import gluonloss.jax as glj
    pred, label, og, ctc_pred = _option_data()
    pred32, ctc32 = pred.astype(np.float32), ctc_pred.astype(np.float32)
    want_out, want_grad = gl.SoftmaxCELoss(**OPTIONS).value_and_gradient(pred32, label,
                                                                         out_grad=og)
    loss = glj.SoftmaxCELoss(**OPTIONS)
    out = loss(jnp.asarray(pred32), label)
    grad = jax.grad(lambda p: jnp.sum(loss(p, label) * og))(jnp.asarray(pred32))
    assert_allclose(np.asarray(out), want_out, rtol=1e-6)
    assert_allclose(np.asarray(grad), want_grad, rtol=1e-5, atol=1e-7)
    want_grad = gl.CTCLoss(blank_label="first").gradient(ctc32, CTC_LABEL_FIRST)
    ctc = glj.CTCLoss(blank_label="first")
    grad = jax.grad(lambda p: jnp.sum(ctc(p, CTC_LABEL_FIRST)))(jnp.asarray(ctc32))
    assert_allclose(np.asarray(grad), want_grad, rtol=1e-5, atol=1e-7)


def test_options_on_dask_arrays():
    da = pytest.importorskip("dask.array")
    pred, label, og, ctc_pred = _option_data()
    loss = gl.SoftmaxCELoss(**OPTIONS)
    out, grad = loss.value_and_gradient(da.from_array(pred, chunks=(2, C)),
                                        da.from_array(label, chunks=2), out_grad=og)
    want_out, want_grad = loss.value_and_gradient(pred, label, out_grad=og)
    assert_array_equal(out.compute(), want_out)
    assert_array_equal(grad.compute(), want_grad)
    ctc = gl.CTCLoss(blank_label="first")
    out, grad = ctc.value_and_gradient(da.from_array(ctc_pred, chunks=(1, 6, 4)),
                                       CTC_LABEL_FIRST)
    want_out, want_grad = ctc.value_and_gradient(ctc_pred, CTC_LABEL_FIRST)
    assert_array_equal(out.compute(), want_out)
    assert_array_equal(grad.compute(), want_grad)
    with pytest.raises(ValueError, match=r"label\[2, 0\] = 0 \(padding\) lies inside"):
        # Only the third sample is bad: with several, which block's error
        # comes first would depend on the scheduler.
        ctc(da.from_array(ctc_pred, chunks=(1, 6, 4)),
            np.where((CTC_LABEL_FIRST == 1) & (np.arange(3)[:, None] == 2), 0, CTC_LABEL_FIRST),
            None, [2, 3, 4]).compute()


# -- float16 through the bridges, every loss ----------------------------------------------

def _bridge_cases():
    from _bridge_cases import FIRST_PER_CLASS
    return FIRST_PER_CLASS


@pytest.mark.parametrize("case", _bridge_cases(), ids=lambda c: c.id)
def test_float16_through_torch(case):
    torch = _torch()
    import gluonloss.torch as glt
    args, options = case.arrays(np.float16)
    tensors = [torch.from_numpy(np.array(a)) for a in args]
    for i in case.differentiable:
        tensors[i].requires_grad_(True)
    out = case.make(glt)(*tensors, **{k: torch.as_tensor(v) for k, v in options.items()})
    want = case.make()(*args, **options)
    assert out.dtype == torch.float32 and want.dtype == np.float32
    assert_array_equal(out.detach().numpy(), want)
    out.sum().backward()
    for i in case.differentiable:
        assert tensors[i].grad.dtype == torch.float16


@pytest.mark.parametrize("case", _bridge_cases(), ids=lambda c: c.id)
def test_float16_through_jax(case):
    pytest.importorskip("jax")
    import jax.numpy as jnp

    import gluonloss.jax as glj
    args, options = case.arrays(np.float16)
    inputs = [jnp.asarray(a) if i in case.differentiable else a for i, a in enumerate(args)]
    out = case.make(glj)(*inputs, **options)
    want = case.make()(*args, **options)
    assert out.dtype == jnp.float32 and want.dtype == np.float32
    assert_allclose(np.asarray(out), want, rtol=1e-6, atol=1e-7)
