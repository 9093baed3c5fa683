"""The README's configuration table documents every setting, with the right flag and default; its
descriptor table states the limits of botocore's SageMaker model."""

from __future__ import annotations

import re
from pathlib import Path

from sagemaker_executor.config import OPTIONS, env_name
from sagemaker_executor.domain import constraints

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_option_is_in_the_configuration_table() -> None:
    rows = {m[0]: m[1] for m in re.findall(r"^\| `([A-Z0-9_]+)` \| `(--[a-z0-9-]+)` \|", README, re.M)}
    expected = {env_name(o): "--" + o.name.replace("_", "-") for o in OPTIONS}
    assert rows == expected


def test_readme_gives_the_ci_test_command() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in README and "make test" in ci


def test_the_descriptor_tables_sagemaker_limits_are_the_models() -> None:
    """Every "`Shape` ≤ N" and "`Shape` N-M" (an en dash) in the descriptor table is what botocore's
    model says (an integer shape without a ``max`` is bounded by its width)."""
    table = README[README.index("| Descriptor | Training job |") : README.index("### What SageMaker accepts")]
    stated = re.findall(r"`([A-Z]\w+)` (?:(\d[\d,]*)\u2013(\d[\d,]*)|≤ (\d[\d,]*))", table)
    assert len(stated) >= 20
    for shape, low, high, at_most in stated:
        model_low, model_high, _ = constraints.shape_limits(shape)
        if model_high is None:
            model_high = constraints.INT_RANGES[constraints.shape_type(shape)][1]
        assert int((high or at_most).replace(",", "")) == model_high, shape
        if low:
            assert int(low.replace(",", "")) == model_low, shape
