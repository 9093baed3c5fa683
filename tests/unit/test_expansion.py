"""Kubernetes' ``$(VAR)`` expansion (``domain.expansion``), case by case.

The expected values are what Kubernetes' ``expansion.Expand`` with ``MappingFuncFor`` gives (its
``expand_test.go`` covers the same cases); the API reference's words are in the module's docstring.
"""

from __future__ import annotations

import pytest

from sagemaker_executor.domain.expansion import expand

VARIABLES = {
    "BAI_SCRIPTS_PATH": "/opt/ml/input/data/anubis-code/scripts",
    "VAR_A": "A",
    "VAR_B": "B",
    "EMPTY": "",
    "REF": "$(VAR_A)",  # a value is inserted as text, never expanded again
    "WITH SPACE": "spaced",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # defined variables are replaced
        ("$(BAI_SCRIPTS_PATH)/src/entrypoint.sh", "/opt/ml/input/data/anubis-code/scripts/src/entrypoint.sh"),
        ("$(VAR_A)", "A"),
        ("x$(VAR_A)y$(VAR_B)z", "xAyBz"),
        ("$(VAR_A)$(VAR_B)", "AB"),
        ("$(EMPTY)", ""),
        ("-$(EMPTY)-", "--"),
        ("$(REF)", "$(VAR_A)"),
        ("$(WITH SPACE)", "spaced"),
        # unknown references are left as written
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("a $(UNKNOWN) $(VAR_A)", "a $(UNKNOWN) A"),
        ("$()", "$()"),
        # "$$" is one "$": the escape
        ("$$(VAR_A)", "$(VAR_A)"),
        ("$$(UNKNOWN)", "$(UNKNOWN)"),
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("echo $$", "echo $"),
        ("$$", "$"),
        ("$$$", "$$"),
        # a "$" that begins no expression stays, with what follows it
        ("$", "$"),
        ("a$", "a$"),
        ("$HOME and ${HOME}", "$HOME and ${HOME}"),
        ("$VAR_A", "$VAR_A"),
        ("$(VAR_A", "$(VAR_A"),
        ("$(VAR_A $(VAR_B)", "$(VAR_A $(VAR_B)"),  # the name runs to the first ")": "VAR_A $(VAR_B"
        ("$((1 + 2))", "$((1 + 2))"),
        ("(VAR_A)", "(VAR_A)"),
        ("$é$(VAR_A)", "$éA"),
        ("", ""),
        ("no references", "no references"),
        ("a && b\nexit 3", "a && b\nexit 3"),
    ],
)
def test_expand_as_kubernetes_does(text: str, expected: str) -> None:
    assert expand(text, VARIABLES) == expected


def test_nothing_is_defined_without_variables() -> None:
    assert expand("$(VAR_A) $$(VAR_A)", {}) == "$(VAR_A) $(VAR_A)"


def test_a_reference_ends_with_its_word_when_the_words_are_known() -> None:
    # "$(A" is a word of its own: its ")" belongs to the next word, as in Kubernetes' per-word expansion.
    text = "$(A $(VAR_A)"
    assert expand(text, VARIABLES) == text  # one word: the name is "A $(VAR_A"
    assert expand(text, VARIABLES, word_end=lambda index: 3 if index < 3 else len(text)) == (
        "$(A " + VARIABLES["VAR_A"]
    )
