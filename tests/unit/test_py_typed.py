"""Type checkers see lwd as typed: the package ships the PEP 561 marker ``py.typed``."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path


def test_package_has_py_typed_marker_and_ships_it():
    assert (resources.files("lwd") / "py.typed").is_file()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["lwd"]
