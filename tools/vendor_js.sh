#!/usr/bin/env bash
# Fetch the JavaScript the built book needs from the npm registry into
# _static/vendor/, so pages render without a CDN (offline readers, the browser
# test). Idempotent: does nothing when the pinned versions are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
MATHJAX_VERSION=3.2.2
dest=_vendor/vendor
stamp="$dest/.mathjax-$MATHJAX_VERSION"
[ -f "$stamp" ] && exit 0
command -v npm >/dev/null || { echo "npm is needed to fetch MathJax (apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --silent "mathjax@$MATHJAX_VERSION"
src="$work/node_modules/mathjax/es5"
rm -rf "$dest/mathjax" && mkdir -p "$dest/mathjax/output/chtml" "$dest/mathjax/input/tex"
cp "$src/tex-mml-chtml.js" "$dest/mathjax/"
cp -r "$src/output/chtml/fonts" "$dest/mathjax/output/chtml/"
cp -r "$src/input/tex/extensions" "$dest/mathjax/input/tex/"
cp -r "$src/a11y" "$src/ui" "$dest/mathjax/"
cp "$work/node_modules/mathjax/LICENSE" "$dest/mathjax/"
touch "$stamp"
echo "MathJax $MATHJAX_VERSION vendored into $dest/mathjax"
