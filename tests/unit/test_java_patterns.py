"""``javaregex.java_regex`` against Java itself: every pattern of botocore's SageMaker model, and
patterns written to reach each part of the translation (``\\d \\w \\s`` and their negations, in and out of
character classes, the POSIX ``\\p{..}``/``\\P{..}`` classes and their ``Is`` forms, surrogate-pair escapes,
``.``, negated and nested classes), matched against probe strings: valid values with line terminators,
non-ASCII digits and letters, astral characters and punctuation put in, and seeded random strings.

The verdicts are ``java.util.regex``'s own (``Pattern.matches``, OpenJDK 17), recorded in
``tests/golden/java_regex/verdicts.json`` by ``tests/golden/java_regex/JavaMatches.java``, so the suite
needs no JVM. ``UPDATE_JAVA_VERDICTS=1 python -m tests.unit.test_java_patterns`` records them again
(after a botocore upgrade brings new patterns: :func:`test_the_verdicts_cover_every_pattern_of_the_model`
says so). A wrong translation accepts what SageMaker refuses or refuses what it accepts."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import regex
from botocore.loaders import create_loader

from sagemaker_executor.domain import constraints, javaregex

HERE = Path(__file__).resolve().parent.parent / "golden" / "java_regex"
VERDICTS = HERE / "verdicts.json"

# Characters Java's and Python's regular expressions disagree about when translated carelessly.
PROBE_CHARACTERS = (
    "aZ09_-.:/@+= ,#!()[]^\\{}~`$|?*"
    "\t\n\r\x0b\x0c\x85\u2028\u2029\xa0\x00\x7f"  # line terminators, Java's \s and \p{Space}, controls
    "éΩ中٣²\u0300"  # a Latin and a Greek letter, a CJK one, an Arabic-Indic digit, a superscript, a mark
    "\U0001f600\U00010348"  # astral: a surrogate pair in Java's UTF-16
)

# A valid value of each patterned shape of CreateTrainingJob, for the probes around it.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "TagKey": ("Überblick 中文 ٣ :/=+-@_.", "team"),
    "HubDataSetArn": ("arn:aws:sagemaker:us-east-1:123456789012:hub-content/my-hub/DataSet/data-1/1.0.12",),
    "ServerlessJobBaseModelArn": ("arn:aws:sagemaker:us-east-1:aws:hub-content/h/Model/m",),
    "ArnOrName": ("arn:aws:sagemaker:us-east-1:123456789012:mlflow-app/app-1", "name-1"),
    "FileSystemId": ("fs-0123abcd",),
    "S3Uri": ("s3://bucket/key/x", "https://host/"),
    "HyperParameterValue": ("anything at all",),
    "MetricName": ("loss",),
    "SecurityGroupId": ("sg-0123",),
    "ChannelName": ("train.v2-x_y",),
    "TrainingEnvironmentValue": ("a\nb",),
    "KmsKeyId": ("arn:aws:kms:us-east-1:123:key/abc_d-e",),
    "ExperimentEntityName": ("exp--1",),
    "TrainingJobName": ("job-1", "a--b"),
    "TrainingEnvironmentKey": ("_VAR_1",),
    "SequenceLength": ("128K",),
    "TrainingRepositoryCredentialsProviderArn": ("arn:aws:lambda:us-east-1:123456789012:function:f",),
    "RoleArn": ("arn:aws:iam::123456789012:role/r", "arn:aws-cn:iam::123456789012:role/a/b_c+=,.@-"),
    "MlFlowResourceArn": ("arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/x",),
    "TrainingPlanArn": ("arn:aws:sagemaker:us-east-1:123456789012:training-plan/p",),
    "ModelPackageGroupArn": ("arn:aws:sagemaker:us-east-1:123456789012:model-package-group/g",),
    "ModelPackageArn": ("arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",),
}

# Java patterns no shape uses (yet), one or more per branch of the translation, with values to probe.
SYNTHETIC: dict[str, tuple[str, ...]] = {
    r"\d+": ("0129",),
    r"\w+": ("a_Z9",),
    r"\s+": (" \t\n\x0b\x0c\r",),
    r"[\d]+": ("42",),
    r"[\w-]+": ("a-b_c",),
    r"[\s.]+": (". .",),
    r"[x\s]": ("x",),
    r"\D+": ("ab",),
    r"\W+": ("-+",),
    r"\S+": ("ab",),
    r"[\D]+": ("ab",),
    r"[a\W]+": ("a-",),
    r"[^\d]+": ("ab",),
    r"[^\s]+": ("ab",),
    r"\p{Alnum}+": ("a1Z",),
    r"\p{IsAlnum}+": ("a1Z",),
    r"\P{Alnum}+": ("-+",),
    r"\P{IsDigit}+": ("ab",),
    r"\p{IsDigit}+": ("12",),
    r"\p{IsPunct}+": ("!?",),
    r"\p{IsLower}+": ("aé",),
    r"\p{IsAlphabetic}+": ("aé中",),
    r"\p{IsL}+": ("aé",),
    r"\p{IsLatin}+": ("aé",),
    r"[\p{Alpha}_]+": ("a_b",),
    r"[^\p{Punct}]+": ("ab",),
    r"[\P{Digit}]+": ("ab",),
    r"\p{Lower}\p{Upper}\p{Digit}": ("aB3",),
    r"\p{XDigit}+": ("0aF",),
    r"\p{Space}*": (" \t",),
    r"\p{Blank}\p{Cntrl}?": (" \x00",),
    r"\p{Graph}+\p{Print}*": ("a~ b",),
    r"\p{ASCII}+": ("a\x7f",),
    r"\p{Punct}+": ("!@[`{~",),
    r"\p{L}+": ("aé中",),
    r"\p{N}\p{Z}": ("٣ ",),
    r"a\p{L}b\P{L}c": ("axb1c",),
    r"\uD83D\uDE00+": ("\U0001f600",),
    r"x\uD83D\uDE00": ("x\U0001f600",),
    r"x\ud83d\ude00y": ("x\U0001f600y",),  # Java reads the hexadecimal digits in either case
    r"x\uD83D\ude00y": ("x\U0001f600y",),
    r"[\uD83D\uDE00-\uD83D\uDE4F]+": ("\U0001f600",),
    r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*": ("emoji \U0001f600 ok",),
    r"[a\uD800\uDC00]": ("a",),
    r"\uD83Dx": ("x",),
    r"a\u0062c": ("abc",),
    r"a.b": ("a b",),
    r"[.]+": ("..",),
    r"[a.]+": ("a.",),
    r"[^.]+": ("ab",),
    r"[^^]+": ("ab",),
    r"[^a]+": ("bc",),
    r"[a^b]+": ("a^b",),
    r"^[ab]+$": ("ab",),
    r"a\Xb": ("a\u0300b", "axb"),  # a grapheme cluster
    r"[a[b-d]]+": ("abd",),
    r"[a[b]c.]+": ("ab.c",),  # "." and \d after a nested class are still in the outer one
    r"[a[b]\d]+x.": ("ab1x.",),
    r"[a-z&&[^aeiou]]+": ("xyz",),
    r"(a|b)[^\]x]*\.": ("ab.",),
    r"[\[a]+": ("[a",),
    r"\{x\}\-\\": ("{x}-\\",),
    r"[\-a]+\/": ("-a/",),
    r"ab\\": ("ab\\",),
    r"\\d": ("\\d",),
    r"ab\\\d": ("ab\\1",),
    r"\d.\w": ("1x_",),
    "ab\\": (),  # a backslash at the end: no pattern, in Java or here
    r"\p{Alnum": (),
}


def _model_patterns() -> dict[str, str]:
    """Every pattern of the model, with the name of one shape that has it."""
    shapes = create_loader().load_service_model("sagemaker", "service-2")["shapes"]
    return {shape["pattern"]: name for name, shape in sorted(shapes.items()) if "pattern" in shape}


def _probes(pattern: str, examples: tuple[str, ...], randoms: int) -> list[str]:
    rng = random.Random(pattern)  # seeded by the pattern: the same probes on every run
    alphabet = sorted(set(PROBE_CHARACTERS) | {c for c in pattern if c.isprintable() and c != "\\"})
    probes = {""}
    for example in examples:
        probes.add(example)
        for char in PROBE_CHARACTERS:
            at = rng.randrange(len(example) + 1)
            probes.update({example + char, char + example, example[:at] + char + example[at:]})
            if example:
                at = rng.randrange(len(example))
                probes.add(example[:at] + char + example[at + 1 :])
    for _ in range(randoms):
        probes.add("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))))
    return sorted(probes)


def _cases() -> Iterator[tuple[str, list[str]]]:
    examples_by_pattern: dict[str, tuple[str, ...]] = {}
    for shape, examples in EXAMPLES.items():
        pattern = constraints.shape_limits(shape)[2]
        assert pattern is not None, shape
        examples_by_pattern[pattern] = examples_by_pattern.get(pattern, ()) + examples
    for pattern in _model_patterns():
        yield pattern, _probes(pattern, examples_by_pattern.get(pattern, ()), 12)
    for pattern, examples in SYNTHETIC.items():
        yield pattern, _probes(pattern, examples, 40)


def _hex(text: str) -> str:
    return " ".join(f"{ord(c):x}" for c in text)


def record_java_verdicts() -> None:
    """Ask Java (``java`` on the PATH, 11 or later) and write :data:`VERDICTS`."""
    cases = list(_cases())
    lines = [f"{_hex(pattern)}\t{_hex(text)}" for pattern, texts in cases for text in texts]
    java = subprocess.run(
        ["java", str(HERE / "JavaMatches.java")],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    )
    answers = iter(java.stdout.split())
    verdicts: dict[str, object] = {}
    for pattern, texts in cases:
        found = {text: next(answers) for text in texts}
        if set(found.values()) == {"E"}:
            verdicts[pattern] = None  # Java cannot compile it
        else:
            verdicts[pattern] = {"match": [t for t, a in found.items() if a == "1"]} | {
                "no_match": [t for t, a in found.items() if a == "0"]
            }
    VERDICTS.write_text(json.dumps(verdicts, ensure_ascii=True, indent=0) + "\n")


def _verdicts() -> dict[str, dict[str, list[str]] | None]:
    loaded: dict[str, dict[str, list[str]] | None] = json.loads(VERDICTS.read_text())
    return loaded


@pytest.fixture(autouse=True)
def _translate_afresh() -> Iterator[None]:
    """Compiled patterns are cached for the process: each test here translates its patterns itself."""
    javaregex._compiled.cache_clear()
    yield
    javaregex._compiled.cache_clear()


# Java's Unicode properties that the regex package does not know by these names: java_regex says it
# cannot read them (regex.error), and a value of such a shape is left to SageMaker. No shape has one.
UNREADABLE = {r"\p{IsDigit}+", r"\P{IsDigit}+", r"\p{IsL}+", r"\p{IsPunct}+"}


@pytest.mark.parametrize(("pattern", "verdict"), sorted(_verdicts().items()))
def test_a_pattern_matches_what_java_matches(pattern: str, verdict: dict[str, list[str]] | None) -> None:
    if verdict is None or pattern in UNREADABLE:
        with pytest.raises(regex.error):
            javaregex.java_regex(pattern)
        return
    compiled = javaregex.java_regex(pattern)
    assert [t for t in verdict["match"] if not compiled.fullmatch(t)] == []  # refused, Java accepts
    assert [t for t in verdict["no_match"] if compiled.fullmatch(t)] == []  # accepted, Java refuses


def test_the_verdicts_cover_every_pattern_of_the_model() -> None:
    missing = set(_model_patterns()) - set(_verdicts())
    assert not missing, "new patterns: UPDATE_JAVA_VERDICTS=1 python -m tests.unit.test_java_patterns"


if __name__ == "__main__":
    if not os.environ.get("UPDATE_JAVA_VERDICTS"):
        sys.exit("set UPDATE_JAVA_VERDICTS=1 to record Java's verdicts again")
    record_java_verdicts()
