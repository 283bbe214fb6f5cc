/* The decoding filters of lmlab.sampling, for the sampler that runs in the HTML book.
 *
 * filterLogits applies temperature → top-k → top-p → min-p in Hugging Face's order, with
 * lmlab.sampling.filter_logits's semantics case for case: top-k keeps every logit at least the
 * k-th largest (ties at the k-th are all kept), top-p keeps the smallest set whose probability
 * reaches p (the crossing token kept), min-p keeps tokens whose probability is at least min-p
 * times the largest. A removed token gets -Infinity, so softmax gives it zero. The browser
 * checks (tests/browser/test_browser_sampler.py) compare it with filter_logits on a case table.
 *
 * A classic script, not a module: a page opened from disk (file://) may not load modules.
 * Everything is on window.lmlabFilters; nothing here touches the page.
 */
(function () {
  "use strict";

  function check(name, value, ok, range) {
    if (typeof value !== "number" || Number.isNaN(value) || !ok(value)) {
      throw new RangeError(name + " must be " + range + ", got " + value);
    }
  }

  /* Probabilities of one row of logits (an array); -Infinity gives 0. */
  function softmax(logits) {
    let max = -Infinity;
    for (const z of logits) max = Math.max(max, z);
    const out = new Float64Array(logits.length);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) {
      out[i] = logits[i] === -Infinity ? 0 : Math.exp(logits[i] - max);
      sum += out[i];
    }
    for (let i = 0; i < out.length; i++) out[i] /= sum;
    return out;
  }

  /* The index of the largest value, the first one on a tie (as torch.argmax). */
  function argmax(values) {
    let best = 0;
    for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
    return best;
  }

  /* Indices in order of decreasing value, ties in index order (torch.sort is stable on a CPU). */
  function order(values) {
    return Array.from(values, (_, i) => i).sort((a, b) => values[b] - values[a] || a - b);
  }

  /* One row of logits after temperature and truncation; options {temperature, topK, topP, minP},
   * each optional (null or undefined: that filter is off). The temperature must be > 0 here:
   * greedy decoding (T = 0) is the sampler's business, as in lmlab. As lmlab.sampling does, T
   * divides the logits less their maximum: 0 at the argmax and ≤ 0 elsewhere, so a tiny T (below
   * about 1e-308, where logits / T overflows to Infinity − Infinity = NaN) tends to greedy
   * decoding, tied maxima sharing the mass; the distribution is the same at every other T. */
  function filterLogits(logits, options) {
    const o = options || {};
    const temperature = o.temperature == null ? 1 : o.temperature;
    check("temperature", temperature, (t) => t > 0 && t < Infinity, "in (0, inf)");
    let max = -Infinity;
    for (const x of logits) max = Math.max(max, x);
    let z = Float64Array.from(logits, (x) => (x - max) / temperature);
    if (o.topK != null) {
      check("topK", o.topK, (k) => Number.isInteger(k) && k >= 1, "an integer ≥ 1");
      if (o.topK < z.length) {
        const kth = Float64Array.from(z).sort()[z.length - o.topK];
        z = z.map((x) => (x < kth ? -Infinity : x));
      }
    }
    if (o.topP != null) {
      check("topP", o.topP, (p) => p > 0 && p <= 1, "in (0, 1]");
      if (o.topP < 1) {
        const sorted = order(z);
        const probs = softmax(sorted.map((i) => z[i]));
        const drop = new Uint8Array(z.length);
        let cumulative = 0;
        sorted.forEach((i, rank) => {
          cumulative += probs[rank];
          // the probability ahead of this token, written as filter_logits computes it
          drop[i] = cumulative - probs[rank] >= o.topP ? 1 : 0;
        });
        z = z.map((x, i) => (drop[i] ? -Infinity : x));
      }
    }
    if (o.minP != null) {
      check("minP", o.minP, (p) => p >= 0 && p <= 1, "in [0, 1]");
      const probs = softmax(z);
      const floor = o.minP * probs[argmax(probs)];
      z = z.map((x, i) => (probs[i] < floor ? -Infinity : x));
    }
    return z;
  }

  /* A seeded generator of uniform numbers in [0, 1): splitmix32 to spread the seed, then
   * mulberry32. Small, fast and the same in every browser, so a seed gives the same text
   * after a reload. `stream` gives each sample of one seed its own sequence. */
  function rng(seed, stream) {
    let s = (Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) + Math.imul((stream || 0) + 1, 0xc2b2ae35)) >>> 0;
    s ^= s >>> 16;
    s = Math.imul(s, 0x7feb352d) >>> 0;
    s ^= s >>> 15;
    return function () {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /* The index drawn from probabilities `probs` by a uniform number u in [0, 1); never one of
   * probability 0. */
  function draw(probs, u) {
    let total = 0;
    for (const p of probs) total += p;
    let target = u * total, last = 0;
    for (let i = 0; i < probs.length; i++) {
      if (probs[i] <= 0) continue;
      last = i;
      target -= probs[i];
      if (target < 0) return i;
    }
    return last;
  }

  /* The next token from one row of logits: greedy at T = 0, else drawn from the filtered
   * distribution. k = 1 goes through the filter (ties with the top kept), as in lmlab. */
  function pick(logits, options, random) {
    if (options.temperature === 0) return argmax(logits);
    return draw(softmax(filterLogits(logits, options)), random());
  }

  /* What the sampler draws from: the filtered distribution, or all mass on the argmax at T = 0
   * (as lmlab.sampling.next_token_probs). */
  function distribution(logits, options) {
    if (options.temperature === 0) {
      const out = new Float64Array(logits.length);
      out[argmax(logits)] = 1;
      return out;
    }
    return softmax(filterLogits(logits, options));
  }

  window.lmlabFilters = { filterLogits, softmax, argmax, rng, draw, pick, distribution };
})();
