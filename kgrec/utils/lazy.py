"""Package namespaces whose torch-backed names load on first use (PEP 562).

``kgrec.models``, ``kgrec.text`` and ``kgrec.train`` export classes whose modules import torch,
PyTorch Geometric, Lightning or transformers (seconds), beside plain config dataclasses that
commands such as ``kgrec data split`` read without any of them. Their ``__init__`` imports the
plain modules as usual, lists the heavy names under ``typing.TYPE_CHECKING`` for static tools,
and sets ``__getattr__ = lazy_exports(__name__, __all__, SUBMODULES)``: the first read of such a
name (``from kgrec.models import MultiTaskRecommender``) imports the submodules then.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable


def lazy_exports(package: str, exported: Iterable[str], submodules: Iterable[str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: a name of ``exported`` not yet bound is taken
    from the first of ``submodules`` (imported in order, each once) that defines it, and bound
    in the package; any other name is an ``AttributeError``, as for a plain module."""
    exported, submodules = frozenset(exported), tuple(submodules)

    def __getattr__(name: str) -> object:
        if name in exported:
            namespace = vars(sys.modules[package])
            for submodule in submodules:
                module = importlib.import_module(f"{package}.{submodule}")
                if hasattr(module, name):
                    namespace[name] = value = getattr(module, name)
                    return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
