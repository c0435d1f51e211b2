// The coalmine dashboard page. Everything from the cluster is put in the DOM as text
// (textContent, text nodes, setAttribute): nothing here parses a string as HTML, so a
// name, annotation or reason holding markup is shown as the characters it is.
"use strict";

const REFRESH_MS = 3000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = { canary: "#d92d20", stable: "#1570ef", limit: "#344054", observed: "#7a2e0e", weight: "#175cd3" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function num(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  return Number(value.toPrecision(4)).toString();
}

function revision(ref) {
  return ref ? ref.version + " (" + ref.revision + ")" : "none";
}

function decisionText(decision) {
  if (!decision) return "-";
  return decision.outcome + " " + decision.version + ": " + decision.reason;
}

function selected() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  return parts.length === 2 && parts[0] && parts[1]
    ? { namespace: decodeURIComponent(parts[0]), name: decodeURIComponent(parts[1]) }
    : null;
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
  return body;
}

function renderList(data) {
  const body = document.querySelector("#deployments tbody");
  const chosen = selected();
  const rows = data.items.map((item) => {
    const isChosen = chosen && chosen.namespace === item.namespace && chosen.name === item.name;
    const open = () => {
      location.hash = "#/" + encodeURIComponent(item.namespace) + "/" + encodeURIComponent(item.name);
    };
    return el("tr", { class: isChosen ? "selected" : "", "data-namespace": item.namespace, "data-name": item.name, onclick: open },
      el("td", {}, item.namespace),
      el("td", {}, el("a", { href: "#/" + encodeURIComponent(item.namespace) + "/" + encodeURIComponent(item.name) }, item.name)),
      el("td", { class: "phase phase-" + item.phase }, item.phase),
      el("td", {}, revision(item.stable)),
      el("td", {}, revision(item.canary)),
      el("td", {}, item.weight === undefined ? "-" : item.weight + "%"),
      el("td", {}, item.step || "-"),
      el("td", {}, decisionText(item.lastDecision)));
  });
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No ModelDeployments.")));
  body.replaceChildren(...rows);
  const error = document.getElementById("list-error");
  error.hidden = !data.error;
  error.textContent = data.error || "";
}

function dl(pairs) {
  const list = el("dl", {});
  for (const [label, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    list.append(el("dt", {}, label), el("dd", {}, value));
  }
  return list;
}

function renderSteps(steps) {
  return el("ol", { class: "steps", id: "steps" }, ...steps.map((step) =>
    el("li", { class: step.state, "data-state": step.state },
      "step " + (step.index + 1) + ": " + step.weight + "% · " + step.pauseSeconds + "s · " + step.state)));
}

function renderChecks(analysis) {
  if (!analysis) return el("p", { class: "muted" }, "No analysis yet.");
  const head = el("p", {}, "Analysis: " + analysis.verdict + " at step " + (analysis.step + 1) +
    ", weight " + analysis.weight + "%, measured at " + analysis.measuredAt);
  const table = el("table", { id: "checks" },
    el("thead", {}, el("tr", {}, ...["Check", "Kind", "Verdict", "Canary", "Stable", "Threshold", "Samples", "Reason"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...analysis.checks.map((c) => el("tr", { "data-check": c.name },
      el("td", {}, c.name), el("td", {}, c.kind),
      el("td", { class: "verdict-" + c.verdict }, c.verdict + (c.dryRun ? " [dry run]" : "")),
      el("td", { class: "value" }, num(c.value)), el("td", {}, num(c.stableValue)),
      el("td", { class: "threshold" }, c.threshold || "-"), el("td", {}, num(c.samples)),
      el("td", {}, c.reason || "-")))));
  return el("div", {}, head, table);
}

function renderDecision(decision) {
  if (!decision) return el("p", { class: "muted", id: "decision" }, "No promotion or rollback yet.");
  return el("div", { class: "card", id: "decision" }, dl([
    ["Decision", decision.kind + " (" + decision.outcome + ")"],
    ["Revision", decision.version + " (" + decision.revision + ")"],
    ["Reason", decision.reason],
    ["At", decision.at],
    ["Check", decision.check ? decision.check + " = " + num(decision.value) +
      (decision.stableValue !== null && decision.stableValue !== undefined ? ", stable " + num(decision.stableValue) : "") +
      (decision.samples !== null && decision.samples !== undefined ? ", " + num(decision.samples) + " samples" : "") +
      " (threshold " + (decision.threshold || "-") + ")" : null],
    ["Stage", decision.stage],
    ["Traffic on stable", decision.trafficOnStableAt],
    ["Completed", decision.completedAt],
  ]));
}

// One line chart: x is time, each series a list of {t, y}; hlines are {y, label}.
function chart(title, seriesList, hlines, options) {
  const width = 420, height = 170, left = 52, right = 10, top = 22, bottom = 24;
  const points = seriesList.flatMap((s) => s.points.filter((p) => p.y !== null && p.y !== undefined));
  const times = points.map((p) => Date.parse(p.t)).concat((options.times || []).map((t) => Date.parse(t)));
  const ys = points.map((p) => p.y).concat(hlines.map((h) => h.y));
  const root = svg("svg", { width, height, viewBox: "0 0 " + width + " " + height, role: "img" });
  root.append(svg("title", {}, title));
  root.append(svg("text", { x: left, y: 14, "font-size": 12, "font-weight": 600, fill: "#1d2330" }, title));
  if (times.length === 0 || ys.length === 0) {
    root.append(svg("text", { x: left, y: height / 2, "font-size": 12, fill: "#6b7280" }, "no data yet"));
    return root;
  }
  let t0 = Math.min(...times), t1 = Math.max(...times);
  if (t1 === t0) t1 = t0 + 1000;
  let y0 = options.yMin !== undefined ? options.yMin : Math.min(0, ...ys);
  let y1 = options.yMax !== undefined ? options.yMax : Math.max(...ys);
  if (y1 === y0) y1 = y0 + 1;
  if (options.yMax === undefined) y1 += (y1 - y0) * 0.08;  // room above the highest line
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => top + (1 - (v - y0) / (y1 - y0)) * (height - top - bottom);
  root.append(svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#98a2b3" }));
  root.append(svg("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#98a2b3" }));
  for (const v of [y0, (y0 + y1) / 2, y1]) {
    root.append(svg("text", { x: left - 4, y: y(v) + 4, "font-size": 10, "text-anchor": "end", fill: "#475467" }, num(v)));
  }
  const clock = (t) => new Date(t).toISOString().slice(11, 19);
  root.append(svg("text", { x: left, y: height - 8, "font-size": 10, fill: "#475467" }, clock(t0)));
  root.append(svg("text", { x: width - right, y: height - 8, "font-size": 10, "text-anchor": "end", fill: "#475467" }, clock(t1)));
  for (const h of hlines) {
    root.append(svg("line", { x1: left, x2: width - right, y1: y(h.y), y2: y(h.y), stroke: COLORS.limit, "stroke-dasharray": "5 4", class: "limit" }));
    root.append(svg("text", { x: width - right, y: y(h.y) - 3, "font-size": 10, "text-anchor": "end", fill: COLORS.limit }, h.label));
  }
  for (const s of seriesList) {
    if (s.dots) {
      for (const p of s.points) {
        if (p.y === null || p.y === undefined) continue;
        root.append(svg("circle", { cx: x(Date.parse(p.t)), cy: y(p.y), r: 2.5, fill: s.color, class: s.name }));
      }
      continue;
    }
    let path = "", pen = "M";
    for (const p of s.points) {
      if (p.y === null || p.y === undefined) { pen = "M"; continue; }
      const px = x(Date.parse(p.t)), py = y(p.y);
      if (s.stepped && pen === "L") path += "H" + px.toFixed(1);
      path += pen + px.toFixed(1) + " " + py.toFixed(1);
      pen = "L";
    }
    if (path) root.append(svg("path", { d: path, fill: "none", stroke: s.color, "stroke-width": 1.8, class: s.name }));
  }
  return root;
}

function legend(names) {
  return el("div", { class: "legend" }, ...names.map((n) => el("span", { class: "swatch-" + n }, "━ " + n)));
}

function renderWeight(detail) {
  const points = detail.weightSeries.map((p) => ({ t: p.t, y: p.weight }));
  if (points.length) points.push({ t: detail.now, y: points[points.length - 1].y });
  return el("div", { class: "chart", id: "weight-chart" },
    chart("weight on the canary (%)", [{ name: "weight", color: COLORS.weight, points, stepped: true }], [], { yMin: 0, yMax: 100 }));
}

function renderCheckCharts(detail) {
  const series = detail.checkSeries || {};
  const observed = detail.observedChecks || {};
  const note = series.error ? el("p", { class: "muted", id: "series-error" }, "Prometheus charts: " + series.error) : null;
  const charts = (series.charts || []).map((c) => {
    const lines = [{ name: "canary", color: COLORS.canary, points: c.points.map((p) => ({ t: p.t, y: p.canary })) }];
    if (c.comparesWithStable) lines.push({ name: "stable", color: COLORS.stable, points: c.points.map((p) => ({ t: p.t, y: p.stable })) });
    const seen = (observed[c.name] || []).map((p) => ({ t: p.t, y: p.value }));
    lines.push({ name: "observed", color: COLORS.observed, points: seen, dots: true });
    const hlines = c.limit ? [{ y: c.limit.value, label: c.limit.op + " " + num(c.limit.value) }] : [];
    return el("div", { class: "chart", "data-chart": c.name },
      chart(c.name + " (" + c.kind + ")", lines, hlines, {}),
      legend(["canary", ...(c.comparesWithStable ? ["stable"] : []), ...(c.limit ? ["limit"] : []), "observed"]),
      c.error ? el("p", { class: "error" }, c.error) : null);
  });
  const source = series.prometheus ? el("p", { class: "muted" }, "From " + series.prometheus +
    (series.window ? ", each point over the analysis window of " + series.window + "s" : "") +
    "; dots: the operator's own measurements.") : null;
  return el("div", {}, source, note, el("div", { class: "charts" }, renderWeight(detail), ...charts));
}

function renderDetail(detail) {
  const section = document.getElementById("detail");
  section.hidden = false;
  section.replaceChildren(
    el("h2", {}, detail.namespace + "/" + detail.name + " ", el("span", { class: "phase phase-" + detail.phase, id: "phase" }, detail.phase)),
    el("div", { class: "cards" }, el("div", { class: "card", id: "overview" }, dl([
      ["Stable", revision(detail.stable)],
      ["Canary", revision(detail.canary)],
      ["Weight", detail.weight + "%" + (detail.appliedWeight !== null && detail.appliedWeight !== undefined && detail.appliedWeight !== detail.weight ? " (" + detail.appliedWeight + "% applied)" : "")],
      ["Step", detail.step],
      ["Message", detail.message],
      ["Change cause", detail.changeCause],
      ["Paused by", detail.pausedBy],
    ]))),
    el("h3", {}, "Steps"), renderSteps(detail.steps),
    el("h3", {}, "Over time"), renderCheckCharts(detail),
    el("h3", {}, "Checks"), renderChecks(detail.analysis),
    el("h3", {}, "Last promotion or rollback"), renderDecision(detail.decision),
    el("h3", {}, "Events"), renderEvents(detail.events));
}

function renderEvents(events) {
  if (events === null) return el("p", { class: "muted" }, "Not shown: no permission to list events.");
  if (!events.length) return el("p", { class: "muted" }, "None.");
  return el("table", { id: "events" },
    el("thead", {}, el("tr", {}, ...["At", "Type", "Reason", "Message"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...events.map((e) => el("tr", {}, el("td", {}, e.at || "-"), el("td", {}, e.type),
      el("td", {}, e.reason), el("td", {}, e.message + (e.count > 1 ? " (x" + e.count + ")" : ""))))));
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const list = await getJson("/api/deployments");
    renderList(list);
    const chosen = selected();
    if (chosen) {
      try {
        renderDetail(await getJson("/api/deployments/" + encodeURIComponent(chosen.namespace) + "/" + encodeURIComponent(chosen.name)));
      } catch (error) {
        const section = document.getElementById("detail");
        section.hidden = false;
        section.replaceChildren(el("p", { class: "error", id: "detail-error" }, error.message));
      }
    } else {
      document.getElementById("detail").hidden = true;
    }
    status.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
  } catch (error) {
    status.textContent = "cannot reach the dashboard: " + error.message;
  }
}

window.addEventListener("hashchange", refresh);
refresh();
setInterval(refresh, REFRESH_MS);
