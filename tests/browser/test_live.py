"""The live panels in a real JupyterLab: run a chapter's notebook at the `smoke` budget, move the
panel's sliders with the keyboard, and watch the figure change the way the slider says:

- chapter 1 (lab): the width slider adds that width's loss curve;
- chapter 2 (μP): the width slider adds that width to the coordinate check (a new point on every
  layer's line), and the LR slider reruns the check at the new LR (the title names it).
- chapter 3 (scaling): the compute slider redraws the fit's prediction for the new budget, and
  the "train it" button trains the suggested model and draws its real loss beside the prediction.
- chapter 4 (dropout): the rate and data-size sliders retrain the model with its curves drawn
  live; the finished run stays on the figure in grey.
- chapter 5 (sampling): k = 1 makes every sample the greedy one, whatever the temperature;
  k = 2 leaves two characters to draw from; a prompt with a character the model never saw
  shows the error beside the controls and keeps the last figure.
- chapter 6 (randomness): a new seed changes the top-k column and never the greedy one; k = 1
  makes the top-k column the greedy one; the model buttons switch the model.

The panel must show no broken widget, and the page log no JS error and reach nothing beyond 127.0.0.1.

JupyterLab runs from this virtualenv on 127.0.0.1 with every Jupyter folder in a temporary
directory, on a copy of the notebook under _build/live/ (git-ignored), so that nothing in
the repository or in the user's Jupyter settings changes. The browser may reach 127.0.0.1 only.
Screenshots: _build/screenshots/live-<chapter>-before.png and live-<chapter>.png (after the moves).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
LIVE_DIR = REPO / "_build" / "live"
START_TIMEOUT_S = 120
RUN_ALL_TIMEOUT_S = 480
SLIDER_TIMEOUT_S = 120

# JupyterLab's own settings for this run: no windowing (every cell stays in the DOM, so their
# prompts can be read), no news and no update check (no network, no pop-up)
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}

CELLS = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-CodeCell')].map(c => ({
    prompt: (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
    text: [...c.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent).join('\\n')}))"""

# the live panel's figure: the plotly graph inside the ipywidgets Output under the sliders; its x values
# come from _fullData, where plotly.js has decoded the typed arrays plotly.py sends (gd.data keeps them
# base64-encoded), and only from the traces on show (a figure with a slider holds every step's traces)
PANEL_FIGURE = """(cell) => {
    const gd = cell.querySelector('.widget-output .js-plotly-plot');
    if (!gd) return null;
    const shown = (gd._fullData || []).filter(t => t.visible === true);
    return {traces: gd.querySelectorAll('.scatterlayer g.trace, .barlayer g.trace').length,
            names: (gd.data || []).map(t => t.name),
            samples: shown.filter(t => t.type === 'table').flatMap(t => Array.from(t.cells.values[0] || [])),
            tables: shown.filter(t => t.type === 'table').map(t => Array.from(t.cells.values[0] || [])),
            kept: shown.filter(t => t.type === 'bar' && t.name === 'sampled from')
                       .flatMap(t => Array.from(t.y || [])).filter(y => y > 0).length,
            xs: [...new Set(shown.flatMap(t => Array.from(t.x || [])))].sort((a, b) => a - b),
            title: (gd.querySelector('.gtitle') || {}).textContent || ''};
}"""

# what ipywidgets shows in place of a widget it cannot draw
BROKEN_WIDGETS = """(cell) => [...cell.querySelectorAll('.jp-OutputArea-output')]
    .filter(o => !o.querySelector('.jp-OutputArea-output'))
    .map(o => o.textContent.trim())
    .filter(t => /^(Error displaying widget|Loading widget)/.test(t))"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, path: str, method: str = "GET"):
    request = urllib.request.Request(base + path, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def log_tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


def processes_mentioning(marker: str) -> list[int]:
    """Ids of the processes whose command line holds `marker` (our own temporary folder):
    the kernels this JupyterLab started, should any outlive it."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def run_cache(folder: Path) -> Path:
    """The kernel's run cache: a copy, in hard links, of the cache that `LMLAB_LIVE_CACHE` names
    (`make browser` names the one the smoke book has just filled with these notebooks' runs), so
    that running a notebook reads its runs instead of training them again. What a slider trains
    lands in the copy only: the cache writes a new file and renames it into place, never into an
    existing one, so the original's files are never changed. Without it (or where the two folders
    are on different file systems, which cannot share links), an empty cache: the runs train."""
    source = Path(os.environ.get("LMLAB_LIVE_CACHE") or folder)
    if source != folder and source.is_dir():
        try:
            shutil.copytree(source, folder, copy_function=os.link, ignore=shutil.ignore_patterns("*.tmp"))
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
    return folder


@pytest.fixture
def jupyterlab(request, tmp_path):
    """A JupyterLab on 127.0.0.1 rooted at the repository, with no token, a temporary config,
    runtime, data and settings folder, LMLAB_BUDGET=smoke and a temporary LMLAB_CACHE (`run_cache`).
    `request.param` is the notebook (relative to the repository root) to run.
    Yields (base URL, path of a fresh copy of it relative to the repository root, log file).
    Teardown shuts down its kernels and the server, kills what is left, and removes the copy."""
    notebook = REPO / request.param
    jupyter = tmp_path / "jupyter"
    dirs = {name: jupyter / name for name in ("config", "runtime", "data", "settings", "workspaces", "ipython")}
    for d in dirs.values():
        d.mkdir(parents=True)
    for rel, value in LAB_SETTINGS.items():
        (dirs["settings"] / rel).parent.mkdir(parents=True, exist_ok=True)
        (dirs["settings"] / rel).write_text(json.dumps(value))
    (dirs["config"] / "labconfig").mkdir()
    (dirs["config"] / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))

    LIVE_DIR.mkdir(parents=True, exist_ok=True)
    copy_dir = Path(tempfile.mkdtemp(prefix="run-", dir=LIVE_DIR))
    shutil.copy2(notebook, copy_dir / notebook.name)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "LMLAB_"))}
    env.update(LMLAB_BUDGET="smoke", LMLAB_CACHE=str(run_cache(tmp_path / "lmlab_cache")),
               JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               JUPYTER_DATA_DIR=str(dirs["data"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), IPYTHONDIR=str(dirs["ipython"]),
               PYTHONUNBUFFERED="1")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={REPO}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"] + (["--allow-root"] if os.geteuid() == 0 else [])
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode} before serving:\n{log_tail(log)}")
            try:
                api(base, "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer /api/status within {START_TIMEOUT_S} s:\n"
                                f"{log_tail(log)}")
                time.sleep(0.5)
        yield base, (copy_dir / notebook.name).relative_to(REPO).as_posix(), log
    finally:
        _stop_jupyterlab(proc, base, marker=str(jupyter))
        shutil.rmtree(copy_dir, ignore_errors=True)


def _stop_jupyterlab(proc: subprocess.Popen, base: str, marker: str) -> None:
    if proc.poll() is None:
        try:
            for kernel in api(base, "/api/kernels") or []:
                api(base, f"/api/kernels/{kernel['id']}", method="DELETE")
        except (urllib.error.URLError, OSError, ValueError):
            pass
        proc.send_signal(signal.SIGTERM)  # jupyter_server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for pid in processes_mentioning(marker):  # a kernel that outlived its server
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_kernel_idle(page, base: str, timeout_s: float) -> None:
    """Until the server has a kernel and every kernel is idle. Waits in the page, never in
    time.sleep: Playwright's sync API runs the route handlers (every request of the page goes
    through one) only while Python is inside a Playwright call."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            kernels = api(base, "/api/kernels") or []
        except urllib.error.HTTPError as e:  # a kernel still starting can make the listing fail for a moment
            if e.code < 500:
                raise
            kernels, last = [], f"HTTP {e.code} from /api/kernels"
        if kernels and all(k.get("execution_state") == "idle" for k in kernels):
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"no idle kernel after {timeout_s} s: {api(base, '/api/kernels')} (last error: {last})")


class LivePanel:
    """A notebook open in JupyterLab, run to the end, and the one cell that holds its live panel."""

    def __init__(self, tab, jupyterlab, screenshots, name: str):
        self.tab, self.page, self.screenshots, self.name = tab, tab.page, screenshots, name
        self.base, self.notebook, self.log = jupyterlab
        (screenshots / f"live-{name}-failure.png").unlink(missing_ok=True)

    def fail(self, message: str):
        self.page.screenshot(path=str(self.screenshots / f"live-{self.name}-failure.png"))
        pytest.fail(f"{message}\n\nbrowser problems: {self.tab.problems() or 'none'}\n\n"
                    f"JupyterLab log (tail):\n{log_tail(self.log, 30)}", pytrace=False)

    def run_all(self) -> None:
        """Open the notebook, Run → Run All Cells from the menu bar, wait for every prompt to show a number."""
        page, base = self.page, self.base
        page.goto(f"{base}/lab/tree/{self.notebook}", wait_until="domcontentloaded", timeout=120_000)
        page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell").first.wait_for(timeout=120_000)
        try:
            wait_kernel_idle(page, base, START_TIMEOUT_S)
        except AssertionError as e:
            self.fail(f"{e}; dialogs on screen: {page.locator('.jp-Dialog').all_inner_texts()}")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
        while True:
            cells = page.evaluate(CELLS)
            errors = [c["text"] for c in cells if "Traceback (most recent call last)" in c["text"]]
            if errors:
                self.fail("a cell raised while running all cells:\n" + errors[0][-3000:])
            prompts = [c["prompt"].strip() for c in cells]
            done = cells and all(re.fullmatch(r"\[\d+\]:?", p) for p in prompts)
            if done and all(k.get("execution_state") == "idle" for k in api(base, "/api/kernels")):
                return
            if time.monotonic() > deadline:
                self.fail(f"Run All Cells did not finish within {RUN_ALL_TIMEOUT_S} s; prompts: {prompts}")
            page.wait_for_timeout(1000)

    def find(self, nth: int = 0, of: int = 1) -> None:
        """Live panel number `nth` (in the notebook's order) of the `of` code cells whose output holds
        widget sliders, once its figure is drawn. `of` is checked, so a panel added to a notebook
        makes its test say which panel it drives."""
        page = self.page
        cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell").filter(
            has=page.locator(".noUi-handle"))
        try:
            cells.first.wait_for(state="visible", timeout=60_000)
        except Exception:  # noqa: BLE001 - report what the notebook shows instead
            self.fail("no cell of the notebook shows a widget slider (.noUi-handle)")
        if cells.count() != of:
            self.fail(f"expected {of} cell(s) with a live panel, found {cells.count()}")
        self.cell = cells.nth(nth)
        self.handle = self.cell.element_handle()
        try:
            page.wait_for_function(f"(cell) => {{ const f = ({PANEL_FIGURE})(cell); return f && f.traces >= 1; }}",
                                   arg=self.handle, timeout=SLIDER_TIMEOUT_S * 1000)
        except Exception:  # noqa: BLE001
            self.fail(f"the live panel shows no plotly figure under its sliders; the cell's output reads: "
                      f"{self.cell.locator('.jp-OutputArea').inner_text()[:2000]!r}")
        try:  # the panel's widgets done rendering
            self.cell.get_by_text("Loading widget...").first.wait_for(state="hidden", timeout=10_000)
        except Exception:  # noqa: BLE001 - reported by broken() as a broken widget
            pass

    def figure(self) -> dict:
        return self.page.evaluate(PANEL_FIGURE, self.handle)

    def readout(self, slider: int) -> str:
        """What slider number `slider` shows, with the typographic minus ipywidgets prints made ASCII."""
        return self.cell.locator(".widget-readout").nth(slider).inner_text().strip().replace("\u2212", "-")

    def broken(self) -> list[str]:
        return self.page.evaluate(BROKEN_WIDGETS, self.handle)

    def screenshot(self, suffix: str = "") -> None:
        self.cell.scroll_into_view_if_needed()
        self.page.screenshot(path=str(self.screenshots / f"live-{self.name}{suffix}.png"))

    def move(self, slider: int, key: str, changed) -> dict:
        """Press `key` on the handle of slider number `slider`, like a person with a keyboard, and wait
        until `changed(figure before, figure now)` (a JS function) holds; returns the new figure."""
        readout = self.readout(slider)

        def press():
            self.cell.locator(".noUi-handle").nth(slider).focus()
            self.page.keyboard.press(key)

        after = self.act(press, changed, lambda: f"{key} on slider {slider} (readout {readout!r} -> "
                                                 f"{self.readout(slider)!r})")
        assert self.readout(slider) != readout, f"slider {slider}'s readout did not move: {readout!r}"
        return after

    def act(self, action, changed, what) -> dict:
        """Do `action()` (a click, typing, a key press) and wait until `changed(figure before, figure
        now)` (a JS function) holds and the kernel is idle; returns the new figure."""
        before = self.figure()
        action()
        try:
            self.page.wait_for_function(
                f"([cell, before]) => {{ const f = ({PANEL_FIGURE})(cell); return f && ({changed})(before, f); }}",
                arg=[self.handle, before], timeout=SLIDER_TIMEOUT_S * 1000)
        except Exception:  # noqa: BLE001
            self.fail(f"{what()} did not change the figure as expected within {SLIDER_TIMEOUT_S} s: it was "
                      f"{before}, is {self.figure()}")
        wait_kernel_idle(self.page, self.base, SLIDER_TIMEOUT_S)
        self.page.wait_for_timeout(500)
        return self.figure()

    def open(self, nth: int = 0, of: int = 1, run: bool = True) -> tuple[dict, list[str]]:
        """Run the notebook (unless another panel of it has), find live panel `nth` of `of` and
        screenshot it: its figure, and any broken widget."""
        if run:
            self.run_all()
        self.find(nth, of)
        self.screenshot("-before")
        return self.figure(), [f"before the moves: {t}" for t in self.broken()]

    def finish(self, broken: list[str]) -> None:
        """Screenshot the panel after the moves and check it for what a reader would also see."""
        self.screenshot()
        self.check_clean(broken + [f"after the moves: {t}" for t in self.broken()])

    def check_clean(self, broken: list[str]) -> None:
        """The panel works; now what a reader would also see: a broken widget in it, an error in
        the console, a request that left 127.0.0.1."""
        problems = [f"the live panel shows a broken widget {b}" for b in broken] + self.tab.problems()
        if problems:
            pytest.fail("the live panel updates, but:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.mark.parametrize("jupyterlab", ["book/lab/lab.ipynb"], indirect=True)
def test_live_width_slider_adds_a_curve(tab, jupyterlab, screenshots):
    panel = LivePanel(tab, jupyterlab, screenshots, "lab")
    before, broken = panel.open()
    assert len(before["names"]) == 1, f"before any move the panel should show one width's curve: {before}"

    after = panel.move(0, "ArrowRight", "(before, now) => now.traces > before.traces")
    assert len(after["names"]) == len(before["names"]) + 1, (before, after)
    assert f"width {panel.readout(0)}" in " ".join(after["names"]), (
        f"no curve for the new width {panel.readout(0)!r} in {after['names']}")
    panel.finish(broken)


@pytest.mark.parametrize("jupyterlab", ["book/mup/mup.ipynb"], indirect=True)
def test_live_coordinate_check_takes_a_width_and_an_lr(tab, jupyterlab, screenshots):
    panel = LivePanel(tab, jupyterlab, screenshots, "mup")
    before, broken = panel.open(0, of=2)  # the chapter's second panel, the ladder's, is driven below

    # slider 0 adds a width: it starts at the widest, so step left to one the check has not run
    after = panel.move(0, "ArrowLeft", "(before, now) => now.xs.length > before.xs.length")
    width = int(panel.readout(0))
    assert width not in before["xs"] and width in after["xs"], (width, before["xs"], after["xs"])
    assert after["names"] == before["names"], "adding a width must not change the layers drawn"

    # slider 1 is log2 LR: one step up reruns every width at the new LR
    log2_lr = int(panel.readout(1))
    assert f"2^{log2_lr}" in after["title"], after["title"]
    moved = panel.move(1, "ArrowRight", "(before, now) => now.title !== before.title")
    assert f"2^{log2_lr + 1}" in moved["title"], moved["title"]
    assert moved["xs"] == after["xs"], "changing the LR must keep every width added so far"
    panel.finish(broken)

    # the ladder's panel, in the same kernel: the rung menu reruns the check for the rung it names
    ladder = LivePanel(tab, jupyterlab, screenshots, "mup-ladder")
    before, broken = ladder.open(1, of=2, run=False)
    assert before["title"].startswith("SP"), before["title"]
    menu = ladder.cell.locator("select")
    labels = menu.locator("option").all_inner_texts()
    climbed = ladder.act(lambda: menu.select_option(label=labels[-1]),
                         "(before, now) => now.title !== before.title", lambda: f"choosing {labels[-1]!r}")
    assert climbed["title"].startswith(labels[-1]), (labels[-1], climbed["title"])
    log2_lr = int(ladder.readout(0))
    moved = ladder.move(0, "ArrowLeft", "(before, now) => now.title !== before.title")
    assert f"2^{log2_lr - 1}" in moved["title"] and moved["title"].startswith(labels[-1]), moved["title"]
    ladder.finish(broken)


@pytest.mark.parametrize("jupyterlab", ["book/scaling/scaling.ipynb"], indirect=True)
def test_live_compute_budget_predicts_then_trains(tab, jupyterlab, screenshots):
    panel = LivePanel(tab, jupyterlab, screenshots, "scaling")
    before, broken = panel.open()
    assert "trained just now" not in before["names"], before

    # the budget slider redraws the prediction for the new C (its title names it)
    moved = panel.move(0, "ArrowRight", "(before, now) => now.title !== before.title")
    assert panel.readout(0) in moved["title"], (panel.readout(0), moved["title"])

    # the button trains the suggested model and puts its real loss beside the prediction
    panel.cell.get_by_role("button", name="train it").click()
    try:
        panel.page.wait_for_function(
            f"(cell) => {{ const f = ({PANEL_FIGURE})(cell); return f && f.names.includes('trained just now'); }}",
            arg=panel.handle, timeout=SLIDER_TIMEOUT_S * 1000)
    except Exception:  # noqa: BLE001
        panel.fail(f"'train it' drew no trained point within {SLIDER_TIMEOUT_S} s: the figure is {panel.figure()}")
    wait_kernel_idle(panel.page, panel.base, SLIDER_TIMEOUT_S)
    assert re.search(r"depth \d+, \d+ steps: loss \d\.\d{3}", panel.cell.inner_text()), panel.cell.inner_text()[-500:]
    panel.finish(broken)


@pytest.mark.parametrize("jupyterlab", ["book/dropout/dropout.ipynb"], indirect=True)
def test_live_dropout_panel_retrains_at_a_new_rate_and_data_size(tab, jupyterlab, screenshots):
    panel = LivePanel(tab, jupyterlab, screenshots, "dropout")
    before, broken = panel.open()
    p, chars = panel.readout(0), panel.readout(1)
    assert before["title"] == f"p = {p}, {chars} characters", before

    # a new rate retrains: the title names it, and the finished run stays behind as a grey curve
    moved = panel.move(0, "ArrowRight", "(before, now) => now.title !== before.title")
    assert moved["title"] == f"p = {panel.readout(0)}, {chars} characters", moved
    assert f"p = {p}, {chars} characters val" in moved["names"], moved["names"]

    # a new data size retrains at that size
    sized = panel.move(1, "ArrowRight", "(before, now) => now.title !== before.title")
    assert sized["title"] == f"p = {panel.readout(0)}, {panel.readout(1)} characters", sized
    assert len(sized["names"]) == len(moved["names"]) + 1, (moved["names"], sized["names"])
    panel.finish(broken)


@pytest.mark.parametrize("jupyterlab", ["book/sampling/sampling.ipynb"], indirect=True)
def test_live_sampling_panel_filters_and_samples(tab, jupyterlab, screenshots):
    panel = LivePanel(tab, jupyterlab, screenshots, "sampling")
    before, broken = panel.open()
    assert before["title"].startswith("k = all, T = 1.0,"), before["title"]
    assert len(set(before["samples"])) > 1, f"pure sampling drew identical samples: {before['samples']}"

    # k = 1 (Home): one character left to draw from, so every sample is the greedy one
    greedy = panel.move(0, "Home", "(before, now) => now.title !== before.title")
    assert panel.readout(0) == "1" and greedy["title"].startswith("k = 1, "), greedy["title"]
    assert greedy["kept"] == 1 and len(set(greedy["samples"])) == 1, greedy

    # temperature up a step: top-k ignores it, so k = 1 still writes the same greedy text
    warmer = panel.move(1, "ArrowRight", "(before, now) => now.title !== before.title")
    assert f"T = {float(panel.readout(1))}," in warmer["title"], (panel.readout(1), warmer["title"])
    assert warmer["samples"] == greedy["samples"], (greedy["samples"], warmer["samples"])

    # k = 2: two characters to draw from
    two = panel.move(0, "ArrowRight", "(before, now) => now.title !== before.title")
    assert two["title"].startswith("k = 2, ") and two["kept"] == 2, two

    # a character outside the vocabulary: the error shows beside the controls, the figure stays
    prompt = panel.cell.locator("textarea")
    prompt.fill("HAMLET: \u263a")
    prompt.press("Tab")
    try:
        panel.cell.get_by_text("not in the tokenizer").wait_for(timeout=SLIDER_TIMEOUT_S * 1000)
    except Exception:  # noqa: BLE001
        panel.fail(f"a prompt outside the vocabulary showed no error: {panel.cell.inner_text()[-800:]!r}")
    assert panel.figure()["title"] == two["title"], "the last good figure must stay"
    panel.finish(broken)


@pytest.mark.parametrize("jupyterlab", ["book/randomness/randomness.ipynb"], indirect=True)
def test_live_randomness_panel_moves_only_the_sampled_column(tab, jupyterlab, screenshots):
    panel = LivePanel(tab, jupyterlab, screenshots, "randomness")
    before, broken = panel.open()
    greedy, sampled = before["tables"]
    assert before["title"] == "p = 0" and len(set(greedy)) == 1, before  # greedy: one text, every time

    # a new seed: the top-k column is drawn again, the greedy column stays exactly as it was
    seed = panel.cell.locator("input[type=number]")
    reseeded = panel.act(lambda: (seed.fill("1"), seed.press("Tab")),
                         "(before, now) => now.tables[1].join() !== before.tables[1].join()", lambda: "seed 1")
    assert reseeded["tables"][0] == greedy and reseeded["tables"][1] != sampled, reseeded

    # k = 1 (Home): top-k keeps one character, so its column is the greedy text
    one = panel.move(0, "Home", "(before, now) => now.tables[1].join() !== before.tables[1].join()")
    assert panel.readout(0) == "1" and one["tables"][1] == greedy, one

    # the other model: the title names it
    other = panel.cell.locator(".widget-toggle-button").nth(1)
    name = other.inner_text().strip()
    switched = panel.act(other.click, "(before, now) => now.title !== before.title", lambda: f"the {name} button")
    assert switched["title"] == name and len(set(switched["tables"][0])) == 1, switched
    panel.finish(broken)
