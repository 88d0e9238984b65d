"""The packages whose torch-backed names load on first use (kgrec.utils.lazy)."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from kgrec.utils.lazy import lazy_exports

LAZY_PACKAGES = ("kgrec", "kgrec.models", "kgrec.text", "kgrec.train")


def type_checking_imports(package: str) -> dict[str, str]:
    """name -> module of the imports under ``if TYPE_CHECKING:`` in the package's ``__init__``."""
    tree = ast.parse(Path(importlib.import_module(package).__file__).read_text())
    blocks = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING"]
    assert len(blocks) == 1, package
    return {alias.name: node.module for node in blocks[0].body if isinstance(node, ast.ImportFrom) for alias in node.names}


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_exported_name_resolves_to_what_static_tools_read(package):
    module = importlib.import_module(package)
    static = type_checking_imports(package)
    assert static and set(static) <= set(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        if name in static:  # the lazy ones: the object the TYPE_CHECKING import names
            assert value is getattr(importlib.import_module(static[name]), name), name
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'torch'"):
        module.torch  # noqa: B018 -- a submodule's own import is not exported


def test_importing_the_packages_loads_no_torch():
    probe = ("import sys, kgrec.models, kgrec.text, kgrec.train; from kgrec.train import load_config, load_data; "
             "from kgrec.models import ModelConfig; from kgrec.text import TextConfig, item_texts; "
             "print(sorted(m for m in ('torch', 'torch_geometric', 'lightning', 'transformers') if m in sys.modules))")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_lazy_exports_binds_on_first_read_and_refuses_other_names(tmp_path, monkeypatch):
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "heavy.py").write_text("THING = object()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("lazypkg")
        module.__getattr__ = lazy_exports("lazypkg", ["THING", "MISSING"], ["heavy"])
        assert "lazypkg.heavy" not in sys.modules
        thing = module.THING
        assert thing is sys.modules["lazypkg.heavy"].THING and vars(module)["THING"] is thing  # bound: read once
        with pytest.raises(AttributeError, match="no attribute 'MISSING'"):
            module.MISSING  # noqa: B018 -- exported but in no submodule
        with pytest.raises(AttributeError, match="no attribute 'other'"):
            module.other  # noqa: B018
    finally:
        sys.modules.pop("lazypkg", None)
        sys.modules.pop("lazypkg.heavy", None)
