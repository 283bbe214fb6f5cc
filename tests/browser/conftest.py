"""Fixtures of the browser checks: headless Chromium driven by Playwright, the built book served
over http on 127.0.0.1, and pages that may reach nothing but 127.0.0.1, so that every check
also proves the pages work offline.

Chromium is Debian's (/usr/bin/chromium) or the one named by $CHROMIUM; Playwright's own
browser download is never used. Without Chromium the checks skip with a notice, or fail
under CI=true.
"""

import contextlib
import functools
import http.server
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "_build" / "screenshots"
DEFAULT_BOOK_HTML = "_build/smoke/_build/html"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
NOT_FOUND = "Chromium not found: browser checks skipped; apt-get install chromium"


def find_chromium() -> str | None:
    """$CHROMIUM if set, else Debian's /usr/bin/chromium, else a chromium on the PATH."""
    if os.environ.get("CHROMIUM"):
        candidates = [os.environ["CHROMIUM"]]
    else:
        candidates = ["/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def book_html_dir() -> Path:
    """The built book's HTML folder: $BOOK_HTML (relative to the repository root), else the smoke build."""
    path = Path(os.environ.get("BOOK_HTML", DEFAULT_BOOK_HTML))
    return path if path.is_absolute() else REPO / path


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname in LOCAL_HOSTS


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        where = f"$CHROMIUM={os.environ['CHROMIUM']!r} is not an executable" if os.environ.get("CHROMIUM") \
            else "no /usr/bin/chromium and no chromium on the PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found ({where}): the browser checks cannot run under CI=true; "
                        "apt-get install chromium, or set CHROMIUM=/path/to/chromium", pytrace=False)
        pytest.skip(f"{NOT_FOUND} ({where})")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A page whose requests to anything but 127.0.0.1 are aborted, with what went wrong on it."""

    page: object
    aborted: list[str] = field(default_factory=list)
    console_errors: list[tuple[str, str]] = field(default_factory=list)  # (text, url of the source)
    page_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """One line per problem; a blocked external request counts once, its "Failed to load resource"
        console error folded into it."""
        out = [f"request to an external URL, blocked (pages must work offline): {url}"
               for url in dict.fromkeys(self.aborted)]
        out += [f"JS console error: {text}" + (f" ({url})" if url and url not in text else "")
                for text, url in self.console_errors
                if not (text.startswith("Failed to load resource") and url in self.aborted)]
        out += [f"uncaught page error: {text}" for text in self.page_errors]
        return out

    def clear(self) -> None:
        self.aborted.clear()
        self.console_errors.clear()
        self.page_errors.clear()


@contextlib.contextmanager
def open_tab(browser, width: int = 1280, height: int = 900, **context_options):
    """A fresh browser context and page of that viewport, offline but for 127.0.0.1, recording
    its errors; `context_options` go to Playwright's `new_context` (e.g. color_scheme)."""
    context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block",
                                  **context_options)
    page = context.new_page()
    result = Tab(page)

    def route(r):
        url = r.request.url
        if is_local(url):
            r.continue_()
        else:
            result.aborted.append(url)
            r.abort("blockedbyclient")

    context.route("**/*", route)
    page.on("console", lambda msg: msg.type == "error" and result.console_errors.append(
        (msg.text, (msg.location or {}).get("url") or "")))
    page.on("pageerror", lambda err: result.page_errors.append(f"{err.name}: {err.message}" if err.name
                                                                else str(err)))
    try:
        yield result
    finally:
        context.close()


@pytest.fixture
def tab(browser):
    """A fresh browser context and page, offline but for 127.0.0.1, recording its errors."""
    with open_tab(browser) as result:
        yield result


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature http.server calls
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a browser that hangs up mid-response
        pass


@pytest.fixture(scope="session")
def book_root() -> Path:
    """The built book's HTML folder; fails, saying how to build it, when there is none."""
    root = book_html_dir()
    if not (root / "index.html").is_file():
        pytest.fail(f"no built book at {root} (BOOK_HTML={os.environ.get('BOOK_HTML', '<unset>')}): "
                    "build the book first: make smoke-book (or make book for _build/html)", pytrace=False)
    return root


@contextlib.contextmanager
def serve(root: Path):
    """A folder served over http on 127.0.0.1 at a free port, as long as the block runs; gives the
    base URL (ending in /)."""
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=root))
    thread = threading.Thread(target=server.serve_forever, name=f"serve {root.name}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def book_server(book_root) -> str:
    """The built book served over http on 127.0.0.1 at a free port; yields the base URL (ending in /)."""
    with serve(book_root) as url:
        yield url


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def is_redirect(html_file: Path) -> bool:
    """Whether a page only sends the browser on (Jupyter Book's root index.html, a meta refresh to the
    intro): its target is checked as a page of its own."""
    head = html_file.read_text(encoding="utf-8", errors="replace")[:500]
    return re.match(r'\s*<meta http-equiv="refresh"', head, re.IGNORECASE) is not None and "<body" not in head


def book_pages(root: Path) -> list[str]:
    """Every HTML page of the built book, as paths relative to its root, but the index of terms,
    the search page, redirects and Sphinx's own folders."""
    skip_dirs = {"_static", "_sources", "_images"}
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if p.name not in ("genindex.html", "search.html") and not is_redirect(p)
                  and not skip_dirs & set(p.relative_to(root).parts[:-1]))


def has_plotly_slider(html_file: Path) -> bool:
    """Whether a page's HTML holds a plotly figure with a slider (plotly writes `"sliders":[` in its layout)."""
    return re.search(r'"sliders":\s*\[\s*\{', html_file.read_text(encoding="utf-8", errors="replace")) is not None


def notebook_pages(root: Path) -> list[str]:
    """Pages whose source is a notebook: those with an .ipynb under _sources/ at the same path."""
    return sorted(p.relative_to(root / "_sources").with_suffix(".html").as_posix()
                  for p in (root / "_sources").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def pytest_generate_tests(metafunc):
    """`book_page` runs a test once per page of the built book, `slider_page` once per page with a
    plotly slider and `notebook_page` once per page made from a notebook; with no book (or no such
    page) once, as "no-book" ("no-slider-page", "no-notebook-page"), where `book_root` fails and
    says how to build the book (or the test says that no page is of that kind)."""
    root = book_html_dir()
    pages = book_pages(root) if (root / "index.html").is_file() else []
    if "book_page" in metafunc.fixturenames:
        metafunc.parametrize("book_page", pages or [None], ids=pages or ["no-book"])
    if "slider_page" in metafunc.fixturenames:
        sliders = [p for p in pages if has_plotly_slider(root / p)]
        metafunc.parametrize("slider_page", sliders or [None], ids=sliders or ["no-slider-page"])
    if "notebook_page" in metafunc.fixturenames:
        notebooks = notebook_pages(root) if pages else []
        metafunc.parametrize("notebook_page", notebooks or [None], ids=notebooks or ["no-notebook-page"])


@pytest.fixture(scope="session")
def slider_pages(book_root) -> list[str]:
    """The pages that `slider_page` runs over."""
    return [p for p in book_pages(book_root) if has_plotly_slider(book_root / p)]
