"""Chapter 5's sampler in the HTML book, in headless Chromium, offline: the trained model runs in
the page under ONNX Runtime Web, opened from disk (file://) and served on 127.0.0.1.

- it loads with no console error and no request beyond 127.0.0.1, and its greedy text is the one
  torch wrote when the build exported the model (so the page runs that very model);
- typing a prompt and moving each slider (with the keyboard, as a reader would) changes the
  distribution and the text; the same seed gives the same text after a reload, and "sample"
  moves to the next seed;
- the JavaScript filters agree with `lmlab.sampling.filter_logits` on a case table (the unit
  tests' cases and random logits with ties): the same kept sets, probabilities within 1e-6;
- a character outside the vocabulary shows CharTokenizer's own message and keeps the last figure,
  through later knob moves and a change of theme, and no text of a prompt is read as markup;
- a tiny positive temperature (1e-320, below which logits / T overflows) tends to greedy decoding;
  a knob widened through the page past its range says so on the message line and frees the panel;
- it reads in dark mode and at a 400-px-wide viewport; and a build without ONNX Runtime Web, or with
  a file missing or damaged, shows a one-line notice in plain words beside the static twin;
- it teaches the tail (issue 32): "step one character" appends exactly one character, the first
  sample's next one at unchanged knobs and the tallest bar at T = 0, and the figure moves on to the
  new context; the way back gives the prompt's figure and samples again; the kept set's size and
  mass are what `filter_logits` keeps of the logits shown, and as many bars are coloured; every
  drawn character carries the model's probability of it (checked against a run of the model) in its
  attributes and title, and its tint is its legend band's, the bands' lightness monotone in light and
  dark; and nothing in the panel runs out of it at 390 px, light or dark, with a wide prompt.

Run with `make browser` (smoke build) or `make browser-book` (the full build). Screenshots land in
_build/screenshots/sampler-*.png.
"""

import contextlib
import json
import os
import shutil

import pytest
import torch
from conftest import serve
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from lmlab.corpus import CharTokenizer
from lmlab.sampling import filter_logits

pytestmark = pytest.mark.browser

PAGE = "book/sampling/index.html"
READY_MS = 60_000
ORIGINS = ["file", "http"]
PANEL = ".lmlab-sampler"

STATE = """() => {
    const root = document.querySelector('.lmlab-sampler'), gd = root.querySelector('.lmlab-sampler-figure');
    return {state: root.dataset.state, draws: Number(root.dataset.draws || 0),
            samples: Number(root.dataset.samples || 0),
            error: root.querySelector('.lmlab-sampler-error').textContent,
            status: root.querySelector('.lmlab-sampler-status').textContent,
            bars: (gd.data || []).map(t => Array.from(t.y)),
            texts: [...root.querySelectorAll('.lmlab-sampler-samples pre')].map(p => {
                const c = p.querySelector('.lmlab-sampler-continuation'); return c ? c.textContent : null; }),
            stepped: [...root.querySelectorAll('.lmlab-sampler-samples pre')].map(p => {
                const c = p.querySelector('.lmlab-sampler-stepped'); return c ? c.textContent : null; }),
            kept: (k => k && {text: k.textContent, count: Number(k.dataset.kept), mass: Number(k.dataset.mass)})(
                root.querySelector('.lmlab-sampler-kept')),
            title: (gd.querySelector('.g-xtitle') || {}).textContent, busy: root.dataset.busy || null,
            italics: gd.querySelectorAll('[style*="italic"], tspan[font-style]').length};
}"""


@pytest.fixture(scope="module")
def check(book_root) -> dict:
    """What the export wrote about the model: its check against torch, with torch's greedy text."""
    path = book_root / "_static" / "sampler" / "check.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the build did not export the model (make smoke-book exports it)",
                    pytrace=False)
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def vocab(book_root) -> list[str]:
    return json.loads((book_root / "_static" / "sampler" / "vocab.json").read_text(encoding="utf-8"))


def url_of(origin: str, book_root, book_server) -> str:
    return (book_root / PAGE).as_uri() if origin == "file" else book_server + PAGE


def state(page) -> dict:
    return page.evaluate(STATE)


def open_sampler(tab, url: str) -> dict:
    """Open the chapter page and wait until the panel has drawn its first samples."""
    tab.page.goto(url, wait_until="load", timeout=READY_MS)
    tab.page.wait_for_function(f"""() => {{ const r = document.querySelector('{PANEL}');
        return r && (r.dataset.state === 'off' || Number(r.dataset.samples || 0) >= 1); }}""", timeout=READY_MS)
    s = state(tab.page)
    assert s["state"] == "ready", f"{url}: the sampler did not start: {s['status']!r} {tab.problems()}"
    return s


def settle(page, before: dict) -> dict:
    """The panel's state once a move has redrawn the figure and drawn new samples."""
    page.wait_for_function(f"""() => {{ const r = document.querySelector('{PANEL}');
        return Number(r.dataset.draws || 0) > {before['draws']} && Number(r.dataset.samples || 0) > {before['samples']}
               && !r.dataset.busy; }}""", timeout=30_000)
    return state(page)


def no_problems(tab, where: str) -> None:
    problems = tab.problems()
    assert not problems, f"{where}: {len(problems)} problem(s):\n  " + "\n  ".join(problems)


def shoot(page, path) -> None:
    """A screenshot of the whole panel: the viewport made tall enough to hold it, the panel centred
    (below the book's sticky header), then the viewport as it was. Neither an element's screenshot
    nor a clip of the full page gives it on this long page: both come out shifted."""
    size = page.viewport_size
    height = page.evaluate(f"() => document.querySelector('{PANEL}').getBoundingClientRect().height")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 300)})
    box = page.evaluate(f"""() => {{ const r = document.querySelector('{PANEL}');
        r.scrollIntoView({{block: 'center'}});
        const b = r.getBoundingClientRect();
        return {{x: Math.max(0, b.left - 8), y: Math.max(0, b.top - 8),
                 width: b.width + 16, height: b.height + 16}}; }}""")
    page.wait_for_timeout(200)  # a sticky header that hides on scroll settles
    page.screenshot(path=str(path), clip=box)
    page.set_viewport_size(size)



@pytest.mark.parametrize("origin", ORIGINS)
def test_loads_offline_and_runs_the_exported_model(tab, origin, book_root, book_server, check, screenshots):
    s = open_sampler(tab, url_of(origin, book_root, book_server))
    page = tab.page
    shown, chars = page.evaluate("() => [lmlabSampler.model.shownSamples, lmlabSampler.model.sampleChars]")
    assert len(s["texts"]) == shown and all(len(t) == chars for t in s["texts"]), s["texts"]
    assert len(s["bars"]) == 2 and len(s["bars"][0]) > 1 and sum(s["bars"][1]) == pytest.approx(sum(s["bars"][1]))
    greedy = page.evaluate("""([prompt, chars]) => { const m = lmlabSampler.model;
        return m.generate(m.encode(prompt), {temperature: 0}, 0, chars, 1, () => true).then(t => t[0]); }""",
                           [check["greedy"]["prompt"], check["greedy_chars"]])
    assert greedy == check["greedy"]["text"], "the page's greedy text is not torch's: it does not run the same model"
    shoot(page, screenshots / f"sampler-{origin}.png")
    no_problems(tab, f"{origin}: {PAGE}")


# each knob, moved from the defaults by keys a reader would press
MOVES = {"k": ["Home"], "temperature": ["ArrowLeft"] * 10, "top_p": ["Home"], "min_p": ["End"]}
UNDO = {"k": ["End"], "temperature": ["ArrowRight"] * 10, "top_p": ["End"], "min_p": ["Home"]}


@pytest.mark.parametrize("origin", ORIGINS)
def test_prompt_and_every_slider_change_the_distribution_and_the_text(tab, origin, book_root, book_server):
    page = tab.page
    default = open_sampler(tab, url_of(origin, book_root, book_server))
    for name, keys in MOVES.items():
        slider = page.locator(f'{PANEL} [name="{name}"]')
        slider.scroll_into_view_if_needed()
        slider.focus()
        before = state(page)
        for key in keys:
            page.keyboard.press(key)
        moved = settle(page, before)
        assert moved["bars"][1] != default["bars"][1], f"{origin}: moving {name} left the distribution as it was"
        assert moved["texts"] != default["texts"], f"{origin}: moving {name} left the samples as they were"
        for key in UNDO[name]:
            page.keyboard.press(key)
        back = settle(page, moved)
        assert back["bars"] == default["bars"] and back["texts"] == default["texts"], (
            f"{origin}: moving {name} back did not give back the first figure and samples")
    prompt = page.locator(f'{PANEL} [name="prompt"]')
    prompt.scroll_into_view_if_needed()
    before = state(page)
    prompt.fill("ROMEO:\nBut soft, what light")  # one input event, as a paste
    typed = settle(page, before)
    assert typed["bars"] != default["bars"] and typed["texts"] != default["texts"], (
        f"{origin}: a new prompt left the distribution or the samples as they were")
    seen = page.evaluate("() => { const p = lmlabSampler.panels[0]; return p.model.decode(p.state.ids); }")
    assert "ROMEO:\nBut soft, what light".endswith(seen), f"{origin}: the panel shows the prompt {seen!r}"
    no_problems(tab, f"{origin}: moving the knobs")


@pytest.mark.parametrize("origin", ORIGINS)
def test_the_same_seed_gives_the_same_text_after_a_reload(tab, origin, book_root, book_server):
    page, url = tab.page, url_of(origin, book_root, book_server)

    def with_seed(seed: int) -> list[str]:
        seed_box = page.locator(f'{PANEL} [name="seed"]')
        before = state(page)
        seed_box.fill(str(seed))
        after = settle(page, {**before, "draws": -1})  # a seed redraws the samples only
        return after["texts"]

    first = open_sampler(tab, url)
    seven = with_seed(7)
    assert seven != first["texts"]
    open_sampler(tab, url)  # a reload
    assert with_seed(7) == seven, f"{origin}: seed 7 gave other text after a reload"
    before = state(page)
    page.locator(f'{PANEL} [name="sample"]').click()
    after = settle(page, {**before, "draws": -1})
    assert page.locator(f'{PANEL} [name="seed"]').input_value() == "8"
    assert after["texts"] != seven
    assert with_seed(8) == after["texts"]
    # "sample" at the last seed the generator takes wraps to the first, never past the range
    last = with_seed(2**32 - 1)
    before = state(page)
    page.locator(f'{PANEL} [name="sample"]').click()
    wrapped = settle(page, {**before, "draws": -1})
    assert page.locator(f'{PANEL} [name="seed"]').input_value() == "0"
    assert wrapped["texts"] != last and not wrapped["error"], wrapped
    no_problems(tab, f"{origin}: seeds")


@pytest.mark.parametrize("origin", ORIGINS)
def test_a_bad_character_shows_the_message_and_keeps_the_last_figure(tab, origin, book_root, book_server, vocab):
    page = tab.page
    before = open_sampler(tab, url_of(origin, book_root, book_server))
    bad = next(c for c in "€§~é" if c not in vocab)
    with pytest.raises(ValueError) as err:
        CharTokenizer("".join(vocab)).encode("To be" + bad)
    prompt = page.locator(f'{PANEL} [name="prompt"]')
    prompt.scroll_into_view_if_needed()
    prompt.press("Control+End")  # the end of the text, where the model reads
    prompt.press_sequentially(bad)
    page.wait_for_function(f"() => document.querySelector('{PANEL}').dataset.error", timeout=10_000)
    page.wait_for_timeout(300)
    shown = state(page)
    assert shown["error"] == str(err.value), "the message is not CharTokenizer.encode's"
    assert shown["bars"] == before["bars"] and shown["texts"] == before["texts"], "the last figure was not kept"
    assert page.locator(f"{PANEL} .lmlab-sampler-error").is_visible()
    page.locator(f'{PANEL} [name="k"]').focus()
    page.keyboard.press("Home")  # a slider moved while the prompt is bad changes nothing either
    page.wait_for_timeout(300)
    assert state(page)["bars"] == before["bars"]
    page.locator(f'{PANEL} [name="k"]').press("End")
    prompt.press("Backspace")
    fixed = settle(page, shown)
    assert fixed["error"] == "" and fixed["texts"] == before["texts"], "the prompt fixed did not bring back its samples"
    no_problems(tab, f"{origin}: a bad character")


def press(page, name: str, keys: list[str], **attributes) -> None:
    """Set a control's attributes through the page (as an extension or a curious reader can: a
    slider's min, max or step), then press keys on it, as a reader would."""
    control = page.locator(f'{PANEL} [name="{name}"]')
    control.scroll_into_view_if_needed()
    if attributes:
        control.evaluate("(el, attrs) => Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, v))", attributes)
    control.focus()
    for key in keys:
        page.keyboard.press(key)


def test_a_bad_prompt_then_a_knob_then_the_theme_keep_the_figure_with_its_samples(tab, book_server, screenshots):
    """Issue 28, case 9: the figure must never show another prompt or other knobs than its samples,
    and a prompt's text must never be read as markup by plotly."""
    page, alerts = tab.page, []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    before = open_sampler(tab, book_server + PAGE)
    assert before["title"] and before["italics"] == 0, before["title"]
    prompt = page.locator(f'{PANEL} [name="prompt"]')
    prompt.scroll_into_view_if_needed()
    prompt.fill(prompt.input_value() + "<img src=x onerror=alert(1)><i>it</i>")
    page.wait_for_function(f"() => document.querySelector('{PANEL}').dataset.error", timeout=10_000)
    press(page, "temperature", ["ArrowLeft"] * 4)  # T = 0.8 while the prompt cannot be read
    page.wait_for_timeout(300)
    light = page.evaluate("() => document.querySelector('.lmlab-sampler-figure').layout.font.color")
    page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
    page.wait_for_function("(light) => document.querySelector('.lmlab-sampler-figure').layout.font.color !== light",
                           arg=light, timeout=10_000)
    page.wait_for_timeout(200)
    dark = state(page)
    page.locator(PANEL).screenshot(path=str(screenshots / "sampler-bad-prompt-dark.png"))
    assert dark["title"] == before["title"], f"the figure's title became {dark['title']!r}"
    assert dark["italics"] == 0, "text from the prompt was rendered as markup"
    assert dark["bars"] == before["bars"] and dark["texts"] == before["texts"], (
        "the figure was redrawn at other knobs than its samples")
    assert dark["busy"] is None and "not in the tokenizer's" in dark["error"], dark
    # a prompt the model can read, with what plotly would take for markup: shown as typed, at T = 0.8
    text = "&lt;i&gt;x &amp;"  # within the window the model reads at every budget
    prompt.fill(text)
    fixed = settle(page, dark)
    assert fixed["error"] == "" and fixed["italics"] == 0, fixed
    assert fixed["title"].replace("\xa0", " ") == "next character after …" + repr(text), fixed["title"]
    agree = page.evaluate("""() => { const p = lmlabSampler.panels[0];
        return JSON.stringify(p.shown.options) === JSON.stringify(p.options()) && p.shown.ids === p.state.ids
               && p.options().temperature === 0.8; }""")
    assert agree, "the figure does not show the prompt and the knobs as they stand"
    assert not alerts
    no_problems(tab, "a bad prompt, a knob, the theme")


def test_a_tiny_temperature_tends_to_greedy(tab, book_root):
    """Issue 28, case 7: (logits − max) / T, so a positive T too small for logits / T (1e-320 in
    float64; 1e-39 in torch's float32) puts all the mass on the argmax, as T = 0 does."""
    page = tab.page
    open_sampler(tab, (book_root / PAGE).as_uri())
    before = state(page)
    press(page, "temperature", ["Home"], min="0")
    greedy = settle(page, before)
    for tiny in ("1e-39", "1e-320"):
        press(page, "temperature", ["Home", "ArrowRight"], step=tiny, max="1")
        shown = settle(page, greedy)
        assert page.locator(f'{PANEL} [name="temperature"]').input_value() == tiny
        assert all(y == y for y in shown["bars"][1]), f"T = {tiny}: NaN bars {shown['bars'][1][:4]}"
        assert shown["bars"][1] == greedy["bars"][1], f"T = {tiny}: {shown['bars'][1][:4]} is not greedy's"
        assert shown["texts"] == greedy["texts"], f"T = {tiny}: {shown['texts']} is not the greedy text"
        greedy = shown
    no_problems(tab, "a tiny temperature")


# a slider widened through the page, the key that takes it out of the panel's range, what the
# message must say, and the key that brings it back; and a seed past the generator's 32 bits
WIDENED = [("temperature", {"min": "-1"}, "Home", "T = -1", "0 (greedy) or more", "End"),
           ("top_p", {"min": "0"}, "Home", "top-p = 0", "in (0, 1]", "End"),
           ("min_p", {"max": "2"}, "End", "min-p = 2", "in [0, 1]", "Home"),
           ("k", {"max": "30"}, "End", "top-k's position = 30", "from 0 (k = 1) to 23 (k = all)", "Home"),
           ("seed", None, "4294967296", "seed = 4294967296", "from 0 to 4294967295", "0")]


def test_a_slider_widened_past_its_range_says_so_and_frees_the_panel(tab, book_server, screenshots):
    """Issue 28, case 10: every error in drawing or sampling reaches the panel's message line, the
    panel is not left busy, and it works again once the slider is back in range."""
    page = tab.page
    last = open_sampler(tab, book_server + PAGE)
    for name, widen, key, said, allowed, back in WIDENED:
        if name == "seed":
            page.locator(f'{PANEL} [name="seed"]').fill(key)
        else:
            press(page, name, [key], **widen)
        with contextlib.suppress(PlaywrightTimeout):  # the asserts below say what is wrong
            page.wait_for_function(f"""() => {{ const r = document.querySelector('{PANEL}');
                return r.dataset.error && !r.dataset.busy; }}""", timeout=5_000)
        page.wait_for_timeout(200)
        out = state(page)
        page.locator(PANEL).screenshot(path=str(screenshots / f"sampler-out-of-range-{name}.png"))
        assert said in out["error"] and allowed in out["error"], (
            f"{name}: the message line says {out['error']!r}; {tab.problems()}")
        assert out["busy"] is None and out["bars"] == last["bars"] and out["texts"] == last["texts"], (
            f"{name}: the panel did not keep its last figure and samples, free")
        assert not tab.problems(), f"{name}: {tab.problems()}"
        if name == "seed":
            page.locator(f'{PANEL} [name="seed"]').fill(back)
        else:
            press(page, name, [back])
        last = settle(page, {**out, "draws": -1} if name == "seed" else out)
        assert last["error"] == "", f"{name}: back in range, the message line still says {last['error']!r}"
    no_problems(tab, "sliders widened past their range")


def filter_cases() -> list[dict]:
    """Rows of logits and filter settings, and what `filter_logits` keeps of them (in float64): the
    unit tests' cases, and random logits rounded to one decimal, so that many are tied."""
    probs = [0.5, 0.3, 0.15, 0.05]
    rows = {"probs": torch.tensor(probs, dtype=torch.float64).log(),
            "ties": torch.tensor([3.0, 2.0, 2.0, 2.0, 1.0, 0.0], dtype=torch.float64),
            "pow2": torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625], dtype=torch.float64).log(),
            "shuffled": torch.tensor([0.15, 0.5, 0.05, 0.3], dtype=torch.float64).log(),
            "tied top": torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64),
            "compose": torch.tensor([0.4, 0.3, 0.2, 0.06, 0.04], dtype=torch.float64).log(),
            "flat": torch.zeros(5, dtype=torch.float64)}
    settings = [{"top_k": k} for k in (1, 2, 3, 4, 5, 6, 1000)]
    settings += [{"top_p": p} for p in (0.01, 0.5, 0.5000001, 0.51, 0.7, 0.75, 0.7500001, 0.8, 0.81, 0.875, 0.9,
                                        0.93, 0.96, 1.0)]
    settings += [{"min_p": m} for m in (0.0, 0.05, 0.1, 0.25, 0.4, 0.7, 1.0)]
    settings += [{"temperature": t, **f} for t in (0.2, 0.7, 1.0, 3.0, 20.0)
                 for f in ({}, {"top_k": 2}, {"top_p": 0.7}, {"min_p": 0.1})]
    # a tiny T (logits / T overflows below about 1e-308 in float64, 1e-38 in float32): greedy, ties sharing
    settings += [{"temperature": t, **f} for t in (1e-39, 1e-320) for f in ({}, {"top_k": 2}, {"top_p": 0.5})]
    settings += [{"top_k": 4, "top_p": 0.93}, {"top_k": 3, "min_p": 0.6},
                 {"top_k": 3, "top_p": 0.9, "temperature": 0.7},
                 {"temperature": 1.3, "top_k": 5, "top_p": 0.9, "min_p": 0.05}]
    g = torch.Generator().manual_seed(0)
    for i in range(40):
        rows[f"random {i}"] = (torch.randn(int(torch.randint(2, 90, (1,), generator=g)), generator=g,
                                           dtype=torch.float64) * 2).round(decimals=1)
    cases = []
    for name, logits in rows.items():
        for f in settings:
            out = filter_logits(logits, **f)
            cases.append({"row": name, "logits": logits.tolist(), "filters": f,
                          "kept": torch.isfinite(out).nonzero().flatten().tolist(), "probs": out.softmax(-1).tolist()})
    return cases


def test_the_filters_agree_with_lmlab(tab, book_root):
    cases = filter_cases()
    tab.page.goto((book_root / PAGE).as_uri(), wait_until="load", timeout=READY_MS)
    results = tab.page.evaluate("""(cases) => cases.map(c => {
        const f = c.filters, o = {temperature: f.temperature, topK: f.top_k, topP: f.top_p, minP: f.min_p};
        const z = lmlabFilters.filterLogits(c.logits, o);
        return {kept: [...z.keys()].filter(i => z[i] !== -Infinity), probs: Array.from(lmlabFilters.softmax(z))};
    })""", cases)
    wrong = [f"{c['row']} {c['filters']}: JS keeps {r['kept']}, lmlab {c['kept']}"
             for c, r in zip(cases, results, strict=True) if r["kept"] != c["kept"]]
    assert not wrong, f"{len(wrong)} of {len(cases)} cases keep other tokens:\n  " + "\n  ".join(wrong[:20])
    worst = max(max(abs(a - b) for a, b in zip(r["probs"], c["probs"], strict=True))
                for c, r in zip(cases, results, strict=True))
    assert worst <= 1e-6, f"probabilities differ from lmlab's by up to {worst:.2e}"
    # greedy: temperature 0 puts all mass on the first largest logit, as next_token_probs does
    one_hot = tab.page.evaluate("() => Array.from(lmlabFilters.distribution([1, 3, 3, 0], {temperature: 0}))")
    assert one_hot == torch.nn.functional.one_hot(torch.tensor([1.0, 3, 3, 0]).argmax(), 4).tolist()
    errors = tab.page.evaluate("""() => [{topK: 0}, {topK: 2.5}, {topP: 0}, {topP: 1.5}, {temperature: 0},
        {temperature: -1}, {minP: 2}, {minP: -0.1}].map(o => {
            try { lmlabFilters.filterLogits([0, 0, 0, 0], o); return null; } catch (e) { return e.message; } })""")
    names = ["topK", "topK", "topP", "topP", "temperature", "temperature", "minP", "minP"]
    assert all(e and e.startswith(n + " must be") for e, n in zip(errors, names, strict=True)), errors


def test_dark_mode_and_a_phone_screen(tab, book_server, screenshots):
    page = tab.page
    page.set_viewport_size({"width": 400, "height": 860})
    open_sampler(tab, book_server + PAGE)
    panel = page.locator(PANEL)
    panel.scroll_into_view_if_needed()
    # the panel and everything in it within the screen (other content of the page, such as a wide
    # table, is not the panel's to fix)
    fits = page.evaluate(f"""() => {{ const r = document.querySelector('{PANEL}'), box = r.getBoundingClientRect();
        const wide = [...r.querySelectorAll('*')].filter(el => el.getBoundingClientRect().right > box.right + 1);
        return {{panel: r.scrollWidth <= r.clientWidth, inside: box.left >= 0 && box.right <= window.innerWidth,
                 wider: wide.map(el => el.tagName + '.' + el.getAttribute('class'))}}; }}""")
    assert fits == {"panel": True, "inside": True, "wider": []}, f"sideways scroll at 400 px: {fits}"
    shoot(page, screenshots / "sampler-400px-light.png")
    light = page.evaluate("() => document.querySelector('.lmlab-sampler-figure').layout.font.color")
    page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
    page.wait_for_function("(light) => document.querySelector('.lmlab-sampler-figure').layout.font.color !== light",
                           arg=light, timeout=10_000)
    dark = page.evaluate("""() => { const gd = document.querySelector('.lmlab-sampler-figure');
        return {font: gd.layout.font.color, bars: gd.data.map(t => t.marker.color),
                background: getComputedStyle(document.body).backgroundColor}; }""")
    assert dark["font"] != light and dark["background"] != "rgb(255, 255, 255)", dark
    shoot(page, screenshots / "sampler-400px-dark.png")
    no_problems(tab, "400 px, dark mode")


def book_copy(book_root, root, changed: dict[str, bytes | None]):
    """The chapter's page in a copy of the book at `root` whose files in _static (at its top, in
    sampler/ and in ort/) are those of `changed` (new contents, or None for a file removed) and the
    book's own otherwise, linked, not copied."""
    (root / "book" / "sampling").mkdir(parents=True)
    shutil.copy(book_root / PAGE, root / PAGE)
    static = root / "_static"
    static.mkdir()
    for entry in (book_root / "_static").iterdir():
        if entry.name not in ("sampler", "ort", *changed):
            os.symlink(entry, static / entry.name)
    for folder in ("sampler", "ort"):
        (static / folder).mkdir()
        for entry in (book_root / "_static" / folder).iterdir():
            if f"{folder}/{entry.name}" not in changed:
                os.symlink(entry, static / folder / entry.name)
    for name, contents in changed.items():
        if contents is not None:
            (static / name).write_bytes(contents)
    os.symlink(book_root / "searchindex.js", root / "searchindex.js")
    return root


@pytest.fixture
def book_without_runtime(book_root, tmp_path):
    """The chapter's page in a copy of the book whose meta.js says the build had no ONNX Runtime
    Web, as a build without npm writes it."""
    meta = (book_root / "_static" / "sampler" / "meta.js").read_bytes()
    return book_copy(book_root, tmp_path / "html", {"sampler/meta.js": meta.replace(b'"runtime": true',
                                                                                    b'"runtime": false')})


def test_a_build_without_the_runtime_shows_a_notice_and_the_static_twin(tab, book_without_runtime, screenshots):
    page = tab.page
    page.goto((book_without_runtime / PAGE).as_uri(), wait_until="load", timeout=READY_MS)
    page.wait_for_function(f"() => document.querySelector('{PANEL}').dataset.state === 'off'", timeout=READY_MS)
    status = page.locator(f"{PANEL} .lmlab-sampler-status")
    assert "no ONNX Runtime Web" in status.text_content() and "static figure" in status.text_content()
    assert not page.locator(f"{PANEL} .lmlab-sampler-controls").is_visible()
    page.wait_for_function("""() => [...document.querySelectorAll('.plotly-graph-div')]
        .filter(gd => !gd.closest('.lmlab-sampler')).every(gd => gd.querySelector('svg.main-svg'))""", timeout=20_000)
    twins = page.evaluate("""() => [...document.querySelectorAll('.plotly-graph-div')]
        .filter(gd => gd.layout && gd.layout.sliders && gd.layout.sliders.length).length""")
    assert twins >= 1, "the static twin is not on the page"
    page.locator(PANEL).screenshot(path=str(screenshots / "sampler-no-runtime.png"))
    no_problems(tab, "a build without the runtime")


def damage(original: bytes, how: str) -> bytes | None:
    """A file of the build cut in half (a copy that stopped), emptied, garbled (the same key, with
    text that is not what the build wrote), or missing (None)."""
    if how == "garbled":
        return original[: original.index(b"] = ") + 4] + b'"' + b"AAAA" * 256 + b'";\n'
    return {"cut": original[: len(original) // 2], "emptied": b"", "missing": None}[how]


# (origin, file, damage): each way the loader can fail, over file:// where a script's error
# reaches the page as a bare "Script error.", and one over http where it is a SyntaxError
DAMAGED = [("file", "sampler/meta.js", "cut"), ("http", "sampler/meta.js", "cut"),
           ("file", "sampler/model.js", "emptied"), ("file", "ort/ort-wasm.js", "garbled"),
           ("file", "ort/ort.wasm.min.js", "missing"), ("file", "lmlab-filters.js", "missing")]
TECHNICAL = ["Cannot read", "undefined", "input argument", "Failed to fetch", "ERROR_CODE", "is not defined",
             "SyntaxError", "Script error", "Unexpected"]


@pytest.mark.parametrize(("origin", "file", "how"), DAMAGED, ids=["-".join(d) for d in DAMAGED])
def test_a_damaged_file_says_what_is_wrong_and_what_to_do(tab, origin, file, how, book_root, tmp_path, screenshots):
    """Issue 28, case 11: the notice names the file, says it is missing or damaged and what to do
    (rebuild the book; over file://, for a file that seems missing, serve it), in plain words, and
    nothing is thrown at the console."""
    root = book_copy(book_root, tmp_path / "html", {file: damage((book_root / "_static" / file).read_bytes(), how)})
    with contextlib.ExitStack() as stack:
        url = (root / PAGE).as_uri() if origin == "file" else stack.enter_context(serve(root)) + PAGE
        tab.page.goto(url, wait_until="load", timeout=READY_MS)
        tab.page.wait_for_function(f"() => document.querySelector('{PANEL}').dataset.state !== 'loading'",
                                   timeout=READY_MS)
        status = tab.page.locator(f"{PANEL} .lmlab-sampler-status").text_content()
        started = tab.page.locator(PANEL).get_attribute("data-state")
        assert started == "off", f"a panel that cannot work is {started}: {status!r}; {tab.problems()}"
        problems = [p for p in tab.problems() if not (how == "missing" and "Failed to load resource" in p)]
        name = f"sampler-{origin}-{how}-{file.replace('/', '-')}.png"
        tab.page.locator(PANEL).screenshot(path=str(screenshots / name))
    said = [f"_static/{file}", "missing" if how == "missing" else "damaged", "make book", "static figure"]
    said += ["http.server"] if how == "missing" and origin == "file" else []
    assert all(words in status for words in said), f"the notice does not say {said}: {status!r}"
    assert not [w for w in TECHNICAL if w in status], f"a technical notice: {status!r}"
    assert not problems, f"{origin} {file} {how}: " + "; ".join(problems)


# issue 32: the panel teaches the tail

def click_and_settle(page, name: str) -> dict:
    """Press the panel's button `name` and wait until the figure and the samples are redrawn."""
    before = state(page)
    button = page.locator(f'{PANEL} button[name="{name}"]')
    button.scroll_into_view_if_needed()
    button.click()
    return settle(page, before)


def set_knobs(page, **values) -> dict:
    """Set knobs (slider positions: k is an index of the panel's k values) as one move, and wait
    for the figure and the samples."""
    before = state(page)
    page.evaluate(f"""(values) => {{ const r = document.querySelector('{PANEL}');
        for (const [name, value] of Object.entries(values)) {{
            const el = r.querySelector(`[name="${{name}}"]`);
            el.value = String(value);
            el.dispatchEvent(new Event('input', {{bubbles: true}}));
        }} }}""", values)
    return settle(page, before)


def shown_context(page) -> str:
    return page.evaluate("() => { const p = lmlabSampler.panels[0]; return p.model.decode(p.shown.ids); }")


def bar_labels(page) -> list[str]:
    return page.evaluate("() => Array.from(document.querySelector('.lmlab-sampler-figure').data[0].x)")


LABELS = {" ": "␣", "\n": "↵", "\t": "⇥"}  # how the figure's ticks write what cannot be seen


def test_a_step_appends_one_character_and_the_figure_moves_on(tab, book_root, screenshots):
    page = tab.page
    open_sampler(tab, (book_root / PAGE).as_uri())
    prompt = page.locator(f'{PANEL} [name="prompt"]')
    prompt.scroll_into_view_if_needed()
    before = state(page)
    prompt.fill("ROMEO:")  # short enough that the steps below stay in the window the model reads
    start = settle(page, before)
    assert start["stepped"] == [""] * len(start["texts"]), start["stepped"]
    last = start
    for n in range(1, 6):
        now = click_and_settle(page, "step")
        assert now["error"] == "", now["error"]
        assert now["stepped"] == [start["texts"][0][:n]] * len(now["texts"]), (
            f"step {n}: the samples begin with {now['stepped']}, not with the first sample's first {n} characters "
            f"{start['texts'][0][:n]!r}: a step appends one character drawn at the knobs and seed as they stand")
        assert shown_context(page) == "ROMEO:" + start["texts"][0][:n], "the figure does not show the stepped context"
        assert now["title"] != last["title"] and now["bars"] != last["bars"], f"step {n}: the figure did not move on"
        assert now["title"].replace("\xa0", " ").endswith(repr(("ROMEO:" + now["stepped"][0])[-24:])), now["title"]
        # with the knobs unchanged, the first sample goes on where the steps stopped
        assert now["texts"][0][:-n] == start["texts"][0][n:], f"step {n}: the first sample did not go on"
        last = now
    back = click_and_settle(page, "reset")
    assert back["stepped"] == start["stepped"] and back["texts"] == start["texts"], "the way back lost the samples"
    assert back["bars"] == start["bars"] and back["title"] == start["title"], "the way back lost the prompt's figure"
    # greedy (T = 0): a step appends the tallest bar's character
    greedy = set_knobs(page, temperature=0)
    tallest = bar_labels(page)[max(range(len(greedy["bars"][0])), key=lambda i: greedy["bars"][0][i])]
    stepped = click_and_settle(page, "step")["stepped"][0]
    assert len(stepped) == 1 and LABELS.get(stepped, stepped) == tallest, f"T = 0 stepped {stepped!r}, not {tallest!r}"
    note = page.locator(f"{PANEL} .lmlab-sampler-note")
    assert note.get_attribute("aria-live") == "polite" and "Step 1 drew" in note.text_content(), note.text_content()
    for name, label in [("step", "step one character"), ("reset", "back to the prompt")]:
        assert page.locator(f'{PANEL} button[name="{name}"]').inner_text().strip() == label
    assert page.locator(f"{PANEL} .lmlab-sampler-status").get_attribute("role") == "status"
    shoot(page, screenshots / "sampler-stepped-1280-light.png")
    no_problems(tab, "stepping")


# knob settings (k as the slider's position: 0 is k = 1, 4 is k = 5), each moved from the defaults
KEPT = [{}, {"k": 0}, {"k": 4}, {"top_p": 0.5}, {"min_p": 0.1}, {"temperature": 0.5, "top_p": 0.9},
        {"temperature": 1.5, "k": 9, "min_p": 0.02}, {"temperature": 0}]
DEFAULTS = {"k": 23, "temperature": 1, "top_p": 1, "min_p": 0}


def test_the_kept_set_is_what_the_filters_keep(tab, book_server, vocab):
    """The line under the figure says how many characters the filters keep and how much of the
    model's probability they hold: checked against `filter_logits` on the logits the figure shows."""
    page = tab.page
    open_sampler(tab, book_server + PAGE)
    for setting in KEPT:
        s = set_knobs(page, **{**DEFAULTS, **setting})
        shown = page.evaluate("() => { const v = lmlabSampler.panels[0].shown; "
                              "return {logits: Array.from(v.logits), options: v.options}; }")
        o = shown["options"]
        logits = torch.tensor(shown["logits"], dtype=torch.float64)
        out = filter_logits(logits, o["temperature"], top_k=o["topK"], top_p=o["topP"], min_p=o["minP"])
        kept = torch.isfinite(out)
        count, mass = int(kept.sum()), float(logits.softmax(-1)[kept].sum())
        said = s["kept"]
        assert said["count"] == count and said["mass"] == pytest.approx(mass, abs=1e-9), (setting, said, count, mass)
        assert f"keep {count} of {len(vocab)} characters" in said["text"], (setting, said["text"])
        share = said["text"].split("characters, ")[1].split("\xa0%")[0]
        if count == len(vocab):
            assert share == "100", said["text"]
        else:
            value = float(share.removeprefix("over "))
            assert value < 100 and abs(value - 100 * mass) <= 0.5, (setting, said["text"], mass)
        coloured = sum(y > 0 for y in s["bars"][1])
        assert coloured == min(count, len(s["bars"][1])), f"{setting}: {coloured} coloured bars, {count} kept"
    no_problems(tab, "the kept set")


def luminance(css: str) -> float:
    """WCAG's relative luminance of an rgb()/rgba() colour."""
    r, g, b = (int(float(v)) / 255 for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


TINTS = """() => { const r = document.querySelector('.lmlab-sampler'), bg = el => getComputedStyle(el).backgroundColor;
    return {bands: [...r.querySelectorAll('.lmlab-sampler-legend [data-floor]')].map(b => ({
                bg: bg(b), floor: Number(b.dataset.floor), ceiling: Number(b.dataset.ceiling), label: b.textContent})),
            chars: [...r.querySelectorAll('.lmlab-sampler-samples [data-p]')].map(s => ({
                c: s.textContent, p: Number(s.dataset.p), rank: Number(s.dataset.rank), title: s.title,
                bg: bg(s)}))}; }"""


def shown_percent(title: str) -> float:
    return float(title.split(" under the model")[0].rsplit(", ", 1)[1].removesuffix("\xa0%"))


def check_tints(tints: dict, vocab: list[str], theme: str) -> None:
    bands, chars = tints["bands"], tints["chars"]
    assert len(bands) >= 3 and len({b["bg"] for b in bands}) == len(bands), f"{theme}: legend {bands}"
    lum = [luminance(b["bg"]) for b in bands]
    steps = [b - a for a, b in zip(lum, lum[1:], strict=False)]
    assert all(d > 0 for d in steps) or all(d < 0 for d in steps), f"{theme}: the tints are not ordered: {lum}"
    assert bands[0]["ceiling"] == 1 and bands[-1]["floor"] == 0
    assert all(a["floor"] == b["ceiling"] > b["floor"] for a, b in zip(bands, bands[1:], strict=False)), bands
    which = []
    for ch in chars:
        found = [i for i, b in enumerate(bands) if b["bg"] == ch["bg"]]
        assert len(found) == 1, f"{theme}: {ch} has no tint of the legend"
        b = bands[found[0]]
        assert b["floor"] <= ch["p"] and (ch["p"] < b["ceiling"] or found[0] == 0), f"{theme}: {ch} tinted as {b}"
        x = 100 * ch["p"]
        assert abs(shown_percent(ch["title"]) - x) <= (0.5 if x >= 10 else 0.051 * x), ch
        assert f"(rank {ch['rank']} of {len(vocab)})" in ch["title"], ch
        which.append(found[0])
    by_p = [i for _, i in sorted(zip((-c["p"] for c in chars), which, strict=True))]
    assert by_p == sorted(by_p), f"{theme}: a less likely character has a paler tint"
    assert len(set(which)) >= 2, f"{theme}: all {len(chars)} characters in one band: the test shows nothing"


def test_each_drawn_character_carries_its_probability_and_its_tint_follows_it(tab, book_server, vocab, screenshots):
    page = tab.page
    open_sampler(tab, book_server + PAGE)
    click_and_settle(page, "step")  # the stepped characters carry theirs too
    tints = page.evaluate(TINTS)
    assert len(tints["chars"]) == sum(len(t) + 1 for t in state(page)["texts"]), "a drawn character without numbers"
    check_tints(tints, vocab, "light")
    # the numbers are the model's: run it over the context and the first sample's characters
    runs = page.evaluate("""async () => { const p = lmlabSampler.panels[0], m = p.model, ids = p.shown.ids.slice();
        const first = document.querySelector('.lmlab-sampler-samples pre .lmlab-sampler-continuation');
        const out = [];
        for (const s of [...first.querySelectorAll('[data-p]')].slice(0, 4)) {
            const id = m.ids.get(s.textContent);
            out.push({logits: Array.from((await m.run([ids], null)).last[0]), id, p: Number(s.dataset.p),
                      rank: Number(s.dataset.rank)});
            ids.push(id);
        }
        return out; }""")
    for i, r in enumerate(runs):
        probs = torch.tensor(r["logits"], dtype=torch.float64).softmax(-1)
        assert r["p"] == pytest.approx(float(probs[r["id"]]), abs=1e-5), f"character {i}: {r['p']} is not the model's"
        assert r["rank"] == 1 + int((probs > probs[r["id"]]).sum()), f"character {i}: rank {r['rank']}"
    page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
    page.wait_for_timeout(200)
    dark = page.evaluate(TINTS)
    assert [b["bg"] for b in dark["bands"]] != [b["bg"] for b in tints["bands"]], "the tints ignore the dark theme"
    check_tints(dark, vocab, "dark")
    # a tap shows a character's numbers on the note line (a phone has no hover)
    span = page.locator(f"{PANEL} .lmlab-sampler-samples pre").nth(1).locator("[data-p]").nth(2)
    span.click()
    assert page.locator(f"{PANEL} .lmlab-sampler-note").text_content() == f"Sample 2, {span.get_attribute('title')}."
    no_problems(tab, "tinted characters")


def test_nothing_runs_out_of_the_panel_on_a_phone(tab, book_server, vocab, screenshots):
    """Issue 32: the figure's title ran out of the panel at phone widths (plotly does not wrap it);
    at 390 px, light and dark, with a prompt of wide letters and steps, every box in the panel,
    the figure's texts included, stays within it."""
    page = tab.page
    page.set_viewport_size({"width": 390, "height": 860})
    open_sampler(tab, book_server + PAGE)
    wide = "".join(c for c in "WMWMWMWMWMWMWMWMWMWMWMWM@%" if c in vocab)
    prompt = page.locator(f'{PANEL} [name="prompt"]')
    prompt.scroll_into_view_if_needed()
    before = state(page)
    prompt.fill(wide * 3)
    settle(page, before)
    fits = f"""() => {{ const r = document.querySelector('{PANEL}'), box = r.getBoundingClientRect();
        const out = [...r.querySelectorAll('*')].filter(el => {{ const b = el.getBoundingClientRect();
            return b.width > 0 && (b.left < box.left - 1 || b.right > box.right + 1); }});
        return {{panel: r.scrollWidth <= r.clientWidth, inside: box.left >= 0 && box.right <= window.innerWidth,
                 out: out.map(el => el.tagName + '.' + el.getAttribute('class') + ' '
                                    + (el.textContent || '').slice(0, 40))}}; }}"""
    for theme in ("light", "dark"):
        if theme == "dark":
            page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
            page.wait_for_timeout(300)
        for n in range(2):
            assert page.evaluate(fits) == {"panel": True, "inside": True, "out": []}, (
                f"{theme}, {n} step(s): {page.evaluate(fits)}")
            click_and_settle(page, "step")
        shoot(page, screenshots / f"sampler-390px-{theme}.png")
    no_problems(tab, "390 px")
