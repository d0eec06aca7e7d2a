"""Every gluonloss loss as a differentiable PyTorch module.

``gluonloss.torch.X`` is a :class:`torch.nn.Module` for every public loss
class ``X`` of gluonloss (the two aliases included).  Its constructor takes
the arguments of ``gluonloss.X`` plus ``reduction='none'|'mean'|'sum'``; its
``forward`` takes the arguments of ``gluonloss.X.forward`` in the same order
and returns a tensor that backpropagates through gluonloss's analytic
gradient.

- The differentiable inputs are those of the NumPy class: ``pred``;
  TripletLoss's ``pred``, ``positive``, ``negative``; CosineEmbeddingLoss's
  ``input1``, ``input2``; SDMLLoss's ``x1``, ``x2``.  Labels, targets,
  lengths and weights get no gradient (they are data, as in MXNet).
- When an input requires grad, one fused ``value_and_gradient`` call serves
  forward and backward: the backward scales the saved gradient sample by
  sample (SDMLLoss, whose gradient couples the samples, recomputes it for the
  incoming gradient).  Otherwise only the forward kernel runs.
- Tensors must be on the CPU; contiguous ones reach the kernels without a
  copy.  Other arguments (lists, NumPy arrays, numbers) are passed to the
  NumPy API as they are.  The result has the NumPy API's dtype (float32 when
  every differentiable input is float32 or float16, else float64); bfloat16
  tensors, which NumPy cannot hold, are read as float32.
- Bad input raises the NumPy API's own ValueError or TypeError; a tensor on
  another device, and a second derivative (``create_graph=True``), raise
  errors that say so.

>>> import torch
>>> import gluonloss.torch as glt
>>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]], requires_grad=True)
>>> loss = glt.SoftmaxCELoss(reduction="mean")
>>> value = loss(logits, torch.tensor([0, 2]))
>>> value.backward()
>>> round(value.item(), 4), logits.grad.shape
(0.1681, torch.Size([2, 3]))
"""
from typing import TYPE_CHECKING, Any

import numpy as np

from gluonloss._bridge import (
    LOSS_NAMES,
    check_reduction,
    make_classes,
    output_size,
    require,
    samples_before,
)

if TYPE_CHECKING:
    import torch

    from gluonloss._bridge import Signature
else:
    torch = require("torch", "PyTorch", "torch")

__all__ = list(LOSS_NAMES)

_Tensor = torch.Tensor
_bfloat16 = torch.bfloat16
_from_numpy = torch.from_numpy
_is_grad_enabled = torch.is_grad_enabled


def _to_numpy(value, name, loss_name):
    """A CPU tensor as a NumPy array sharing its memory; anything else as is."""
    if not isinstance(value, _Tensor):
        return value
    if not value.is_cpu:
        raise ValueError(f"{loss_name}: {name} is a tensor on device '{value.device}', but "
                         f"gluonloss computes on the CPU; move it there first "
                         f"({name}.cpu())")
    if value.dtype is _bfloat16:
        value = value.float()
    try:
        return value.detach().numpy() if value.requires_grad else value.numpy()
    except (RuntimeError, TypeError):
        # negative/conjugate views, or a dtype NumPy has no name for: let
        # PyTorch resolve it (a copy), then the NumPy API judges the result
        return value.numpy(force=True)


class _Call:
    """One call of a bridged loss, kept by its autograd node.

    A plain object on purpose: ``Function.apply`` walks its arguments as a
    pytree, so the NumPy views travel in one leaf, not in lists and dicts.
    """

    __slots__ = ("module", "arrays", "options", "sources", "versions", "grads", "n",
                 "upstream_scale", "forward_upstream")

    def __init__(self, module, arrays, options, sources):
        self.module, self.arrays, self.options, self.sources = module, arrays, options, sources


class _LossFunction(torch.autograd.Function):
    """The autograd node of every bridged loss: ``apply(call, *differentiable)``.

    The forward keeps the gradient for ones upstream, and the first backward
    scales it in place and hands it over (autograd then stores it as the
    input's ``.grad`` without a copy when that is empty).  A second backward
    through a retained graph gets the same gradient for ones again from the
    NumPy API's ``gradient`` (bitwise equal) and scales it the same way.
    SDMLLoss, whose gradient couples the samples, always calls ``gradient``
    with the upstream gradient.
    """

    @staticmethod
    def forward(ctx, call, *differentiable):
        module = call.module
        reduction = module.reduction
        call.forward_upstream, call.upstream_scale = None, 1.0
        if module._signature.per_sample:
            if reduction == "mean" and _size(call.arrays[module._signature.differentiable[0]]
                                             ) >= _PRESCALED_MEAN:
                # the gradient of the mean straight away: backward() then scales by 1
                n = _known_output_size(module.loss, call.arrays)
                if n:
                    call.forward_upstream = 1.0 / n
            out, grads = module.loss.value_and_gradient(*call.arrays, **call.options,
                                                        out_grad=call.forward_upstream)
            call.grads = _owned(grads)
        else:
            out = module.loss.forward(*call.arrays, **call.options)
            call.grads = None
        call.versions = [t._version for t in call.sources]
        call.n = n = out.shape[0]
        ctx.call = call
        out = _from_numpy(out)
        if reduction == "none":
            return out
        if reduction == "sum":
            return out.sum()
        if call.forward_upstream is None and n:
            call.upstream_scale = 1.0 / n
        return _mean(out, n)

    @staticmethod
    def backward(ctx, grad_output):
        call = ctx.call
        if _is_grad_enabled():
            raise RuntimeError(
                f"{type(call.module).__name__} has no second derivative in gluonloss.torch: "
                "backward with create_graph=True is not supported (the first derivative "
                "comes from gluonloss's analytic kernel)")
        reduction, grads = call.module.reduction, call.grads
        if reduction != "none":
            # one upstream value for every sample
            upstream = float(grad_output) * call.upstream_scale
        elif grad_output.stride(0) == 0 and call.n:
            # one value expanded to every sample, as the backward of sum() or mean() gives
            upstream = float(grad_output[0])
        else:
            upstream = grad_output
        per_sample = call.module._signature.per_sample
        if not per_sample:
            grads = [_from_numpy(g) for g in _gradient(call, upstream)]
        else:
            if grads is None:
                # a second backward: the same gradient as the forward's, from the NumPy API
                grads = _gradient(call, call.forward_upstream)
            call.grads = None          # handed over: scaled in place below
            before = 1 if reduction != "none" else samples_before(
                call.module.loss, [g.shape for g in grads])
            grads = [_scale_in_place(g, upstream, call.n, before) for g in grads]
        needs = ctx.needs_input_grad
        return (None, *[g if needs[1 + i] else None for i, g in enumerate(grads)])


def _gradient(call, upstream):
    """The gradient from the NumPy API for this upstream gradient."""
    for tensor, version in zip(call.sources, call.versions, strict=True):
        if tensor._version != version:
            raise RuntimeError(
                f"an argument of {type(call.module).__name__} was modified in place after "
                "the forward pass; its gradient cannot be computed")
    if isinstance(upstream, _Tensor):
        upstream = upstream.detach().numpy()
    return _owned(call.module.loss.gradient(*call.arrays, **call.options, out_grad=upstream))


def _owned(grads):
    """The NumPy API's gradients as a tuple of arrays that may be scaled in place."""
    grads = grads if type(grads) is tuple else (grads,)
    if all(g.flags.writeable for g in grads):
        return grads
    return tuple(g if g.flags.writeable else g.copy() for g in grads)


def _known_output_size(loss, arrays):
    """N from the input shapes, or None when they do not fit (the NumPy API
    then says why)."""
    try:
        return output_size(loss, [np.shape(a) for a in arrays])
    except (TypeError, ValueError):
        return None


def _mean(out, n):
    """``out.mean()``, as its sum over n (a quarter of ``mean``'s fixed cost)."""
    return out.sum().div_(n) if n else out.mean()


def _size(value):
    return value.size if isinstance(value, np.ndarray) else np.size(value)


# From this many elements up, reduction='mean' has the forward kernel compute
# the gradient of the mean, saving a pass over the gradient in the backward;
# below, checking the extra argument costs more than the pass.
_PRESCALED_MEAN = 1 << 16

# Below this many elements the saved gradient is scaled by NumPy on the calling
# thread: waking PyTorch's idle threads for a small pass over memory can cost
# milliseconds on a busy machine.  Above it PyTorch's threads share the pass.
_THREADED_SCALING = 1 << 20


def _scale_in_place(grad, upstream, n, before):
    """The saved gradient (for ones upstream) times each sample's upstream,
    as a tensor."""
    if type(upstream) is float:
        if upstream != 1.0:
            if grad.size >= _THREADED_SCALING:
                return _from_numpy(grad).mul_(upstream)
            np.multiply(grad, upstream, out=grad)
        return _from_numpy(grad)
    if not grad.size:
        return _from_numpy(grad)
    if before == 1 and grad.shape[0] == n:
        rows, shape = grad, (n,) + (1,) * (grad.ndim - 1)   # the batch first (usually)
    else:
        # read in C order, every per-sample gradient is (before, N, after)
        grad = np.ascontiguousarray(grad)
        rows, shape = grad.reshape(before, n, -1), (1, n, 1)
    if grad.size >= _THREADED_SCALING:
        _from_numpy(rows).mul_(upstream.view(shape))
    else:
        np.multiply(rows, upstream.detach().numpy().reshape(shape), out=rows)
    return _from_numpy(grad)


class _BridgedLoss(torch.nn.Module):
    # Set on each class by make_classes.
    _numpy_class: type[Any]
    _signature: "Signature"

    def __init__(self, *args, reduction="none", **kwargs):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss = self._numpy_class(*args, **kwargs)

    def extra_repr(self):
        return f"{self.loss!r}, reduction={self.reduction!r}"

    def forward(self, *args, **kwargs):
        """The loss of a batch.

        Parameters
        ----------
        *args, **kwargs
            The arguments of the NumPy class's ``forward``, in the same order
            (the class's docstring names them): CPU tensors or anything NumPy
            reads.

        Returns
        -------
        torch.Tensor
            Shape ``(N,)`` with ``reduction='none'``, else 0-d.
        """
        signature = self._signature
        name = type(self).__name__
        inputs, options = signature.bind(name, args, kwargs)
        arrays = [_to_numpy(value, arg, name)
                  for value, arg in zip(inputs, signature.inputs, strict=True)]
        numpy_options = {arg: _to_numpy(value, arg, name) for arg, value in options.items()}
        if _is_grad_enabled():
            differentiable = [inputs[i] for i in signature.differentiable]
            for value in differentiable:
                if isinstance(value, _Tensor) and value.requires_grad:
                    sources = [v for v in (*inputs, *options.values())
                               if isinstance(v, _Tensor)]
                    # a differentiable input given as a non-tensor gets no gradient
                    return _LossFunction.apply(_Call(self, arrays, numpy_options, sources), *[
                        v if isinstance(v, _Tensor) else None for v in differentiable])
        out = _from_numpy(self.loss.forward(*arrays, **numpy_options))
        reduction = self.reduction
        if reduction == "none":
            return out
        return out.sum() if reduction == "sum" else _mean(out, out.shape[0])


make_classes(globals(), _BridgedLoss, "PyTorch module", "no gradient", "a 0-d tensor")
