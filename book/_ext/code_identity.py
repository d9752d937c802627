"""Sphinx extension: the built book always shows what main's code computes.

Two ways an incremental ``jupyter-book build`` could show old numbers, and
what this extension does about each:

* **dmmlib changed, the chapters did not.** Jupyter-cache keys a notebook by
  its own cells, and Sphinx re-reads only changed sources, so an edit to
  ``dmmlib`` would leave every page as it was. The source fingerprint of the
  dmmlib in use (:func:`dmmlib.cache.source_fingerprint`) is stored beside
  the build; when it differs, the execution cache is emptied and every page
  is read (and so executed) again.
* **The profile changed** (``DMM_PROFILE``, or a GPU appeared): the cached
  outputs are another profile's; the stamp holds the profile too, so this is
  handled like a code change.
* **One chapter changed.** It is re-executed and records new rows; the
  pages that only *collect* records (the scoreboard, the closing
  synthesis, the execution statistics) are re-read and re-executed after it
  in the same build (their sources carry ``mystnb: execution_mode: force``;
  Sphinx reads pages in name order, so ``book/synthesis`` and
  ``book/scoreboard`` come after every chapter that records verdicts).

``tools/execute_book.py`` fills the execution cache before the build (several
chapters at once). It applies the same rule first (:func:`prepare_cache`) and
then leaves a second stamp, :data:`EXECUTED_NAME`, saying which code and
profile produced every entry now in the cache; the build keeps a cache so
stamped (it still re-reads every page) and removes that stamp when it ends.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

#: Pages that show what the chapters recorded: re-read whenever a chapter is.
COLLECTORS = ("book/scoreboard", "book/synthesis", "book/execution")
STAMP_NAME = ".dmmlib-source"
#: written by tools/execute_book.py: the fingerprint that filled the execution cache
EXECUTED_NAME = ".dmmlib-source-executed"


def fingerprint() -> str:
    """The dmmlib source in use and the profile the chapters will run in."""
    from dmmlib.cache import source_fingerprint
    from dmmlib.profiles import get_profile

    return f"{source_fingerprint()} profile={get_profile().name}"


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def prepare_cache(build_dir: Path, cache: Path, new: str) -> bool:
    """Empty the execution cache ``cache`` unless the code that filled it is ``new``.

    The cache is kept when the last finished build (``build_dir/.dmmlib-source``)
    or ``tools/execute_book.py`` (``build_dir/.dmmlib-source-executed``) ran
    this code in this profile. Only a jupyter-cache folder is ever removed.

    Returns
    -------
    bool
        Whether the code differs from the last finished build's (then every
        page must be read again).
    """
    changed = _read(build_dir / STAMP_NAME) != new
    if changed and _read(build_dir / EXECUTED_NAME) != new:
        if cache.is_dir() and (cache / "global.db").is_file():
            shutil.rmtree(cache)
    return changed


def _stamp_path(app: Any) -> Path:
    return Path(app.outdir).parent / STAMP_NAME


def _execution_cache(app: Any) -> Path:
    path = Path(str(getattr(app.config, "nb_execution_cache_path", "") or "")).expanduser()
    if not path.is_absolute():
        path = Path(app.srcdir) / path
    return path


def _on_config_inited(app: Any, config: Any) -> None:
    new = fingerprint()
    app.dmm_fingerprint = new
    if getattr(app.config, "nb_execution_cache_path", None):
        app.dmm_code_changed = prepare_cache(_stamp_path(app).parent, _execution_cache(app), new)
    else:
        app.dmm_code_changed = _read(_stamp_path(app)) != new


def _is_notebook(env: Any, docname: str) -> bool:
    try:
        head = Path(env.doc2path(docname)).read_text(errors="replace")[:2000]
    except OSError:
        return False
    return "\nkernelspec:" in head


def _on_env_get_outdated(app: Any, env: Any, added: set[str], changed: set[str],
                         removed: set[str]) -> list[str]:
    fresh = set(added) | set(changed)
    extra: set[str] = set()
    if getattr(app, "dmm_code_changed", False):
        extra |= set(env.found_docs)
    chapters = {d for d in fresh | extra if d not in COLLECTORS and _is_notebook(env, d)}
    if chapters:
        extra |= {d for d in COLLECTORS if d in env.found_docs}
    return sorted(extra - fresh)


def _on_build_finished(app: Any, exception: BaseException | None) -> None:
    if exception is None:
        stamp = _stamp_path(app)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(app.dmm_fingerprint + "\n")
        (stamp.parent / EXECUTED_NAME).unlink(missing_ok=True)


def setup(app: Any) -> dict[str, Any]:
    """Register the handlers with Sphinx."""
    app.connect("config-inited", _on_config_inited, priority=100)
    app.connect("env-get-outdated", _on_env_get_outdated)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
