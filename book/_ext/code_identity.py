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
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

#: Pages that show what the chapters recorded: re-read whenever a chapter is.
COLLECTORS = ("book/scoreboard", "book/synthesis", "book/execution")
STAMP_NAME = ".dmmlib-source"


def _fingerprint() -> str:
    """The dmmlib source in use and the profile the chapters will run in."""
    from dmmlib.cache import source_fingerprint
    from dmmlib.profiles import get_profile

    return f"{source_fingerprint()} profile={get_profile().name}"


def _stamp_path(app: Any) -> Path:
    return Path(app.outdir).parent / STAMP_NAME


def _execution_cache(app: Any) -> Path:
    path = Path(str(getattr(app.config, "nb_execution_cache_path", "") or "")).expanduser()
    if not path.is_absolute():
        path = Path(app.srcdir) / path
    return path


def _on_config_inited(app: Any, config: Any) -> None:
    stamp = _stamp_path(app)
    new = _fingerprint()
    old = stamp.read_text().strip() if stamp.is_file() else None
    app.dmm_code_changed = old != new
    app.dmm_fingerprint = new
    if app.dmm_code_changed and getattr(app.config, "nb_execution_cache_path", None):
        cache = _execution_cache(app)
        # only a jupyter-cache folder, never something else a setting points at
        if cache.is_dir() and (cache / "global.db").is_file():
            shutil.rmtree(cache)


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


def setup(app: Any) -> dict[str, Any]:
    """Register the handlers with Sphinx."""
    app.connect("config-inited", _on_config_inited, priority=100)
    app.connect("env-get-outdated", _on_env_get_outdated)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
