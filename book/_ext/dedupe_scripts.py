"""Sphinx extension: drop duplicate <script> entries from every page.

sphinx-thebe (loaded by Jupyter Book 1.0.4) registers its inline
configuration script twice (once with filename ``None``, once with ``""``),
so each page declared ``const THEBE_JS_URL`` twice and
the browser logged a SyntaxError. Keeping the first copy of each identical
script fixes that without touching the packages.
"""

from __future__ import annotations

from typing import Any


def _dedupe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        attrs = getattr(script, "attributes", {}) or {}
        # the same inline script is registered once with filename None, once with ""
        key = (str(getattr(script, "filename", script) or ""), repr(sorted(attrs.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: later handlers (mathjax) append to this very list


def setup(app: Any) -> dict[str, Any]:
    """Register the handler with Sphinx."""
    # priority 1: html-page-context stops at the first handler that returns a value
    app.connect("html-page-context", _dedupe, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

