"""Every gluonloss loss as a differentiable JAX function.

``gluonloss.jax.X(...)`` is a callable for every public loss class ``X`` of
gluonloss (the two aliases included), with the constructor arguments of
``gluonloss.X`` plus ``reduction='none'|'mean'|'sum'``, called with the
arguments of ``gluonloss.X.forward`` in the same order.  It returns a
``jax.Array`` and is differentiable with :func:`jax.grad`, :func:`jax.vjp`
and :func:`jax.value_and_grad` with respect to the inputs the NumPy class
differentiates (``pred``; TripletLoss's ``pred``, ``positive``,
``negative``; CosineEmbeddingLoss's ``input1``, ``input2``; SDMLLoss's
``x1``, ``x2``).  Labels, targets, lengths and weights get a zero gradient.

How it works: a :func:`jax.custom_vjp` whose forward rule runs gluonloss's
fused ``value_and_gradient`` on the host (:func:`jax.pure_callback`) and
keeps the per-sample gradient; the backward rule scales it by the incoming
gradient in JAX (SDMLLoss, whose gradient couples the samples, calls
``gradient`` on the host again).  It works under :func:`jax.jit` and under
:func:`jax.vmap` (one host call per mapped element, as a Python loop would
make).  Called outside any transformation it calls the NumPy API directly.

- Differentiable inputs compute in float32, or in float64 when one of them
  is float64 (or an integer) and ``jax_enable_x64`` is on; float16 and
  bfloat16 compute in float32.  The gradient has each input's dtype.
- Bad input raises the NumPy API's own ValueError or TypeError.  Inside
  :func:`jax.jit` the host call reports it as JAX's runtime error, whose
  message carries the NumPy API's.

>>> import jax, jax.numpy as jnp
>>> import gluonloss.jax as glj
>>> loss = glj.SoftmaxCELoss(reduction="mean")
>>> logits = jnp.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
>>> labels = jnp.array([0, 2])
>>> value, grad = jax.jit(jax.value_and_grad(loss))(logits, labels)
>>> round(float(value), 4), grad.shape
(0.1681, (2, 3))
"""
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from gluonloss import _bridge

if TYPE_CHECKING:
    from jax import Array
    from jax.core import Tracer

    from gluonloss._bridge import Signature

jax = _bridge.require("jax", "JAX", "jax")
jnp = _bridge.require("jax.numpy", "JAX", "jax")

__all__ = list(_bridge.LOSS_NAMES)

_Tracer = jax.core.Tracer
_SINGLE_PRECISION = (np.dtype(np.float16), np.dtype(jnp.bfloat16), np.dtype(np.float32))


def _reduce(out, reduction):
    if reduction == "mean":
        return jnp.mean(out)
    if reduction == "sum":
        return jnp.sum(out)
    return out


def _is_jax(value):
    return isinstance(value, (jax.Array, _Tracer))


def _compute_dtype(arrays):
    """float32, or float64 when x64 is on and an input is neither float32 nor narrower."""
    if jax.config.jax_enable_x64 and any(a.dtype not in _SINGLE_PRECISION for a in arrays):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _on_host(host_function, *operands):
    """``host_function`` on NumPy views of the operands (the callback gets
    JAX arrays on the CPU)."""
    return host_function(*jax.tree_util.tree_map(np.asarray, operands))


def _raise_numpy_error(loss, signature, values):
    """Raise the NumPy API's error for arguments it rejects whatever the
    values: traced arrays stand in as zeros of their shape and dtype."""
    stand_ins = [np.zeros(np.shape(v), v.dtype) if isinstance(v, _Tracer) else
                 np.asarray(v) if isinstance(v, jax.Array) else v for v in values]
    n_inputs = len(signature.inputs)
    loss.forward(*stand_ins[:n_inputs], **{
        name: v for name, v in zip(signature.options, stand_ins[n_inputs:], strict=True)
        if v is not None})


class _Call:
    """One call: which arguments are JAX operands and which are passed to
    the host as they are."""

    def __init__(self, bridge, inputs, options):
        signature = bridge._signature
        self.loss = bridge.loss
        self.signature = signature
        values = list(inputs) + [options.get(name) for name in signature.options]
        try:
            differentiable = [jnp.asarray(values[i]) for i in signature.differentiable]
        except (TypeError, ValueError):
            _raise_numpy_error(self.loss, signature, values)
            raise
        if not all(jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer)
                   or a.dtype == jnp.bool_ for a in differentiable):
            _raise_numpy_error(self.loss, signature, values)     # complex: not real numbers
            raise TypeError(f"{type(self.loss).__name__}: the differentiable inputs must hold "
                            f"real numbers, got {[str(a.dtype) for a in differentiable]}")
        self.dtype = _compute_dtype(differentiable)
        self.differentiable = tuple(a.astype(self.dtype) for a in differentiable)
        # slot of each argument: ("d", k) a differentiable operand, ("o", k)
        # another JAX operand, ("s", value) a value passed as it is (None too)
        self.slots = []
        others: list[Array | Tracer] = []
        for position, value in enumerate(values):
            if position in signature.differentiable:
                self.slots.append(("d", signature.differentiable.index(position)))
            elif _is_jax(value):
                self.slots.append(("o", len(others)))
                others.append(value)
            else:
                self.slots.append(("s", value))
        self.others = tuple(others)
        shapes = [a.shape for a in self.differentiable]
        try:
            n = _bridge.output_size(self.loss, [self._shape(slot, shapes) for slot in self.slots[
                :len(signature.inputs)]])
        except (TypeError, ValueError):          # an input NumPy cannot read as an array
            _raise_numpy_error(self.loss, signature, values)
            raise
        if n is None:
            _raise_numpy_error(self.loss, signature, values)
            raise ValueError(f"{type(self.loss).__name__}: the input shapes "
                             f"{[np.shape(v) for v in values]} do not fit the loss")
        if n == 0:
            # XLA may skip a host call with empty results: check at trace time
            _raise_numpy_error(self.loss, signature, values)
        self.n = n
        self.before = _bridge.samples_before(self.loss, shapes)
        self.out_struct = jax.ShapeDtypeStruct((n,), self.dtype)
        self.grad_structs = tuple(jax.ShapeDtypeStruct(s, self.dtype) for s in shapes)

    def _shape(self, slot, shapes):
        kind, item = slot
        if kind == "d":
            return shapes[item]
        return np.shape(self.others[item] if kind == "o" else item)

    def arguments(self, differentiable, others):
        """The NumPy API's ``(inputs, options)`` from host arrays."""
        values = [differentiable[item] if kind == "d" else
                  others[item] if kind == "o" else item for kind, item in self.slots]
        n_inputs = len(self.signature.inputs)
        options = {name: value
                   for name, value in zip(self.signature.options, values[n_inputs:], strict=True)
                   if value is not None}
        return values[:n_inputs], options

    # -- host functions: NumPy arrays in, NumPy arrays out ------------------

    def host_forward(self, differentiable, others):
        inputs, options = self.arguments(differentiable, others)
        return self.loss.forward(*inputs, **options)

    def host_value_and_gradient(self, differentiable, others):
        inputs, options = self.arguments(differentiable, others)
        out, grads = self.loss.value_and_gradient(*inputs, **options)
        return out, (grads if isinstance(grads, tuple) else (grads,))

    def host_gradient(self, upstream, differentiable, others):
        inputs, options = self.arguments(differentiable, others)
        grads = self.loss.gradient(*inputs, **options, out_grad=upstream)
        return grads if isinstance(grads, tuple) else (grads,)

    def run(self, host_function, result_structs, *operands):
        """``host_function(*operands)``: directly when every operand is
        concrete, else through a host callback."""
        leaves = jax.tree_util.tree_leaves(operands)
        if not any(isinstance(leaf, _Tracer) for leaf in leaves):
            return jax.tree_util.tree_map(jnp.asarray, _on_host(host_function, *operands))
        return jax.pure_callback(partial(_on_host, host_function), result_structs, *operands,
                                 vmap_method="sequential")

    # -- the differentiable function ----------------------------------------

    def evaluate(self):
        call = self

        @jax.custom_vjp
        def loss(differentiable, others):
            return call.run(call.host_forward, call.out_struct, differentiable, others)

        def loss_fwd(differentiable, others):
            if call.signature.per_sample:
                out, grads = call.run(call.host_value_and_gradient,
                                      (call.out_struct, call.grad_structs),
                                      differentiable, others)
                return out, grads
            out = call.run(call.host_forward, call.out_struct, differentiable, others)
            return out, (differentiable, others)

        def loss_bwd(saved, upstream):
            if call.signature.per_sample:
                grads = tuple(call.scale(g, upstream) for g in saved)
            else:
                differentiable, others = saved
                grads = call.run(call.host_gradient, call.grad_structs,
                                 upstream.astype(call.dtype), differentiable, others)
            return tuple(grads), None

        loss.defvjp(loss_fwd, loss_bwd)
        return loss(self.differentiable, self.others)

    def scale(self, grad, upstream):
        """The saved gradient (for ones upstream) scaled by each sample's upstream."""
        if grad.size == 0:
            return grad
        scaled = grad.reshape(self.before, self.n, -1) * upstream.reshape(1, self.n, 1)
        return scaled.reshape(grad.shape).astype(grad.dtype)


class _BridgedLoss:
    # Set on each class by make_classes.
    _numpy_class: type[Any]
    _signature: "Signature"

    def __init__(self, *args, reduction="none", **kwargs):
        self.reduction = _bridge.check_reduction(reduction)
        self.loss = self._numpy_class(*args, **kwargs)

    def __repr__(self):
        return f"{type(self).__name__}({self.loss!r}, reduction={self.reduction!r})"

    def __call__(self, *args, **kwargs):
        inputs, options = self._signature.bind(type(self).__name__, args, kwargs)
        if not any(isinstance(v, _Tracer) for v in (*inputs, *options.values())):
            # nothing traced: the NumPy API on the arrays themselves
            arrays = [np.asarray(v) if isinstance(v, jax.Array) else v for v in inputs]
            options = {k: np.asarray(v) if isinstance(v, jax.Array) else v
                       for k, v in options.items()}
            return _reduce(jnp.asarray(self.loss.forward(*arrays, **options)), self.reduction)
        return _reduce(_Call(self, inputs, options).evaluate(), self.reduction)


_bridge.make_classes(globals(), _BridgedLoss, "JAX function", "a zero gradient", "a 0-d array")
