"""``gluonloss.show_config()``: how this installation was built and what it runs."""
from __future__ import annotations

import importlib
import json
from importlib import resources
from typing import Any, Literal

from gluonloss import _dispatch, _openmp, _threads

#: The kernel modules whose build is reported (their Python modules load them).
_KERNEL_OWNERS = {"_elementwise": "gluonloss.elementwise", "_softmax": "gluonloss.softmax",
                  "_pairwise": "gluonloss.pairwise", "_ctc": "gluonloss.ctc"}
_BUILD_INFO = "_build_info.json"


def _loaded_builds() -> dict[str, str]:
    """``{kernel module: build}`` of the kernel modules in use."""
    builds = {}
    for kernel, owner in _KERNEL_OWNERS.items():
        module = getattr(importlib.import_module(owner), kernel)
        builds[kernel] = _dispatch.build_of(module)
    return builds


def _build_info() -> dict[str, Any]:
    """What the build wrote next to the compiled modules (empty if nothing)."""
    try:
        text = resources.files("gluonloss").joinpath(_BUILD_INFO).read_text()
    except (FileNotFoundError, OSError):
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def config() -> dict[str, Any]:
    """The configuration as a dict (see :func:`show_config`)."""
    from gluonloss import __version__
    builds = _loaded_builds()
    distinct = sorted(set(builds.values()), key=list(_dispatch.BUILDS).index)
    kernels = distinct[0] if len(distinct) == 1 else ", ".join(
        f"{kernel}={build}" for kernel, build in builds.items())
    info = _build_info()
    name, version = _openmp.compiler()
    flags = info.get("flags", {}).get(distinct[-1]) if len(distinct) == 1 else None
    command = info.get("command")
    return {
        "version": __version__,
        "kernels": kernels,
        "kernels_requested": _dispatch.requested_build(),
        "cpu_features": dict(_dispatch.cpu_features()),
        "openmp": bool(_openmp.openmp_enabled()),
        "num_threads": _threads.get_num_threads(),
        "compiler": {
            "name": name,
            "version": version,
            "command": " ".join(command) if command else None,
            "flags": " ".join(flags) if flags is not None else None,
        },
    }


def _format(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(f"{pad}{key}:")
            lines.extend(_format(item, indent + 1))
        else:
            text = {True: "yes", False: "no", None: "unknown"}[item] if (
                item is None or isinstance(item, bool)) else item
            lines.append(f"{pad}{key}: {text}")
    return lines


def show_config(mode: Literal["stdout", "dicts"] = "stdout") -> dict[str, Any] | None:
    """Show how gluonloss was built and what it runs on this machine.

    Like :func:`numpy.show_config`: paste its output into a bug report.

    Parameters
    ----------
    mode : {'stdout', 'dicts'}, default 'stdout'
        ``'stdout'`` prints the configuration and returns None; ``'dicts'``
        prints nothing and returns it as a dict.

    Returns
    -------
    dict or None
        With ``mode='dicts'``, a dict with the keys

        - ``version``: the gluonloss version;
        - ``kernels``: the kernel build in use, ``'baseline'``, ``'avx2'`` or
          ``'avx512'`` (chosen at import; see ``GLUONLOSS_KERNELS`` in
          :doc:`/performance`);
        - ``kernels_requested``: the value of ``GLUONLOSS_KERNELS``
          (``'auto'`` when unset);
        - ``cpu_features``: ``{feature: present}`` for every CPU feature
          gluonloss looks at;
        - ``openmp``: whether the kernels were compiled with OpenMP;
        - ``num_threads``: the threads a large call uses
          (:func:`get_num_threads`);
        - ``compiler``: a dict of the C compiler's ``name`` and ``version``
          (read from the compiled modules), and the ``command`` and the
          ``flags`` of the build in use (recorded when the modules were
          compiled; None when unknown).

        With ``mode='stdout'``, None.

    Raises
    ------
    ValueError
        If ``mode`` is neither ``'stdout'`` nor ``'dicts'``.

    Examples
    --------
    >>> import gluonloss as gl
    >>> config = gl.show_config(mode="dicts")
    >>> config["kernels"] in ("baseline", "avx2", "avx512")
    True
    >>> sorted(config["compiler"])
    ['command', 'flags', 'name', 'version']
    >>> gl.show_config()                       # doctest: +ELLIPSIS
    gluonloss ...
      kernels: ...
      cpu_features:
        AVX2: ...
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    values = config()
    if mode == "dicts":
        return values
    print("\n".join([f"gluonloss {values['version']}",
                     *_format({k: v for k, v in values.items() if k != "version"}, 1)]))
    return None

