"""The constructor arguments of the losses: checked once, shown read-only.

A loss keeps each checked constructor argument in ``_<name>`` and shows it
as the read-only attribute ``<name>``.  :func:`read_only` states that once
per attribute, with its docstring.  :class:`Settings` (``weight`` and
``batch_axis``, which every loss takes) and :class:`CTCSettings` hold the
constructor, the attributes and the ``repr`` that the compiled losses and
the reference losses share, so that both check and show their arguments
the same way.
"""
from __future__ import annotations

from typing import Any

from gluonloss._validation import check_choice, check_int, check_real


class _ReadOnly(property):
    # A property that returns the instance attribute ``_<name>``: a property,
    # so that help() and the API pages show it as one.

    def __init__(self, doc: str) -> None:
        super().__init__(doc=doc)
        self.__doc__ = doc
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name, self._stored_as = name, "_" + name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return getattr(instance, self._stored_as)

    def __set__(self, instance: object, value: object) -> None:
        kind = type(instance).__name__
        raise AttributeError(f"{kind}.{self._name} is read-only: "
                             f"construct a new {kind} to change it")


def read_only(doc: str) -> Any:
    """A read-only property ``<name>`` showing the attribute ``_<name>``.

    Annotate the class attribute with the value's type.  Setting it raises
    AttributeError.

    Examples
    --------
    >>> from gluonloss._settings import read_only
    >>> class Box:
    ...     size: int = read_only("The size.")
    ...     def __init__(self, size):
    ...         self._size = size
    >>> Box(3).size
    3
    """
    return _ReadOnly(doc)


class Settings:
    """``weight`` and ``batch_axis``, the constructor arguments of every loss."""

    def __init__(self, weight: float | None = None, batch_axis: int = 0) -> None:
        self._weight = check_real(weight, "weight", allow_none=True)
        self._batch_axis = check_int(batch_axis, "batch_axis")

    weight: float | None = read_only("The global scalar weight (None means 1).")
    batch_axis: int = read_only("The axis of the prediction that indexes samples.")

    def _scalar_weight(self) -> float:
        return 1.0 if self._weight is None else float(self._weight)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"


class CTCSettings(Settings):
    """The constructor arguments of CTCLoss."""

    def __init__(self, layout: str = "NTC", label_layout: str = "NT",
                 weight: float | None = None, zero_infinity: bool = True, *,
                 blank_label: str = "last") -> None:
        self._layout = check_choice(layout, "layout", ("NTC", "TNC"))
        self._blank_label = check_choice(blank_label, "blank_label", ("first", "last"))
        self._label_layout = check_choice(label_layout, "label_layout", ("NT", "TN"))
        # batch_axis as MXNet defines it for CTCLoss: the label's batch axis.
        super().__init__(weight, label_layout.find("N"))
        self._zero_infinity = bool(zero_infinity)

    layout: str = read_only("The layout of ``pred``: 'NTC' or 'TNC'.")
    label_layout: str = read_only("The layout of ``label``: 'NT' or 'TN'.")
    blank_label: str = read_only(
        "Where the blank is: 'last' (class C-1) or 'first' (class 0).")
    zero_infinity: bool = read_only(
        "Whether an infeasible sample gives loss 0 (True) or ``+inf``.")

    def __repr__(self) -> str:
        blank = "" if self._blank_label == "last" else ", blank_label='first'"
        return (f"{type(self).__name__}(layout={self._layout!r}, "
                f"label_layout={self._label_layout!r}, w={self._weight}, "
                f"zero_infinity={self._zero_infinity}{blank})")
