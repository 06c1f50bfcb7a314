"""Local Sphinx extension for the book's HTML assets (loaded from _config.yml).

1. Fails the build early, with a clear message, when the offline JavaScript
   (MathJax, RequireJS, ipywidgets HTML manager, anywidget) has not been fetched into
   build-assets/static -- `make book` runs tools/fetch_assets.sh first.

2. Removes duplicated inline <script> blocks. Sphinx 7.4 registers an inline
   script (``app.add_js_file(None, body=...)``) added after the builder is
   initialised twice, once with filename ``None`` and once with ``''``
   (sphinx/builders/html/__init__.py, prepare_writing). For sphinx-thebe that
   means ``const THEBE_JS_URL`` is declared twice, which is a JavaScript
   SyntaxError on every page. We drop the second copy.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

REQUIRED = [
    "mathjax/tex-chtml.js",
    "require/require.js",
    "html-manager/embed-amd.js",
    "anywidget/index.js",   # copied from the anywidget wheel: the front end of the book's widgets
]


def check_offline_assets(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    static = [Path(app.confdir, p) for p in app.config.html_static_path]
    missing = [rel for rel in REQUIRED if not any((s / rel).is_file() for s in static)]
    if missing:
        raise ExtensionError(
            f"offline assets missing from html_static_path {app.config.html_static_path}: {missing}. "
            "Run tools/fetch_assets.sh (or `make book`, which does)."
        )


def dedupe_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    unique = []
    for js in scripts:
        key = (
            getattr(js, "filename", js) or "",
            getattr(js, "priority", None),
            tuple(sorted(getattr(js, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(js)
    # Mutate in place: the template reads this very list.
    scripts[:] = unique


def setup(app: Sphinx):
    app.connect("builder-inited", check_offline_assets)
    # Run after the other extensions have added their page-specific scripts.
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
