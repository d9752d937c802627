"""Sphinx extension: plotly.js served once, as a file, instead of inlined into each page.

:func:`dmmlib.book.interactive.plotly_html` inlines plotly.js (about 5 MB) into
the first figure a notebook shows, so that a figure works in Jupyter and on
Colab with no network. In the built book that made every page with a 3-D
figure 5 MB heavier. After the HTML is written, this extension moves each
inlined copy into one file, ``_static/vendor-plotly/plotly-<version>.min.js``,
and puts a ``<script src>`` to it where the copy was (same place, so the
figures below it still find ``window.Plotly``). Browsers cache the file across
pages. Pages whose inlined copies differ in version each get their own file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

#: an inlined plotly.js bundle, as ``plotly.io.to_html(include_plotlyjs=True)`` writes it
INLINE = re.compile(r"<script(?: [^>]*)?>(/\*\*\s*\n\* plotly\.js v(?P<version>[0-9][\w.-]*)\n"
                    r".*?)</script>", re.S)
FOLDER = Path("_static") / "vendor-plotly"


def _write_once(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, unless it already holds exactly that."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; a web server must read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def share_plotly(outdir: Path) -> dict[str, int]:
    """Replace inlined plotly.js in every HTML page under ``outdir`` by a shared file.

    Returns
    -------
    The number of copies replaced per page (relative path), for pages that had any.
    """
    replaced: dict[str, int] = {}
    for page in sorted(outdir.rglob("*.html")):
        if FOLDER.parts[0] in page.relative_to(outdir).parts:
            continue
        html = page.read_text(encoding="utf-8")
        if "plotly.js v" not in html:
            continue
        count = 0

        def swap(match: re.Match[str], page: Path = page) -> str:
            nonlocal count
            target = outdir / FOLDER / f"plotly-{match['version']}.min.js"
            _write_once(target, match.group(1))
            count += 1
            rel = os.path.relpath(target, page.parent).replace(os.sep, "/")
            return f'<script src="{rel}"></script>'

        new = INLINE.sub(swap, html)
        if count:
            _write_once(page, new)
            replaced[str(page.relative_to(outdir))] = count
    return replaced


def _on_build_finished(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        share_plotly(Path(app.outdir))


def setup(app: Any) -> dict[str, Any]:
    """Register the handler with Sphinx."""
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
