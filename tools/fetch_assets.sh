#!/usr/bin/env bash
# Fetch the JavaScript the rendered book needs at run time -- MathJax 3,
# RequireJS and the ipywidgets HTML manager -- from the npm registry, and copy
# anywidget's front end (an AMD module) from its installed Python wheel, so the
# built site serves them itself and works with no network (no CDN requests).
#
# Result (git-ignored, rebuilt on demand):
#   build-assets/npm/*.tgz              the packed npm packages (download cache)
#   build-assets/static/                added to Sphinx's html_static_path, so it
#                                       is copied to _build/html/_static/:
#     mathjax/tex-chtml.js (+ fonts, TeX extensions, menu, a11y, speech rules)
#     require/require.js
#     html-manager/embed-amd.js (+ the Font Awesome fonts it references)
#     anywidget/index.js                 from the anywidget wheel (nbextension/index.js):
#                                        the widget model/view the book's widgets use; it
#                                        runs each widget's own ES module in the page
#     LICENSES/<package>/...             licence texts of all four packages
#
# The versions are pinned; change them here (and nowhere else).
# ipywidgets 8 embeds with @jupyter-widgets/html-manager ^1.0 (see
# ipywidgets/_version.py: __html_manager_version__).
set -euo pipefail

MATHJAX=mathjax@3.2.2
REQUIREJS=requirejs@2.3.8
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.15

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build-assets"
STAMP="$OUT/.versions"

# anywidget comes from the Python environment that builds the book (the same
# version the kernels use), not from npm: its wheel ships the AMD bundle.
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
ANYWIDGET_DIR="$("$PY" -c 'import anywidget, pathlib; print(pathlib.Path(anywidget.__file__).parent)')" || {
    echo "fetch_assets: anywidget is not installed in $PY (pip install -r requirements.txt)" >&2; exit 1; }
ANYWIDGET="anywidget@$("$PY" -c 'import importlib.metadata as m; print(m.version("anywidget"))')"
WANT="$MATHJAX $REQUIREJS $HTML_MANAGER $ANYWIDGET"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    exit 0  # already fetched
fi

if [[ -f "$STAMP" && "$(cut -d' ' -f1-3 "$STAMP")" == "$MATHJAX $REQUIREJS $HTML_MANAGER" \
      && -f "$OUT/static/require/require.js" ]]; then
    copy_anywidget_only=1   # only the anywidget version changed: no need to unpack npm packages again
else
    copy_anywidget_only=0
fi

copy_anywidget() {
    local S="$OUT/static"
    rm -rf "$S/anywidget" "$S/LICENSES/anywidget"
    mkdir -p "$S/anywidget" "$S/LICENSES/anywidget"
    cp "$ANYWIDGET_DIR/nbextension/index.js" "$S/anywidget/index.js"
    local dist
    dist="$("$PY" -c 'import importlib.metadata as m; print(m.distribution("anywidget")._path)')"
    for f in "$dist"/licenses/LICEN[CS]E* "$dist"/LICEN[CS]E*; do
        if [[ -f "$f" ]]; then cp "$f" "$S/LICENSES/anywidget/"; fi
    done
    echo "$ANYWIDGET (copied from $ANYWIDGET_DIR)" > "$S/LICENSES/anywidget/SOURCE"
}

if [[ "$copy_anywidget_only" == 1 ]]; then
    copy_anywidget
    echo "$WANT" > "$STAMP"
    echo "fetch_assets: updated anywidget ($ANYWIDGET)"
    exit 0
fi

command -v npm >/dev/null || { echo "fetch_assets: npm is required (apt-get install npm)" >&2; exit 1; }

rm -rf "$OUT/static" "$OUT/unpacked"
mkdir -p "$OUT/npm" "$OUT/static" "$OUT/unpacked"

# npm pack downloads the package tarball (checking the registry's integrity
# hash) without installing anything or running package scripts.
tarballs=()
for spec in $MATHJAX $REQUIREJS $HTML_MANAGER; do
    name="${spec%@*}"; version="${spec##*@}"
    file="$(echo "${name#@}" | tr '/' '-')-${version}.tgz"
    if [[ ! -s "$OUT/npm/$file" ]]; then
        echo "fetch_assets: npm pack $spec"
        (cd "$OUT/npm" && npm pack --silent "$spec" >/dev/null)
    fi
    [[ -s "$OUT/npm/$file" ]] || { echo "fetch_assets: $file missing after npm pack" >&2; exit 1; }
    tarballs+=("$file")
done

unpack() {  # unpack <tarball> <dir>
    mkdir -p "$OUT/unpacked/$2"
    tar -xzf "$OUT/npm/$1" -C "$OUT/unpacked/$2" --strip-components=1
}
unpack "${tarballs[0]}" mathjax
unpack "${tarballs[1]}" requirejs
unpack "${tarballs[2]}" html-manager

S="$OUT/static"

# MathJax: the combined TeX -> CommonHTML component plus everything it loads
# lazily, relative to its own URL: fonts, TeX extensions (autoload), the menu,
# accessibility extensions and speech-rule maps. Other combined components
# and the SVG output are not needed.
mkdir -p "$S/mathjax/output"
cp "$OUT/unpacked/mathjax/es5/tex-chtml.js" "$S/mathjax/"
cp -r "$OUT/unpacked/mathjax/es5/output/chtml" "$OUT/unpacked/mathjax/es5/output/chtml.js" "$S/mathjax/output/"
cp -r "$OUT/unpacked/mathjax/es5/"{input,ui,a11y,sre} "$S/mathjax/"

# RequireJS (the AMD loader the widget manager needs).
mkdir -p "$S/require"
cp "$OUT/unpacked/requirejs/require.js" "$S/require/"

# ipywidgets HTML manager: the AMD embed bundle (it contains the base,
# controls and output widgets) and the font files it loads relative to itself.
mkdir -p "$S/html-manager"
cp "$OUT/unpacked/html-manager/dist/embed-amd.js" "$S/html-manager/"
cp "$OUT/unpacked/html-manager/dist/"*.{woff,woff2,ttf,eot,svg} "$S/html-manager/"

# Licences travel with the files.
for pkg in mathjax requirejs html-manager; do
    mkdir -p "$S/LICENSES/$pkg"
    cp "$OUT/unpacked/$pkg/package.json" "$S/LICENSES/$pkg/"
    for f in "$OUT/unpacked/$pkg/"LICEN[CS]E* "$OUT/unpacked/$pkg/dist/"*LICENSE*; do
        if [[ -f "$f" ]]; then cp "$f" "$S/LICENSES/$pkg/"; fi
    done
done

# anywidget: the AMD module from the installed wheel (see copy_anywidget).
copy_anywidget

rm -rf "$OUT/unpacked"
echo "$WANT" > "$STAMP"
echo "fetch_assets: done ($(du -sh "$S" | cut -f1) in build-assets/static)"
