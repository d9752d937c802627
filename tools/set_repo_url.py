"""Change the repository URL the book points at, everywhere, from one command.

The URL is configured once, in ``_config.yml`` (``repository.url``); launch
buttons read it from there. Chapter install cells, the README and the intro
must quote the same URL (Colab cannot read the config), so this script
rewrites them all and ``tests/test_book.py`` fails if they ever disagree::

    python tools/set_repo_url.py https://github.com/ORG/REPO
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def current_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def files_quoting_url() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md")),
            *sorted((ROOT / "book").glob("*.ipynb"))]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", argv[1]):
        print(__doc__)
        return 2
    old, new = current_url(), argv[1].rstrip("/")
    for path in [ROOT / "_config.yml", *files_quoting_url()]:
        if path.is_file():
            text = path.read_text()
            if old in text:
                path.write_text(text.replace(old, new))
                print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
