"""Open every page of the built book in headless Chromium, the way a reader would.

Run by ``make test-browser`` (part of ``make test``) after the book is built;
skipped in a plain ``pytest tests`` run unless ``DMM_BROWSER_TEST=1``. Fails
when a page shows a Python error, an image that did not load, an interactive
figure that stayed empty, a browser console error (a missing script, or one a
CDN would have to serve), or a broken internal link. Keeps a full-page
screenshot of each page in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("DMM_HTML", ROOT / "_build" / "html"))
SHOTS = ROOT / "test-artifacts" / "screenshots"

if os.environ.get("DMM_BROWSER_TEST") != "1":
    pytest.skip("browser test: run `make test-browser` (sets DMM_BROWSER_TEST=1)",
                allow_module_level=True)

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


def _pages() -> list[Path]:
    if not (HTML / "index.html").is_file():
        raise AssertionError(f"{HTML} has no built book: run `make test-build` first")
    skip = {"genindex.html", "search.html"}
    return sorted(p for p in HTML.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts
                  and p.stat().st_size > 2000)  # the root index.html is a tiny redirect


PAGES = _pages() if (HTML / "index.html").is_file() else []


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if not chromium or not driver_bin:
        raise AssertionError("chromium and chromedriver are needed: "
                             "sudo apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="dmm-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--window-size=1280,900",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(driver_bin))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a and a["id"]:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _wait_for_render(driver, timeout: float = 15.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        ready = driver.execute_script("""
            if (document.readyState !== 'complete') return false;
            const plots = document.querySelectorAll('.plotly-graph-div');
            for (const p of plots) { if (!p.querySelector('svg.main-svg')) return false; }
            const mj = window.MathJax;
            if (mj && mj.startup && mj.startup.promise && !window.__dmmMath) {
              mj.startup.promise.then(() => { window.__dmmMath = true; });
              return false;
            }
            return true;""")
        if ready:
            return
        time.sleep(0.25)


def _page_id(page: Path) -> str:
    return str(page.relative_to(HTML)).replace("/", "_").removesuffix(".html")


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_renders_cleanly(page, server, browser):
    url = f"{server}/{page.relative_to(HTML).as_posix()}"
    browser.get_log("browser")  # drop messages from the previous page
    browser.get(url)
    _wait_for_render(browser)
    # scroll through the page so lazy images load, then check everything
    height = browser.execute_script("return document.body.scrollHeight")
    for y in range(0, int(height) + 900, 900):
        browser.execute_script(f"window.scrollTo(0, {y});")
    time.sleep(0.3)
    problems: list[str] = []

    errors = browser.find_elements(By.CSS_SELECTOR, ".output.traceback, .output.error, "
                                   ".output.stderr, .cell_output .traceback")
    problems += [f"error output: {e.text[:200]!r}" for e in errors]
    body = browser.find_element(By.TAG_NAME, "body").text
    if "Traceback (most recent call last)" in body:
        problems.append("a Python traceback is shown")

    broken_imgs = browser.execute_script("""
        return Array.from(document.images)
          .filter(i => !(i.complete && i.naturalWidth > 0))
          .map(i => i.getAttribute('src'));""")
    problems += [f"image did not load: {src}" for src in broken_imgs]

    empty = browser.execute_script("""
        const out = [];
        document.querySelectorAll('.plotly-graph-div').forEach((p, i) => {
          if (!p.querySelector('svg.main-svg') || p.getBoundingClientRect().height < 50)
            out.push('plotly figure #' + i); });
        document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')
          .forEach((s, i) => {
            const host = s.parentElement;
            const sel = '.widget-box, .jupyter-widgets, .widget-slider, '
              + '.widget-output, .lm-Widget';
            if (!host || host.querySelectorAll(sel).length === 0)
              out.push('widget #' + i); });
        return out;""")
    problems += [f"empty interactive figure: {e}" for e in empty]

    # a table wider than the text column runs under the margin or off the page
    wide = browser.execute_script("""
        const art = document.querySelector('article.bd-article');
        if (!art) return [];
        const right = art.getBoundingClientRect().right;
        return Array.from(art.querySelectorAll('table')).map((t, i) => {
            const r = t.getBoundingClientRect();
            const head = (t.querySelector('th, td') || {}).textContent || '';
            return [i, r.width, r.right - right, head.trim().slice(0, 40)];
          }).filter(([i, w, over]) => w > 0 && over > 2);""")
    problems += [f"table #{i} ({head!r}...) is {over:.0f} px wider than the text column"
                 for i, _, over, head in wide]

    math = browser.execute_script("""
        return [document.querySelectorAll('.math').length,
                document.querySelectorAll('mjx-container').length];""")
    if math[0] and not math[1]:
        problems.append(f"{math[0]} formulas shown as raw TeX (MathJax did not run)")

    for entry in browser.get_log("browser"):
        # the theme reports an unset colour mode on a fresh profile; harmless
        if "Got invalid theme mode" in entry.get("message", ""):
            continue
        if entry.get("level") == "SEVERE":
            problems.append(f"console: {entry.get('message', '')[:300]}")

    links = _parse(page)
    for href in links.hrefs:
        parsed = urllib.parse.urlparse(href)
        if parsed.scheme or href.startswith(("mailto:", "javascript:", "//")):
            continue
        target = ((page.parent / urllib.parse.unquote(parsed.path)).resolve()
                  if parsed.path else page)
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link: {href}")
        elif (parsed.fragment and target.suffix == ".html"
              and parsed.fragment not in _parse(target).ids):
            problems.append(f"broken anchor: {href}")

    SHOTS.mkdir(parents=True, exist_ok=True)
    full = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(full), 16000))
    browser.execute_script("window.scrollTo(0, 0);")
    time.sleep(0.3)
    browser.save_screenshot(str(SHOTS / f"{_page_id(page)}.png"))
    browser.set_window_size(1280, 900)

    assert not problems, f"{page.relative_to(HTML)}:\n  " + "\n  ".join(problems)


def test_no_page_needs_a_cdn_for_interactive_figures():
    """Widget and plotly JavaScript must come from the build, not the network."""
    offenders = []
    for page in PAGES:
        html = page.read_text(encoding="utf-8")
        for src in re.findall(r'<script[^>]+src="([^"]+)"', html):
            if src.startswith(("http://", "https://", "//")) and re.search(
                    r"plotly|jupyter-widgets|html-manager|require", src):
                offenders.append(f"{page.name}: {src}")
    assert not offenders, "\n".join(offenders)


#: the most a page may weigh: its HTML and the images it shows (scripts and styles that
#: every page shares are cached by the browser and not counted)
MAX_PAGE_BYTES = 3_000_000


def page_weight(page: Path) -> int:
    """Bytes of ``page`` and of the distinct local images it shows."""
    html = page.read_text(encoding="utf-8")
    total = len(html.encode("utf-8"))
    for src in set(re.findall(r'<img[^>]+src="([^"]+)"', html)):
        if src.startswith(("http://", "https://", "//", "data:")):
            continue
        image = (page.parent / urllib.parse.unquote(src.split("#")[0])).resolve()
        if image.is_file():
            total += image.stat().st_size
    return total


def test_page_weight_counts_the_html_and_its_images(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(b"x" * 1000)
    page = tmp_path / "p.html"
    page.write_text('<img src="_images/a.png"><img src="_images/a.png"><img src="data:,">')
    assert page_weight(page) == page.stat().st_size + 1000


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_no_page_weighs_more_than_3_mb(page):
    weight = page_weight(page)
    assert weight <= MAX_PAGE_BYTES, (
        f"{page.relative_to(HTML)} weighs {weight / 1e6:.1f} MB (HTML and images), more than "
        f"{MAX_PAGE_BYTES / 1e6:.0f} MB: store animation frames as palette PNGs, serve "
        "scripts once")


class _ArticleImages(HTMLParser):
    """The <img> tags inside the page's main content (``<article class="bd-article">``).

    The theme's own images (logo, launch-button icons in the header) lie
    outside the article and are not collected.
    """

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # how many <article class="bd-article"> we are inside
        self.stack: list[bool] = []  # for each open <article>: is it the main one?
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "article":
            main = "bd-article" in (a.get("class") or "").split()
            self.stack.append(main)
            self.depth += main
        elif tag == "img" and self.depth:
            self.images.append(a)

    def handle_endtag(self, tag):
        if tag == "article" and self.stack:
            self.depth -= self.stack.pop()


_IMAGE_FILE = re.compile(r"\.(png|jpe?g|gif|svg|webp)$", re.IGNORECASE)


def _missing_alt(img: dict[str, str | None]) -> bool:
    """No alt text a reader could use: absent, blank, or docutils' default (the file's path)."""
    alt = (img.get("alt") or "").strip()
    src = (img.get("src") or "").strip()
    return not alt or alt == src or bool(_IMAGE_FILE.search(alt))


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_figure_has_alt_text(page):
    """Every image in a page's main content has real alt text.

    A code cell's figure gets it from the cell's ``mystnb: image: alt:``
    option (see any chapter); without it Sphinx writes the image's file path
    as the alt text, which this test rejects too.
    """
    parser = _ArticleImages()
    parser.feed(page.read_text(encoding="utf-8"))
    # (the player of dmmlib.book.interactive.animation_html gets its alt= from the chapter)
    missing = [img.get("src") or "?" for img in parser.images if _missing_alt(img)]
    assert not missing, (f"{page.relative_to(HTML)}: {len(missing)} image(s) without alt text "
                         "(add `mystnb: image: alt:` to the cell):\n  "
                         + "\n  ".join(s[:120] for s in missing))
