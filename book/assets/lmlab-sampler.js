/* Chapter 5's sampler in the HTML book: the trained model itself, run in the reader's browser.
 *
 * `make book` exports the model the chapter trained (lmlab.export) to _static/sampler/,
 * and wraps ONNX Runtime Web (from npm) as classic scripts in _static/ort/. Every file is a
 * classic <script src>: a page opened from disk (file://) may run those, but may neither
 * fetch() a file nor load a module script. So the runtime gets its WebAssembly as bytes and its
 * loader module from a blob: URL, and the model as bytes too. Without those files (a build
 * without npm) the panel says so in one line, and the page keeps its static twin.
 *
 * A panel is any element with class "lmlab-sampler" (markup in book/sampling/index.md). Moving
 * a slider redraws the next-character distribution at once, from the prompt's logits, and then
 * draws fresh continuations with a KV cache (one position per step), exactly as
 * lmlab.sampling.generate does; a newer move cancels an unfinished one. window.lmlabSampler
 * exposes the model, the panels and their timings to the browser checks and the benchmark.
 */
(function () {
  "use strict";

  const here = document.currentScript ? document.currentScript.src : "";
  const STATIC = here.slice(0, here.lastIndexOf("/") + 1); // the book's _static/ folder
  const K_VALUES = [...Array.from({ length: 20 }, (_, i) => i + 1), 30, 40, 50, null]; // null: all
  const TOP = 24; // bars in the figure, as in the chapter's figures
  const SAMPLE_DELAY_MS = 40; // a drag fires many moves: sample once it pauses
  const PROMPT_DELAY_MS = 150; // and typing many keys
  const api = { panels: [], loadStartedAt: null, readyAt: null, model: null, error: null };
  window.lmlabSampler = api;

  class Unavailable extends Error {}

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const el = document.createElement("script");
      el.src = src;
      el.async = false;
      el.onload = resolve;
      el.onerror = () => reject(new Unavailable("missing from this build: " + src.slice(STATIC.length)));
      document.head.appendChild(el);
    });
  }

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
        last: rows.map((_, b) => logits.subarray(((b + 1) * T - 1) * V, (b + 1) * T * V)),
        cache,
        length: cache[0].dims[2],
      };
    }

    /* The run over a prompt for `rows` samples, kept for the next moves. */
    async prompt(ids, rows) {
      const key = rows + ":" + ids.join(",");
      if (!this.prompts.has(key)) {
        if (this.prompts.size >= 4) this.prompts.delete(this.prompts.keys().next().value);
        this.prompts.set(key, this.run(Array.from({ length: rows }, () => ids), null));
      }
      return this.prompts.get(key);
    }

    /* `rows` continuations of `chars` tokens after `ids`, each from its own stream of `seed`; null
     * when `alive()` turns false on the way (a newer move came). As lmlab.sampling.generate: the
     * KV cache serves while the text fits ctx, and once it is full every step recomputes the
     * last ctx tokens. */
    async generate(ids, options, seed, chars, rows, alive) {
      const first = await this.prompt(ids, rows);
      const seqs = Array.from({ length: rows }, () => ids.slice());
      const random = seqs.map((_, b) => lmlabFilters.rng(seed, b));
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
        seqs.forEach((s, b) => s.push(lmlabFilters.pick(last[b], options, random[b])));
      }
      return seqs.map((s) => this.decode(s.slice(ids.length)));
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
      await loadScript(STATIC + "sampler/meta.js");
      const assets = window.lmlabAssets, meta = assets.meta;
      if (!meta.runtime) {
        throw new Unavailable("this build of the book has no ONNX Runtime Web (npm was missing when it was built)");
      }
      // the weights and the runtime side by side; the WebAssembly inflates as soon as it is there
      const wasm = loadScript(STATIC + "ort/ort-wasm.js").then(() => {
        mark("wasm script");
        return gunzip(fromBase64(assets.ortWasm));
      });
      wasm.catch(() => {}); // reported once, below
      await Promise.all([loadScript(STATIC + "ort/ort.wasm.min.js"), loadScript(STATIC + "ort/ort-glue.js"),
                         loadScript(STATIC + "sampler/model.js")]);
      mark("scripts");
      ort.env.logLevel = "error";
      ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which no file:// page has
      ort.env.wasm.proxy = false;
      ort.env.wasm.wasmBinary = await wasm;
      mark("wasm bytes");
      ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([assets.ortGlue], { type: "text/javascript" })) };
      const session = await ort.InferenceSession.create(fromBase64(assets.model),
                                                        { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      mark("session");
      const model = new Model(session, meta);
      delete assets.ortWasm; // the runtime holds its own copies now
      delete assets.model;
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

  function charLabel(c) {
    return { " ": "␣", "\n": "↵", "\t": "⇥" }[c] || c;
  }

  class Panel {
    constructor(root) {
      this.root = root;
      const $ = (name) => root.querySelector(`[name="${name}"]`);
      this.inputs = { prompt: $("prompt"), k: $("k"), temperature: $("temperature"), top_p: $("top_p"),
                      min_p: $("min_p"), seed: $("seed") };
      this.button = $("sample");
      this.status = root.querySelector(".lmlab-sampler-status");
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
      this.state = null; // {ids, logits}: the prompt the figure shows
      this.busy = false;
      this.showValues();
      root.dataset.state = "loading";
    }

    options() {
      const v = (name) => Number(this.inputs[name].value);
      return { temperature: v("temperature"), topK: K_VALUES[v("k")], topP: v("top_p"), minP: v("min_p") };
    }

    showValues() {
      const k = K_VALUES[Number(this.inputs.k.value)];
      const shown = { k: k === null ? "all" : k, temperature: this.inputs.temperature.value,
                      top_p: this.inputs.top_p.value, min_p: this.inputs.min_p.value };
      for (const [name, value] of Object.entries(shown)) {
        const out = this.root.querySelector(`output[for="${this.inputs[name].id}"]`);
        if (out) out.textContent = value + (name === "temperature" && Number(value) === 0 ? " (greedy)" : "");
      }
    }

    /* The prompt the model sees: its last ctx − chars characters, so that the prompt and a
     * continuation fit the KV cache (lmlab.viz.sampling_frame's rule); empty means a line break. */
    promptText() {
      const m = this.model, chars = m.sampleChars;
      const keep = chars < m.ctx ? m.ctx - chars : Math.floor(m.ctx / 2);
      return (this.inputs.prompt.value || "\n").slice(-keep);
    }

    setBusy(busy) {
      this.busy = busy;
      if (busy) this.root.dataset.busy = "1";
      else delete this.root.dataset.busy;
    }

    async start() {
      try {
        this.model = await loadModel();
      } catch (err) {
        this.root.dataset.state = "off";
        this.root.classList.add("lmlab-sampler-off");
        this.status.textContent = err instanceof Unavailable
          ? `The live panel is not in this build (${err.message}); the static figure below still works.`
          : `The live panel could not start (${err.message || err}); the static figure below still works.`;
        if (!(err instanceof Unavailable)) console.error(err);
        return;
      }
      for (const name of ["k", "temperature", "top_p", "min_p"]) {
        this.inputs[name].addEventListener("input", (event) => this.moved({ started: event.timeStamp }));
      }
      this.inputs.seed.addEventListener("input", () => this.moved({ redraw: false }));
      this.inputs.prompt.addEventListener("input", () => {
        clearTimeout(this.typing);
        this.typing = setTimeout(() => this.prompted(), PROMPT_DELAY_MS);
      });
      this.button.addEventListener("click", () => {
        this.inputs.seed.value = (Number(this.inputs.seed.value) || 0) + 1;
        this.moved({ redraw: false, delay: 0 });
      });
      new MutationObserver(() => this.state && this.draw()).observe(document.documentElement,
                                                                    { attributes: true, attributeFilter: ["data-theme"] });
      this.status.textContent = "Chapter 5's trained model, running in this page (ONNX Runtime Web, WebAssembly); " +
        `loaded in ${((api.readyAt - api.loadStartedAt) / 1000).toFixed(2)} s.`;
      this.root.dataset.state = "ready";
      await this.prompted();
    }

    /* A new prompt: one run of the model over it, then the figure and fresh samples. */
    async prompted() {
      const version = ++this.version;
      let ids;
      try {
        ids = this.model.encode(this.promptText());
      } catch (err) { // a character the model never saw: say so, and keep the last figure
        this.error.textContent = err.message;
        this.root.dataset.error = err.message;
        return;
      }
      this.error.textContent = "";
      delete this.root.dataset.error;
      const first = await this.model.prompt(ids, this.model.shownSamples);
      if (version !== this.version) return;
      this.state = { ids, logits: first.last[0] };
      await this.draw(performance.now());
      this.resample(version, 0);
    }

    /* A slider moved: redraw the distribution now, sample when the slider rests. */
    moved({ redraw = true, delay = SAMPLE_DELAY_MS, started = performance.now() } = {}) {
      this.showValues();
      if (!this.state || this.root.dataset.error) return;
      const version = ++this.version;
      if (redraw) this.draw(started);
      this.resample(version, delay);
    }

    async draw(started) {
      const m = this.model, o = this.options(), colors = themeColors();
      const probs = lmlabFilters.softmax(this.state.logits);
      const kept = lmlabFilters.distribution(this.state.logits, o);
      const top = Array.from(probs, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b).slice(0, TOP);
      const x = top.map((i) => charLabel(m.vocab[i]));
      const bar = (name, values, color) => ({ type: "bar", name, x, y: top.map((i) => values[i]), marker: { color },
                                              hovertemplate: "%{x}: %{y:.3f}<extra>" + name + "</extra>" });
      const text = this.promptText();
      const layout = {
        barmode: "overlay", height: 320, margin: { l: 50, r: 10, t: 30, b: 60 }, hovermode: "closest",
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: colors.text, size: 12 },
        legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
        xaxis: { title: { text: "next character after …" + pyRepr(text.slice(-24)) }, gridcolor: colors.grid,
                 tickfont: { family: "monospace", size: 11 }, automargin: true },
        yaxis: { title: { text: "probability" }, gridcolor: colors.grid, rangemode: "tozero" },
      };
      await Plotly.react(this.figure, [bar("model (T = 1)", probs, colors.model), bar("sampled from", kept, colors.kept)],
                         layout, { responsive: true, displayModeBar: false });
      await new Promise(requestAnimationFrame);
      if (started !== undefined) this.timings.draw.push(performance.now() - started);
      this.draws += 1;
      this.root.dataset.draws = this.draws;
    }

    /* Fresh samples after `delay` ms, unless a newer move comes first; `busy` until they are shown. */
    resample(version, delay) {
      clearTimeout(this.pending);
      this.setBusy(true);
      this.pending = setTimeout(async () => {
        const m = this.model, started = performance.now();
        const texts = await m.generate(this.state.ids, this.options(), Number(this.inputs.seed.value) || 0,
                                       m.sampleChars, m.shownSamples, () => version === this.version);
        if (texts === null || version !== this.version) return;
        const took = performance.now() - started;
        this.timings.sample.push(took);
        this.samples.replaceChildren(...texts.map((t) => {
          const pre = document.createElement("pre");
          pre.textContent = t;
          return pre;
        }));
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
