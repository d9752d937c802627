"""tools/execute_book.py: chapters executed side by side land where myst-nb looks for them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import execute_book as eb  # noqa: E402  (worker processes import it by this name)

HEAD = ("---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
        "  display_name: Python 3\n  language: python\n  name: python3\n---\n")


def _chapter(title: str, code: str) -> str:
    return f"{HEAD}# {title}\n\n```{{code-cell}} ipython3\n{code}\n```\n"


def _project(tmp_path: Path, chapters: dict[str, str]) -> Path:
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text(
        "execute:\n  execute_notebooks: cache\n  cache: _build/.jupyter_cache\n  timeout: 60\n")
    toc = "format: jb-book\nroot: book/intro\nchapters:\n" + "".join(
        f"  - file: book/{name}\n" for name in chapters)
    (tmp_path / "_toc.yml").write_text(toc)
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    for name, text in chapters.items():
        (tmp_path / "book" / f"{name}.md").write_text(text)
    return tmp_path


def _myst_nb_notebook(path: Path):
    """The notebook as myst-nb's Sphinx reader parses it (what the build hashes)."""
    from myst_nb.core.read import read_myst_markdown_notebook

    return read_myst_markdown_notebook(path.read_text())


RECORDS = ("def record(x):\n    return x\n\nrecord(1)\nimport os\n"
           "threads = os.environ['OMP_NUM_THREADS']")


def test_chapters_are_cached_as_the_build_will_look_them_up(tmp_path):
    from jupyter_cache import get_cache

    root = _project(tmp_path, {"a": _chapter("A", RECORDS + "\nthreads"),
                               "b": _chapter("B", "b = 2\n" + RECORDS + "\nthreads"),
                               "collector": _chapter("C", "print('reads the records')")})
    assert eb.execute(root, jobs=2) == 0
    cache = get_cache(str(root / "_build/.jupyter_cache"))
    for name in ("a", "b"):
        record = cache.match_cache_notebook(_myst_nb_notebook(root / "book" / f"{name}.md"))
        assert record.data["execution_seconds"] > 0
        code = [c for c in cache.get_cache_bundle(record.pk).nb.cells if c.cell_type == "code"]
        # torch's threads are shared between the two kernels
        assert code[0].outputs[-1]["data"]["text/plain"] == repr(str(max(1, eb._cores() // 2)))
    with pytest.raises(KeyError):   # a page that only reads records is left to the build
        cache.match_cache_notebook(_myst_nb_notebook(root / "book" / "collector.md"))
    fp = (root / "_build" / eb.code_identity.EXECUTED_NAME).read_text().strip()
    assert fp == eb.code_identity.fingerprint()
    assert eb.execute(root, jobs=2) == 0  # nothing left to run
    assert len(cache.list_cache_records()) == 2


def test_a_failing_chapter_fails_the_run_and_is_not_cached(tmp_path, capsys):
    from jupyter_cache import get_cache

    root = _project(tmp_path, {"ok": _chapter("OK", RECORDS),
                               "bad": _chapter("Bad", "record = print\nrecord(1)\n1 / 0"),
                               "dies": _chapter("Dies", "import os\nrecord = print\n"
                                                        "record(1)\nos._exit(1)")})
    assert eb.execute(root, jobs=2) == 1
    out = capsys.readouterr().out
    assert "book/bad.md FAILED" in out and "ZeroDivisionError" in out
    assert "book/dies.md FAILED" in out and "DeadKernelError" in out
    cache = get_cache(str(root / "_build/.jupyter_cache"))
    assert len(cache.list_cache_records()) == 1
    with pytest.raises(KeyError):
        cache.match_cache_notebook(_myst_nb_notebook(root / "book" / "bad.md"))


def test_longest_first_and_only_recording_chapters(tmp_path):
    paths = [tmp_path / f"{n}.md" for n in "abc"]
    last = {str(paths[0]): 10.0, str(paths[2]): 50.0}
    assert eb.schedule(paths, last) == [paths[1], paths[2], paths[0]]  # untimed first
    paths[0].write_text("record_verdict(x)")
    paths[1].write_text("sb.load_verdicts()")
    paths[2].write_text("scoreboard.record(key)")
    assert eb.recording_chapters(paths) == [paths[0], paths[2]]


def test_the_threads_are_shared_between_the_jobs(tmp_path):
    from jupyter_cache import get_cache

    root = _project(tmp_path, {"a": _chapter("A", RECORDS + "\nthreads")})
    assert eb.execute(root, jobs=1) == 0
    cache = get_cache(str(root / "_build/.jupyter_cache"))
    nb = cache.get_cache_bundle(cache.list_cache_records()[0].pk).nb
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[-1]["data"]["text/plain"] == repr(str(eb._cores()))
