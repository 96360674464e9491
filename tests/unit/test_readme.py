"""The README links nothing outside the repository: a reader offline, or with only the
repository, can follow every link."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def prose(text: str) -> str:
    """The README without its code blocks (their URLs are examples, not links)."""
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


def test_the_readme_links_only_to_files_in_the_repository():
    text = prose((ROOT / "README.md").read_text())

    assert not re.findall(r"https?://\S+", text)
    assert "../" not in text
    for target in re.findall(r"\]\(([^)]+)\)", text):
        path = target.split("#")[0]
        assert not path or (ROOT / path).exists(), target
