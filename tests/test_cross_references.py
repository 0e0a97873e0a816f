"""Cross-references between notebooks stay valid as notebooks are added: every "notebook NN" in a notebook's
prose names a notebook of the course, and every link to a file points at one that is there."""

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "instructor" / "source").glob("*/*.ipynb"))
NUMBERS = {path.stem[:2] for path in SOURCES}
MENTION = re.compile(r"\bnotebooks? ((?:\d\d)(?:(?:, | and | or |-|–)\d\d)*)", re.IGNORECASE)
LINK = re.compile(r"\]\(([^)#\s]+\.(?:ipynb|md|py))(?:#[^)]*)?\)")


def _prose(path):
    return [("".join(cell["source"]), index) for index, cell in enumerate(json.loads(path.read_text())["cells"])
            if cell["cell_type"] == "markdown"]


def mentioned(text):
    """The notebook numbers a text mentions ("notebook 06", "notebooks 02 and 03", "notebooks 07-08")."""
    found = set()
    for match in MENTION.finditer(text):
        numbers = re.findall(r"\d\d", match.group(1))
        if "-" in match.group(1) or "–" in match.group(1):
            numbers = [f"{n:02d}" for n in range(int(numbers[0]), int(numbers[-1]) + 1)]
        found.update(numbers)
    return found


def test_mentions_are_read():
    assert mentioned("as in notebook 01, and notebooks 02 and 03; notebooks 07-09") == {"01", "02", "03", "07",
                                                                                       "08", "09"}


@pytest.mark.parametrize("path", SOURCES, ids=[path.stem for path in SOURCES])
def test_every_notebook_mentioned_exists(path):
    missing = [(index, number) for text, index in _prose(path) for number in sorted(mentioned(text))
               if number not in NUMBERS]
    assert not missing, f"{path.name} mentions notebooks the course does not have (cell, number): {missing}"


@pytest.mark.parametrize("path", SOURCES, ids=[path.stem for path in SOURCES])
def test_every_linked_file_exists(path):
    student = ROOT / "notebooks"  # the links are followed from the student copy, which make release writes there
    broken = [(index, target) for text, index in _prose(path) for target in LINK.findall(text)
              if not target.startswith(("http://", "https://"))
              and not (student / unquote(target)).exists() and not (path.parent / unquote(target)).exists()]
    assert not broken, f"{path.name} links to files that are not there (cell, link): {broken}"
