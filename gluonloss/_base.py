"""The public base class of every loss, and the template of its methods.

A loss class states its call signature as data -- ``_inputs`` (the arrays,
in MXNet's positional order), ``_differentiable`` (those with a gradient),
``_options`` (the keyword arguments after the inputs, with defaults) and
``_parameter_docs`` -- and implements ``_validate`` and ``_compute``.  ``forward``,
``gradient`` and ``value_and_gradient`` are then generated for it, with
that signature and a numpydoc docstring built from the same data, so that
``help()`` and the API pages show each loss's real arguments.  Every one of
them goes through :meth:`Loss._call`, the single place where the raw call
arguments are seen before validation.
"""
from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from gluonloss._dask import _MODULES, _PLAIN_TYPES, _has_dask_array, _lazy_call
from gluonloss._settings import Settings
from gluonloss._threads import threads_for

#: What ``gradient`` returns: one array, or one per differentiable input.
Gradient = np.ndarray | tuple[np.ndarray, ...]

_SUMMARY_ONE_PASS = "``(forward(...), gradient(...))`` from one pass over the data."
# The two constructor arguments of most losses, as their docstrings give them.
_WEIGHT_AND_BATCH_AXIS_DOC = """\
    weight : float or None, default None
        Global scalar weight; None means 1.
    batch_axis : int, default 0
        The axis of ``pred`` that indexes samples.
"""
_OUT_GRAD_DOC = ("array_like, optional",
                 "Upstream gradient, broadcasting to ``(N,)``; None means ones.")

# The source of a generated method: a plain function with the real signature,
# so a call costs what a hand-written method costs.  ``gradient`` and
# ``value_and_gradient`` take everything after the inputs by keyword; their
# ``*_extra`` only exists to turn a positional extra into a TypeError that
# names the keyword.  The Dask check costs one dictionary lookup until
# ``dask.array`` is imported (see gluonloss._dask).
_METHOD_SOURCE = """\
def {name}(self, {parameters}) -> {returns!r}:
{extra_check}\
    if 'dask.array' in _modules and ({unseen}) and _has_dask_array(({values})):
        return _lazy_call(self, _this, (), {{{by_name}}})
    return self._call(({inputs}), ({options}), {out_grad}, {want_loss}, {want_grad}){pick}
"""
_EXTRA_CHECK = """\
    if _extra:
        _positional_extra(self, {name!r}, _extra)
"""


class Loss(Settings):
    """Base class for all losses.

    A loss maps a batch of predictions (and labels) to one value per sample
    and provides the analytic gradient of ``sum(out_grad * loss)`` with
    respect to each differentiable input.  Subclasses define
    :meth:`forward`, :meth:`gradient` and :meth:`value_and_gradient` with
    their own call arguments (MXNet's); calling the loss object is the same
    as calling :meth:`forward`.

    Parameters
    ----------
    weight : float or None
        Global scalar multiplier of the loss; None means 1.
    batch_axis : int
        The axis of the prediction that indexes samples (negative allowed).

    Notes
    -----
    What every loss shares:

    - Inputs are anything :func:`numpy.asarray` accepts, in any memory
      layout; they are never modified, and outputs never alias them.
    - Computation is float32 when every differentiable input is float32 or
      float16, else float64 (float16 inputs are computed, and returned, in
      float32).
    - ``sample_weight`` follows one of two rules.  Where there is an
      elementwise loss (the elementwise and softmax families) it multiplies
      that loss before the per-sample reduction, so it may vary inside a
      sample and must broadcast to the elementwise loss without enlarging
      it.  The losses with one value per sample and nothing elementwise
      (TripletLoss, CosineEmbeddingLoss, CTCLoss) take one weight per
      sample (any shape with N elements) or a single shared one.
    - ``out_grad`` (ones when None) must broadcast to the output's shape.
    - Bad input raises ValueError or TypeError naming the argument.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> loss = gl.L2Loss()
    >>> isinstance(loss, gl.Loss), loss
    (True, L2Loss(batch_axis=0, w=1.0))
    >>> loss(np.array([[1., 2.]]), np.array([[1., 0.]]))   # same as loss.forward
    array([1.])
    """

    #: Names of the array inputs, in MXNet's positional order.
    _inputs: ClassVar[tuple[str, ...]] = ()
    #: The inputs that get a gradient, in the order ``gradient`` returns them.
    _differentiable: ClassVar[tuple[str, ...]] = ()
    #: ``(name, default)`` of the call arguments after the inputs.
    _options: ClassVar[tuple[tuple[str, Any], ...]] = ()
    #: ``name -> (numpydoc type, description)`` of every call argument
    #: (merged along the class hierarchy, subclasses win).
    _parameter_docs: ClassVar[dict[str, tuple[str, str]]] = {"out_grad": _OUT_GRAD_DOC}
    #: ``name -> text`` put in place of a docstring line ``{name}`` (indented
    #: four spaces), for sections that several losses share word for word.
    _doc_snippets: ClassVar[dict[str, str]] = {"weight_and_batch_axis": _WEIGHT_AND_BATCH_AXIS_DOC}
    #: Docstring pieces of the generated methods.
    _forward_summary: ClassVar[str] = "Per-sample loss."
    _out_doc: ClassVar[str] = "Shape ``(N,)``."
    #: Returns text of the gradient; empty: "Shaped like ``<input>``." for one
    #: differentiable input, "Each shaped like its input." for several.
    _grad_doc: ClassVar[str] = ""
    #: The family's compiled entry for the common call (see :meth:`_call`), or
    #: None.  It takes ``(self._fast_constants(), inputs, options, out_grad,
    #: want_loss, want_grad, threads_for)`` and returns ``(out, grad)``, or None
    #: when the call is not one it answers.
    _fast_entry: ClassVar[Any] = None
    #: The default of each option, in the order of ``_options``.
    _option_defaults: ClassVar[tuple[Any, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._option_defaults = tuple(default for _, default in cls._options)
        if (("_validate" in cls.__dict__ or "_compute" in cls.__dict__)
                and "_fast_entry" not in cls.__dict__):
            # Whoever changes how a call is checked or computed gets the general
            # path, unless the class says that its family's fast entry still holds.
            cls._fast_entry = None
        if cls.__doc__:
            # Subclasses first: a subclass's snippet may hold its bases' placeholders.
            for klass in cls.__mro__:
                for name, text in klass.__dict__.get("_doc_snippets", {}).items():
                    cls.__doc__ = cls.__doc__.replace(f"    {{{name}}}\n", text)
        docs: dict[str, tuple[str, str]] = {}
        for klass in reversed(cls.__mro__):
            docs.update(klass.__dict__.get("_parameter_docs", {}))
        cls._parameter_docs = docs
        if cls._inputs:
            for name in ("forward", "gradient", "value_and_gradient"):
                setattr(cls, name, cls.__dict__.get(name) or _make_method(cls, name))
            if "__call__" not in cls.__dict__:
                # As Loss.__call__, one Python call fewer.
                setattr(cls, "__call__", cls.forward)  # noqa: B010 (a method, not an attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.forward(*args, **kwargs)

    def _call(self, inputs, options, out_grad, want_loss, want_grad):
        """The one entry of ``forward``, ``gradient`` and ``value_and_gradient``.

        Receives the raw call arguments, before any validation: ``inputs``
        and ``options`` are tuples in the order of ``_inputs`` and
        ``_options``, ``out_grad`` is None for ``forward``.  Returns
        ``(out, grad)``, each None when not wanted.  The common call (plain
        C-contiguous arrays, no options; see ``_fast_entry``) runs in one
        compiled step, which the general path would reach with the same kernel
        job; any other validates (``_validate``), then computes (``_compute``)
        unless the batch is empty.
        """
        fast = self._fast_entry
        if fast is not None:
            result = fast(self._fast_constants(), inputs, options, out_grad, want_loss, want_grad,
                          threads_for)
            if result is not None:
                return result
        call = self._validate(inputs, options, out_grad)
        if getattr(call, self._count) == 0:
            grads = tuple(np.zeros(getattr(call, x).shape, call.dtype)
                          for x in self._differentiable)
            return np.empty(0, call.dtype), grads if len(grads) > 1 else grads[0]
        return self._compute(call, want_loss, want_grad)

    def _fast_constants(self) -> tuple[Any, ...]:
        """What ``_fast_entry`` reads of the loss (its kernel kind, parameters,
        scalar weight, axes and option defaults, in the entry's order)."""
        return ()

    #: The field of a validated call record that holds the number of samples.
    _count: ClassVar[str] = "n_samples"

    def _validate(self, inputs, options, out_grad):
        """The call's arguments, checked, as a record (a namedtuple with ``dtype``,
        the number of samples in ``_count`` and each input by name)."""
        raise NotImplementedError(f"{type(self).__name__} does not define _validate")

    def _compute(self, call, want_loss, want_grad):
        """``(out, grad)`` of a validated, non-empty call (None where not wanted)."""
        raise NotImplementedError(f"{type(self).__name__} does not define _compute")

    def forward(self, *inputs: ArrayLike, **options: Any) -> np.ndarray:
        """Per-sample loss (each loss documents its own arguments).

        Parameters
        ----------
        *inputs : array_like
            The loss's inputs in MXNet's order, e.g. ``(pred, label)``.
        **options
            The loss's keyword arguments, e.g. ``sample_weight``.

        Returns
        -------
        out : numpy.ndarray
            One value per sample, shape ``(N,)``, a new C-contiguous array.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def gradient(self, *inputs: ArrayLike, **options: Any) -> Gradient:
        """Analytic gradient of ``sum(out_grad * forward(...))``.

        Parameters
        ----------
        *inputs : array_like
            As for :meth:`forward`.
        **options
            As for :meth:`forward`, and ``out_grad``: the upstream gradient
            of the per-sample loss, broadcasting to ``(N,)`` (None: ones).

        Returns
        -------
        grad : numpy.ndarray or tuple of numpy.ndarray
            One array shaped like the differentiable input, or a tuple in
            argument order when the loss has several (TripletLoss,
            CosineEmbeddingLoss, SDMLLoss).
        """
        raise NotImplementedError(f"{type(self).__name__} does not define gradient")

    def value_and_gradient(self, *inputs: ArrayLike,
                           **options: Any) -> tuple[np.ndarray, Gradient]:
        """``(forward(...), gradient(...))`` from one fused pass.

        Parameters
        ----------
        *inputs : array_like
            As for :meth:`gradient`.
        **options
            As for :meth:`gradient`.

        Returns
        -------
        out : numpy.ndarray
            As returned by :meth:`forward`.
        grad : numpy.ndarray or tuple of numpy.ndarray
            As returned by :meth:`gradient`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define value_and_gradient")


def _make_method(cls, name):
    """``forward``, ``gradient`` or ``value_and_gradient`` for ``cls``, from its data."""
    with_grad = name != "forward"
    namespace = {f"_default{i}": default for i, (_, default) in enumerate(cls._options)}
    namespace.update(_modules=_MODULES, _plain=_PLAIN_TYPES, _has_dask_array=_has_dask_array,
                     _lazy_call=_lazy_call, _positional_extra=_positional_extra)
    parameters = [f"{x}: 'ArrayLike'" for x in cls._inputs]
    if with_grad:
        parameters.append("*_extra: 'Any'")
    parameters += [f"{option}: 'Any' = _default{i}" for i, (option, _) in enumerate(cls._options)]
    names = list(cls._inputs) + [option for option, _ in cls._options]
    if with_grad:
        parameters.append("out_grad: 'ArrayLike | None' = None")
        names.append("out_grad")
    source = _METHOD_SOURCE.format(
        name=name, parameters=", ".join(parameters),
        extra_check=_EXTRA_CHECK.format(name=name) if with_grad else "",
        unseen=" or ".join(f"type({x}) not in _plain" for x in names),
        values="".join(f"{x}, " for x in names),
        by_name=", ".join(f"{x!r}: {x}" for x in names),
        inputs="".join(f"{x}, " for x in cls._inputs),
        options="".join(f"{option}, " for option, _ in cls._options),
        out_grad="out_grad" if with_grad else "None",
        want_loss=name != "gradient", want_grad=with_grad,
        returns={"forward": "np.ndarray", "gradient": "Gradient",
                 "value_and_gradient": "tuple[np.ndarray, Gradient]"}[name],
        pick={"forward": "[0]", "gradient": "[1]", "value_and_gradient": ""}[name])
    exec(source, namespace)
    method = namespace["_this"] = namespace[name]
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    method.__module__ = cls.__module__
    method.__doc__ = _method_doc(cls, name)
    if with_grad:
        # What help() and the docs show: ``*, sample_weight=None, ...``.
        signature = inspect.signature(method)
        method.__signature__ = signature.replace(parameters=[
            p for p in signature.parameters.values() if p.kind is not p.VAR_POSITIONAL])
    return method


def _positional_extra(loss, name, extra):
    """The TypeError for positional arguments after the inputs of ``gradient`` or
    ``value_and_gradient``, naming the keywords they would have been."""
    keywords = [option for option, _ in loss._options] + ["out_grad"]
    inputs = ", ".join(loss._inputs)
    meant = ", ".join(f"{keyword}=..." for keyword in keywords[:len(extra)])
    count = len(extra)
    raise TypeError(
        f"{type(loss).__name__}.{name}() takes only the inputs ({inputs}) positionally; "
        f"it got {count} more positional argument{'s' if count != 1 else ''}. Everything "
        f"after the inputs is keyword-only: pass {meant or 'nothing more'} "
        f"(keywords: {', '.join(keywords)})")


def _method_doc(cls, name):
    """The numpydoc docstring of a generated method."""
    docs = cls._parameter_docs
    arguments = list(cls._inputs) + [option for option, _ in cls._options]
    if name != "forward":
        arguments.append("out_grad")
    lines = []
    for argument in arguments:
        kind, text = docs[argument]
        lines.append(f"{argument} : {kind}")
        lines.extend("    " + line for line in text.splitlines())
    several = len(cls._differentiable) > 1
    grad_names = ", ".join(f"d_{x}" for x in cls._differentiable)
    grad_doc = cls._grad_doc or ("Each shaped like its input." if several
                                 else f"Shaped like ``{cls._differentiable[0]}``.")
    if name == "forward":
        summary = cls._forward_summary
        returns = [("out : numpy.ndarray", cls._out_doc)]
    elif name == "gradient":
        summary = (f"``({grad_names})`` of ``sum(out_grad * loss)``." if several else
                   f"Gradient of ``sum(out_grad * loss)`` with respect to "
                   f"``{cls._differentiable[0]}``.")
        returns = [(f"{grad_names} : numpy.ndarray" if several else "grad : numpy.ndarray",
                    grad_doc)]
    else:
        summary = _SUMMARY_ONE_PASS
        returns = [("out : numpy.ndarray", cls._out_doc),
                   ("grads : tuple of numpy.ndarray", f"``({grad_names})``, {grad_doc[0].lower()}"
                    f"{grad_doc[1:]}") if several else ("grad : numpy.ndarray", grad_doc)]
    text = [summary, "", "Parameters", "----------", *lines, "", "Returns", "-------"]
    for head, body in returns:
        text.append(head)
        text.extend("    " + line for line in body.splitlines())
    return "\n".join(text) + "\n"
