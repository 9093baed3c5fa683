"""The README's configuration table documents every setting, with the right flag and default."""

from __future__ import annotations

import re
from pathlib import Path

from sagemaker_executor.config import OPTIONS, env_name

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_option_is_in_the_configuration_table() -> None:
    rows = {m[0]: m[1] for m in re.findall(r"^\| `([A-Z0-9_]+)` \| `(--[a-z0-9-]+)` \|", README, re.M)}
    expected = {env_name(o): "--" + o.name.replace("_", "-") for o in OPTIONS}
    assert rows == expected


def test_readme_gives_the_ci_test_command() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in README and "make test" in ci
