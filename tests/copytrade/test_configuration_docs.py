"""The configuration is documented truthfully: every variable the code reads is in
.env.example, and every variable in .env.example is explained in the README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_READ = re.compile(r"\benv_(?:str|int|bool|list|choice|decimal|required)\(\s*\"([A-Z][A-Z0-9_]*)\"")
# Read by the Procfile and the bootstrap command rather than through copytrade.lib.env.
_OUTSIDE_SETTINGS = {"WEB_PORT"}


def _variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in ROOT.glob("**/*.py"):
        if any(part in {".venv", "tests", "var", "node_modules"} for part in path.parts):
            continue
        names |= set(_READ.findall(path.read_text()))
    return names | _OUTSIDE_SETTINGS


def _variables_in_env_example() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.M))


def test_every_variable_the_code_reads_is_in_env_example():
    missing = _variables_read_by_the_code() - _variables_in_env_example()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_every_variable_in_env_example_is_read_by_the_code():
    unused = _variables_in_env_example() - _variables_read_by_the_code()
    assert not unused, f"remove from .env.example (nothing reads them): {sorted(unused)}"


def test_every_variable_is_explained_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in _variables_in_env_example() if f"`{name}`" not in readme}
    assert not missing, f"explain in README.md: {sorted(missing)}"


def test_the_procfile_and_bootstrap_use_web_port():
    assert "${WEB_PORT:-8000}" in (ROOT / "Procfile").read_text()
