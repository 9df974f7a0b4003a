/// The dashboard's page: one HTML document with its style and script inline, so it works
/// with no network beyond the dashboard itself. It fetches `/snapshot`, then renders every
/// event of `/events` (server-sent), carrying the page's own `?token=` along.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kapsel</title>
<style>
  :root { --ink: #1d2330; --muted: #6b7385; --line: #e3e6ec; --good: #1f8a4c; --bad: #c0392b; --warn: #b9770e; --accent: #2c6fbb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f6f7f9; }
  header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px; background: var(--ink); color: #fff; }
  header h1 { margin: 0; font-size: 18px; letter-spacing: .5px; }
  header .status { font-size: 12px; color: #b8c0d0; }
  header .status.live::before { content: "●"; color: #4cd07d; margin-right: 4px; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  section.pool { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
  section.pool h2 { margin: 0 0 4px; font-size: 16px; }
  .url { color: var(--muted); font-size: 12px; }
  .counters { display: flex; flex-wrap: wrap; gap: 8px; margin: 10px 0; }
  .counter { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; min-width: 92px; }
  .counter b { display: block; font-size: 18px; font-variant-numeric: tabular-nums; }
  .counter span { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .4px; }
  .counter.bad b { color: var(--bad); }
  .row { display: grid; grid-template-columns: minmax(280px, 1fr) minmax(280px, 1fr); gap: 16px; }
  h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .5px; color: var(--muted); margin: 12px 0 6px; }
  svg.plot { width: 100%; height: 90px; background: #fbfcfd; border: 1px solid var(--line); border-radius: 6px; }
  svg.plot polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
  .plot-label { color: var(--muted); font-size: 12px; margin-bottom: 2px; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th:first-child, td:first-child, th.left, td.left { text-align: left; }
  th { font-size: 11px; color: var(--muted); font-weight: 600; }
  td.phase-online { color: var(--good); } td.phase-launching { color: var(--warn); } td.phase-failed { color: var(--bad); }
  ul.events { list-style: none; padding: 0; margin: 0; max-height: 260px; overflow: auto; }
  li.event { border-left: 3px solid var(--line); padding: 3px 8px; margin-bottom: 4px; }
  li.event[data-kind="crashed"], li.event[data-kind="killed"], li.event[data-kind="connectionFailed"], li.event[data-kind="slotGivenUp"] { border-color: var(--bad); }
  li.event[data-kind="retried"], li.event[data-kind="timedOut"], li.event[data-kind="refused"] { border-color: var(--warn); }
  li.event .when { color: var(--muted); font-size: 11px; margin-right: 6px; }
  li.event pre { margin: 2px 0 0; font-size: 11px; background: #f3f4f6; padding: 4px 6px; white-space: pre-wrap; max-height: 120px; overflow: auto; }
  .map { margin-bottom: 6px; } .bar { height: 8px; background: var(--line); border-radius: 4px; overflow: hidden; }
  .bar div { height: 100%; background: var(--accent); }
  .empty { color: var(--muted); font-size: 12px; }
</style>
</head>
<body data-updates="0" data-source="none">
<header><h1>Kapsel</h1><span class="status" id="status">connecting…</span></header>
<main id="pools"><p class="empty">Waiting for the first figures…</p></main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = path => token ? path + "?token=" + encodeURIComponent(token) : path;
const escape = text => String(text ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const bytes = n => n == null ? "–" : n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + " GiB" : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(0) + " KiB" : n + " B";
const rate = n => n >= 1000 ? (n / 1000).toFixed(1) + "k" : n.toFixed(n < 10 ? 1 : 0);
const clock = t => new Date(t * 1000).toLocaleTimeString();

function counter(name, label, value, bad) {
  return `<div class="counter${bad ? " bad" : ""}" data-name="${name}"><b>${escape(value)}</b><span>${label}</span></div>`;
}

function plot(samples) {
  if (samples.length < 2) return `<svg class="plot" viewBox="0 0 300 90"><text x="8" y="50" fill="#6b7385" font-size="11">collecting…</text></svg>`;
  const top = Math.max(1, ...samples);
  const points = samples.map((v, i) => `${(i / (samples.length - 1) * 296 + 2).toFixed(1)},${(86 - v / top * 78).toFixed(1)}`).join(" ");
  return `<div class="plot-label">now ${rate(samples[samples.length - 1])}/s · max ${rate(top)}/s over ${samples.length} s</div>` +
    `<svg class="plot" viewBox="0 0 300 90" preserveAspectRatio="none"><polyline points="${points}" vector-effect="non-scaling-stroke"/></svg>`;
}

function daemonRows(daemons) {
  return daemons.map(d => `<tr class="daemon" data-index="${d.index}" data-phase="${escape(d.phase)}">` +
    `<td>${d.index}</td><td class="left phase-${escape(d.phase)}">${escape(d.phase)}</td><td>${d.instance}</td><td>${d.pid ?? "–"}</td>` +
    `<td class="left">${escape(d.host)}</td><td>${d.running}</td><td>${d.assigned}</td><td>${d.complete}</td><td>${d.crashed}</td>` +
    `<td>${bytes(d.residentBytes)}</td><td>${d.cpuPercent == null ? "–" : d.cpuPercent.toFixed(0) + " %"}</td></tr>`).join("");
}

function events(list) {
  if (!list.length) return `<p class="empty">No crashes, retries or refusals.</p>`;
  return `<ul class="events">` + list.map(e => `<li class="event" data-kind="${escape(e.kind)}"><span class="when">${clock(e.time)}</span>` +
    `<b>${escape(e.kind)}</b>${e.daemon != null ? " · daemon " + escape(e.daemon) : ""} — ${escape(e.summary)}` +
    (e.output ? `<pre>${escape(e.output)}</pre>` : "") + `</li>`).join("") + `</ul>`;
}

function maps(list) {
  if (!list.length) return `<p class="empty">No map under way.</p>`;
  return list.map(m => {
    const share = m.total ? Math.min(100, m.completed / m.total * 100) : 0;
    return `<div class="map"><div>${m.completed}${m.total != null ? " / " + m.total : ""} items · ${rate(m.rate)}/s` +
      `${m.failed ? " · " + m.failed + " failed" : ""}</div><div class="bar"><div style="width:${share.toFixed(1)}%"></div></div></div>`;
  }).join("");
}

function render(snapshot, source) {
  const started = performance.now();
  const html = snapshot.pools.map(p => `<section class="pool" data-pool="${escape(p.name)}">` +
    `<h2>${escape(p.name)}</h2><div class="url">${escape(p.url)}</div>` +
    `<div class="counters">` + counter("online", "online", p.online) + counter("launching", "launching", p.launching) +
    counter("waiting", "waiting", p.waiting) + counter("running", "running", p.running) + counter("completed", "completed", p.completed) +
    counter("crashes", "crashes", p.crashes, p.crashes > 0) + counter("rejected", "refused", p.rejectedConnections, p.rejectedConnections > 0) +
    counter("lent", "shared memory lent", bytes(p.sharedMemoryLentBytes)) + `</div>` +
    `<div class="row"><div><h3>Jobs per second</h3>${plot(p.jobsPerSecond)}<h3>Maps</h3>${maps(p.maps)}</div>` +
    `<div><h3>Events</h3>${events(p.events)}</div></div>` +
    `<h3>Daemons</h3><table><thead><tr><th>daemon</th><th class="left">state</th><th>instance</th><th>pid</th><th class="left">host</th>` +
    `<th>running</th><th>assigned</th><th>complete</th><th>crashed</th><th>memory</th><th>CPU</th></tr></thead>` +
    `<tbody>${daemonRows(p.daemons)}</tbody></table></section>`).join("");
  document.getElementById("pools").innerHTML = html || `<p class="empty">No pools.</p>`;
  document.body.dataset.source = source;
  // How long drawing took, slowest so far: what keeps the page responsive.
  document.body.dataset.renderMs = Math.max(Number(document.body.dataset.renderMs || 0), performance.now() - started).toFixed(1);
  document.getElementById("status").textContent = "updated " + clock(snapshot.time);
}

fetch(withToken("/snapshot")).then(r => r.json()).then(s => render(s, "snapshot")).catch(() => {});
const stream = new EventSource(withToken("/events"));
stream.onopen = () => document.getElementById("status").classList.add("live");
stream.onerror = () => { document.getElementById("status").classList.remove("live"); document.getElementById("status").textContent = "disconnected: retrying…"; };
stream.onmessage = message => {
  document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
  render(JSON.parse(message.data), "events");
};
</script>
</body>
</html>
"""#
}
