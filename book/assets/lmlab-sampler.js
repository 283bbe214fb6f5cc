/* Chapter 5's sampler in the HTML book: the trained model itself, run in the reader's browser.
 *
 * `make book` exports the model the chapter trained (lmlab.export) to _static/sampler/,
 * and wraps ONNX Runtime Web (from npm) as classic scripts in _static/ort/. Every file is a
 * classic <script src>: a page opened from disk (file://) may run those, but may neither
 * fetch() a file nor load a module script. So the runtime gets its WebAssembly as bytes and its
 * loader module from a blob: URL, and the model as bytes too. Without those files (a build
 * without npm), or with one missing or damaged, the panel says in one notice which file and
 * what to do (rebuild the book, or serve it), and the page keeps its static twin.
 *
 * A panel is any element with class "lmlab-sampler" (markup in book/sampling/index.md). Moving
 * a slider redraws the next-character distribution at once, from the prompt's logits, and then
 * draws fresh continuations with a KV cache (one position per step), exactly as
 * lmlab.sampling.generate does; a newer move cancels an unfinished one. The figure and the
 * samples always show one prompt at one setting of the knobs; whatever goes wrong in drawing or
 * sampling (a prompt the model cannot read, a slider widened past its range through the page)
 * goes to the panel's message line, and the last figure and samples stay. window.lmlabSampler
 * exposes the model, the panels and their timings to the browser checks and the benchmark.
 *
 * The panel teaches the tail. Each sample shows the prompt (muted) and its continuation inline,
 * every drawn character tinted by the probability the model (T = 1) gave it at its step, in five
 * bands named by a legend, with the numbers in its title (and on the note line when tapped, for a
 * phone): a character from the tail stands out where the text goes wrong. Under the figure, a line
 * says how many characters the filters keep and how much of the model's probability they hold, as
 * the sliders move. "Step one character" draws one character at the knobs and seed as they stand
 * and appends it to the prompt, so the figure shows the distribution at the next step; with the
 * knobs unchanged the steps walk through the first sample. "Back to the prompt" drops the steps.
 */
(function () {
  "use strict";

  const here = document.currentScript ? document.currentScript.src : "";
  const STATIC = here.slice(0, here.lastIndexOf("/") + 1); // the book's _static/ folder
  const K_VALUES = [...Array.from({ length: 20 }, (_, i) => i + 1), 30, 40, 50, null]; // null: all
  const TOP = 24; // bars in the figure, as in the chapter's figures
  const SAMPLE_DELAY_MS = 40; // a drag fires many moves: sample once it pauses
  const PROMPT_DELAY_MS = 150; // and typing many keys
  /* The tint of a drawn character: the first band whose floor its probability reaches, from the
   * likely (pale) to the tail (deep). Bands, not a continuous ramp, so that a reader can name the
   * colour she sees from the legend; lmlab-sampler.css gives each its colour in light and dark. */
  const BANDS = [[0.5, "≥ 50 %"], [0.2, "20–50 %"], [0.05, "5–20 %"], [0.01, "1–5 %"], [0, "< 1 %"]];
  const TITLE_FONT = { family: "verdana, arial, sans-serif", size: 13 }; // the figure's title, measured to fit
  const api = { panels: [], loadStartedAt: null, readyAt: null, model: null, error: null };
  window.lmlabSampler = api;

  /* Why the live panel cannot run, in the reader's words: which file of the build is missing or
   * damaged, and what to do about it (`advice`). The technical cause goes to the console, for
   * whoever rebuilds the book; the reader reads the panel's notice. */
  class Unavailable extends Error {
    constructor(message, advice) {
      super(message);
      this.advice = advice;
    }
  }

  const REBUILD = "Rebuild the book with `make book` to restore it.";
  const FROM_DISK = "If the file is there, this browser may not let a page opened from disk (file://) " +
    "read it: serve the book instead (`python -m http.server --directory _build/html`) and open this page " +
    "through http://localhost:8000.";

  function missing(file, orDamaged = false) {
    return new Unavailable(`_static/${file} is missing from this build of the book${orDamaged ? ", or damaged" : ""}`,
                           REBUILD + (location.protocol === "file:" ? " " + FROM_DISK : ""));
  }

  function damaged(file, how, cause) {
    if (cause !== undefined) console.warn(`lmlab-sampler: _static/${file} is damaged:`, cause);
    return new Unavailable(`_static/${file} in this build of the book is damaged (${how})`, REBUILD);
  }

  /* A script of ours that does not run (cut short, say) reports a SyntaxError to the window as it
   * runs, not to its loader: catch it there, by the script running at that moment, and let its
   * loader say which file is damaged. Errors of every other script are left alone. */
  const broken = new Map(); // script element → the error it raised as it ran
  window.addEventListener("error", (event) => {
    const el = document.currentScript;
    if (el && el.dataset.lmlabFile) {
      event.preventDefault();
      broken.set(el, event.error || event.message);
    }
  });

  function loadScript(file) {
    return new Promise((resolve, reject) => {
      const el = document.createElement("script");
      el.src = STATIC + file;
      el.async = false;
      el.dataset.lmlabFile = file;
      el.onload = () => (broken.has(el)
        ? reject(damaged(file, "it does not run: a file cut short or changed after the build", broken.get(el)))
        : resolve());
      el.onerror = () => reject(missing(file));
      document.head.appendChild(el);
    });
  }

  /* What a file of ours put in window.lmlabAssets under `key`, if `ok` accepts it. */
  function asset(file, key, ok, what) {
    const value = (window.lmlabAssets || {})[key];
    if (!ok(value)) throw damaged(file, `it holds no ${what}`, `lmlabAssets.${key} is ${typeof value}`);
    return value;
  }

  function decodeBase64(file, text) {
    try {
      return fromBase64(text);
    } catch (err) {
      throw damaged(file, "its contents are not the text the build writes", err);
    }
  }

  const isText = (v) => typeof v === "string" && v.length > 0;
  const isCount = (v) => Number.isInteger(v) && v > 0;
  const isMeta = (m) => m !== null && typeof m === "object" && typeof m.runtime === "boolean" &&
    Array.isArray(m.vocab) && m.vocab.length > 0 && Array.isArray(m.inputs) && Array.isArray(m.outputs) &&
    m.inputs.length === m.outputs.length &&
    ["ctx", "heads", "head_dim", "sample_chars", "shown_samples"].every((name) => isCount(m[name]));

  function fromBase64(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /* A string as Python's repr() writes it, so that messages read as the notebook's do. */
  function pyRepr(s) {
    const q = s.includes("'") && !s.includes('"') ? '"' : "'";
    const body = s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\t/g, "\\t").replace(/\r/g, "\\r");
    return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
  }

  /* A row of logits less its largest, so that temperature divides (logits − max) / T, as
   * lmlab.sampling does: 0 at the argmax and ≤ 0 elsewhere, so a tiny positive T (1e-320, below
   * which logits / T overflows) tends to greedy decoding, ties sharing the mass, and never gives
   * Infinity − Infinity. The distribution is the same for every T where nothing overflows. */
  function centred(row) {
    let max = -Infinity;
    for (const z of row) max = Math.max(max, z);
    return Float64Array.from(row, (z) => z - max);
  }

  /* A probability in percent, to two significant figures below 10 % (a tail character's 0.31 %
   * must not read as 0 %), with a space that does not break before the sign. */
  function percent(p) {
    const x = 100 * p;
    const digits = x >= 10 || x === 0 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toPrecision(2);
    return digits + "\u00a0%";
  }

  /* What a drawn character meant to the model at its step: its probability under the model at
   * T = 1 (the figure's grey bars, which no knob changes), its rank there, and its probability in
   * the distribution it was drawn from (after T and the filters). */
  function describe(logits, options, id) {
    const probs = lmlabFilters.softmax(logits);
    let rank = 1;
    for (const p of probs) if (p > probs[id]) rank += 1;
    return { id, p: probs[id], rank, q: lmlabFilters.distribution(logits, options)[id] };
  }

  /* The exported GPT under ONNX Runtime Web: (ids, each layer's past keys and values) → (logits,
   * each layer's keys and values); a cache is the list of those tensors, in the export's order. */
  class Model {
    constructor(session, asset) {
      this.session = session;
      this.ctx = asset.ctx;
      this.inputs = asset.inputs;
      this.outputs = asset.outputs;
      this.heads = asset.heads;
      this.headDim = asset.head_dim;
      this.vocab = asset.vocab;
      this.V = asset.vocab.length;
      this.sampleChars = asset.sample_chars;
      this.shownSamples = asset.shown_samples;
      this.check = asset.check;
      this.ids = new Map(asset.vocab.map((c, i) => [c, i]));
      this.prompts = new Map(); // prompt key → its first run, reused by every slider move
    }

    /* Character ids, or the error lmlab's CharTokenizer.encode raises, word for word. */
    encode(text) {
      return Array.from(text, (c) => {
        if (!this.ids.has(c)) {
          throw new RangeError("text contains " + pyRepr(c) + ", which is not in the tokenizer's " +
                               this.V + "-character vocabulary");
        }
        return this.ids.get(c);
      });
    }

    decode(ids) {
      return ids.map((i) => this.vocab[i]).join("");
    }

    /* One call: `rows` (equal-length arrays of ids) after the cache `past`, or none. Returns
     * each row's last logits, the new cache and how many positions it holds. */
    async run(rows, past) {
      const B = rows.length, T = rows[0].length;
      const ids = new BigInt64Array(B * T);
      rows.forEach((row, b) => row.forEach((id, t) => { ids[b * T + t] = BigInt(id); }));
      const feeds = { ids: new ort.Tensor("int64", ids, [B, T]) };
      this.inputs.forEach((name, i) => {
        feeds[name] = past ? past[i] : new ort.Tensor("float32", new Float32Array(0), [B, this.heads, 0, this.headDim]);
      });
      const out = await this.session.run(feeds);
      const V = this.V, logits = out.logits.data, cache = this.outputs.map((name) => out[name]);
      return {
        last: rows.map((_, b) => centred(logits.subarray(((b + 1) * T - 1) * V, (b + 1) * T * V))),
        cache,
        length: cache[0].dims[2],
      };
    }

    /* The run over a prompt for `rows` samples, kept for the next moves. */
    async prompt(ids, rows) {
      const key = rows + ":" + ids.join(",");
      if (!this.prompts.has(key)) {
        if (this.prompts.size >= 4) this.prompts.delete(this.prompts.keys().next().value);
        const run = this.run(Array.from({ length: rows }, () => ids), null);
        run.catch(() => this.prompts.delete(key)); // a failed run is not kept: the next move retries
        this.prompts.set(key, run);
      }
      return this.prompts.get(key);
    }

    /* `rows` continuations of `chars` tokens after `ids`, each from its own stream of `seed`; null
     * when `alive()` turns false on the way (a newer move came). As lmlab.sampling.generate: the
     * KV cache serves while the text fits ctx, and once it is full every step recomputes the
     * last ctx tokens. */
    async generate(ids, options, seed, chars, rows, alive) {
      const drawn = await this.sample(ids, options, seed, chars, rows, alive);
      return drawn && drawn.map((row) => this.decode(row.map((d) => d.id)));
    }

    /* As generate, but each continuation as what describe() says of its characters; each stream
     * starts `skip` numbers in, past those the panel's steps took from stream 0, so that after
     * steps at unchanged knobs the first sample goes on where they stopped. */
    async sample(ids, options, seed, chars, rows, alive, skip = 0) {
      const first = await this.prompt(ids, rows);
      const seqs = Array.from({ length: rows }, () => ids.slice());
      const drawn = seqs.map(() => []);
      const random = seqs.map((_, b) => lmlabFilters.rng(seed, b));
      random.forEach((r) => { for (let i = 0; i < skip; i++) r(); });
      let { last, cache, length } = first;
      for (let step = 0; step < chars; step++) {
        if (step) {
          let out;
          if (length === this.ctx) {
            out = await this.run(seqs.map((s) => s.slice(-this.ctx)), null);
          } else {
            out = await this.run(seqs.map((s) => s.slice(-1)), cache);
            ({ cache, length } = out);
          }
          last = out.last;
          if (!alive()) return null;
        }
        seqs.forEach((s, b) => {
          const id = lmlabFilters.pick(last[b], options, random[b]);
          s.push(id);
          drawn[b].push(describe(last[b], options, id));
        });
      }
      return drawn;
    }
  }

  let loading = null;

  /* The model, loaded once per page, however many panels it has. */
  function loadModel() {
    if (loading) return loading;
    api.loadStartedAt = performance.now();
    const phases = (api.phases = {});
    const mark = (name) => { phases[name] = performance.now() - api.loadStartedAt; };
    loading = (async () => {
      await loadScript("sampler/meta.js");
      const meta = asset("sampler/meta.js", "meta", isMeta, "description of the model");
      if (!meta.runtime) {
        throw new Unavailable("this build of the book has no ONNX Runtime Web (npm was missing when it was built)",
                              "Install npm and rebuild the book with `make book` to add it.");
      }
      // the weights and the runtime side by side; the WebAssembly inflates as soon as it is there
      const wasm = loadScript("ort/ort-wasm.js").then(() => {
        mark("wasm script");
        const bytes = decodeBase64("ort/ort-wasm.js", asset("ort/ort-wasm.js", "ortWasm", isText, "WebAssembly"));
        return gunzip(bytes).catch((err) => {
          throw damaged("ort/ort-wasm.js", "its WebAssembly does not unpack", err);
        });
      });
      wasm.catch(() => {}); // reported once, below
      await Promise.all([loadScript("ort/ort.wasm.min.js"), loadScript("ort/ort-glue.js"),
                         loadScript("sampler/model.js")]);
      mark("scripts");
      if (typeof ort !== "object" || !ort.InferenceSession) {
        throw damaged("ort/ort.wasm.min.js", "it does not define ONNX Runtime Web", typeof ort);
      }
      const glue = asset("ort/ort-glue.js", "ortGlue", isText, "loader for the WebAssembly");
      const weights = decodeBase64("sampler/model.js", asset("sampler/model.js", "model", isText, "model"));
      ort.env.logLevel = "error";
      ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which no file:// page has
      ort.env.wasm.proxy = false;
      ort.env.wasm.wasmBinary = await wasm;
      mark("wasm bytes");
      ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([glue], { type: "text/javascript" })) };
      let session;
      try {
        session = await ort.InferenceSession.create(weights, { executionProviders: ["wasm"],
                                                               graphOptimizationLevel: "all" });
      } catch (err) { // the runtime that does not start, or a model it cannot read
        throw /backend/i.test(String(err && err.message))
          ? damaged("ort/ort-glue.js or _static/ort/ort-wasm.js", "ONNX Runtime Web does not start from them", err)
          : damaged("sampler/model.js", "ONNX Runtime Web cannot read the model in it", err);
      }
      mark("session");
      const model = new Model(session, meta);
      delete window.lmlabAssets.ortWasm; // the runtime holds its own copies now
      delete window.lmlabAssets.model;
      api.model = model;
      api.readyAt = performance.now();
      return model;
    })();
    loading.catch((err) => { api.error = String(err.message || err); });
    return loading;
  }

  function themeColors() {
    const dark = document.documentElement.dataset.theme === "dark";
    const css = getComputedStyle(document.documentElement);
    return {
      text: css.getPropertyValue("--pst-color-text-base").trim() || (dark ? "#ced6dd" : "#222"),
      grid: dark ? "rgba(200,200,200,0.15)" : "rgba(0,0,0,0.1)",
      model: dark ? "#5b6168" : "#c8c8c8",
      kept: dark ? "#6fb3e0" : "#1f5f8b",
    };
  }

  /* Plain text into an element, with `commands` in backquotes as <code>: never read as markup. */
  function say(el, text) {
    el.replaceChildren(...text.split("`").map((part, i) => {
      if (i % 2 === 0) return part;
      const code = document.createElement("code");
      code.textContent = part;
      return code;
    }));
  }

  function charLabel(c) {
    return { " ": "␣", "\n": "↵", "\t": "⇥" }[c] || c;
  }

  /* Text for a plotly title, tick or hover label: plotly reads a subset of HTML there (<i>, <b>,
   * <br>, <a href>, entities), so a prompt's "<", ">" and "&" reach it as entities, shown as typed. */
  function plotlyText(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  /* A knob outside what the panel can sample: a slider's range widened through the page (by an
   * extension, or a curious reader), or a seed the generator would wrap onto another (it takes
   * 32 bits). Its message names the knob, its value and its range. */
  class KnobError extends RangeError {}

  const KNOBS = { // name → [label, allowed, range in words]
    temperature: ["T", (t) => t >= 0 && t < Infinity, "0 (greedy) or more"],
    k: ["top-k's position", (i) => Number.isInteger(i) && i >= 0 && i < K_VALUES.length,
        `a whole number from 0 (k = 1) to ${K_VALUES.length - 1} (k = all)`],
    top_p: ["top-p", (p) => p > 0 && p <= 1, "in (0, 1]"],
    min_p: ["min-p", (p) => p >= 0 && p <= 1, "in [0, 1]"],
    seed: ["seed", (s) => Number.isInteger(s) && s >= 0 && s < 2 ** 32, "a whole number from 0 to 4294967295"],
  };

  /* An element for the parts of the panel that only a running model needs (the step buttons, the
   * kept set, the legend): the script adds them, so that a page without it shows no dead widget. */
  function element(tag, className, text, attributes = {}) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text) el.textContent = text;
    for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
    return el;
  }

  /* The band (an index into BANDS) of a probability. */
  const band = (p) => BANDS.findIndex(([floor]) => p >= floor);

  let measurer = null;

  /* The width in px of `text` in the figure's title font, as the browser lays it out. */
  function textWidth(text) {
    measurer = measurer || document.createElement("canvas").getContext("2d");
    measurer.font = `${TITLE_FONT.size}px ${TITLE_FONT.family}`;
    return measurer.measureText(text).width;
  }

  class Panel {
    constructor(root) {
      this.root = root;
      const $ = (name) => root.querySelector(`[name="${name}"]`);
      this.inputs = { prompt: $("prompt"), k: $("k"), temperature: $("temperature"), top_p: $("top_p"),
                      min_p: $("min_p"), seed: $("seed") };
      this.button = $("sample");
      this.status = root.querySelector(".lmlab-sampler-status");
      this.status.setAttribute("role", "status"); // a screen reader says what the panel did, when it is done
      this.error = root.querySelector(".lmlab-sampler-error");
      this.figure = root.querySelector(".lmlab-sampler-figure");
      this.samples = root.querySelector(".lmlab-sampler-samples");
      this.inputs.prompt.value = root.dataset.prompt || "\n";
      this.inputs.k.max = K_VALUES.length - 1;
      this.inputs.k.value = K_VALUES.length - 1;
      this.version = 0; // every move counts; a generation that sees a newer one stops
      this.timings = { draw: [], sample: [] };
      this.draws = 0;
      this.sampled = 0;
      this.walk = null; // {prompt: ids, steps: what describe() says of each character stepped}
      this.state = null; // {ids, logits, walk, steps}: the walk's context, once the model has read it
      this.shown = null; // {ids, logits, options, walk, steps}: what the figure and the samples show
      this.stepping = Promise.resolve(); // steps wait in line: each draws from the logits the last one left
      this.problems = { prompt: "", knobs: "", run: "" }; // the message line shows the first
      this.busy = false;
      this.showValues();
      root.dataset.state = "loading";
    }

    /* The knobs as the filters take them; a KnobError when one is out of range. */
    options() {
      for (const [name, [label, allowed, range]] of Object.entries(KNOBS)) {
        const value = this.inputs[name].value;
        if (!allowed(Number(value))) {
          throw new KnobError(`${label} = ${value} is out of range: ${label} must be ${range}. ` +
                              "Bring it back into range; the figure and samples below are the last ones drawn.");
        }
      }
      const v = (name) => Number(this.inputs[name].value);
      return { temperature: v("temperature"), topK: K_VALUES[v("k")], topP: v("top_p"), minP: v("min_p") };
    }

    /* The knobs, or null with their message on the message line. */
    checkedOptions() {
      try {
        const options = this.options();
        this.problems.knobs = "";
        return options;
      } catch (err) {
        if (!(err instanceof KnobError)) throw err;
        this.problems.knobs = err.message;
        return null;
      }
    }

    showValues() {
      const k = K_VALUES[Number(this.inputs.k.value)];
      const shown = { k: k === null ? "all" : k === undefined ? "?" : k, // "?": out of range, as the message says
                      temperature: this.inputs.temperature.value, top_p: this.inputs.top_p.value,
                      min_p: this.inputs.min_p.value };
      for (const [name, value] of Object.entries(shown)) {
        const out = this.root.querySelector(`output[for="${this.inputs[name].id}"]`);
        if (out) out.textContent = value + (name === "temperature" && Number(value) === 0 ? " (greedy)" : "");
      }
    }

    /* How many characters the model reads: the last ctx − chars, so that they and a continuation
     * fit the KV cache (lmlab.viz.sampling_frame's rule). */
    reads() {
      const m = this.model, chars = m.sampleChars;
      return chars < m.ctx ? m.ctx - chars : Math.floor(m.ctx / 2);
    }

    /* The prompt the model sees: its last reads() characters; empty means a line break. */
    promptText() {
      return (this.inputs.prompt.value || "\n").slice(-this.reads());
    }

    /* What the model reads after the prompt and the steps: their last reads() characters. */
    context() {
      return [...this.walk.prompt, ...this.walk.steps.map((d) => d.id)].slice(-this.reads());
    }

    setBusy(busy) {
      this.busy = busy;
      if (busy) this.root.dataset.busy = "1";
      else delete this.root.dataset.busy;
    }

    /* The message line: what is wrong now (the prompt first), or nothing. */
    report() {
      const message = this.problems.prompt || this.problems.knobs || this.problems.run;
      this.error.textContent = message;
      if (message) this.root.dataset.error = message;
      else delete this.root.dataset.error;
    }

    /* The note line (aria-live): what a step drew, or what a tapped character is. */
    tell(text) {
      this.note.textContent = text;
    }

    /* No samples pending: the figure and samples shown stay as they are. */
    halt() {
      clearTimeout(this.pending);
      this.setBusy(false);
    }

    /* An error while drawing or sampling, on the message line in place of a silent panel. Newer
     * moves own the panel (`version`), so an older failure is not reported over them. */
    fail(err, version, doing) {
      if (version !== this.version) return;
      this.version += 1; // what is left of this move stops
      this.halt();
      console.error(err);
      this.problems.run = `The panel could not ${doing} (${err && err.message ? err.message : err}). ` +
        "Move a knob to try again, or reload the page.";
      this.report();
    }

    /* The parts only a running model needs, round the figure: under it the kept set and the step
     * buttons, then the note line and the legend of the tints, then the samples. */
    build() {
      this.kept = element("p", "lmlab-sampler-kept");
      this.stepButton = element("button", "", "step one character", { type: "button", name: "step" });
      this.resetButton = element("button", "", "back to the prompt", { type: "button", name: "reset" });
      const walk = element("div", "lmlab-sampler-walk");
      walk.append(this.stepButton, this.resetButton);
      this.note = element("p", "lmlab-sampler-note", "", { "aria-live": "polite" });
      const legend = element("p", "lmlab-sampler-legend",
                             "Each drawn character is tinted by the probability the model (T = 1) gave it at its step:");
      const bands = BANDS.map(([floor, label], i) => element("span", `lmlab-sampler-band lmlab-sampler-p${i}`, label,
                                                             { "data-floor": floor, "data-ceiling": i ? BANDS[i - 1][0] : 1 }));
      legend.append(" ", ...bands.flatMap((b) => [b, " "]),
                    "Hover or tap a character for its numbers; the characters stepped one at a time are underlined.");
      this.figure.after(this.kept, walk, this.note, legend);
    }

    async start() {
      try { // the page's own scripts first: without them the panel would be dead
        if (typeof Plotly !== "object") throw missing("plotly.min.js", true);
        if (typeof lmlabFilters !== "object") throw missing("lmlab-filters.js", true);
        this.model = await loadModel();
      } catch (err) {
        this.root.dataset.state = "off";
        this.root.classList.add("lmlab-sampler-off");
        say(this.status, err instanceof Unavailable
          ? `The live panel cannot start: ${err.message}. ${err.advice} The static figure below still works.`
          : `The live panel could not start (${err.message || err}). Reload the page; if that does not help, ` +
            "rebuild the book with `make book`. The static figure below still works.");
        if (!(err instanceof Unavailable)) console.error(err);
        return;
      }
      this.build();
      for (const name of ["k", "temperature", "top_p", "min_p"]) {
        this.inputs[name].addEventListener("input", (event) => this.moved({ started: event.timeStamp }));
      }
      this.inputs.seed.addEventListener("input", () => this.moved({ redraw: false }));
      this.inputs.prompt.addEventListener("input", () => {
        clearTimeout(this.typing);
        this.typing = setTimeout(() => this.prompted(), PROMPT_DELAY_MS);
      });
      this.button.addEventListener("click", () => {
        // the next seed, wrapping from the last (2³² − 1) to 0, never past what the seed accepts
        this.inputs.seed.value = ((Number(this.inputs.seed.value) || 0) + 1) % 2 ** 32;
        this.moved({ redraw: false, delay: 0 });
      });
      // steps and the way back take turns, in the order they were asked for
      this.stepButton.addEventListener("click", () => { this.stepping = this.stepping.then(() => this.step()); });
      this.resetButton.addEventListener("click", () => { this.stepping = this.stepping.then(() => this.restart()); });
      this.samples.addEventListener("click", (event) => this.tapped(event.target));
      // a new theme redraws what is shown, in its colours: the same prompt, knobs and samples
      const redraw = () => this.draw(this.shown).catch((err) => this.fail(err, this.version, "draw the figure"));
      new MutationObserver(() => this.shown && redraw()).observe(document.documentElement,
                                                                 { attributes: true, attributeFilter: ["data-theme"] });
      // and a new width (a phone turned, a sidebar closed) fits the title to it, after the layout settles
      new ResizeObserver(() => requestAnimationFrame(() => {
        if (this.shown && this.figure.clientWidth !== this.fitted) redraw();
      })).observe(this.figure);
      this.status.textContent = "Chapter 5's trained model, running in this page (ONNX Runtime Web, WebAssembly); " +
        `loaded in ${((api.readyAt - api.loadStartedAt) / 1000).toFixed(2)} s.`;
      this.root.dataset.state = "ready";
      await this.prompted();
    }

    /* A new prompt: the steps start again from it. */
    async prompted() {
      ++this.version; // samples of the last prompt stop
      let ids;
      try {
        ids = this.model.encode(this.promptText());
      } catch (err) { // a character the model never saw: say so, and keep the last figure and samples
        this.problems.prompt = err.message;
        this.report();
        this.halt();
        return;
      }
      this.problems.prompt = "";
      this.walk = { prompt: ids, steps: [] };
      await this.reread(performance.now());
    }

    /* One run of the model over the walk's context, then the figure and fresh samples. A walk
     * changed on the way (a new prompt, a step, the way back) owns the panel: this one stops. */
    async reread(started) {
      const walk = this.walk, steps = walk.steps.length, ids = this.context();
      let first;
      try {
        first = await this.model.prompt(ids, this.model.shownSamples);
      } catch (err) {
        if (walk === this.walk) this.fail(err, this.version, "read the prompt");
        return;
      }
      if (walk !== this.walk || steps !== walk.steps.length) return;
      this.state = { ids, logits: first.last[0], walk, steps };
      this.refresh(++this.version, { started, delay: 0 });
    }

    /* One character drawn at the knobs and seed as they stand, from the distribution the figure
     * shows, appended to the walk; the figure then shows the next one. The n-th step takes the
     * n-th number of the seed's first stream, as the first sample's n-th character would. */
    async step() {
      const state = this.state, walk = this.walk;
      if (!state || this.problems.prompt || state.walk !== walk || state.steps !== walk.steps.length) return;
      const options = this.checkedOptions();
      this.report();
      if (!options) return;
      const random = lmlabFilters.rng(Number(this.inputs.seed.value), 0);
      for (let i = 0; i < state.steps; i++) random();
      const drawn = describe(state.logits, options, lmlabFilters.pick(state.logits, options, random));
      walk.steps.push(drawn);
      this.tell(`Step ${walk.steps.length} drew ${this.explain(drawn)}. The figure now shows the next step.`);
      await this.reread(performance.now());
    }

    /* Back to the prompt: the steps dropped, the prompt's figure and samples again. */
    async restart() {
      if (!this.walk || this.problems.prompt) return;
      if (!this.walk.steps.length) {
        this.tell("No steps to drop: the figure and the samples are the prompt's.");
        return;
      }
      this.walk = { prompt: this.walk.prompt, steps: [] };
      this.tell("Back to the prompt: the steps are dropped.");
      await this.reread(performance.now());
    }

    /* A knob moved: redraw the distribution now, sample when the slider rests. While the prompt
     * holds a character the model never saw, nothing moves until it is fixed. */
    moved({ redraw = true, delay = SAMPLE_DELAY_MS, started = performance.now() } = {}) {
      this.showValues();
      if (!this.state || this.problems.prompt) return;
      this.refresh(++this.version, { redraw, delay, started });
    }

    /* The figure and fresh samples of the context at the knobs as they stand, or the knob's
     * message and the last figure and samples kept. A seed's move (`redraw` false) keeps the
     * figure, when it shows this context at these knobs. */
    refresh(version, { redraw = true, delay = 0, started } = {}) {
      const options = this.checkedOptions();
      this.problems.run = "";
      this.report();
      if (!options) {
        this.halt();
        return;
      }
      const { ids, logits, walk, steps } = this.state;
      const view = { ids, logits, options, walk, steps };
      const same = this.shown && this.shown.logits === view.logits &&
        JSON.stringify(this.shown.options) === JSON.stringify(options);
      this.shown = view;
      if (redraw || !same) this.draw(view, started).catch((err) => this.fail(err, version, "draw the figure"));
      this.resample(view, version, delay);
    }

    /* "next character after …'tail'", the tail as long as fits the figure (24 characters at
     * most): plotly does not wrap a title, and one wider than the figure runs out of the panel. */
    title(ids, width) {
      const text = this.model.decode(ids), room = width - 60; // the plot's margins, the title centred over it
      for (let n = 24; ; n--) {
        const title = "next character after …" + pyRepr(text.slice(-n));
        if (n <= 1 || textWidth(title) <= room) return title;
      }
    }

    /* How many characters the filters keep, and how much of the model's probability (T = 1, the
     * grey bars) they hold: the tail they cut, in two numbers. */
    showKept(probs, kept) {
      let count = 0, mass = 0;
      kept.forEach((q, i) => {
        if (q > 0) {
          count += 1;
          mass += probs[i];
        }
      });
      const V = probs.length, x = 100 * mass;
      // a share that rounds to 100 % while a character is cut says so
      const share = count === V ? "100\u00a0%" : x < 99.5 ? percent(mass)
        : x < 99.99 ? `${(Math.floor(x * 100) / 100).toFixed(2)}\u00a0%` : "over 99.99\u00a0%";
      this.kept.textContent = `The filters keep ${count} of ${V} characters, ${share} of the model's probability ` +
        "(the grey bars).";
      this.kept.dataset.kept = count;
      this.kept.dataset.mass = mass;
    }

    async draw(view, started) {
      const m = this.model, colors = themeColors();
      const probs = lmlabFilters.softmax(view.logits);
      const kept = lmlabFilters.distribution(view.logits, view.options);
      this.showKept(probs, kept);
      const top = Array.from(probs, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b).slice(0, TOP);
      const x = top.map((i) => plotlyText(charLabel(m.vocab[i])));
      const bar = (name, values, color) => ({ type: "bar", name, x, y: top.map((i) => values[i]), marker: { color },
                                              hovertemplate: "%{x}: %{y:.3f}<extra>" + name + "</extra>" });
      this.fitted = this.figure.clientWidth;
      const layout = {
        barmode: "overlay", height: 320, margin: { l: 50, r: 10, t: 30, b: 60 }, hovermode: "closest",
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: colors.text, size: 12 },
        legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
        xaxis: { title: { text: plotlyText(this.title(view.ids, this.fitted)), font: TITLE_FONT },
                 gridcolor: colors.grid, tickfont: { family: "monospace", size: 11 }, automargin: true },
        yaxis: { title: { text: "probability" }, gridcolor: colors.grid, rangemode: "tozero" },
      };
      await Plotly.react(this.figure, [bar("model (T = 1)", probs, colors.model), bar("sampled from", kept, colors.kept)],
                         layout, { responsive: true, displayModeBar: false });
      await new Promise(requestAnimationFrame);
      if (started !== undefined) this.timings.draw.push(performance.now() - started);
      this.draws += 1;
      this.root.dataset.draws = this.draws;
    }

    /* A drawn character in words: what it is, its probability under the model and its rank there,
     * and its probability after T and the filters. */
    explain(d) {
      const m = this.model;
      return `${pyRepr(m.vocab[d.id])}, ${percent(d.p)} under the model (rank ${d.rank} of ${m.V}), ` +
        `${percent(d.q)} after T and the filters`;
    }

    /* A drawn character, tinted by its band, with its numbers in its attributes and its title. */
    charSpan(d, where) {
      const c = this.model.vocab[d.id];
      return element("span", `lmlab-sampler-p${band(d.p)}` + (c === "\n" ? " lmlab-sampler-nl" : ""), c,
                     { "data-p": d.p, "data-rank": d.rank, "data-q": d.q, title: `${where}: ${this.explain(d)}` });
    }

    /* Each sample as a reader reads on: the prompt the model read (muted), the steps (underlined)
     * and the continuation, each drawn character tinted. */
    showSamples(view, drawn) {
      const prompt = this.model.decode(view.walk.prompt), steps = view.walk.steps.slice(0, view.steps);
      this.samples.replaceChildren(...drawn.map((row) => {
        const stepped = element("span", "lmlab-sampler-stepped");
        stepped.append(...steps.map((d, i) => this.charSpan(d, `step ${i + 1}`)));
        const continuation = element("span", "lmlab-sampler-continuation");
        continuation.append(...row.map((d, i) => this.charSpan(d, `character ${i + 1}`)));
        const pre = element("pre", "lmlab-sampler-sample");
        pre.append(element("span", "lmlab-sampler-context", prompt), stepped, continuation);
        return pre;
      }));
    }

    /* A tapped character's numbers on the note line: a phone shows no title on hover. */
    tapped(target) {
      const span = target.closest ? target.closest("[data-p]") : null;
      if (!span || !this.samples.contains(span)) return;
      const which = [...this.samples.children].indexOf(span.closest("pre")) + 1;
      this.samples.querySelectorAll(".lmlab-sampler-tapped").forEach((el) => el.classList.remove("lmlab-sampler-tapped"));
      span.classList.add("lmlab-sampler-tapped");
      this.tell(`Sample ${which}, ${span.title}.`);
    }

    /* Fresh samples of `view` after `delay` ms, unless a newer move comes first; `busy` until
     * they are shown, or until an error is. */
    resample(view, version, delay) {
      clearTimeout(this.pending);
      this.setBusy(true);
      const seed = Number(this.inputs.seed.value); // checked with the knobs: "" is 0
      this.pending = setTimeout(async () => {
        if (version !== this.version) return; // a newer move has taken over
        const m = this.model, started = performance.now();
        let drawn;
        try {
          drawn = await m.sample(view.ids, view.options, seed, m.sampleChars, m.shownSamples,
                                 () => version === this.version, view.steps);
        } catch (err) {
          this.fail(err, version, "draw samples");
          return;
        }
        if (drawn === null || version !== this.version) return; // a newer move has taken over
        this.showSamples(view, drawn);
        const took = performance.now() - started;
        this.timings.sample.push(took);
        this.sampled += 1;
        this.root.dataset.samples = this.sampled;
        this.setBusy(false);
        this.status.textContent = "Chapter 5's trained model, running in this page (ONNX Runtime Web, WebAssembly): " +
          `${m.shownSamples} × ${m.sampleChars} characters in ${(took / 1000).toFixed(2)} s.`;
      }, delay);
    }
  }

  function init() {
    const roots = document.querySelectorAll(".lmlab-sampler");
    if (!roots.length) return;
    loadModel();
    roots.forEach((root) => {
      const panel = new Panel(root);
      api.panels.push(panel);
      panel.start();
    });
  }

  if (document.readyState === "loading") {
    loadModel(); // start fetching now; the panels wire up once the page is parsed
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
