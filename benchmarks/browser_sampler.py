"""How fast chapter 5's in-browser sampler answers, in headless Chromium: loading the model, a slider
move, and fresh continuations.

Why: the HTML book runs the trained model in the reader's browser (ONNX Runtime Web, WebAssembly,
one thread), and it should feel like a live panel: the model ready ≤ 1 s after the page has
loaded, a slider move redrawing the distribution in ≤ 100 ms, and the continuations (three of
200 characters at `book` budget) in ≤ 1.5 s, on a 2-core machine.

How: the built book's chapter 5 page, opened `--loads` times from disk (file://) and as many times
served on 127.0.0.1. *Load* is the time from the page's load event to the model being ready to
run (0 when it was ready first); the time from navigation start is reported beside it. Then
`--moves` slider moves by keyboard, round the four sliders, each awaited until its samples are
shown. The page times itself (lmlab-sampler.js): *draw* runs from the slider's input event to
the redrawn figure painted (Plotly.react, then the next animation frame), *sample* from the start
of generation to the texts shown (the panel first waits 40 ms for a drag to pause; that wait is
not counted). Then `--moves` new seeds (the "sample" button), which sample without a redraw.

    python benchmarks/browser_sampler.py                          # the book in _build/html
    BOOK_HTML=_build/smoke/_build/html python benchmarks/browser_sampler.py --out /tmp/bs.json
"""

import argparse
import functools
import http.server
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = "book/sampling/index.html"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
KEYS = [("k", "ArrowLeft"), ("temperature", "ArrowLeft"), ("top_p", "ArrowLeft"), ("min_p", "ArrowRight")]
WAIT = "([draws, samples]) => { const r = document.querySelector('.lmlab-sampler'); " \
       "return Number(r.dataset.draws || 0) > draws && Number(r.dataset.samples || 0) > samples && !r.dataset.busy; }"
COUNTS = "() => { const r = document.querySelector('.lmlab-sampler'); " \
         "return [Number(r.dataset.draws || 0), Number(r.dataset.samples || 0)]; }"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def offline(context) -> None:
    """Let the page reach nothing but 127.0.0.1, as the browser checks do."""
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("http://127.0.0.1", "file:"))
                  else r.abort("blockedbyclient"))


def opened(browser, url: str):
    """A fresh, offline tab on `url` at a desktop's size, after its load event; and its context."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    offline(context)
    page = context.new_page()
    page.goto(url, wait_until="load", timeout=120_000)
    return context, page


def load_once(browser, url: str) -> dict:
    context, page = opened(browser, url)
    page.wait_for_function("() => window.lmlabSampler && (lmlabSampler.readyAt || lmlabSampler.error)",
                           timeout=120_000)
    t = page.evaluate("""() => ({ready: lmlabSampler.readyAt, error: lmlabSampler.error, phases: lmlabSampler.phases,
        started: lmlabSampler.loadStartedAt, load: performance.getEntriesByType('navigation')[0].loadEventEnd})""")
    context.close()
    if t["error"]:
        raise SystemExit(f"the sampler did not start at {url}: {t['error']}")
    # phases: ms from the script's start to each step of loading (lmlab-sampler.js)
    return {"after_load_ms": max(0.0, t["ready"] - t["load"]), "from_navigation_ms": t["ready"],
            "page_load_ms": t["load"], "script_start_ms": t["started"], "phases_ms": t["phases"]}


def moves(browser, url: str, count: int) -> dict:
    """`count` slider moves, then `count` new seeds; the page's own timings of each."""
    context, page = opened(browser, url)
    page.wait_for_function("() => Number((document.querySelector('.lmlab-sampler').dataset.samples) || 0) >= 1",
                           timeout=120_000)
    panel = ".lmlab-sampler"
    for i in range(count):
        name, key = KEYS[i % len(KEYS)]
        slider = page.locator(f'{panel} [name="{name}"]')
        slider.scroll_into_view_if_needed()
        slider.focus()
        before = page.evaluate(COUNTS)
        page.keyboard.press(key)
        page.wait_for_function(WAIT, arg=before, timeout=60_000)
    moved = page.evaluate("() => lmlabSampler.panels[0].timings")
    for _ in range(count):
        before = page.evaluate(COUNTS)
        page.locator(f'{panel} [name="sample"]').click()
        page.wait_for_function(WAIT, arg=[before[0] - 1, before[1]], timeout=60_000)
    seeds = page.evaluate("() => lmlabSampler.panels[0].timings")
    shape = page.evaluate("() => [lmlabSampler.model.shownSamples, lmlabSampler.model.sampleChars]")
    context.close()
    first = len(moved["sample"]) - count  # the samples drawn before the first move
    return {"draw_ms": moved["draw"][-count:], "sample_ms": moved["sample"][first:],
            "seed_sample_ms": seeds["sample"][len(moved["sample"]):], "samples": shape[0], "chars": shape[1]}


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms | {max(values):.0f} ms"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "chromium": version,
            "load_average_1min": os.getloadavg()[0], "python": platform.python_version()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=5, help="page loads per origin")
    parser.add_argument("--moves", type=int, default=12, help="slider moves, and as many new seeds (≥ 10)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "browser_sampler-chromium.json"))
    args = parser.parse_args()
    root = Path(os.environ.get("BOOK_HTML", "_build/html"))
    root = root if root.is_absolute() else REPO / root
    if not (root / PAGE).is_file() or not (root / "_static" / "sampler" / "check.json").is_file():
        print(f"no built book with the exported sampler at {root}: run make book first (or set BOOK_HTML); skipped")
        return
    if not Path(CHROMIUM).is_file():
        print(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set CHROMIUM; skipped")
        return
    env = machine()
    if env["load_average_1min"] > 0.5:
        print(f"warning: load average {env['load_average_1min']:.2f} at the start: other processes skew the times",
              file=sys.stderr)
    check = json.loads((root / "_static" / "sampler" / "check.json").read_text(encoding="utf-8"))
    from playwright.sync_api import sync_playwright

    server, base = serve(root)
    results = {"date": date.today().isoformat(), "machine": env, "book": str(root), "model_bytes": check["bytes"],
               "parameters": check["parameters"], "loads": {}, "moves": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for origin, url in {"file": (root / PAGE).as_uri(), "http": base + PAGE}.items():
            results["loads"][origin] = [load_once(browser, url) for _ in range(args.loads)]
            results["moves"][origin] = moves(browser, url, args.moves)
        browser.close()
    server.shutdown()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1), encoding="utf-8")

    print(f"{env['chromium']}, {env['cpu']} ({env['cores']} cores); model {check['parameters']:,} parameters, "
          f"{check['bytes']:,} bytes\n")
    print("| origin | load after the page (median, worst) | from navigation start (median) | slider → distribution "
          "drawn (median, worst) | samples (median, worst) | new seed → samples (median, worst) |")
    print("|---|---:|---:|---:|---:|---:|")
    for origin in results["loads"]:
        loads, m = results["loads"][origin], results["moves"][origin]
        after = [x["after_load_ms"] for x in loads]
        nav = statistics.median(x["from_navigation_ms"] for x in loads)
        print(f"| {origin} | {statistics.median(after):.0f} ms, {max(after):.0f} ms | {nav:.0f} ms | "
              f"{summary(m['draw_ms']).replace(' |', ',')} | {summary(m['sample_ms']).replace(' |', ',')} | "
              f"{summary(m['seed_sample_ms']).replace(' |', ',')} |")
    for origin, loads in results["loads"].items():
        phases = {k: statistics.median(x["phases_ms"][k] for x in loads) for k in loads[0]["phases_ms"]}
        print(f"{origin}: page load event at {statistics.median(x['page_load_ms'] for x in loads):.0f} ms, "
              f"the sampler's script started at {statistics.median(x['script_start_ms'] for x in loads):.0f} ms; "
              "then (ms from that start) " + ", ".join(f"{k} {v:.0f}" for k, v in phases.items()))
    m = next(iter(results["moves"].values()))
    print(f"\n{args.moves} moves and {args.moves} seeds per origin; samples: {m['samples']} × {m['chars']} characters; "
          f"{args.loads} loads per origin. Raw times: {args.out}")


if __name__ == "__main__":
    main()
