/*
 * Plotly figures that follow the book's light/dark theme and fit a phone's width.
 *
 * Every figure of the book is drawn by an inline `Plotly.newPlot(id, data, layout, config)`
 * right after its div (lmlab.display.plumbing.BookRenderer). This script runs after
 * plotly.min.js and before the page body and wraps `Plotly.newPlot`, so that each figure is
 * drawn in the page's theme and at its width from the first frame (no white flash on a dark
 * page). It keeps the figure as authored (in the light house style) and redraws it from that
 * (`Plotly.react`) when the reader toggles the theme (pydata-sphinx-theme sets data-theme on
 * <html>; data-mode="auto" follows the system) or the figure's width changes; the slider's
 * step and the traces it shows are carried over.
 *
 * Theme: lmlab.display.style's dark template, and its map of the light colours that traces
 * name to their dark twins, come as window.LMLAB_FIGURE_THEME (book/_ext/figure_theme.py).
 *
 * Fit: a figure narrower than NARROW px gets the phone layout: its title wrapped below the
 * mode bar, its legend under the plot, its axis and subplot titles wrapped, its margins capped
 * and its height grown by what that adds. At any width a table's texts that lmlab wrapped for
 * a wider column are wrapped again to fit theirs (lmlab.display.style.wrap_meta). After
 * drawing, an axis whose tick labels overlap gets fewer ticks (a log axis: one a decade, 10²).
 *
 * Text alternative: a chart outside a captioned <figure> is named by its title (see label()).
 */
(function () {
  "use strict";
  const THEME = window.LMLAB_FIGURE_THEME;
  if (!window.Plotly || !THEME) return;

  const NARROW = 600; // px of figure width below which the phone layout applies
  const MODEBAR = 28; // px at the top of a figure that plotly's mode bar covers
  // px between the mode bar and the title's glyph box: a title's first line sits a font's ascent
  // below its anchor, and fonts differ between machines by a few px (with DejaVu alone, 2 px left a
  // two-line title 1 px under the bar), so the gap is kept wider than any one font's slack
  const CLEAR = 8;
  const AUTHORED_TITLE = 40; // px at the top that an authored title takes
  const TITLE_SIZE = 15; // px: a phone's title font
  const SUBTITLE_SIZE = 13; // px: a phone's subplot titles
  const EM = 0.55; // the house font's average character width, in em
  const CELL_PAD = 8; // px of padding each side of a table cell's text (plotly's)
  const LABEL_COLUMN = 84; // px: the least a table's column of row titles gets beside wrapped texts
  const AXIS = /^[xy]axis\d*$/;

  const toDark = new Map(Object.entries(THEME.colors).map(([l, d]) => [l.toLowerCase(), d]));
  const prefersDark = window.matchMedia("(prefers-color-scheme: dark)");

  /** The page's theme. In auto mode the theme's script sets data-theme only after the page has
   *  loaded, so the system's preference is read directly. */
  function pageTheme() {
    const root = document.documentElement;
    if (root.dataset.mode === "auto") return prefersDark.matches ? "dark" : "light";
    return root.dataset.theme === "dark" ? "dark" : "light";
  }

  const clone = (value) => JSON.parse(JSON.stringify(value));
  const isColorKey = (key) => /colou?rs?$/i.test(key || "");
  const mapColor = (value) => (typeof value === "string" && toDark.get(value.toLowerCase())) || value;

  /** Every colour the map knows replaced by its dark twin, in place; the template is left alone. */
  function darken(value, key) {
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        if (v && typeof v === "object") darken(v, key);
        else if (isColorKey(key)) value[i] = mapColor(v);
      });
    } else if (value && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) {
        if (k === "template") continue;
        if (v && typeof v === "object") darken(v, k);
        else if (isColorKey(k)) value[k] = mapColor(v);
      }
    }
    return value;
  }

  /** Greedy word wrap into lines of at most n characters; a longer word is cut. */
  function wrapWords(text, n) {
    n = Math.max(1, n);
    const lines = [];
    let line = "";
    for (const word of text.split(" ")) {
      const joined = line ? line + " " + word : word;
      if (joined.length <= n) { line = joined; continue; }
      if (line) lines.push(line);
      for (line = word; line.length > n; line = line.slice(n)) lines.push(line.slice(0, n));
    }
    if (line || !lines.length) lines.push(line);
    return lines;
  }

  const oneLine = (text) => String(text).replace(/<br>/gi, " ");
  const titleText = (title) => (typeof title === "string" ? title : (title && title.text) || "");
  const lineCount = (html) => String(html).split(/<br>/i).length;

  /** The title, in place, at the left below the mode bar, wrapped to the width (in a smaller font
   *  on a phone); the figure grows by the room that takes beyond the authored title's. */
  function placeTitle(layout, width) {
    const title = titleText(layout.title);
    if (!title) return;
    const size = width < NARROW ? TITLE_SIZE : Math.round(THEME.templates.light.layout.font.size * 1.4);
    const lines = wrapWords(oneLine(title), Math.floor((width - 16) / (size * EM)));
    const authored = typeof layout.title === "object" ? layout.title : {};
    layout.title = Object.assign({}, authored, {
      text: lines.join("<br>"), font: Object.assign({}, authored.font, { size }),
      x: 0, xanchor: "left", xref: "container", y: 1, yanchor: "top", yref: "container",
      pad: { t: MODEBAR + CLEAR + (lines.length > 1 ? 14 : 3), l: 8 }, automargin: false });
    const grow = Math.max(0, MODEBAR + CLEAR + 8 + Math.round(lines.length * size * 1.25) - AUTHORED_TITLE);
    const margin = Object.assign({}, THEME.templates.light.layout.margin, layout.margin);
    layout.margin = Object.assign(margin, { t: margin.t + grow });
    layout.height = (layout.height || 450) + grow;
  }

  /** The phone layout, in place: legend, axis and subplot titles, margins, and the height grown
   *  by what they add, so that the plot keeps its size. */
  function phone(data, layout, width) {
    const base = THEME.templates.light.layout;
    const font = (layout.font && layout.font.size) || base.font.size;
    const margin = Object.assign({}, base.margin, layout.margin);
    margin.l = Math.min(margin.l, 60);
    margin.r = Math.min(margin.r, 20);
    const height = layout.height || 450;
    let added = 0;
    const grow = (px) => { margin.t += px; added += px; };

    // plotly draws a legend where two traces could be in it, a slider's hidden steps included
    const listed = data.filter((t) => t.showlegend !== false && t.type !== "table");
    const legend = layout.legend || {};
    const onTop = legend.orientation === "h" && (legend.y === undefined || legend.y > 1);
    if (!onTop && layout.showlegend !== false && (listed.length > 1 || layout.showlegend === true)) {
      const size = (legend.font && legend.font.size) || font; // under the plot, in rows
      const shown = listed.filter((t) => t.visible !== false);
      let rows = 1, used = 0;
      for (const t of shown) {
        const w = String(t.name || "").length * size * EM + 44;
        if (used && used + w > width - 8) { rows += 1; used = 0; }
        used += w;
      }
      const legendHeight = Math.round(rows * (size + 10) + 6);
      layout.legend = Object.assign({}, legend, { orientation: "h", x: 0, xanchor: "left", xref: "container",
        y: 0, yanchor: "bottom", yref: "container" });
      margin.b += legendHeight;
      added += legendHeight;
    }

    const plotWidth = width - margin.l - margin.r, plotHeight = height + added - margin.t - margin.b;
    const titleSize = Math.round(font * 1.2); // plotly's axis title font
    let below = 0; // px that wrapped titles of the bottom x axes add under the plot
    for (const [k, axis] of Object.entries(layout)) {
      if (!AXIS.test(k) || !axis || !titleText(axis.title)) continue;
      const domain = axis.domain || [0, 1];
      const length = (domain[1] - domain[0]) * (k[0] === "x" ? plotWidth : plotHeight);
      const lines = wrapWords(oneLine(titleText(axis.title)), Math.max(8, Math.floor(length / (titleSize * EM))));
      const authored = typeof axis.title === "object" ? axis.title : {};
      layout[k] = Object.assign({}, axis, { title: Object.assign({}, authored, { text: lines.join("<br>") }) });
      const anchor = layout[`yaxis${String(axis.anchor || "y").slice(1)}`];
      if (k[0] === "x" && (!anchor || !anchor.domain || anchor.domain[0] < 0.01)) {
        below = Math.max(below, Math.round((lines.length - 1) * titleSize * 1.3));
      }
    }
    if (below && Array.isArray(layout.sliders)) { // a slider hangs below the plot: down past the title
      layout.sliders = layout.sliders.map((s) => Object.assign({}, s, {
        pad: Object.assign({}, s.pad, { t: ((s.pad && s.pad.t) || 0) + below }) }));
      margin.b += below;
      added += below;
    }
    if (Array.isArray(layout.annotations)) { // subplot titles wrapped to their subplot's width
      const domains = Object.entries(layout).filter(([k, ax]) => k[0] === "x" && AXIS.test(k) && ax && ax.domain)
        .map(([, ax]) => ax.domain);
      let extra = 0;
      layout.annotations = layout.annotations.map((a) => {
        if (!a || a.showarrow !== false || a.xref !== "paper" || !a.text) return a;
        const domain = domains.find((d) => d[0] <= a.x && a.x <= d[1]) || [0, 1];
        const size = Math.min((a.font && a.font.size) || SUBTITLE_SIZE, SUBTITLE_SIZE);
        const lines = wrapWords(oneLine(a.text), Math.max(8, Math.floor(((domain[1] - domain[0]) * plotWidth) / (size * EM))));
        if (a.y >= 1 && a.yanchor === "bottom") extra = Math.max(extra, Math.round((lines.length - 1) * size * 1.3));
        return Object.assign({}, a, { text: lines.join("<br>"), font: Object.assign({}, a.font, { size }) });
      });
      grow(extra);
    }
    layout.margin = margin;
    layout.height = height + added;
  }

  const canvas = document.createElement("canvas").getContext("2d");
  function charWidth(size, family) {
    canvas.font = `${size}px ${family}`;
    return canvas.measureText("M".repeat(20)).width / 20;
  }

  /** A table's column widths in px from their ratios; a column of row titles (no texts to
   *  rewrap) gets at least LABEL_COLUMN px, taken from the others. */
  function columnWidths(ratios, texts, tableWidth) {
    const total = ratios.reduce((a, b) => a + b, 0);
    const widths = ratios.map((r) => (tableWidth * r) / total);
    const labels = texts.map((t, j) => !t && widths[j] < LABEL_COLUMN);
    const fixed = labels.filter(Boolean).length * LABEL_COLUMN;
    const rest = ratios.reduce((sum, r, j) => sum + (labels[j] ? 0 : r), 0);
    if (!fixed || !rest || fixed >= tableWidth / 2) return widths;
    return ratios.map((r, j) => (labels[j] ? LABEL_COLUMN : ((tableWidth - fixed) * r) / rest));
  }

  /** Table texts lmlab wrapped for a wider column, wrapped again to fit theirs; the figure grows
   *  by the lines that adds. In place. */
  function fitTables(data, layout, width) {
    const margin = Object.assign({}, THEME.templates.light.layout.margin, layout.margin);
    const plotWidth = width - margin.l - margin.r;
    let grow = 0;
    for (const trace of data) {
      const meta = trace.meta;
      if (trace.type !== "table" || !meta || !meta.wrap || !meta.texts || !trace.cells) continue;
      const font = trace.cells.font || {};
      const size = font.size || 12;
      const domain = (trace.domain && trace.domain.x) || [0, 1];
      const ratios = meta.texts.map((_, j) => (Array.isArray(trace.columnwidth) && trace.columnwidth[j]) || 1);
      const widths = columnWidths(ratios, meta.texts, (domain[1] - domain[0]) * plotWidth);
      const perChar = charWidth(size, font.family || "monospace");
      const fits = widths.map((w) => Math.max(6, Math.floor((w - 2 * CELL_PAD) / perChar) - 1));
      const before = trace.cells.values;
      const after = before.map((column, j) => (meta.texts[j] && fits[j] < meta.wrap
        ? meta.texts[j].map((t) => t.split("\n").map((l) => (l ? wrapWords(l, fits[j]).join("<br>") : "")).join("<br>"))
        : column));
      trace.cells.values = after;
      if (Array.isArray(trace.columnwidth)) trace.columnwidth = widths;
      // a cell without line breaks plotly wraps itself: its lines are estimated
      const linesOf = (cell, j) => Math.max(lineCount(cell),
        /<br>/i.test(cell) ? 1 : Math.ceil(String(cell).replace(/<[^>]*>/g, "").length / fits[j]));
      let lines = 0;
      for (let row = 0; row < (before[0] || []).length; row++) {
        lines += Math.max(...after.map((c, j) => linesOf(c[row], j))) - Math.max(...before.map((c) => lineCount(c[row])));
      }
      const share = trace.domain && trace.domain.y ? trace.domain.y[1] - trace.domain.y[0] : 1;
      grow = Math.max(grow, (lines * size * 1.4) / share);
    }
    if (grow > 0) layout.height = (layout.height || 450) + Math.round(grow);
  }

  /** The figure as authored, dressed for a theme and a width. */
  function dress(authored, theme, width) {
    const data = clone(authored.data), layout = clone(authored.layout);
    if (theme === "dark") {
      darken(data);
      darken(layout);
      layout.template = THEME.templates.dark;
    }
    // draw at the width the layout was fitted to: plotly.react keeps an autosized figure's old
    // width when its container has grown since (a scrollbar gone), and wrapped texts would not fit
    if (width > 0 && layout.width === undefined) layout.width = width;
    if (width > 0) placeTitle(layout, width);
    if (width > 0 && width < NARROW) phone(data, layout, width);
    if (width > 0) fitTables(data, layout, width);
    return { data, layout };
  }

  /** A text's glyph box on the page, as four corners through its transforms: an angled tick label
   *  is the rotated rectangle it covers, not the upright box around it. */
  function corners(text) {
    const b = text.getBBox(), m = text.getScreenCTM();
    return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
      .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
  }

  /** Whether two such boxes share more than `slack` px across every side (separating axes). */
  function overlap(p, q, slack) {
    return [p, q].every((poly) => poly.every(([x0, y0], i) => {
      const [x1, y1] = poly[(i + 1) % 4], length = Math.hypot(x1 - x0, y1 - y0);
      if (length < 1e-6) return true;
      const along = (pts) => pts.map(([x, y]) => (x * (y0 - y1) + y * (x1 - x0)) / length);
      const a = along(p), b = along(q);
      return Math.min(Math.max(...a), Math.max(...b)) - Math.max(Math.min(...a), Math.min(...b)) > slack;
    }));
  }

  /** Whether any two of one axis's tick labels overlap in ink (their glyph boxes share over 3 px),
   *  angled ones too: plotly angles labels that do not fit, but cannot space given tick values. */
  function overlapping(labels) {
    const boxes = labels.filter((t) => t.getBoundingClientRect().width > 0).map(corners);
    return boxes.some((b, i) => boxes.slice(i + 1).some((c) => overlap(b, c, 3)));
  }

  /** The relayout that thins every axis whose tick labels overlap: given tick values keep every
   *  other one; a log axis gets one tick a decade, then one every two, labelled 10², 10³; any other
   *  axis half as many ticks. */
  function declutter(gd) {
    const update = {}, full = gd._fullLayout;
    for (const layer of gd.querySelectorAll("g.xaxislayer-above, g.yaxislayer-above")) {
      const horizontal = layer.classList.contains("xaxislayer-above");
      const labels = [...layer.querySelectorAll(":scope > g > text")]; // g.xtick, g.x2tick, …
      const subplot = layer.closest("g.subplot");
      const id = subplot && [...subplot.classList].find((c) => /^x\d*y\d*$/.test(c));
      if (!id || labels.length < 2 || !overlapping(labels)) continue;
      const axisId = horizontal ? id.match(/^x\d*/)[0] : id.match(/y\d*$/)[0];
      const name = `${axisId[0]}axis${axisId.slice(1)}`, axis = full && full[name];
      if (!axis || Object.keys(update).some((k) => k.startsWith(name + "."))) continue;
      if (Array.isArray(axis.tickvals) && axis.tickvals.length > 2) {
        const keep = (_, i) => i % 2 === 0;
        update[`${name}.tickvals`] = axis.tickvals.filter(keep);
        if (Array.isArray(axis.ticktext)) update[`${name}.ticktext`] = axis.ticktext.filter(keep);
      } else if (axis.type === "log") {
        const dtick = Number(axis.dtick);
        update[`${name}.dtick`] = Number.isFinite(dtick) && dtick >= 1 ? Math.round(dtick) + 1 : 1;
        update[`${name}.exponentformat`] = "power";
      } else if (axis.type !== "category" && axis.type !== "multicategory") {
        update[`${name}.nticks`] = Math.max(2, Math.floor(labels.length / 2));
      }
    }
    return update;
  }

  /** Redraws until no axis's tick labels overlap (three tries at most). */
  function tidy(gd, tries = 3) {
    const update = declutter(gd);
    if (!tries || !Object.keys(update).length) return Promise.resolve(gd);
    return Plotly.relayout(gd, update).then(() => tidy(gd, tries - 1));
  }

  /** plotly.py gives a figure's height to the div around it too: kept at the dressed height. */
  function setWrapperHeight(gd, layout, authored) {
    if (gd.parentElement && authored.wrapperHeight) gd.parentElement.style.height = `${layout.height}px`;
  }

  const figures = new Set();

  /** Redraw a figure if the theme or its width has changed since it was drawn; one at a time. */
  function render(gd) {
    const state = gd._lmlab;
    state.queue = state.queue.then(() => {
      const theme = pageTheme(), width = gd.clientWidth;
      if (!gd.data || !width || (state.theme === theme && Math.abs(state.width - width) < 4)) return;
      Object.assign(state, { theme, width });
      const { data, layout } = dress(state.authored, theme, width);
      data.forEach((t, i) => { if (gd.data[i] && "visible" in gd.data[i]) t.visible = gd.data[i].visible; });
      (layout.sliders || []).forEach((s, i) => { s.active = gd.layout.sliders[i].active; });
      setWrapperHeight(gd, layout, state.authored);
      return Plotly.react(gd, data, layout, state.config).then(() => tidy(gd));
    }).catch((err) => console.warn("figure-theme.js: a figure could not be redrawn", err));
  }

  const newPlot = Plotly.newPlot;
  Plotly.newPlot = function (gd, data, layout, config) {
    const el = typeof gd === "string" ? document.getElementById(gd) : gd;
    if (!el || !Array.isArray(data) || el._lmlab) return newPlot.apply(this, arguments);
    const authored = { data: clone(data), layout: clone(layout || {}),
                       wrapperHeight: el.parentElement && el.parentElement.style.height };
    const state = { authored, config, theme: pageTheme(), width: el.clientWidth };
    el._lmlab = state;
    figures.add(el);
    if (document.readyState !== "loading") label(el);
    const dressed = dress(authored, state.theme, state.width);
    setWrapperHeight(el, dressed.layout, authored);
    const drawn = newPlot.call(this, el, dressed.data, dressed.layout, config).then(tidy);
    state.queue = drawn.catch(() => {});
    return drawn;
  };

  /** A chart's text alternative. In a captioned figure (book/_ext/glued_figure.py, or Sphinx's) the
   *  <figure> is named by its caption, the words a reader sees; any other chart is named by its title
   *  and marked as a figure. Not role="img", which would hide from a screen reader the buttons the
   *  chart holds (its mode bar). A caption follows its chart in the page, so the charts drawn while
   *  the page loads are labelled once the whole document is there. */
  function label(gd) {
    const figure = gd.closest("figure"), caption = figure && figure.querySelector("figcaption");
    if (caption && caption.textContent.trim()) return;
    const html = oneLine(titleText(gd._lmlab.authored.layout.title));
    const title = new DOMParser().parseFromString(html, "text/html").body.textContent.trim();
    if (!title) return;
    gd.setAttribute("role", "figure");
    gd.setAttribute("aria-label", title);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => figures.forEach(label));

  const renderAll = () => figures.forEach(render);
  new MutationObserver(renderAll).observe(document.documentElement,
    { attributes: true, attributeFilter: ["data-theme", "data-mode"] });
  prefersDark.addEventListener("change", renderAll);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(renderAll, 200);
  });
})();
