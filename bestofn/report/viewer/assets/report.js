"use strict";
// bestofn report.html: renders the embedded data (gzip + base64, decoded with the browser's
// DecompressionStream). Every string from the data goes into the page as a text node or an
// attribute value (never as HTML), so questions, solutions and documents show as written.
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  function build(el, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.setAttribute("class", v);
      else if (k === "style") Object.assign(el.style, v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }
  const h = (tag, attrs, ...kids) => build(document.createElement(tag), attrs, kids);
  const s = (tag, attrs, ...kids) => build(document.createElementNS(SVG, tag), attrs, kids);

  async function decode(el) {
    const b64 = el.textContent.trim();
    let bytes;
    if (Uint8Array.fromBase64) bytes = Uint8Array.fromBase64(b64);
    else {
      const bin = atob(b64);
      bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    }
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  const pct = (x, d = 2) => (x === null || x === undefined ? "—" : (100 * x).toFixed(d) + "%");
  const fix = (x, d = 3) => (x === null || x === undefined ? "—" : Number(x).toFixed(d));
  const ans = (a) => (a === null || a === undefined ? "(none)" : a);
  const colour = (p) => `hsl(${Math.round(120 * Math.max(0, Math.min(1, p)))}, 70%, 82%)`;
  const chip = (p, extra) => p === null || p === undefined
    ? h("span", { class: "p", title: "not scored" }, "—")
    : h("span", { class: "p", "data-p": String(p), title: "P(+) = " + p,
                  style: { background: colour(p) }, ...(extra || {}) }, fix(p));
  const table = (head, rows, attrs) => h("table", attrs || {},
    head ? h("thead", {}, h("tr", {}, head.map((c) => (c instanceof Node ? c : h("th", {}, c))))) : null,
    h("tbody", {}, rows));
  const num = (x, attrs) => h("td", { class: "num", ...(attrs || {}) }, x);

  const S = { idx: null, rep: null, cache: new Map(), shown: [], byId: new Map(), current: -1,
              hay: null, f: { wrong: false, disagree: false, prmMaj: false, low: false,
                              below: 0.5, source: "", text: "", sort: "file", chosen: "" } };
  const label = (m) => S.idx.labels[m] || m;
  const mi = (m) => S.idx.methods.indexOf(m);

  // ---- filters: each one a predicate over a question row -------------------------------
  const PRED = {
    wrong: (q) => q.ok[mi(S.f.chosen)] === 0,
    disagree: (q) => new Set(S.idx.headline.map((m) => JSON.stringify(q.pick[mi(m)]))).size > 1,
    prmMaj: (q) => mi("prm_min") >= 0 && q.pick[mi("prm_min")] !== q.pick[mi("majority")],
    low: (q) => q.prm_min !== null && q.prm_min < S.f.below,
    source: (q) => q.source === S.f.source,
    text: (q, i) => S.hay[i].includes(S.f.text.toLowerCase()),
  };
  const active = () => Object.keys(PRED).filter((k) => S.f[k] !== false && S.f[k] !== "");
  const count = (k) => S.idx.questions.reduce((n, q, i) => n + (PRED[k](q, i) ? 1 : 0), 0);

  function filterBar() {
    const f = S.f, box = $("filters");
    const cnt = (k) => h("span", { class: "count", id: "count-" + k });
    const check = (k, text, ...more) => h("label", {}, h("input", {
      type: "checkbox", id: "f-" + k, onchange: (e) => { f[k] = e.target.checked; update(); } }),
      text, ...more, cnt(k));
    const methods = S.idx.methods.filter((m) => S.idx.questions.some((q) => q.ok[mi(m)] !== null));
    const chosen = h("select", { id: "f-chosen", onchange: (e) => { f.chosen = e.target.value; update(); } },
      (methods.length ? methods : S.idx.methods).map((m) => h("option", { value: m, selected: m === f.chosen }, label(m))));
    const sources = [...new Set(S.idx.questions.map((q) => q.source))].sort();
    const srcSel = h("select", { id: "f-source", onchange: (e) => { f.source = e.target.value; update(); } },
      h("option", { value: "" }, "all sources"),
      sources.map((x) => h("option", { value: x }, (x || "(none)") + " (" +
        S.idx.questions.filter((q) => q.source === x).length + ")")));
    const hasPrm = mi("prm_min") >= 0;
    box.replaceChildren(
      check("wrong", "wrong:", chosen),
      check("disagree", "methods disagree"),
      hasPrm ? check("prmMaj", "PRM pick ≠ majority") : null,
      hasPrm ? check("low", "PRM min of its pick <", h("input", {
        type: "number", id: "f-below", step: "0.05", min: "0", max: "1", value: String(f.below),
        oninput: (e) => { f.below = Number(e.target.value); update(); } })) : null,
      h("label", {}, "source", srcSel, cnt("source")),
      h("label", {}, h("input", { type: "search", id: "f-text", placeholder: "search id, question, options",
        oninput: (e) => { f.text = e.target.value; update(); } }), cnt("text")),
      h("label", {}, "sort", h("select", { id: "f-sort", onchange: (e) => { f.sort = e.target.value; update(); } },
        h("option", { value: "file" }, "file order"),
        hasPrm ? h("option", { value: "prm_min" }, "lowest PRM min first") : null,
        h("option", { value: "id" }, "question id"))));
  }

  function update() {
    for (const k of Object.keys(PRED)) {
      const el = $("count-" + k);
      if (el) el.textContent = (k === "source" && !S.f.source) || (k === "text" && !S.f.text)
        ? "" : String(count(k));
    }
    const on = active();
    let shown = S.idx.questions.filter((q, i) => on.every((k) => PRED[k](q, i)));
    if (S.f.sort === "prm_min") shown = [...shown].sort((a, b) =>
      (a.prm_min ?? Infinity) - (b.prm_min ?? Infinity) || a.i - b.i);
    else if (S.f.sort === "id") shown = [...shown].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    S.shown = shown;
    $("listinfo").replaceChildren(h("span", { id: "shown" }, String(shown.length)),
      ` of ${S.idx.questions.length} questions shown`);
    const c = mi(S.f.chosen);
    const list = $("list"), frag = document.createDocumentFragment();
    for (const q of shown) {
      const ok = q.ok[c];
      frag.append(h("li", { "data-i": q.i, class: q.i === S.current ? "active" : null,
                            onclick: () => go(q.i) },
        h("span", { class: "qid", title: q.stem.slice(0, 300) }, q.id,
          q.source ? h("span", { class: "src" }, q.source) : null),
        h("span", { class: ok === 1 ? "ok" : ok === 0 ? "bad" : "muted",
                    title: label(S.f.chosen) + " picked " + ans(q.pick[c]) + ", gold " + ans(q.gold) },
          ans(q.pick[c]), ok === 1 ? " ✓" : ok === 0 ? " ✗" : ""),
        chip(q.prm_min)));
    }
    list.replaceChildren(frag);
  }

  // ---- routing and keys -----------------------------------------------------------------
  const go = (i) => { S.current = i; location.hash = "q=" + encodeURIComponent(S.idx.questions[i].id); };
  function route() {
    const m = location.hash.match(/^#q=(.*)$/);
    const i = m ? S.byId.get(decodeURIComponent(m[1])) : undefined;
    if (i === undefined) { S.current = -1; mark(); overview(); return; }
    S.current = i; mark(); showQuestion(i);
  }
  function mark() {
    for (const li of $("list").querySelectorAll("li.active")) li.classList.remove("active");
    const li = $("list").querySelector(`li[data-i="${S.current}"]`);
    if (li) { li.classList.add("active"); li.scrollIntoView({ block: "nearest" }); }
  }
  function step(d) {
    if (!S.shown.length) return;
    const at = S.shown.findIndex((q) => q.i === S.current);
    const next = at < 0 ? (d > 0 ? 0 : S.shown.length - 1) : Math.max(0, Math.min(S.shown.length - 1, at + d));
    go(S.shown[next].i);
  }
  document.addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j" || e.key === "ArrowDown") { step(1); e.preventDefault(); }
    else if (e.key === "k" || e.key === "ArrowUp") { step(-1); e.preventDefault(); }
    else if (e.key === "Escape") { location.hash = ""; }
  });

  // ---- overview -------------------------------------------------------------------------
  function overview() {
    const r = S.rep, c = r.counts, st = r.settings;
    const docs = { true: "yes", false: "no" }[String(st.documents)] || "not recorded";
    const lvl = Math.round(100 * r.ci_level);
    const out = [h("h1", {}, "Benchmark report"),
      table(["setting", "value"], [["dataset", st.dataset], ["policy", st.policy], ["PRM", st.prm],
        ["ORM", st.orm], ["solutions per question (N)", st.n], ["seed", st.seed],
        ["documents in the verifier prompt", docs], ...(r.rules ? [["selection rules", r.rules]] : [])]
        .map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v === null || v === undefined ? "—" : v)))),
      h("p", { id: "counts" }, h("b", { id: "n-graded" }, String(c.graded)), " questions graded (",
        h("span", { id: "n-questions" }, String(c.questions)), " in the results, ", String(c.ungraded),
        " without a gold answer, ", String(c.failed), " failed); ", String(c.solutions), " solutions, ",
        String(c.unscored), " unscored by the PRM, ", String(c.orm_unscored), " by the ORM, ",
        String(c.no_answer), " without an extracted answer."),
      h("h2", {}, "Accuracy"),
      h("p", { class: "note" }, `Over the graded questions; ${lvl}% percentile-bootstrap interval from ${r.bootstrap} resamples of the questions.`),
      table(["method", h("th", { class: "num" }, "accuracy"), h("th", { class: "num" }, `${lvl}% CI`)],
        Object.entries(r.accuracy).map(([m, v]) => h("tr", { "data-method": m }, h("td", {}, label(m)),
          num(pct(v), { class: "num acc" }), num(r.ci[m] && r.ci[m][0] !== null
            ? `${pct(r.ci[m][0])} – ${pct(r.ci[m][1])}` : "—"))), { id: "accuracy" }),
      curves(r.curves), compute(r), adaptiveSummary(r), searchSummary(r), bySource(r), failures(r)];
    $("main").replaceChildren(...out.filter(Boolean));
    $("main").scrollTop = 0;
  }

  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
                   "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939"];
  function curves(c) {
    if (!c || !c.ns || !c.ns.length) return null;
    const head = S.idx.headline.concat(["oracle", "single"]);
    const ms = head.filter((m) => c.methods[m]);
    const W = 720, H = 320, L = 48, R = 200, T = 14, B = 36;
    const xs = c.ns.map((n) => Math.log2(n)), x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
    const vals = ms.flatMap((m) => [...c.methods[m].mean, ...c.methods[m].lo, ...c.methods[m].hi]).filter((v) => v !== null);
    let y0 = Math.max(0, Math.floor(10 * Math.min(...vals)) / 10), y1 = Math.min(1, Math.ceil(10 * Math.max(...vals)) / 10);
    if (!(y1 > y0)) { y0 = Math.max(0, y0 - 0.1); y1 = Math.min(1, y0 + 0.2); }
    const ticks = Math.round(10 * (y1 - y0));
    const X = (n) => L + (W - L - R) * (Math.log2(n) - x0) / (x1 - x0);
    const Y = (v) => T + (H - T - B) * (1 - (v - y0) / Math.max(y1 - y0, 1e-9));
    const g = [s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#889" }),
               s("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#889" })];
    for (const n of c.ns) g.push(s("text", { x: X(n), y: H - B + 14, "text-anchor": "middle" }, String(n)));
    for (let k = 0; k <= ticks; k++) {
      const v = y0 + (y1 - y0) * k / ticks;
      g.push(s("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), stroke: "#eee" }),
             s("text", { x: L - 4, y: Y(v) + 4, "text-anchor": "end" }, (100 * v).toFixed(0)));
    }
    g.push(s("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "N (solutions per question, log scale)"),
           s("text", { x: 12, y: T + (H - T - B) / 2, transform: `rotate(-90 12 ${T + (H - T - B) / 2})`, "text-anchor": "middle" }, "accuracy (%)"));
    ms.forEach((m, k) => {
      const col = PALETTE[k % PALETTE.length], v = c.methods[m], dash = m === "oracle" || m === "single" ? "5 4" : null;
      if (v.lo.every((x) => x !== null) && v.hi.every((x) => x !== null)) {
        const pts = c.ns.map((n, j) => `${X(n)},${Y(v.hi[j])}`).concat(c.ns.map((n, j) => `${X(n)},${Y(v.lo[j])}`).reverse());
        g.push(s("polygon", { points: pts.join(" "), fill: col, opacity: "0.12" }));
      }
      g.push(s("polyline", { points: c.ns.map((n, j) => `${X(n)},${Y(v.mean[j])}`).join(" "), fill: "none",
                             stroke: col, "stroke-width": "2", "stroke-dasharray": dash, "data-method": m }),
             s("line", { x1: W - R + 10, x2: W - R + 30, y1: T + 14 * k + 6, y2: T + 14 * k + 6, stroke: col, "stroke-width": "2", "stroke-dasharray": dash }),
             s("text", { x: W - R + 34, y: T + 14 * k + 10 }, label(m)));
    });
    return h("div", {}, h("h2", {}, "Accuracy vs N"),
      h("p", { class: "note" }, `Mean over ${c.draws} random subsets per N; bands: the ${Math.round(100 * c.level)}% range over draws.`),
      s("svg", { class: "chart", id: "curves", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" }, g));
  }

  function compute(r) {
    const c = r.compute;
    if (!c) return null;
    const q = Math.max(r.counts.questions, 1), fmt = (x) => Number(x).toLocaleString("en-US");
    const rows = [["samples_drawn", "samples kept"], ["samples_aborted", "samples aborted or thrown away"],
      ["tokens_generated", "tokens generated"], ["tokens_aborted", "of which thrown away"],
      ["prm_tokens_computed", "PRM tokens computed"]].map(([k, t]) =>
      h("tr", {}, h("td", {}, t), num(fmt(c[k])), num((c[k] / q).toFixed(1))));
    const secs = [["startup_s", "engine start-up"], ["sample_s", "sampling"], ["score_s", "scoring"],
      ["select_s", "selection and report"]].map(([k, t]) =>
      h("tr", {}, h("td", {}, t), num(c[k] === null || c[k] === undefined ? "—" : Number(c[k]).toFixed(1) + " s"), num("")));
    return h("div", {}, h("h2", {}, "Compute"),
      table(["", h("th", { class: "num" }, "total"), h("th", { class: "num" }, "per question")], [...rows, ...secs], { id: "compute" }));
  }

  function adaptiveSummary(r) {
    const ad = r.adaptive, curves = r.adaptive_curves;
    if (!ad && !curves) return null;
    const out = [h("h2", {}, "Adaptive compute")];
    if (ad) out.push(h("p", { id: "adaptive-summary" }, "Stopping rule ", h("code", {}, ad.rule), ", ",
      ad.round_size === "streamed" ? "streamed sample by sample" : `rounds of ${ad.round_size}`, ": ",
      `${ad.samples} samples drawn of the fixed-N budget ${ad.budget} (${(100 * ad.samples / Math.max(ad.budget, 1)).toFixed(1)}%), ` +
      `${Number(ad.mean_samples).toFixed(2)} per question (at most ${ad.n_max}).`));
    if (curves) {
      const row = (name, param, p) => h("tr", {}, h("td", {}, name), h("td", {}, param), num(Number(p.mean_samples).toFixed(2)),
        num(pct(p.accuracy)), num(`${pct(p.lo)} – ${pct(p.hi)}`));
      out.push(table(["curve", "parameter", h("th", { class: "num" }, "mean samples"), h("th", { class: "num" }, "accuracy"), h("th", { class: "num" }, "95% CI")],
        [...curves.fixed.map((p) => row(`fixed N (${p.method})`, `N=${p.param}`, p)),
         ...curves.rules.flatMap((c) => c.points.map((p) => row(`${c.rule} (${c.method})`, `${c.param}=${p.param}`, p)))]));
    }
    return h("div", {}, out);
  }

  function searchSummary(r) {
    const se = r.search, vs = r.search_vs_best_of_n;
    if (!se && !vs) return null;
    const out = [h("h2", {}, "Search")];
    if (se) out.push(h("p", { id: "search-summary" }, "Strategy ", h("code", {}, se.strategy),
      `, N = ${se.n}: ${se.finished} finished candidates, ${se.pruned} pruned; ${se.tokens_generated} tokens generated, ${se.prm_tokens_computed} PRM tokens computed.`));
    if (vs) {
      const th = (t) => h("th", { class: "num" }, t);
      out.push(h("p", { class: "note" }, `Against the best-of-N run ${vs.best_of_n.run} (its first k of ${vs.best_of_n.n} samples per question) at the same mean generated tokens; ${Math.round(100 * vs.level)}% intervals.`),
        table(["run", "strategy", th("mean tokens"), ...vs.methods.map((m) => th(label(m))), th("best-of-N k (tokens)"),
               ...vs.methods.map((m) => th("best-of-N at budget: " + label(m)))],
          vs.runs.map((x) => {
            const at = x.best_of_n_at_budget || {};
            return h("tr", { "data-run": x.run }, h("td", {}, x.run), h("td", {}, x.strategy || "—"), num(Number(x.mean_tokens).toFixed(1)),
              vs.methods.map((m) => num(x[m] ? `${pct(x[m].accuracy)} [${pct(x[m].lo)}, ${pct(x[m].hi)}]` : "—")),
              num(at.k === null || at.k === undefined ? "—" : `${at.k} (${Number(at.mean_tokens).toFixed(0)})`),
              vs.methods.map((m) => num(at[m] && at[m].accuracy !== null ? pct(at[m].accuracy) : "—")));
          }), { id: "search-vs-bon" }));
    }
    return h("div", {}, out);
  }

  function bySource(r) {
    const src = Object.entries(r.by_source || {});
    if (src.length < 2) return null;
    const ms = S.idx.headline.filter((m) => m in r.accuracy).concat(["oracle", "single"].filter((m) => m in r.accuracy));
    return h("div", {}, h("h2", {}, "By source"),
      table(["source", h("th", { class: "num" }, "questions"), ...ms.map((m) => h("th", { class: "num" }, label(m)))],
        src.map(([name, v]) => h("tr", { "data-source": name }, h("td", {}, name), num(String(v.n_questions)),
          ms.map((m) => num(m in v.accuracy ? pct(v.accuracy[m], 1) : "—", {
            title: v.ci[m] ? `${pct(v.ci[m][0])} – ${pct(v.ci[m][1])}` : null })))), { id: "by-source" }));
  }

  function failures(r) {
    if (!r.failures || !r.failures.length) return null;
    return h("div", {}, h("h2", {}, `Failed questions (${r.failures.length})`),
      table(["question", "stage", "error"], r.failures.map((f) => {
        const d = typeof f === "object" && f ? f : { error: String(f) };
        return h("tr", {}, h("td", {}, d.question_id || d.id || "?"), h("td", {}, d.stage || ""),
          h("td", {}, String(d.error || "").trim().split("\n").pop().slice(0, 200)));
      })));
  }

  // ---- question view --------------------------------------------------------------------
  async function record(i) {
    if (!S.cache.has(i)) {
      if (document.readyState === "loading")
        await new Promise((ok) => document.addEventListener("DOMContentLoaded", ok, { once: true }));
      S.cache.set(i, await decode($("q" + i)));
    }
    return S.cache.get(i);
  }

  async function showQuestion(i) {
    const row = S.idx.questions[i];
    $("main").replaceChildren(h("p", { class: "muted" }, "loading question " + row.id + "…"));
    const d = await record(i);
    if (S.current !== i) return;
    const at = S.shown.findIndex((q) => q.i === i);
    const picked = {};
    for (const [m, p] of Object.entries(d.picks)) if (p.index !== null && p.index !== undefined) (picked[p.index] ||= []).push(m);
    const view = h("div", { id: "question", "data-id": d.id },
      h("div", { class: "nav" }, h("button", { onclick: () => step(-1) }, "← previous"),
        h("span", {}, at >= 0 ? `${at + 1} of ${S.shown.length} shown` : "not in the filtered list"),
        h("button", { onclick: () => step(1) }, "next →"),
        h("a", { href: "#q=" + encodeURIComponent(d.id) }, "link to this question"),
        h("a", { href: "#" }, "overview")),
      h("h1", {}, "Question ", h("span", { id: "qid" }, d.id), d.source ? h("span", { class: "badge" }, d.source) : null),
      h("div", { class: "stem", id: "stem" }, d.stem),
      Object.keys(d.options).length ? h("ul", { class: "options" }, Object.entries(d.options).map(([k, v]) =>
        h("li", { class: k === d.gold ? "gold" : null }, h("b", {}, k, ") "), v, k === d.gold ? h("span", { class: "badge gold" }, "gold") : null))) : null,
      h("p", {}, "Gold answer: ", h("b", { id: "gold" }, ans(d.gold))),
      d.compute ? h("p", { class: "note", id: "qcompute" }, "Compute: ", Object.entries(d.compute).map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`).join(", ")) : null,
      picks(d), d.adaptive ? adaptive(d.adaptive) : null, d.search ? searchTree(d) : null,
      solutions(d, picked), documents(d.documents));
    $("main").replaceChildren(view);
    $("main").scrollTop = 0;
  }

  function picks(d) {
    const head = Object.entries(d.picks).filter(([m]) => S.idx.headline.includes(m));
    const more = Object.entries(d.picks).filter(([m]) => !S.idx.headline.includes(m));
    return h("div", {}, h("h2", {}, "Each method's pick"), pickTable(head, "picks"),
      more.length ? h("details", {}, h("summary", {}, `other methods (${more.length})`), pickTable(more, "picks-more")) : null);
  }

  function pickTable(entries, id) {
    return table(["method", "pick", "", "score or vote weight"], entries.map(([m, p]) => {
        const w = p.weights.find(([a]) => a === p.answer);
        return h("tr", { "data-method": m }, h("td", {}, label(m)), h("td", { class: "pick" }, ans(p.answer)),
          h("td", { class: p.ok === true ? "ok" : p.ok === false ? "bad" : "muted" }, p.ok === true ? "✓" : p.ok === false ? "✗" : ""),
          h("td", {}, p.index !== null && p.index !== undefined ? `solution #${p.index}, ` : "",
            w ? fix(w[1]) : "", p.tied && p.tied.length > 1 ? ` (tie among ${p.tied.map(ans).join(", ")})` : "",
            p.reason ? " " + p.reason : ""));
      }), { id });
  }

  function adaptive(a) {
    const rows = [["rule", a.rule], ["samples drawn", `${a.samples} (min ${a.min_n}, max ${a.max_n})`],
      ["stopped because", { rule: "the rule settled", max_n: "max_n reached", unsettled: "the run ended before the rule settled" }[a.stopped_by] || a.stopped_by],
      ["votes", Object.entries(a.votes).map(([k, v]) => `${k}: ${v}`).join(", ") || "—"]];
    if (a.p_leader !== undefined) rows.push(["P(leader stays ahead)", fix(a.p_leader, 4)]);
    if (a.threshold !== undefined) rows.push(["threshold", fix(a.threshold, 4)]);
    if (a.margin !== undefined) rows.push(["PRM-weighted margin / samples left", `${fix(a.margin)} / ${a.remaining}`]);
    if (a.window !== undefined) rows.push(["last window", a.window.map(ans).join(", ") || "—"]);
    if (a.bar !== undefined) rows.push(["confidence bar / leader share", `${fix(a.bar)} / ${fix(a.share)}`]);
    if (a.error) rows.push(["error", a.error]);
    return h("div", { class: "box", id: "adaptive" }, h("h2", {}, "Adaptive stop point"),
      table(null, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))));
  }

  function searchTree(d) {
    const se = d.search, log = se.steps || [];
    const byLin = new Map();
    d.solutions.forEach((x, j) => { if (x.lineage !== undefined) byLin.set(String(x.lineage), j); });
    const nodes = new Map();
    const node = (lin) => {
      if (!nodes.has(lin)) nodes.set(lin, { lin, kids: [] });
      return nodes.get(lin);
    };
    const roots = [];
    for (const lin of byLin.keys()) {
      const parts = lin.split(".");
      let child = node(lin);
      for (let end = parts.length; end > 1; end -= 2) {
        const parent = node(parts.slice(0, end - 2).join("."));
        child.branch = parts[end - 2];
        if (!parent.kids.includes(child)) parent.kids.push(child);
        child = parent;
      }
      if (!roots.includes(child)) roots.push(child);
    }
    const show = (n) => {
      const j = byLin.get(n.lin), sol = j === undefined ? null : d.solutions[j];
      return h("li", { "data-lineage": n.lin }, h("code", {}, n.lin),
        n.branch !== undefined ? h("span", { class: "muted" }, ` branched at step ${n.branch}`) : null,
        sol ? h("span", {}, ` → solution #${j}, answer ${ans(sol.answer)}, P(+) per step: `, (sol.probs || []).map((p) => chip(p))) : null,
        n.kids.length ? h("ul", { class: "tree" }, n.kids.map(show)) : null);
    };
    return h("div", { class: "box", id: "search" }, h("h2", {}, "Search: step by step"),
      h("p", {}, "Strategy ", h("code", {}, se.strategy || "?"), `; ${se.tokens_generated ?? "?"} tokens generated, ${se.prm_tokens_computed ?? "?"} PRM tokens computed.`),
      table(["step", "live", "finished", "kept", "pruned", "next"].map((c) => h("th", { class: "num" }, c)),
        log.map((x) => h("tr", {}, ["step", "live", "finished", "kept", "pruned", "next"].map((k) => num(String(x[k] ?? "—"))))), { id: "search-steps" }),
      h("h3", {}, "Finished candidates by lineage"),
      h("p", { class: "note" }, "A child keeps its parent's steps up to the branch step; pruned candidates are counted per step above (the search log keeps no per-candidate scores for them)."),
      h("ul", { class: "tree", id: "search-tree" }, roots.map(show)));
  }

  function solutions(d, picked) {
    const groups = new Map();
    d.solutions.forEach((x, j) => {
      const k = x.answer === null || x.answer === undefined ? "\u0000" : x.answer;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(j);
    });
    const order = [...groups.entries()].sort((a, b) => b[1].length - a[1].length);
    const open = d.picks.prm_min && d.picks.prm_min.index !== null ? d.picks.prm_min.index : 0;
    const methodsFor = (a) => Object.entries(d.picks).filter(([, p]) => p.answer === a).map(([m]) => m);
    return h("div", { id: "solutions" }, h("h2", {}, `Solutions (${d.solutions.length}) by answer`),
      h("div", { class: "tools" }, h("button", { onclick: () => document.querySelectorAll("details.sol").forEach((e) => { e.open = true; }) }, "expand all"),
        h("button", { onclick: () => document.querySelectorAll("details.sol").forEach((e) => { e.open = false; }) }, "collapse all")),
      order.map(([k, js]) => {
        const a = k === "\u0000" ? null : k, ms = methodsFor(a);
        return h("div", { class: "group", "data-answer": ans(a) },
          h("div", { class: "ghead" }, h("span", {}, "answer ", ans(a)), h("span", { class: "votes" }, `${js.length} vote${js.length === 1 ? "" : "s"}`),
            a !== null && a === d.gold ? h("span", { class: "badge gold" }, "gold") : null,
            ms.length ? h("span", { class: "muted" }, "picked by: ", ms.map((m) => h("span", { class: "badge pick" }, label(m)))) : null),
          js.map((j) => solution(d, j, picked[j] || [], j === open)));
      }));
  }

  function solution(d, j, by, open) {
    const x = d.solutions[j], probs = x.probs || [];
    const min = probs.length ? Math.min(...probs.filter((p) => p !== null)) : null;
    const el = h("details", { class: "sol", "data-index": j },
      h("summary", {}, h("b", {}, `#${j}`), " min ", chip(min), " final ", chip(probs.length ? probs[probs.length - 1] : null),
        `${x.steps.length} step${x.steps.length === 1 ? "" : "s"}`,
        x.orm !== undefined ? h("span", {}, "ORM ", fix(x.orm)) : null,
        x.confidence ? h("span", { title: Object.entries(x.confidence).map(([k, v]) => `${k} ${fix(v)}`).join(", ") }, "confidence ", fix(x.confidence.lowest_group ?? x.confidence.mean)) : null,
        x.tokens !== undefined ? h("span", { class: "muted" }, `${x.tokens} tokens`) : null,
        x.reason ? h("span", { class: "bad" }, "unscored: ", x.reason) : null,
        by.map((m) => h("span", { class: "badge pick" }, label(m)))));
    let drawn = false;
    const fill = () => {
      if (drawn || !el.open) return;
      drawn = true;
      el.append(body(x, min));
    };
    el.addEventListener("toggle", fill);
    if (open) { el.open = true; fill(); }
    return el;
  }

  function body(x, min) {
    const probs = x.probs || [];
    const minAt = min === null ? -1 : probs.indexOf(min);
    const scored = x.probs !== undefined;
    const why = !scored ? "no PRM in this run" : x.reason ? `not scored: ${x.reason}`
      : `no score: the PRM returned ${probs.length} score${probs.length === 1 ? "" : "s"} for ${x.steps.length} steps`;
    const items = x.steps.map((t, k) => {
      const p = k < probs.length ? probs[k] : null;
      return h("li", { class: k === minAt ? "min" : p === null ? "unscored" : null, "data-step": k },
        h("span", {}, p === null ? h("span", { class: "p", title: why }, "—") : chip(p),
          k === minAt ? h("span", { class: "minmark" }, "min") : null),
        h("span", { class: "steptext" }, t, p === null ? h("div", { class: "note" }, why) : null));
    });
    for (let k = x.steps.length; k < probs.length; k++)
      items.push(h("li", { class: k === minAt ? "min" : null, "data-step": k }, chip(probs[k]), h("span", { class: "note" }, "score without a step text")));
    return h("div", {}, x.note ? h("p", { class: "note" }, x.note) : null,
      h("ol", { class: "steps" }, items),
      h("p", { class: "note" }, "extracted answer ", h("b", {}, ans(x.answer)),
        x.finish_reason ? `; finish reason ${x.finish_reason}` : "", x.label !== undefined ? `; label ${x.label}` : "",
        x.score !== undefined ? `; label ${x.score}` : ""),
      x.text !== undefined ? h("details", {}, h("summary", {}, "raw text"), h("div", { class: "text" }, x.text)) : null);
  }

  function documents(docs) {
    if (!docs || !docs.length) return h("p", { class: "muted" }, "No documents in the verifier prompt.");
    return h("div", { id: "documents" }, h("h2", {}, `Documents the PRM saw (${docs.length})`),
      docs.map((x, k) => h("details", { class: "doc" }, h("summary", {}, `${k + 1}. `, x.title || x.id || "(untitled)",
        x.score !== null ? h("span", { class: "muted" }, ` score ${fix(x.score)}`) : null), h("div", { class: "text" }, x.text))));
  }

  // ---- start ----------------------------------------------------------------------------
  async function start() {
    S.idx = await decode($("index"));
    S.rep = S.idx.report;
    S.f.chosen = S.idx.chosen;
    S.idx.questions.forEach((q, i) => S.byId.set(q.id, i));
    S.hay = S.idx.questions.map((q) => [q.id, q.stem, ...Object.values(q.options)].join("\n").toLowerCase());
    filterBar();
    update();
    window.addEventListener("hashchange", route);
    route();
    $("status").textContent = `${S.idx.questions.length} questions`;
    document.documentElement.dataset.ready = "1";
    window.__reportReadyAt = performance.now();
  }
  start().catch((e) => { $("status").textContent = "error: " + e; console.error(e); });
})();
