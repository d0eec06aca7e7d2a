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
  every differentiable input is float32, else float64); bfloat16 tensors,
  which NumPy cannot hold, are read as float32.
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
try:
    import torch
except ImportError as exc:   # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError('gluonloss.torch needs PyTorch, which is not installed; install it with: '
                      'pip install "gluonloss[torch]"') from exc

import gluonloss as _gl
from gluonloss._bridge import CANONICAL, LOSS_NAMES, SIGNATURES, samples_before

__all__ = list(LOSS_NAMES)

_REDUCTIONS = ("none", "mean", "sum")
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
        return value.detach().numpy()
    except (RuntimeError, TypeError):
        # negative/conjugate views, or a dtype NumPy has no name for: let
        # PyTorch resolve it (a copy), then the NumPy API judges the result
        return value.numpy(force=True)


def _reduce(out, reduction):
    if reduction == "mean":
        return out.mean()
    if reduction == "sum":
        return out.sum()
    return out


class _LossFunction(torch.autograd.Function):
    """The autograd node of every bridged loss.

    ``apply(module, arrays, options, *differentiable)``: ``arrays`` and
    ``options`` are the NumPy views of all arguments, ``differentiable`` the
    tensors that gradients flow to.
    """

    @staticmethod
    def forward(ctx, module, arrays, options, *differentiable):
        loss = module.loss
        if module._signature.per_sample:
            out, grads = loss.value_and_gradient(*arrays, **options)
            ctx.grads = grads if type(grads) is tuple else (grads,)
            ctx.before = samples_before(loss, [a.shape for a in differentiable])
        else:
            out = loss.forward(*arrays, **options)
            ctx.arrays, ctx.options = arrays, options
        ctx.module = module
        ctx.n = out.shape[0]
        return _reduce(_from_numpy(out), module.reduction)

    @staticmethod
    def backward(ctx, grad_output):
        if _is_grad_enabled():
            raise RuntimeError(
                f"{type(ctx.module).__name__} has no second derivative in gluonloss.torch: "
                "backward with create_graph=True is not supported (the first derivative "
                "comes from gluonloss's analytic kernel)")
        reduction, n = ctx.module.reduction, ctx.n
        if reduction == "mean" and n:
            grad_output = grad_output / n
        if ctx.module._signature.per_sample:
            grads = [_scale(_from_numpy(g), grad_output, ctx.before, n, reduction)
                     for g in ctx.grads]
        else:
            if reduction == "none":
                upstream = grad_output.detach().numpy()
            else:
                upstream = float(grad_output)
            grads = ctx.module.loss.gradient(*ctx.arrays, **ctx.options, out_grad=upstream)
            grads = [_from_numpy(g) for g in grads]
        needs = ctx.needs_input_grad
        return (None, None, None,
                *[g if needs[3 + i] else None for i, g in enumerate(grads)])


def _scale(grad, grad_output, before, n, reduction):
    """The saved gradient (for ones upstream) scaled by each sample's upstream."""
    if reduction != "none":
        return grad * grad_output          # one scalar for every sample
    if grad.numel() == 0:
        return grad
    scaled = grad.reshape(before, n, -1) * grad_output.reshape(1, n, 1)
    return scaled.reshape(grad.shape)


class _BridgedLoss(torch.nn.Module):
    _numpy_class = None
    _signature = None

    def __init__(self, *args, reduction="none", **kwargs):
        super().__init__()
        if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of 'none', 'mean', 'sum', "
                             f"got {reduction!r}")
        self.loss = self._numpy_class(*args, **kwargs)
        self.reduction = reduction

    def extra_repr(self):
        return f"{self.loss!r}, reduction={self.reduction!r}"

    def forward(self, *args, **kwargs):
        signature = self._signature
        name = type(self).__name__
        inputs, options = signature.bind(name, args, kwargs)
        arrays = [_to_numpy(value, arg, name) for value, arg in zip(inputs, signature.inputs)]
        for arg, value in options.items():
            options[arg] = _to_numpy(value, arg, name)
        if _is_grad_enabled():
            differentiable = [inputs[i] for i in signature.differentiable]
            for value in differentiable:
                if isinstance(value, _Tensor) and value.requires_grad:
                    return _LossFunction.apply(self, arrays, options, *[
                        v if isinstance(v, _Tensor) else torch.as_tensor(v)
                        for v in differentiable])
        return _reduce(_from_numpy(self.loss.forward(*arrays, **options)), self.reduction)


def _forward_doc(name, signature):
    inputs = ", ".join(signature.names)
    differentiable = ", ".join(signature.inputs[i] for i in signature.differentiable)
    return f"""The loss of a batch, differentiable with respect to {differentiable}.

        Parameters
        ----------
        *args, **kwargs
            ``{inputs}``: the arguments of ``gluonloss.{name}.forward``, in
            the same order; tensors (on the CPU) or anything NumPy reads.

        Returns
        -------
        torch.Tensor
            Shape ``(N,)`` with ``reduction='none'``, else 0-d.
        """


def _class_doc(name, signature):
    differentiable = ", ".join(f"``{signature.inputs[i]}``" for i in signature.differentiable)
    return f"""PyTorch module of :class:`gluonloss.{name}`.

    Differentiable with respect to {differentiable}; the other arguments get
    no gradient.

    Parameters
    ----------
    *args, **kwargs
        The constructor arguments of ``gluonloss.{name}``.
    reduction : {{'none', 'mean', 'sum'}}, default 'none'
        ``'none'`` returns the per-sample loss, shape ``(N,)``; ``'mean'`` and
        ``'sum'`` reduce it to a 0-d tensor.

    Examples
    --------
    >>> import gluonloss.torch as glt
    >>> glt.{name}(reduction="sum")
    {name}({getattr(_gl, name)()!r}, reduction='sum')
    """


def _make_module(name):
    signature = SIGNATURES[name]

    def forward(self, *args, **kwargs):
        return _BridgedLoss.forward(self, *args, **kwargs)

    forward.__doc__ = _forward_doc(name, signature)
    return type(name, (_BridgedLoss,), {
        "__module__": __name__, "__doc__": _class_doc(name, signature),
        "_numpy_class": getattr(_gl, name), "_signature": signature, "forward": forward})


_CLASSES = {name: _make_module(name) for name in SIGNATURES}
globals().update({alias: _CLASSES[canonical] for alias, canonical in CANONICAL.items()})
