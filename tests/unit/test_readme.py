"""The README is true to the repository: it links nothing outside it (a reader offline, or with
only the repository, can follow every link) and names every setting."""

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


def test_every_setting_is_in_the_readme():
    """The configuration table is what a user reads: a setting missing there does not exist."""
    from selfmend.config import Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    prefix = Settings.model_config["env_prefix"]
    names = [(f.alias or prefix + name).upper() for name, f in Settings.model_fields.items()]
    assert [name for name in names if f"`{name}`" not in readme] == []
