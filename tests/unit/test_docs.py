"""The repository explains itself: the README links the wire contract, the operations guide and the
licence; every link between the documents lands on a file and a heading that exist; every
"CONTRACT §n" the code cites is a section of docs/CONTRACT.md; and the contract names every field of
the wire models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from sagemaker_executor.domain import events

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "CONTRACT.md", ROOT / "docs" / "OPERATIONS.md"]
CONTRACT = (ROOT / "docs" / "CONTRACT.md").read_text()
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.M)
    }


def test_the_readme_links_the_contract_the_operations_guide_and_the_licence() -> None:
    readme = (ROOT / "README.md").read_text()
    for target in ("docs/CONTRACT.md", "docs/OPERATIONS.md", "LICENSE"):
        assert f"]({target})" in readme, target
        assert (ROOT / target).is_file(), target


def test_the_licence_is_the_apache_license_setup_py_declares() -> None:
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence  # the whole text, not a stub
    assert 'license="Apache-2.0"' in (ROOT / "setup.py").read_text()


@pytest.mark.parametrize("document", DOCS, ids=lambda p: p.name)
def test_every_relative_link_lands_on_a_file_and_heading(document: Path) -> None:
    for target in _LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{document.name}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked.read_text()), f"{document.name}: no heading #{anchor} in {path}"


def cited_sections() -> set[str]:
    cited: set[str] = set()
    sources = [*ROOT.joinpath("sagemaker_executor").rglob("*.py"), *ROOT.joinpath("deploy").rglob("*.y*ml")]
    for source in [*sources, ROOT / "README.md"]:
        cited.update(
            m.rstrip(".") for m in re.findall(r"CONTRACT(?:\.md)? §(\d+(?:\.\d+)?)", source.read_text())
        )
    return cited


def test_every_contract_section_the_code_cites_exists() -> None:
    cited = cited_sections()
    assert {"3", "5.1", "10"} <= cited
    numbered = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", CONTRACT, re.M))
    bugs = CONTRACT[CONTRACT.index("## 10.") : CONTRACT.index("## 11.")]
    numbered |= {f"10.{n}" for n in re.findall(r"^(\d+)\. \*\*", bugs, re.M)}
    assert cited - numbered == set()


WIRE_MODELS = [
    events.BenchmarkEvent,
    events.VisitedService,
    events.FetcherPayload,
    events.BenchmarkDoc,
    events.DownloadableContent,
    events.SizeInfo,
    events.BenchmarkJob,
    events.StatusMessagePayload,
    events.CommandRequestPayload,
    events.CommandResponsePayload,
    events.MetricsEvent,
]


@pytest.mark.parametrize("model", WIRE_MODELS, ids=lambda m: m.__name__)
def test_the_contract_names_every_field_of_the_wire_models(model: type[BaseModel]) -> None:
    quoted = " ".join(re.findall(r"`([^`]+)`", CONTRACT))
    missing = [name for name in model.model_fields if not re.search(rf"\b{name}\b", quoted)]
    assert missing == [], f"docs/CONTRACT.md does not mention {model.__name__}.{missing}"


def test_the_contract_lists_every_status() -> None:
    section = CONTRACT[CONTRACT.index("### 4.6") : CONTRACT.index("### 4.7")]
    for status in events.Status:
        assert f"`{status.value}`" in section
