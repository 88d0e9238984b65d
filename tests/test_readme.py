"""The README's in-page links (its contents list among them) lead to headings that exist."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces as ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_in_page_link_names_a_heading():
    text = README.read_text(encoding="utf-8")
    outside_code = re.sub(r"```.*?```", "", text, flags=re.S)
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", outside_code, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", outside_code)
    assert len(links) >= 20  # the contents list
    assert [link for link in links if link not in anchors] == []


def test_the_anchor_rule_on_headings_with_code_and_punctuation():
    assert github_anchor("On a GPU (`scripts/check_gpu.sh`)") == "on-a-gpu-scriptscheck_gpush"
    assert github_anchor("ml-100k, fetched offline-friendly") == "ml-100k-fetched-offline-friendly"
