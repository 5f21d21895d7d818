// lwd fleet dashboard: polls GET /api/state and redraws. No external resources; charts are inline SVG.
// Every value from the server is inserted with textContent / SVG attributes, never as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#7f7f7f", "#bcbd22"];
let token = "";
let refreshMs = 1000;
let polls = 0;
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- formatting
const dash = "\u2013";
function pct(x) { return x === null || x === undefined ? dash : `${Math.round(x * 100)}%`; }
function num(x, digits) {
  if (x === null || x === undefined) return dash;
  return typeof x === "number" && digits !== undefined ? x.toFixed(digits) : String(x);
}
function secs(x) { return x === null || x === undefined ? dash : `${Number(x).toFixed(1)} s`; }
function clock(t) { return new Date(t * 1000).toLocaleTimeString([], { hour12: false }); }
function version(v) { return v === null || v === undefined ? dash : `v${v}`; }

function setKv(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dd.dataset.key = k;
    dl.append(dt, dd);
  }
}

function fillTable(tbody, rows, emptyEl) {
  tbody.replaceChildren();
  for (const { cells, attrs } of rows) {
    const tr = document.createElement("tr");
    for (const [k, v] of Object.entries(attrs || {})) tr.dataset[k] = v;
    for (const c of cells) {
      const td = document.createElement("td");
      if (typeof c === "object" && c !== null) { td.textContent = c.text; if (c.cls) td.className = c.cls; }
      else td.textContent = c;
      tr.append(td);
    }
    tbody.append(tr);
  }
  if (emptyEl) emptyEl.hidden = rows.length > 0;
}

// ---------------------------------------------------------------- charts
function svgEl(tag, attrs, parent) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.append(e);
  return e;
}

// "nice" axis: a step of 1, 2 or 5 x 10^k giving about n intervals; the range widened to whole steps
function niceAxis(lo, hi, n) {
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let y = a; y <= b + step / 2; y += step) ticks.push(y);
  return { lo: a, hi: b, ticks };
}

function timeLabel(x, span, now) {
  return span >= 300 ? clock(x) : `${Math.round(x - now)} s`;
}

// series: [{name, pts: [[x, y], ...]}]; opt: {xKind: "time"|"version"|"number", yMin, yMax, yFmt}
function lineChart(svg, series, opt) {
  const W = Math.max(svg.clientWidth || 480, 200), H = Math.max(svg.clientHeight || 210, 120);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const all = series.flatMap((s) => s.pts);
  if (all.length === 0) {
    svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg).textContent = "no data yet";
    return;
  }
  const L = 46, R = 14, B = 24;
  // legend first (wrapped into rows), it decides the top margin
  const named = series.length > 1 || series.some((s) => s.name);
  const legend = [];
  let lx = L, ly = 0;
  if (named) {
    series.forEach((s, i) => {
      const w = 24 + 6.2 * s.name.length;
      if (lx + w > W - R && lx > L) { lx = L; ly += 15; }
      legend.push({ s, i, x: lx, y: ly });
      lx += w;
    });
  }
  const T = named ? ly + 28 : 10;
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  let y0 = opt.yMin !== undefined ? opt.yMin : Math.min(...all.map((p) => p[1]));
  let y1 = opt.yMax !== undefined ? opt.yMax : Math.max(...all.map((p) => p[1]));
  if (opt.xKind === "time") x1 = Math.max(x1, opt.now || x1);
  if (x1 === x0) { x0 -= opt.xKind === "version" ? 0.5 : 5; x1 += opt.xKind === "version" ? 0.5 : 0; }
  if (y1 === y0) { y1 = y0 + (opt.yFmt === pct ? 0.1 : 1); }
  const yAxis = niceAxis(y0, y1, 5);
  y0 = yAxis.lo; y1 = yAxis.hi;
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  const yFmt = opt.yFmt || ((y) => (Math.abs(y) >= 100 ? y.toFixed(0) : String(+y.toFixed(2))));
  for (const y of yAxis.ticks) {
    svgEl("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), class: "grid" }, svg);
    svgEl("text", { x: L - 4, y: sy(y) + 4, "text-anchor": "end" }, svg).textContent = yFmt(y);
  }
  let xt;
  if (opt.xKind === "version") {
    xt = niceAxis(x0, x1, Math.min(6, Math.max(1, x1 - x0))).ticks
      .filter((x) => x >= x0 && x <= x1 && x === Math.round(x));
  } else {
    xt = [0, 1, 2, 3, 4].map((i) => x0 + (x1 - x0) * i / 4);
  }
  xt.forEach((x, j) => {
    const label = opt.xKind === "time" ? timeLabel(x, x1 - x0, opt.now || x1)
      : opt.xKind === "version" ? `v${x}` : String(Math.round(x));
    const anchor = xt.length > 1 && j === 0 ? "start" : xt.length > 1 && j === xt.length - 1 ? "end" : "middle";
    svgEl("text", { x: sx(x), y: H - 6, "text-anchor": anchor }, svg).textContent = label;
  });
  svgEl("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }, svg);
  svgEl("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }, svg);
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    if (!s.pts.length) return;
    const d = s.pts.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 2 }, svg);
    if (s.pts.length <= 40) {
      for (const p of s.pts) svgEl("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: color }, svg);
    }
  });
  for (const { s, i, x, y } of legend) {
    svgEl("rect", { x, y: 4 + y, width: 10, height: 10, fill: PALETTE[i % PALETTE.length] }, svg);
    svgEl("text", { x: x + 14, y: 13 + y }, svg).textContent = s.name;
  }
}

// ---------------------------------------------------------------- render
function render(st) {
  $("root").textContent = st.run_dir || st.fleet_root;
  const mode = $("mode");
  mode.textContent = st.control.enabled ? "control enabled" : "read-only";
  mode.className = st.control.enabled ? "badge warn" : "badge";
  $("control").hidden = !st.control.enabled;

  const f = st.fleet, l = st.learner, d = st.dataplane, reg = st.registry;
  setKv($("fleet-kv"), [
    ["robots", `${f.robots}` + (f.robots ? ` (${Object.entries(f.by_status).map(([k, n]) => `${n} ${k}`).join(", ")})` : "")],
    ["tasks", f.tasks.length ? f.tasks.join(", ") : dash],
    ["episodes", num(f.episodes)],
    ["env steps", num(f.env_steps)],
    ["fleet default", version(reg.default_version)],
    ["latest published", version(reg.latest_version)],
  ]);
  setKv($("learner-kv"), [
    ["state", num(l.state)],
    ["step", num(l.step)],
    ["version", version(l.version)],
    ["steps/s", num(l.steps_per_s, 2)],
    ["versions published", num(l.versions_published)],
    ["online transitions", num(l.online_transitions)],
    ["robot hours", num(l.robot_hours, 4)],
  ]);
  setKv($("dataplane-kv"), [
    ["event backlog", num(d.event_backlog)],
    ["snapshot", d.snapshot === null || d.snapshot === undefined ? dash : `#${d.snapshot} (${num(d.snapshot_episodes)} episodes)`],
    ["snapshot age", secs(d.snapshot_age_s)],
    ["learner snapshot", d.learner_snapshot === null ? dash : `#${d.learner_snapshot} (${num(d.snapshots_behind)} behind)`],
    ["outbox pending", num(d.outbox_pending)],
    ["committed / quarantined", `${num(d.committed)} / ${num(d.quarantined)}`],
  ]);
  renderRollout(st.rollout);

  fillTable($("robots").tBodies[0], st.robots.map((r) => ({
    attrs: { robot: r.id },
    cells: [r.id, r.task || dash, { text: r.status || dash, cls: `st-${String(r.status).replace(/\W+/g, "-")}` },
            version(r.version), r.pinned === null || r.pinned === undefined ? "" : version(r.pinned),
            num(r.episodes), pct(r.recent_success), num(r.outbox_pending), secs(r.heartbeat_age_s)],
  })), $("robots-empty"));

  const v = st.versions;
  lineChart($("chart-version-success"), v.tasks.map((t) => ({
    name: t, pts: v.rows.filter((r) => t in r.success_rate).map((r) => [r.version, r.success_rate[t]]),
  })), { xKind: "version", yMin: 0, yMax: 1, yFmt: pct });
  lineChart($("chart-version-intervention"), [{
    name: "", pts: v.rows.filter((r) => r.intervention_rate !== null).map((r) => [r.version, r.intervention_rate]),
  }], { xKind: "version", yMin: 0, yFmt: pct });
  renderVersions(v);

  const ser = st.series;
  const perTask = (obj) => Object.keys(obj).sort().map((t) => ({ name: t, pts: obj[t] }));
  lineChart($("chart-task-success"), perTask(ser.task_success), { xKind: "time", now: st.generated_at, yMin: 0, yMax: 1, yFmt: pct });
  $("task-source").textContent = ser.task_source;
  const staged = Object.keys(ser.task_substep || {}).length > 0;
  $("substep-figure").hidden = !staged;
  if (staged) lineChart($("chart-task-substep"), perTask(ser.task_substep), { xKind: "time", now: st.generated_at, yMin: 0, yMax: 1, yFmt: (y) => y.toFixed(2) });
  $("version-source").textContent = v.source;
  const m = ser.metrics;
  if (Object.keys(ser.task_intervention).length) {
    $("intervention-title").textContent = "Intervention rate per task over time";
    lineChart($("chart-intervention-time"), perTask(ser.task_intervention), { xKind: "time", now: st.generated_at, yMin: 0, yFmt: pct });
  } else {
    $("intervention-title").textContent = "Fleet intervention rate over time (learner log)";
    lineChart($("chart-intervention-time"), [{
      name: "", pts: m.filter((p) => p.intervention_rate !== undefined).map((p) => [p.t, p.intervention_rate]),
    }], { xKind: "time", now: st.generated_at, yMin: 0, yFmt: pct });
  }
  lineChart($("chart-learner"), [{
    name: "", pts: m.filter((p) => p.step !== undefined).map((p) => [p.t, p.step]),
  }], { xKind: "time", now: st.generated_at, yMin: 0, yFmt: (y) => y.toFixed(0) });

  fillTable($("audit").tBodies[0], st.rollout.audit.map((a) => ({
    cells: [typeof a.ts === "number" ? clock(a.ts) : num(a.ts), num(a.actor), num(a.action), version(a.version),
            Array.isArray(a.robots) ? a.robots.join(", ") : (a.robots ? String(a.robots) : "all"), num(a.reason)],
  })), $("audit-empty"));

  const errs = $("errors");
  errs.replaceChildren(...st.errors.map((e) => { const li = document.createElement("li"); li.textContent = e; return li; }));
}

// a task's success rate, and for a chained task its mean sub-step score in brackets
function successCell(r, t) {
  const sub = r.substep && r.substep[t];
  return sub === undefined || sub === null ? pct(r.success_rate[t]) : `${pct(r.success_rate[t])} (${sub.toFixed(2)})`;
}

// per-version matrix: one column per task, newest version first
function renderVersions(v) {
  const head = $("versions").tHead.rows[0];
  const want = ["version", "episodes", "intervention", ...v.tasks];
  if (head.cells.length !== want.length || [...head.cells].some((c, i) => c.textContent !== want[i])) {
    head.replaceChildren(...want.map((t) => { const th = document.createElement("th"); th.textContent = t; return th; }));
  }
  fillTable($("versions").tBodies[0], v.rows.slice().reverse().map((r) => ({
    attrs: { version: r.version },
    cells: [version(r.version), num(r.episodes), pct(r.intervention_rate), ...v.tasks.map((t) => successCell(r, t))],
  })), $("versions-empty"));
}

function renderRollout(ro) {
  const s = ro.state;
  const alerts = $("alerts");
  alerts.replaceChildren();
  const ct = $("canary-tasks");
  if (!s) {
    setKv($("rollout-kv"), [["state", "no rollout state"]]);
    ct.hidden = true;
    return;
  }
  const c = s.canary;
  const last = s.last_decision;
  setKv($("rollout-kv"), [
    ["incumbent", version(s.incumbent)],
    ["canary", c ? `${version(c.version)} on ${(c.robots || []).length} robot(s)` : "none"],
    ["canary robots", c && c.robots && c.robots.length ? c.robots.join(", ") : dash],
    ["canary since", c && typeof c.started_at === "number" ? clock(c.started_at) : dash],
    ["rejected", Array.isArray(s.rejected) && s.rejected.length ? s.rejected.map(version).join(", ") : "none"],
    ["promotion", s.paused ? "PAUSED" : "active"],
    ["last decision", last ? `${last.action} ${version(last.version)}: ${last.reason || ""}` : dash],
    ["updated", typeof s.updated_at === "number" ? clock(s.updated_at) : dash],
  ]);
  // per task: [episodes, successes, intervened episodes] for the canary and the incumbent
  const per = c && c.per_task ? Object.entries(c.per_task) : [];
  const arm = (x) => (Array.isArray(x) && x[0] ? `${x[1]}/${x[0]} (${pct(x[1] / x[0])})` : dash);
  fillTable(ct.tBodies[0], per.sort().map(([task, a]) => ({ cells: [task, arm(a.canary), arm(a.incumbent)] })));
  ct.hidden = per.length === 0;
  for (const a of (Array.isArray(s.alerts) ? s.alerts : []).filter((x) => x.active !== false).slice(-5)) {
    const li = document.createElement("li");
    li.textContent = typeof a === "string" ? a : `${a.kind || "alert"}: ${a.reason || JSON.stringify(a)}`;
    alerts.append(li);
  }
}

// ---------------------------------------------------------------- polling
async function poll() {
  const conn = $("conn");
  try {
    const resp = await fetch("api/state", { cache: "no-store", headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const st = await resp.json();
    render(st);
    polls += 1;
    const lu = $("last-updated");
    lu.textContent = clock(st.generated_at);
    lu.dataset.ts = String(st.generated_at);
    lu.dataset.polls = String(polls);
    conn.textContent = "live";
    conn.className = "badge ok";
    refreshMs = Math.max(250, 1000 * (st.refresh_s || 1));
  } catch (e) {
    conn.textContent = `disconnected (${e.message})`;
    conn.className = "badge bad";
  }
  setTimeout(poll, refreshMs);
}

// ---------------------------------------------------------------- control
async function submitAction(ev) {
  ev.preventDefault();
  const out = $("action-result");
  const body = { action: $("action-name").value, reason: $("action-reason").value };
  const v = $("action-version").value.trim();
  if (v !== "") body.version = Number(v);
  const robots = $("action-robots").value.split(/[\s,]+/).filter((r) => r);
  if (robots.length) body.robots = robots;
  try {
    const resp = await fetch("api/action", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-LWD-Token": $("action-token").value || token },
      body: JSON.stringify(body),
    });
    const res = await resp.json();
    out.textContent = res.ok ? `done: ${JSON.stringify(res.result)}` : `refused (${resp.status}): ${res.error}`;
    out.className = res.ok ? "ok" : "bad";
  } catch (e) {
    out.textContent = `failed: ${e.message}`;
    out.className = "bad";
  }
}

// A token given as #token=... in the printed URL stays in this page (never sent as part of a URL).
const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (m) {
  token = decodeURIComponent(m[1]);
  $("action-token").value = token;
  history.replaceState(null, "", location.pathname + location.search);
}
$("action-form").addEventListener("submit", submitAction);
poll();
