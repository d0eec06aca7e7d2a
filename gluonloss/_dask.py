"""Every loss method on Dask arrays: lazy, one kernel call per block of samples.

A loss method given a ``dask.array.Array`` for any array argument returns
lazy Dask arrays instead of computing.  How a call is turned into a graph:

1. **Hook.** Each generated public method (``forward``, ``gradient``,
   ``value_and_gradient``; see ``gluonloss._base``) starts with a check
   that hands the call to :func:`_lazy_call` when an argument is a Dask
   array.  With NumPy-only arguments it costs one dictionary lookup: Dask
   arrays cannot exist unless ``dask.array`` was imported, and this module
   never imports it itself outside the Dask path.  Argument types once
   seen not to be Dask arrays are remembered (``_PLAIN_TYPES``), so later
   calls skip the ``isinstance`` tests.
2. **Table.** ``_SPECS`` says, per loss, which argument is the *primary*
   one (whose batch axis the blocks follow) and how every other array
   argument lines up with it; the differentiable inputs are the class's
   own ``_differentiable``.
3. **Shapes at call time.** The arguments' shapes are aligned to the
   primary's batch axis (below).  Then the NumPy method itself runs on
   stand-in arrays of the same dtypes and shapes, cut down to one sample
   (two for SDMLLoss), filled with valid values: it raises what the in-memory call
   would raise for shapes and dtypes.  Its messages quote the stand-ins'
   shapes, so on failure it runs again on zero-strided stand-ins of the
   full shapes (no memory) for the exact message.
4. **Blocks.** Every argument gets its *aligned form*: the primary with its
   non-batch axes in one chunk; per-element operands reshaped (read in C
   order) or left-padded with 1s to the shape they broadcast to; per-sample
   ones flattened.  All are rechunked to the primary's batch chunks and
   handed to one ``da.blockwise`` task per block, which calls the NumPy
   method and returns a tuple (loss, gradients); cheap getter tasks pick
   the outputs.  ``value_and_gradient`` is thus one kernel call per block.
5. **Exactness.** A block call gives bitwise the rows of the whole-array
   call: every loss is per sample (weights such as ``weight / M`` and the
   kernels' work split depend only on the row length), except SDMLLoss,
   whose batch must be one chunk (a ValueError otherwise), and
   SoftmaxCrossEntropyLoss with ``axis == batch_axis``, whose single sample
   is the whole array (one block).
6. **Values** (class indices, CTC labels and lengths, cosine labels) are
   checked inside each block at compute time; the message's index into the
   block is rewritten to the index into the whole argument.
"""
import inspect
import math
import re
import sys
from collections import namedtuple
from typing import Any

import numpy as np

from gluonloss._threads import one_thread_unless_set

_MODULES = sys.modules
_GRADIENT_METHODS = {"gradient", "value_and_gradient"}


_PLAIN_TYPES: set[type] = set()      # argument types seen not to be Dask arrays


def _has_dask_array(values):
    array_type = getattr(_MODULES["dask.array"], "Array", None)
    if array_type is None:                # dask.array is being imported
        return False
    found = False
    for value in values:
        if isinstance(value, array_type):
            found = True
        else:
            _PLAIN_TYPES.add(type(value))
    return found


# -- the table: how each argument lines up with the batch ----------------------
#
# mode:
#   primary    the array whose batch axis the blocks follow
#   same       as many elements as the target shape, read in C order as it
#   exact      exactly the target shape
#   broadcast  broadcasts to the target shape (NumPy rules, never enlarging it)
#   sample     one value per sample (any shape holding n_out elements)
#   sample1    one value per sample, or a single one for every sample
#   axis       2-D, the batch along the axis the target names (CTC labels)
# target: a shape the loss's geometry defines ("primary", "out" = (n_out,),
#   "loss", "label").
# fill: for arguments whose values are checked, a valid value for stand-ins.

_Arg = namedtuple("_Arg", "mode target fill", defaults=("primary", None))
_Spec = namedtuple("_Spec", "primary geometry args")

_PRIMARY = _Arg("primary")
_OUT = _Arg("broadcast", "out")


def _elementwise_spec():
    return _Spec("pred", "batch_axis", {
        "pred": _PRIMARY, "label": _Arg("same"), "target": _Arg("same"),
        "sample_weight": _Arg("broadcast"), "pos_weight": _Arg("broadcast"), "out_grad": _OUT})


_SPECS = {
    **{name: _elementwise_spec() for name in (
        "L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
        "SigmoidBinaryCrossEntropyLoss", "PoissonNLLLoss")},
    **{name: _Spec("pred", "softmax", {
        "pred": _PRIMARY, "label": _Arg("same", "label", fill=0),
        "sample_weight": _Arg("broadcast", "loss"), "out_grad": _OUT})
       for name in ("SoftmaxCrossEntropyLoss", "KLDivLoss")},
    "TripletLoss": _Spec("pred", "batch_axis", {
        "pred": _PRIMARY, "positive": _Arg("same"), "negative": _Arg("same"),
        "sample_weight": _Arg("sample1"), "out_grad": _OUT}),
    "CosineEmbeddingLoss": _Spec("input2", "vectors", {
        "input1": _Arg("same"), "input2": _PRIMARY,
        "label": _Arg("same", "out", fill=1),
        "sample_weight": _Arg("sample1"), "out_grad": _OUT}),
    "SDMLLoss": _Spec("x1", "sdml", {
        "x1": _PRIMARY, "x2": _Arg("exact"), "out_grad": _OUT}),
    "CTCLoss": _Spec("pred", "ctc", {
        "pred": _PRIMARY, "label": _Arg("axis", "label", fill=-1),
        "pred_lengths": _Arg("sample", fill=0), "label_lengths": _Arg("sample", fill=0),
        "sample_weight": _Arg("sample"), "out_grad": _OUT}),
}


class _ShapeError(Exception):
    """The arguments' shapes do not line up (the NumPy call says how)."""


def _spec_for(loss):
    for cls in type(loss).__mro__:
        spec = _SPECS.get(cls.__name__)
        if spec is not None:
            return spec
    raise TypeError(f"{type(loss).__name__} does not support Dask arrays")


# -- geometry: the aligned primary and the target shapes ------------------------
#
# Letters name the axes for da.blockwise: 0 is the batch, 1 + i is axis i of
# the aligned primary, larger ones are axes of other arguments only.

_Geometry = namedtuple("_Geometry", "shape batch_axis n_out targets policy")


def _axis(axis, ndim):
    if not -ndim <= axis < ndim:
        raise _ShapeError(f"axis {axis} out of range")
    return axis % ndim


def _letters(ndim, batch_axis):
    return tuple(0 if i == batch_axis else i + 1 for i in range(ndim))


def _geometry(loss, kind, shape):
    """The aligned primary's shape, its batch axis, the number of outputs,
    the target shapes ``{name: (shape, letters)}`` and the chunking policy
    (None, "one block" or "refuse")."""
    policy = None
    if kind == "vectors":                       # CosineEmbeddingLoss
        if not shape:
            raise _ShapeError("input2 is a scalar")
        shape, batch = (math.prod(shape[:-1]), shape[-1]), 0
    elif kind == "sdml":
        if len(shape) != 2:
            raise _ShapeError("x1 is not 2-D")
        batch, policy = 0, "refuse"
    elif kind == "ctc":
        if len(shape) != 3:
            raise _ShapeError("pred is not 3-D")
        batch = loss.layout.index("N")
    else:
        batch = _axis(loss.batch_axis, len(shape))
    letters = _letters(len(shape), batch)
    targets = {"primary": (shape, letters)}
    n_out = shape[batch]
    if kind == "softmax":
        axis = _axis(loss.axis, len(shape))
        over_classes = type(loss)._elementwise_over_classes
        if axis == batch:
            if over_classes:
                raise _ShapeError("axis is batch_axis")
            policy, n_out = "one block", 1
        loss_shape = shape if over_classes else shape[:axis] + (1,) + shape[axis + 1:]
        targets["loss"] = (loss_shape, letters)
        if loss._sparse:
            targets["label"] = (shape[:axis] + shape[axis + 1:],
                                letters[:axis] + letters[axis + 1:])
        else:
            targets["label"] = targets["primary"]
    elif kind == "ctc":
        label_batch = loss.label_layout.index("N")
        targets["label"] = (None, (0, 90) if label_batch == 0 else (90, 0))
    targets["out"] = ((n_out,), (0,))
    return _Geometry(shape, batch, n_out, targets, policy)


# -- call time ------------------------------------------------------------------

# One argument: its user shape, dtype, aligned shape and letters, the
# position of the batch in the aligned shape (None: shared by all samples),
# and the stand-in fill value.
_Aligned = namedtuple("_Aligned", "name mode shape dtype aligned letters batch fill")

_SIGNATURES: dict[Any, inspect.Signature] = {}


def _bind(method, loss, args, kwargs):
    signature = _SIGNATURES.get(method)
    if signature is None:
        signature = _SIGNATURES[method] = inspect.signature(method)
    bound = signature.bind(loss, *args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    del values[next(iter(signature.parameters))]         # self
    return values


def _shape_dtype(value, array_type):
    if isinstance(value, array_type):
        if any(math.isnan(s) for s in value.shape):
            raise ValueError("a Dask array argument has unknown chunk sizes (shape "
                             f"{value.shape}); call its compute_chunk_sizes() first")
        return tuple(value.shape), value.dtype
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as exc:     # the NumPy call says which argument
        raise _ShapeError(str(exc)) from None
    return a.shape, a.dtype


def _align(name, arg, shape, geometry, n_batch):
    """(aligned shape, letters, batch position) of one argument, or _ShapeError."""
    size = math.prod(shape)
    if arg.mode in ("sample", "sample1") or (arg.mode == "same" and arg.target == "out"):
        if arg.mode == "sample1" and size == 1 and geometry.n_out != 1:
            return shape, tuple(range(100, 100 + len(shape))), None
        if size != geometry.n_out:
            raise _ShapeError(f"{name} has {size} elements, not {geometry.n_out}")
        return (geometry.n_out,), (0,), 0
    target, letters = geometry.targets[arg.target]
    if arg.mode == "axis":                                # CTC labels
        batch = letters.index(0)
        if len(shape) != 2 or shape[batch] != n_batch:
            raise _ShapeError(f"{name} does not have {n_batch} samples along axis {batch}")
        return shape, letters, batch
    batch = letters.index(0) if 0 in letters else None
    if arg.mode in ("same", "primary"):
        if size != math.prod(target):
            raise _ShapeError(f"{name} has {size} elements, not {math.prod(target)}")
        return target, letters, batch
    if arg.mode == "exact":
        if shape != target:
            raise _ShapeError(f"{name} has shape {shape}, not {target}")
        return target, letters, batch
    # broadcast
    if len(shape) > len(target):
        raise _ShapeError(f"{name} has more axes than {target}")
    padded = (1,) * (len(target) - len(shape)) + shape
    if any(s not in (1, t) for s, t in zip(padded, target, strict=True)):
        raise _ShapeError(f"{name} of shape {shape} does not broadcast to {target}")
    return padded, letters, batch


def _call_shape(arg, aligned_block, whole):
    """The shape a block of the argument is passed to the NumPy method in."""
    if whole:                   # one block holds every sample: the user's shape
        return arg.shape
    if arg.batch is None:
        return arg.shape
    n = aligned_block[arg.batch]
    if arg.mode == "broadcast":
        return aligned_block[len(aligned_block) - len(arg.shape):]
    if arg.mode in ("sample", "sample1") and arg.shape and arg.shape[0] == math.prod(
            arg.shape) and len(arg.shape) > 1:
        return (n,) + arg.shape[1:]            # (N, 1): keep the unit axes
    return aligned_block


def _fill(loss, name, arg):
    """The stand-in value of an argument (CTC labels with the blank first are
    padded with 0, not -1)."""
    if name == "label" and getattr(loss, "blank_label", "last") == "first":
        return 0
    return arg.fill


def _stand_in(arg, shape, strided):
    fill = 0 if arg.fill is None else arg.fill
    if fill < 0 and arg.dtype.kind in "bu":
        fill = 0
    value = np.array(fill).astype(arg.dtype)
    return np.broadcast_to(value, shape) if strided else np.full(shape, value)


def _run_on_stand_ins(loss, method, values, aligned, n_small, array_type):
    """The NumPy method on one-sample stand-ins; on failure, the exact error
    from full-size zero-strided stand-ins."""
    small = dict(values)
    for arg in aligned.values():
        block = list(arg.aligned)
        if arg.batch is not None and block[arg.batch] > n_small:
            block[arg.batch] = n_small
        small[arg.name] = _stand_in(arg, _call_shape(arg, tuple(block), False),
                                    block == list(arg.aligned))
    try:
        return method(loss, **small)
    except (ValueError, TypeError) as exc:
        _raise_numpy_error(loss, method, values, aligned, array_type)
        raise exc


def _raise_numpy_error(loss, method, values, aligned, array_type):
    """Raise what the NumPy method raises for these shapes and dtypes."""
    full = dict(values)
    for name, arg in aligned.items():
        if isinstance(values[name], array_type):
            full[name] = _stand_in(arg, arg.shape, True)
    method(loss, **full)


def _lazy_call(loss, method, args, kwargs):
    import dask.array as da

    spec = _spec_for(loss)
    values = _bind(method, loss, args, kwargs)
    arrays = {n: v for n, v in values.items() if n in spec.args and v is not None}
    shapes = {n: _shape_dtype(v, da.Array) for n, v in arrays.items()
              if isinstance(v, da.Array)}
    try:
        shapes.update((n, _shape_dtype(v, da.Array)) for n, v in arrays.items()
                      if n not in shapes)
        geometry = _geometry(loss, spec.geometry, shapes[spec.primary][0])
        n_batch = geometry.shape[geometry.batch_axis]
        aligned = {}
        for name in arrays:
            arg = spec.args[name]
            shape, dtype = shapes[name]
            a_shape, letters, batch = _align(name, arg, shape, geometry, n_batch)
            if batch is not None and a_shape[batch] != n_batch:
                batch = None                 # size 1: shared by every sample
            aligned[name] = _Aligned(name, arg.mode, shape, dtype, a_shape, letters, batch,
                                     _fill(loss, name, arg))
    except _ShapeError as exc:
        stand_ins = {n: _Aligned(n, "", shape, dtype, None, None, None,
                                 _fill(loss, n, spec.args[n]))
                     for n, (shape, dtype) in shapes.items()}
        _raise_numpy_error(loss, method, values, stand_ins, da.Array)
        raise ValueError(f"{type(loss).__name__}: the arguments cannot be split into "
                         f"blocks of samples ({exc})") from None

    n_small = min(n_batch, 2 if spec.geometry == "sdml" else 1)
    if geometry.policy == "one block":
        n_small = n_batch
    result = _run_on_stand_ins(loss, method, values, aligned, n_small, da.Array)
    return _build_graph(da, loss, method, spec, values, arrays, aligned, geometry, result)


def _batch_chunks(da, loss, spec, arrays, aligned, geometry, n_batch):
    """The primary's batch chunks (or the first chunked argument's, when the
    primary is a NumPy array)."""
    if geometry.policy == "one block":
        return (n_batch,)
    order = [spec.primary] + [n for n in arrays if n != spec.primary]
    chunked = [n for n in order
               if isinstance(arrays[n], da.Array) and aligned[n].batch is not None]
    if geometry.policy == "refuse":
        for name in chunked:
            chunks = arrays[name].chunks[0]
            if aligned[name].mode in ("primary", "exact") and len(chunks) > 1:
                raise ValueError(
                    f"{type(loss).__name__} couples every pair of samples of the batch, but "
                    f"{name} has its batch axis in {len(chunks)} chunks {chunks}; rechunk it "
                    f"to one chunk along axis 0 first, e.g. {name}.rechunk({{0: -1}})")
    for name in chunked:
        return _to_aligned(da, arrays[name], aligned[name], None).chunks[aligned[name].batch]
    return (n_batch,)


def _to_aligned(da, value, arg, batch_chunks):
    """The argument as a Dask array in its aligned form and chunking."""
    if not isinstance(value, da.Array):
        value = np.asarray(value).reshape(arg.aligned)
        chunks = tuple(batch_chunks if i == arg.batch else -1 for i in range(value.ndim))
        return da.from_array(value, chunks=chunks if batch_chunks is not None else -1)
    if value.shape != arg.aligned:
        if arg.mode == "broadcast":
            value = value[(None,) * (len(arg.aligned) - value.ndim)]
        else:
            keep = arg.batch if arg.mode == "primary" and value.ndim == len(arg.aligned) else 0
            value = value.rechunk({i: -1 for i in range(value.ndim) if i != keep})
            value = value.reshape(arg.aligned)
    if batch_chunks is None:
        return value
    return value.rechunk({i: batch_chunks if i == arg.batch else -1
                          for i in range(value.ndim)})


def _build_graph(da, loss, method, spec, values, arrays, aligned, geometry, stand_in_result):
    n_batch = geometry.shape[geometry.batch_axis]
    batch_chunks = _batch_chunks(da, loss, spec, arrays, aligned, geometry, n_batch)
    names = list(arrays)
    pieces = [_to_aligned(da, arrays[n], aligned[n], batch_chunks) for n in names]
    starts = np.cumsum((0,) + batch_chunks[:-1], dtype=np.int64)
    offsets = da.from_array(starts, chunks=1)
    task_letters = []
    for n in names:
        task_letters += [c for c in aligned[n].letters if c not in task_letters]
    blockwise_args = []
    for piece, n in zip(pieces, names, strict=True):
        blockwise_args += [piece, aligned[n].letters]
    blockwise_args += [offsets, (0,)]
    name = method.__name__
    wants_grad = name in _GRADIENT_METHODS
    static = {n: v for n, v in values.items() if n not in arrays}
    plan = _BlockPlan(loss, name, names, [aligned[n] for n in names], static,
                      len(batch_chunks) == 1,
                      [names.index(n) for n in loss._differentiable] if wants_grad else [])
    tuples = da.blockwise(_block_task, tuple(task_letters), *blockwise_args, plan=plan,
                          concatenate=True, align_arrays=False,
                          meta=np.empty((0,) * len(task_letters), object),
                          token=f"gluonloss-{type(loss).__name__}-{name}")
    if name == "forward":
        out_example, grad_examples = stand_in_result, ()
    elif name == "gradient":
        out_example, grad_examples = None, stand_in_result
    else:
        out_example, grad_examples = stand_in_result
    if not isinstance(grad_examples, tuple):
        grad_examples = (grad_examples,)
    outputs = []
    if out_example is not None:
        out_chunks = (geometry.n_out,) if geometry.policy == "one block" else batch_chunks
        outputs.append(_pick(da, tuples, task_letters, 0, (0,), out_example.dtype,
                             {0: out_chunks}))
    grads: list[Any] = []
    example: Any
    # forward has no gradient examples (zip stops at once)
    for n, example in zip(loss._differentiable, grad_examples, strict=False):
        arg = aligned[n]
        grad = _pick(da, tuples, task_letters, len(outputs) + len(grads), arg.letters,
                     example.dtype, None)
        grads.append(grad if grad.shape == arg.shape else grad.reshape(arg.shape))
    grad_value = grads[0] if len(grads) == 1 else tuple(grads)
    if name == "forward":
        return outputs[0]
    if name == "gradient":
        return grad_value
    return outputs[0], grad_value


def _pick(da, tuples, task_letters, position, letters, dtype, adjust):
    return da.blockwise(_item, letters, tuples, tuple(task_letters), position=position,
                        dtype=dtype, meta=np.empty((0,) * len(letters), dtype),
                        adjust_chunks=adjust, token="gluonloss-pick")


def _item(nested, position):
    while isinstance(nested, list):         # contracted single-chunk axes
        nested = nested[0]
    return nested[position]


# -- compute time ------------------------------------------------------------------

class _BlockPlan:
    """What every block task needs: the loss, the method and the arguments."""

    def __init__(self, loss, method, names, args, static, whole, grad_positions):
        self.loss, self.method, self.names, self.args = loss, method, names, args
        self.static, self.whole, self.grad_positions = static, whole, grad_positions

    def __dask_tokenize__(self):
        loss = type(self.loss)
        return (loss.__module__, loss.__qualname__, repr(sorted(vars(self.loss).items())),
                self.method, repr(self.names), repr(self.args), repr(sorted(self.static.items())),
                self.whole, tuple(self.grad_positions))


def _block_task(*blocks, plan):
    offsets = blocks[-1]
    offset = int(offsets[0]) if offsets.size else 0
    kwargs = dict(plan.static)
    for name, arg, block in zip(plan.names, plan.args, blocks, strict=False):  # offsets last
        kwargs[name] = block.reshape(_call_shape(arg, block.shape, plan.whole))
    try:
        with one_thread_unless_set():
            result = getattr(plan.loss, plan.method)(**kwargs)
    except ValueError as exc:
        message = _global_indices(str(exc), plan, blocks, offset)
        if message == str(exc):
            raise
        raise ValueError(message) from None
    if plan.method == "forward":
        return (result,)
    out: tuple[Any, ...]
    grads: Any
    if plan.method == "gradient":
        out, grads = (), result
    else:
        out, grads = (result[0],), result[1]
    grads = grads if isinstance(grads, tuple) else (grads,)
    return out + tuple(g.reshape(blocks[i].shape)
                       for g, i in zip(grads, plan.grad_positions, strict=True))


_SUBSCRIPT = r"(?<![\w\]]){name}\[(\d+(?:, \d+)*)\]"


def _global_indices(message, plan, blocks, offset):
    """``message`` with each element index into a block made an index into
    the whole argument (as the in-memory call would quote it)."""
    if plan.whole:
        return message
    for name, arg, block in zip(plan.names, plan.args, blocks, strict=False):  # offsets last
        if arg.fill is None or arg.batch is None:
            continue
        call_shape = _call_shape(arg, block.shape, False)

        def to_global(indices, arg=arg, block=block, call_shape=call_shape):
            indices = tuple(int(i) for i in indices.split(", "))
            if len(indices) == len(call_shape):
                local = list(np.unravel_index(np.ravel_multi_index(indices, call_shape),
                                              block.shape))
                local[arg.batch] += offset
                flat = np.ravel_multi_index(local, arg.aligned)
                return tuple(int(i) for i in np.unravel_index(flat, arg.shape))
            return (indices[0] + offset,) if len(indices) == 1 else indices

        message = re.sub(_SUBSCRIPT.format(name=re.escape(name)),
                         lambda m: f"{name}[{', '.join(map(str, to_global(m.group(1))))}]",
                         message)
    return message
