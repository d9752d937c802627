"""Sphinx extension: the dmmlib API reference, and the chapters linked to it.

Three things, one source of truth each:

* ``dmm-module`` (a directive for the pages under ``book/reference/``)
  documents one public module of dmmlib from its docstrings: the module's
  docstring, a table of everything in its ``__all__`` and one entry per
  name (signature, parameters, returns), read at build time, so a page
  never lists a name the module no longer has. ``dmm-layer`` lists the
  modules of one layer (kernels, experiments, book helpers) for the
  overview page, from ``dmmlib._PUBLIC_MODULES``.
* **Used in.** :func:`scan_usage` reads the chapters (``book/*.md`` with a
  kernelspec) for ``from dmmlib... import``, ``import dmmlib...`` and
  ``dmmlib.<module>.<name>`` and finds which chapter uses which module and
  public name; each module's and each name's entry ends with links to those
  chapters. The reference pages are re-read whenever that map changes.
* **Links from the prose.** An inline code literal in a page whose text is a
  documented dmmlib object (```dmmlib.attacks.pgd```, also with a trailing
  ``()``) becomes a link to its entry (:class:`LinkDmmlibLiterals`). Code
  cells, titles, signatures and existing links are left alone; an unknown
  name stays a plain literal (``tests/test_reference.py`` lists those).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode, nested_parse_with_titles

ROOT = Path(__file__).resolve().parents[2]
#: Where the reference pages live (docnames, relative to the book's root).
REFERENCE_DIR = "book/reference"
LAYERS = {
    "kernels": "Kernels (reusable in your own work)",
    "experiments": "Experiments (one chapter's pipeline each)",
    "book": "The book's helpers",
}


# --------------------------------------------------------------------------- modules
def public_modules() -> dict[str, list[str]]:
    """Return the full dotted names of dmmlib's public modules, by layer, in listing order."""
    import dmmlib

    out: dict[str, list[str]] = {layer: [] for layer in LAYERS}
    for path in dmmlib._PUBLIC_MODULES.values():
        head = path.split(".")[0]
        out[head if head in ("experiments", "book") else "kernels"].append(f"dmmlib.{path}")
    return out


def all_modules() -> list[str]:
    """Return every public module's full dotted name, layer by layer."""
    return [m for mods in public_modules().values() for m in mods]


def page_docname(module: str) -> str:
    """Return the docname of ``module``'s reference page.

    ``dmmlib.experiments.natural`` -> ``book/reference/experiments/natural``.
    """
    return f"{REFERENCE_DIR}/" + module.removeprefix("dmmlib.").replace(".", "/")


def public_names(module: str) -> list[str]:
    """Return the names ``module`` exports (its ``__all__``)."""
    mod = importlib.import_module(module)
    return list(getattr(mod, "__all__", []))


# --------------------------------------------------------------------------- used in
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(dmmlib(?:\.\w+)*)[ \t]+import[ \t]+"
                          r"(\([^)]*\)|[^\n#]*(?:\\\n[^\n#]*)*)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#]*)", re.M)
_DOTTED = re.compile(r"(?<![\w.])dmmlib(?:\.\w+)+")
_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.M | re.S)


def _toc_order(root: Path) -> list[str]:
    """Return the docnames of ``_toc.yml`` in reading order (empty without one)."""
    import yaml

    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        return []
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    out.append(str(node[key]).removesuffix(".md"))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc_path.read_text(encoding="utf-8")))
    return out


def chapter_files(root: Path = ROOT) -> list[Path]:
    """Return the chapters, ``book/*.md`` with a kernelspec, in table-of-contents order."""
    order = {d: i for i, d in enumerate(_toc_order(root))}
    found = [p for p in (root / "book").glob("*.md")
             if re.search(r"^kernelspec:", p.read_text(encoding="utf-8"), re.M)]
    return sorted(found, key=lambda p: (order.get(f"book/{p.stem}", len(order)), p.name))


def _names(text: str) -> list[tuple[str, str]]:
    """Split an import list: ``a, b as c`` -> [("a", "a"), ("b", "c")]."""
    text = text.strip().strip("()").replace("\\\n", " ")
    out = []
    for part in text.split(","):
        bits = part.split()
        if not bits:
            continue
        out.append((bits[0], bits[2] if len(bits) == 3 and bits[1] == "as" else bits[0]))
    return out


def scan_text(text: str, modules: dict[str, set[str]]) -> set[str]:
    """Return the public modules and names of dmmlib that one chapter's source uses.

    ``modules`` maps each public module's dotted name to its ``__all__``.
    A module counts as used when the chapter imports it or one of its names,
    or names it in full (``dmmlib.attacks.pgd``, in code or prose); a name
    counts when it is imported, called through the module's alias
    (``attacks.pgd(...)`` after ``from dmmlib import attacks``) or named in
    full.
    """
    used: set[str] = set()
    aliases: dict[str, str] = {}

    def use(module: str, name: str | None = None) -> None:
        if module in modules:
            used.add(module)
            if name is not None and name in modules[module]:
                used.add(f"{module}.{name}")

    def dotted(full: str) -> None:
        parts = full.split(".")
        for i in range(len(parts), 1, -1):
            module = ".".join(parts[:i])
            if module in modules:
                use(module, parts[i] if i < len(parts) else None)
                return

    for m in _FROM_IMPORT.finditer(text):
        base = m.group(1)
        for name, alias in _names(m.group(2)):
            if f"{base}.{name}" in modules:
                aliases[alias] = f"{base}.{name}"
                use(f"{base}.{name}")
            else:
                dotted(f"{base}.{name}")
    for m in _IMPORT.finditer(text):
        for name, alias in _names(m.group(1)):
            if name == "dmmlib" or name.startswith("dmmlib."):
                if alias != name:
                    aliases[alias] = name
                elif name == "dmmlib":
                    aliases["dmmlib"] = "dmmlib"
                if name in modules:
                    use(name)
    for full in _DOTTED.findall(text):
        dotted(full)
    code = "\n".join(_CODE_CELL.findall(text))
    for alias, module in aliases.items():
        for attr in re.findall(rf"(?<![\w.]){re.escape(alias)}\.(\w+(?:\.\w+)*)", code):
            dotted(f"{module}.{attr}")
    return used


def scan_usage(files: Iterable[Path] | None = None, root: Path = ROOT) -> dict[str, list[str]]:
    """Map each public module and name to the chapters that use it.

    For example ``{"dmmlib.attacks.pgd": ["book/five_minutes", ...]}``.

    Chapters are given as docnames (paths relative to ``root`` without
    ``.md``), in the order of ``files`` (by default the table of contents).
    """
    modules = {m: set(public_names(m)) for m in all_modules()}
    usage: dict[str, list[str]] = {}
    for path in (chapter_files(root) if files is None else files):
        docname = str(Path(path).resolve().relative_to(root.resolve()).with_suffix(""))
        for name in sorted(scan_text(Path(path).read_text(encoding="utf-8"), modules)):
            if docname not in usage.setdefault(name, []):
                usage[name].append(docname)
    return dict(sorted(usage.items()))


def _usage(app: Any) -> dict[str, list[str]]:
    if getattr(app, "dmm_usage", None) is None:
        app.dmm_usage = scan_usage(root=Path(app.srcdir))
    return app.dmm_usage


def used_in_lines(docnames: list[str], *, rubric: bool = True) -> list[str]:
    """Return the reST of a "Used in" list linking ``docnames`` (nothing for none).

    A rubric (a small heading) for a module, one line for a function or class.
    """
    if not docnames:
        return []
    links = ", ".join(f":doc:`/{d}`" for d in docnames)
    if rubric:
        return ["", ".. rubric:: Used in", "", links, ""]
    return ["", f"*Used in:* {links}", ""]


def _on_process_docstring(app: Any, what: str, name: str, obj: Any, options: Any,
                          lines: list[str]) -> None:
    if what not in ("module", "function", "class", "exception", "data"):
        return
    if not name.startswith("dmmlib."):
        return
    lines += used_in_lines(_usage(app).get(name, []), rubric=what == "module")


def _on_skip_member(app: Any, what: str, name: str, obj: Any, skip: bool,
                    options: Any) -> bool | None:
    # a NamedTuple's fields: the class docstring describes them (Attributes)
    if what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field"):
        return True
    return None


def _on_env_get_outdated(app: Any, env: Any, added: set[str], changed: set[str],
                         removed: set[str]) -> list[str]:
    """Re-read the reference pages when the chapters' use of dmmlib changed."""
    digest = hashlib.sha256(json.dumps(_usage(app), sort_keys=True).encode()).hexdigest()
    old = getattr(env, "dmm_usage_digest", None)
    env.dmm_usage_digest = digest
    if old == digest:
        return []
    return sorted(d for d in env.found_docs
                  if d.startswith(REFERENCE_DIR + "/") and d not in added | changed)


# --------------------------------------------------------------------------- directives
def _member_directive(obj: Any) -> tuple[str, list[str]]:
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "autoexception", []
        return "autoclass", [":members:"]
    if callable(obj):
        return "autofunction", []
    return "autodata", [] if len(repr(obj)) <= 80 else [":no-value:"]


def module_rst(module: str) -> list[str]:
    """Return the reST of one module's reference entry (what ``dmm-module`` parses)."""
    mod = importlib.import_module(module)
    names = public_names(module)
    lines = [f".. automodule:: {module}", ""]
    if names:
        lines += [".. rubric:: Contents", "", ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {n}" for n in names]  # automodule made {module} the current module
        lines += [""]
    for n in names:
        directive, options = _member_directive(getattr(mod, n))
        lines += [f".. {directive}:: {module}.{n}", *[f"   {o}" for o in options], ""]
    return lines


class DmmModule(SphinxDirective):
    """``.. dmm-module:: dmmlib.attacks``: the reference entry of one public module."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        """Parse the module's entry into this document."""
        module = self.arguments[0].strip()
        if module not in all_modules():
            raise self.error(f"{module} is not a public module of dmmlib "
                             "(dmmlib._PUBLIC_MODULES)")
        mod = importlib.import_module(module)
        if getattr(mod, "__file__", None):
            self.env.note_dependency(mod.__file__)
        return self._parse(module_rst(module))

    def _parse(self, lines: list[str]) -> list[nodes.Node]:
        node = nodes.container()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=self.get_source_info()[0]),
                                 node)
        return node.children


class DmmLayer(DmmModule):
    """``.. dmm-layer:: kernels``: a table of the modules of one layer (overview page)."""

    def run(self) -> list[nodes.Node]:
        """Parse the table of the layer's modules into this document."""
        layer = self.arguments[0].strip()
        layers = public_modules()
        if layer not in layers:
            raise self.error(f"unknown layer {layer!r}; choose one of {sorted(layers)}")
        lines = [".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {m}" for m in layers[layer]]
        return self._parse([*lines, ""])


# --------------------------------------------------------------------------- links
_NAME = re.compile(r"^(dmmlib(?:\.\w+)+)(?:\(\))?$")


def lookup(env: Any, name: str) -> tuple[str, str] | None:
    """``(docname, anchor)`` of the reference entry of ``name``, or None if it has none."""
    py = env.get_domain("py")
    entry = py.objects.get(name)
    if entry is not None:
        return entry.docname, entry.node_id
    mod = py.modules.get(name)
    if mod is not None:
        return mod.docname, mod.node_id
    return None


def _skip(node: nodes.Node) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, (nodes.reference, addnodes.pending_xref, nodes.title,
                               addnodes.desc_signature, nodes.literal_block,
                               nodes.FixedTextElement)):
            return True
        if isinstance(parent, nodes.container) and "cell" in parent.get("classes", []):
            return True  # a code cell and its outputs (myst-nb)
        parent = parent.parent
    return False


class LinkDmmlibLiterals(SphinxPostTransform):
    """Inline code naming a documented dmmlib object links to its reference entry."""

    default_priority = 5  # before unresolved cross-references are resolved (10)

    def run(self, **kwargs: Any) -> None:
        """Replace each literal naming a documented object by a link to it."""
        for node in list(self.document.findall(nodes.literal)):
            match = _NAME.match(node.astext().strip())
            if not match or _skip(node):
                continue
            target = lookup(self.env, match.group(1))
            if target is None:
                continue
            docname, anchor = target
            new = node.deepcopy()
            new["classes"] = [*new.get("classes", []), "xref", "py", "dmm-ref"]
            ref = make_refnode(self.app.builder, self.env.docname, docname, anchor, new,
                               match.group(1))
            node.replace_self(ref)


def setup(app: Any) -> dict[str, Any]:
    """Register the directives, the post-transform and the autodoc hooks."""
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.autosummary")
    app.add_directive("dmm-module", DmmModule)
    app.add_directive("dmm-layer", DmmLayer)
    app.add_post_transform(LinkDmmlibLiterals)
    # after numpydoc (priority 500) has turned the numpy sections into reST
    app.connect("autodoc-process-docstring", _on_process_docstring, priority=900)
    app.connect("autodoc-skip-member", _on_skip_member)
    app.connect("env-get-outdated", _on_env_get_outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
