"""The book build re-runs what a code change or a chapter change can alter."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("code_identity", ROOT / "book/_ext/code_identity.py")
ext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ext)

NOTEBOOK = "---\nkernelspec:\n  name: python3\n---\n# A chapter\n"
PAGE = "# Plain page\n"


def _project(tmp_path: Path) -> SimpleNamespace:
    src = tmp_path / "src"
    (src / "book").mkdir(parents=True)
    docs = {"book/a": NOTEBOOK, "book/b": NOTEBOOK, "book/scoreboard": NOTEBOOK,
            "book/synthesis": NOTEBOOK,
            "book/execution": NOTEBOOK, "book/bibliography": PAGE}
    for name, text in docs.items():
        (src / f"{name}.md").write_text(text)
    env = SimpleNamespace(found_docs=set(docs), doc2path=lambda d: src / f"{d}.md")
    cache = tmp_path / "_build" / ".jupyter_cache"
    cache.mkdir(parents=True)
    (cache / "global.db").write_text("db")
    config = SimpleNamespace(nb_execution_cache_path=str(cache))
    app = SimpleNamespace(outdir=str(tmp_path / "_build" / "html"), srcdir=str(src),
                          config=config)
    return SimpleNamespace(app=app, env=env, cache=cache)


def test_a_changed_chapter_reruns_the_collecting_pages(tmp_path):
    p = _project(tmp_path)
    p.app.dmm_code_changed = False
    extra = ext._on_env_get_outdated(p.app, p.env, set(), {"book/a"}, set())
    assert extra == ["book/execution", "book/scoreboard", "book/synthesis"]
    # a plain page changing does not re-run the chapters' collectors
    assert ext._on_env_get_outdated(p.app, p.env, set(), {"book/bibliography"}, set()) == []
    assert ext._on_env_get_outdated(p.app, p.env, set(), set(), set()) == []


def test_a_code_change_empties_the_execution_cache_and_rereads_everything(tmp_path, monkeypatch):
    p = _project(tmp_path)
    monkeypatch.setattr(ext, "fingerprint", lambda: "one")
    ext._on_config_inited(p.app, p.app.config)          # first build: no stamp yet
    assert p.app.dmm_code_changed and not p.cache.exists()
    extra = ext._on_env_get_outdated(p.app, p.env, set(), set(), set())
    assert set(extra) == p.env.found_docs
    ext._on_build_finished(p.app, None)

    p.cache.mkdir(parents=True)
    (p.cache / "global.db").write_text("db")
    ext._on_config_inited(p.app, p.app.config)          # same code: nothing to redo
    assert not p.app.dmm_code_changed and p.cache.exists()
    assert ext._on_env_get_outdated(p.app, p.env, set(), set(), set()) == []

    monkeypatch.setattr(ext, "fingerprint", lambda: "two")   # dmmlib edited
    ext._on_config_inited(p.app, p.app.config)
    assert p.app.dmm_code_changed and not p.cache.exists()
    # a failed build keeps the old stamp
    ext._on_build_finished(p.app, RuntimeError("a cell failed"))
    ext._on_config_inited(p.app, p.app.config)
    assert p.app.dmm_code_changed


def test_the_collecting_pages_are_forced_to_execute():
    for name in ext.COLLECTORS:
        head = (ROOT / f"{name}.md").read_text()[:1500]
        assert "mystnb:\n  execution_mode: force" in head, name


def test_the_stamp_names_the_profile(monkeypatch):
    monkeypatch.setenv("DMM_PROFILE", "ci")
    ci = ext.fingerprint()
    monkeypatch.setenv("DMM_PROFILE", "cpu")
    assert ext.fingerprint() != ci and ci.endswith("profile=ci")


def test_a_cache_filled_by_execute_book_with_this_code_is_kept(tmp_path, monkeypatch):
    p = _project(tmp_path)
    build = tmp_path / "_build"
    monkeypatch.setattr(ext, "fingerprint", lambda: "one")
    ext._on_config_inited(p.app, p.app.config)
    ext._on_build_finished(p.app, None)                  # a build of code "one"
    p.cache.mkdir(parents=True)
    (p.cache / "global.db").write_text("db")
    # tools/execute_book.py with code "two": the old entries go, its own stay stamped
    assert ext.prepare_cache(build, p.cache, "two") and not p.cache.exists()
    p.cache.mkdir(parents=True)
    (p.cache / "global.db").write_text("db of two")
    (build / ext.EXECUTED_NAME).write_text("two\n")
    monkeypatch.setattr(ext, "fingerprint", lambda: "two")
    ext._on_config_inited(p.app, p.app.config)
    assert p.app.dmm_code_changed                         # every page is read again ...
    assert (p.cache / "global.db").read_text() == "db of two"   # ... from the kept cache
    assert set(ext._on_env_get_outdated(p.app, p.env, set(), set(), set())) == p.env.found_docs
    ext._on_build_finished(p.app, None)
    assert not (build / ext.EXECUTED_NAME).exists()
    # a stamp of other code keeps nothing
    (build / ext.EXECUTED_NAME).write_text("two\n")
    monkeypatch.setattr(ext, "fingerprint", lambda: "three")
    ext._on_config_inited(p.app, p.app.config)
    assert p.app.dmm_code_changed and not p.cache.exists()
