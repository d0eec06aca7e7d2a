"""What the PyTorch and JAX bridges share: each loss's call signature, and
where its batch lies in the gradient.

The bridges use only the public NumPy API of each loss (``forward``,
``gradient``, ``value_and_gradient``), passing every argument after the
loss's inputs by keyword.  This module imports neither framework.
"""
import importlib
import math

import gluonloss as _gl


def require(module, framework, extra):
    """Import ``module`` of an optional framework, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"gluonloss.{extra} needs {framework}, which is not installed; "
                          f'install it with: pip install "gluonloss[{extra}]"') from exc


class Signature:
    """How one loss class is called.

    Parameters
    ----------
    inputs : tuple of str
        The loss's inputs, in the order of its ``forward``.
    differentiable : tuple of int
        Positions in ``inputs`` of the inputs that get a gradient, in the
        order ``gradient`` returns them.
    options : tuple of str
        The optional arguments after the inputs, in ``forward``'s order.
    per_sample : bool
        Whether the gradient of sample ``b`` depends on the upstream
        gradient of sample ``b`` alone (all losses but SDMLLoss), so that
        the gradient for any upstream gradient is the saved gradient for
        ones, scaled sample by sample.
    """

    __slots__ = ("inputs", "differentiable", "options", "per_sample", "names")

    def __init__(self, inputs, differentiable, options, per_sample=True):
        self.inputs = inputs
        self.differentiable = differentiable
        self.options = options
        self.per_sample = per_sample
        self.names = inputs + options

    def bind(self, loss_name, args, kwargs):
        """``(inputs, options)``: the inputs as a list in order, the options
        that are given and not None as a dict; TypeError as Python's own."""
        n_inputs = len(self.inputs)
        if len(args) == n_inputs and not kwargs:
            return list(args), {}
        if len(args) > len(self.names):
            raise TypeError(f"{loss_name}.forward takes {len(self.names)} arguments "
                            f"({', '.join(self.names)}) but {len(args)} were given")
        values = dict(zip(self.names, args, strict=False))
        for name, value in kwargs.items():
            if name not in self.names:
                raise TypeError(f"{loss_name}.forward got an unexpected keyword argument "
                                f"{name!r}")
            if name in values:
                raise TypeError(f"{loss_name}.forward got multiple values for argument "
                                f"{name!r}")
            values[name] = value
        missing = [name for name in self.inputs if name not in values]
        if missing:
            raise TypeError(f"{loss_name}.forward is missing required argument(s): "
                            f"{', '.join(missing)}")
        inputs = [values[name] for name in self.inputs]
        options = {name: values[name] for name in self.options if values.get(name) is not None}
        return inputs, options


#: Public names: every loss class and the two aliases.
LOSS_NAMES = tuple(name for name in _gl.__all__
                   if isinstance(getattr(_gl, name), type)
                   and issubclass(getattr(_gl, name), _gl.Loss) and name != "Loss")

CANONICAL = {name: getattr(_gl, name).__name__ for name in LOSS_NAMES}


def _signature(cls):
    """``cls``'s call signature, read from the data its methods are made from."""
    return Signature(cls._inputs, tuple(cls._inputs.index(x) for x in cls._differentiable),
                     tuple(option for option, _ in cls._options),
                     # SDMLLoss couples the batch: every gradient row sees every sample.
                     per_sample=cls is not _gl.SDMLLoss)


SIGNATURES = {name: _signature(getattr(_gl, name)) for name in dict.fromkeys(CANONICAL.values())}


REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction):
    """``reduction`` if it is one of :data:`REDUCTIONS`, else ValueError."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of 'none', 'mean', 'sum', got {reduction!r}")
    return reduction


def output_size(loss, shapes):
    """N, the length of the per-sample output, from the input shapes; None
    when the shapes are wrong for the loss (the NumPy API then says why)."""
    first = shapes[0]
    if isinstance(loss, _gl.CosineEmbeddingLoss):
        return math.prod(shapes[1][:-1]) if len(shapes[1]) else None
    if isinstance(loss, _gl.CTCLoss):
        return first[loss.layout.index("N")] if len(first) == 3 else None
    if isinstance(loss, _gl.SDMLLoss):
        return first[0] if len(first) == 2 else None
    axis = loss.batch_axis
    return first[axis] if -len(first) <= axis < len(first) else None


def samples_before(loss, shapes):
    """How many elements precede the batch axis in the gradient's layout.

    Every per-sample gradient, read in C order, is ``(before, N, after)``
    with the batch in the middle; ``shapes`` are the shapes of the loss's
    inputs.  For most losses ``before`` is 1 (the batch comes first).
    """
    if isinstance(loss, _gl.CosineEmbeddingLoss):
        return 1                      # every axis but the last is the batch
    if isinstance(loss, _gl.CTCLoss):
        return shapes[0][0] if loss.layout == "TNC" else 1   # (T, N, C)
    shape = shapes[0]
    axis = loss.batch_axis
    axis = axis + len(shape) if axis < 0 else axis
    return math.prod(shape[:axis])


def make_classes(namespace, base, what, no_gradient, result):
    """One subclass of ``base`` per loss class, and the aliases, defined in
    the bridge module whose globals are ``namespace``.

    ``what`` says what each class is ("PyTorch module"), ``no_gradient``
    what the other arguments get, ``result`` what a reduction returns.
    """
    module, short = namespace["__name__"], namespace["__name__"].rpartition(".")[2]
    alias = {"torch": "glt", "jax": "glj"}[short]
    classes = {}
    for name, signature in SIGNATURES.items():
        differentiable = ", ".join(f"``{signature.inputs[i]}``"
                                   for i in signature.differentiable)
        doc = f"""{what} of :class:`gluonloss.{name}`.

    Called with the arguments of ``gluonloss.{name}.forward``:
    ``{", ".join(signature.names)}``.  Differentiable with respect to
    {differentiable}; the other arguments get {no_gradient}.

    Parameters
    ----------
    *args, **kwargs
        The constructor arguments of ``gluonloss.{name}``.
    reduction : {{'none', 'mean', 'sum'}}, default 'none'
        ``'none'`` returns the per-sample loss, shape ``(N,)``; ``'mean'`` and
        ``'sum'`` reduce it to {result}.

    Examples
    --------
    >>> import {module} as {alias}
    >>> {alias}.{name}(reduction="sum")
    {name}({getattr(_gl, name)()!r}, reduction='sum')
    """
        classes[name] = type(name, (base,), {
            "__module__": module, "__doc__": doc, "_numpy_class": getattr(_gl, name),
            "_signature": signature})
    namespace.update({alias_name: classes[canonical]
                      for alias_name, canonical in CANONICAL.items()})
