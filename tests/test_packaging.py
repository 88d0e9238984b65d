"""The wheel: every package under kgrec/, and the recipes and configs found by name from it."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package():
    tomllib = pytest.importorskip("tomllib")
    setuptools = pytest.importorskip("setuptools")
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = setuptools.find_packages(str(ROOT), include=["kgrec", "kgrec.*"])
    assert sorted(listed) == sorted([*found, "kgrec._graphs", "kgrec._configs"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """kgrec's wheel, built from this tree and unpacked as pip installs it."""
    pytest.importorskip("setuptools")
    dist, target = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("site")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True, cwd=dist)
    (wheel,) = dist.glob("kgrec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def test_wheel_holds_the_recipes_and_configs(installed):
    for source, copy in ((ROOT / "graphs", "_graphs"), (ROOT / "scripts" / "configs", "_configs")):
        files = sorted(p.name for p in source.glob("*.yaml"))
        assert files, source
        assert sorted(p.name for p in (installed / "kgrec" / copy).glob("*.yaml")) == files
        for name in files:
            assert (installed / "kgrec" / copy / name).read_bytes() == (source / name).read_bytes()


def test_installed_kgrec_finds_its_recipe_and_config(installed, tmp_path):
    """Run from a folder without graphs/ or scripts/configs/, kgrec from the wheel finds both in itself."""
    code = (
        f"import sys; sys.path.insert(0, {str(installed)!r}); import kgrec\n"
        "from kgrec.graph.recipe import find_recipe_file\n"
        "from kgrec.train.config import find_config_file\n"
        "print(kgrec.__file__); print(find_recipe_file('ml-100k')); print(find_config_file(['data.path=data/ml-1m']))\n"
        "print(find_recipe_file('shop'), find_config_file(['data.path=data/shop']))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    package, recipe, config, missing = out.splitlines()
    assert Path(package) == installed / "kgrec" / "__init__.py"
    assert Path(recipe) == installed / "kgrec" / "_graphs" / "ml-100k.yaml"
    assert Path(config) == installed / "kgrec" / "_configs" / "ml-1m.yaml"
    assert missing == "None None"
