// Argus control panel: server-sent events from the panel server → uPlot charts and status tables.
// Snapshots are kept for the last 10 minutes, keyed by seq; a jump in seq breaks the lines
// (the agent was not running then). No globals besides `argusPanel`, for the tests.
"use strict";

(() => {
  const WINDOW_SECONDS = 600;
  const $ = (id) => document.getElementById(id);

  const state = {
    snaps: [],               // snapshots, oldest first
    hello: null,
    status: null,
    statusAt: 0,             // performance.now() when the status arrived
    agentUp: false,
    agentReason: "",
    panelUp: false,
    gapUntil: 0,
    gapDropped: 0,
    needHistory: true,
  };

  // -- formatting ---------------------------------------------------------------

  function humanBytes(value, suffix) {
    if (value == null || !isFinite(value)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(value) >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    const digits = i === 0 ? 0 : Math.abs(value) < 10 ? 2 : Math.abs(value) < 100 ? 1 : 0;
    return value.toFixed(digits) + " " + units[i] + (suffix || "");
  }
  const rate = (v) => humanBytes(v, "/s");
  const percent = (v) => (v == null ? "–" : v.toFixed(1) + " %");

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24;
    const m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min ${s} s`;
    return `${s} s`;
  }

  function when(iso) {
    if (!iso) return "never";
    const t = new Date(iso);
    return `${t.toLocaleTimeString()} (${duration((Date.now() - t.getTime()) / 1000)} ago)`;
  }

  // -- charts ---------------------------------------------------------------------

  function palette() {
    const css = getComputedStyle(document.documentElement);
    const get = (name) => css.getPropertyValue(name).trim();
    return {
      fg: get("--fg"), grid: get("--grid"), muted: get("--muted"),
      series: ["--s1", "--s2", "--s3", "--s4", "--s5", "--s6", "--s7", "--s8"].map(get),
    };
  }

  // Each chart: how to name its series from the snapshots in the window, and read a value.
  const charts = {
    cpu: {
      unit: percent, max: 100,
      keys: (snaps) => {
        const cores = Math.max(0, ...snaps.map((s) => (s.cpu && s.cpu.cores ? s.cpu.cores.length : 0)));
        return ["total", ...Array.from({ length: cores }, (_, i) => `core ${i}`)];
      },
      value: (s, key) => (key === "total" ? s.cpu.usage_percent : (s.cpu.cores || [])[Number(key.slice(5))]),
      now: (s) => `${percent(s.cpu.usage_percent)} total`,
    },
    memory: {
      unit: percent, max: 100,
      keys: () => ["used"],
      value: (s) => s.memory.used_percent,
      now: (s) => `${percent(s.memory.used_percent)} of ${humanBytes(s.memory.total_bytes)}`,
    },
    disk: {
      unit: rate,
      keys: (snaps) => perDevice(snaps, (s) => s.disk.devices, ["read", "write"]),
      value: (s, key) => pick(key, s.disk, s.disk.devices, { read: "read_bytes_per_second", write: "write_bytes_per_second" }),
      now: (s) => `read ${rate(s.disk.read_bytes_per_second)}, write ${rate(s.disk.write_bytes_per_second)}`,
    },
    network: {
      unit: rate,
      keys: (snaps) => perDevice(snaps, (s) => s.network.interfaces, ["rx", "tx"]),
      value: (s, key) => pick(key, s.network, s.network.interfaces, { rx: "receive_bytes_per_second", tx: "transmit_bytes_per_second" }),
      now: (s) => `receive ${rate(s.network.receive_bytes_per_second)}, transmit ${rate(s.network.transmit_bytes_per_second)}`,
    },
  };

  function perDevice(snaps, devicesOf, directions) {
    const names = new Set();
    for (const s of snaps) for (const name of Object.keys(devicesOf(s) || {})) names.add(name);
    const keys = directions.map((d) => `total ${d}`);
    for (const name of [...names].sort()) for (const d of directions) keys.push(`${name} ${d}`);
    return keys;
  }

  function pick(key, totals, devices, fields) {
    const cut = key.lastIndexOf(" ");
    const name = key.slice(0, cut), field = fields[key.slice(cut + 1)];
    const source = name === "total" ? totals : (devices || {})[name];
    return source ? source[field] : null;
  }

  function seriesFor(key, index, colours, unit) {
    const total = key === "total" || key.startsWith("total ") || key === "used";
    return {
      label: key,
      stroke: colours.series[index % colours.series.length],
      width: total ? 2 : 1,
      dash: total ? undefined : [4, 3],
      points: { show: false },
      value: (u, v) => (v == null ? "–" : unit(v)),
    };
  }

  // One line per tick, local time: seconds only while the ticks are less than a minute apart.
  function clockTicks(u, ticks, axisIdx, space, incr) {
    const shape = incr < 60 ? { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false } : { hour: "2-digit", minute: "2-digit", hour12: false };
    return ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], shape));
  }

  function build(name) {
    const spec = charts[name];
    const figure = $(`chart-${name}`);
    const colours = palette();
    const keys = spec.keys(state.snaps);
    if (spec.plot) spec.plot.destroy();
    const axis = { stroke: colours.fg, grid: { stroke: colours.grid }, ticks: { stroke: colours.grid } };
    const opts = {
      width: Math.max(200, figure.clientWidth - 24),
      height: 200,
      scales: { x: { time: true }, y: spec.max ? { range: [0, spec.max] } : { range: (u, lo, hi) => [0, Math.max(1024, hi * 1.1)] } },
      axes: [{ ...axis, size: 34, values: clockTicks }, { ...axis, size: 86, values: (u, ticks) => ticks.map(spec.unit) }],
      series: [{ label: "time", value: (u, v) => (v == null ? "–" : new Date(v * 1000).toLocaleTimeString()) },
        ...keys.map((k, i) => seriesFor(k, i, colours, spec.unit))],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    spec.keysNow = keys.join("|");
    spec.plot = new uPlot(opts, columns(spec, keys), figure);
  }

  // uPlot data: [times, series...]; a seq jump inserts a null row so the line breaks there.
  function columns(spec, keys) {
    const xs = [], ys = keys.map(() => []);
    let prev = null;
    for (const s of state.snaps) {
      const t = Date.parse(s.time) / 1000;
      if (prev && s.seq !== prev.seq + 1) {
        xs.push((Date.parse(prev.time) / 1000 + t) / 2);
        ys.forEach((col) => col.push(null));
      }
      xs.push(t);
      keys.forEach((k, i) => { const v = spec.value(s, k); ys[i].push(v == null ? null : v); });
      prev = s;
    }
    return [xs, ...ys];
  }

  function renderCharts() {
    const last = state.snaps[state.snaps.length - 1];
    for (const name of Object.keys(charts)) {
      const spec = charts[name];
      const keys = spec.keys(state.snaps);
      if (!spec.plot || keys.join("|") !== spec.keysNow) build(name);
      else spec.plot.setData(columns(spec, keys));
      const figure = $(`chart-${name}`);
      figure.dataset.points = String(state.snaps.length);
      figure.dataset.lastSeq = last ? String(last.seq) : "";
      $(`now-${name}`).textContent = last ? spec.now(last) : "";
    }
  }

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => { renderQueued = false; renderCharts(); }, 50);
  }

  function addSnapshot(s) {
    if (!s || typeof s.seq !== "number") return;
    const snaps = state.snaps;
    const last = snaps[snaps.length - 1];
    if (last && s.seq <= last.seq) {
      if (snaps.some((x) => x.seq === s.seq)) return;
      snaps.push(s);
      snaps.sort((a, b) => a.seq - b.seq);
    } else {
      snaps.push(s);
    }
    const newest = Date.parse(snaps[snaps.length - 1].time);
    while (snaps.length && Date.parse(snaps[0].time) < newest - WINDOW_SECONDS * 1000) snaps.shift();
    scheduleRender();
  }

  // -- status ---------------------------------------------------------------------

  function renderFacts() {
    const hello = state.hello || {};
    $("host").textContent = hello.host || "–";
    $("version").textContent = hello.version || "–";
    const link = $("link");
    if (!state.panelUp) { link.dataset.state = "down"; link.textContent = "panel server unreachable"; }
    else if (!state.agentUp) { link.dataset.state = "down"; link.textContent = "agent unreachable"; }
    else { link.dataset.state = "live"; link.textContent = "live"; }
    $("uptime").textContent = state.status && state.agentUp
      ? duration(state.status.uptime_seconds + (performance.now() - state.statusAt) / 1000) : "–";
    renderBanner();
  }

  function renderBanner() {
    const banner = $("banner");
    let text = "", kind = "";
    if (!state.panelUp) {
      text = "The panel server is not reachable. Retrying…"; kind = "down";
    } else if (!state.agentUp) {
      text = `The agent is not reachable: ${state.agentReason || "no connection"}. Retrying…`; kind = "down";
    } else if (performance.now() < state.gapUntil) {
      text = `${state.gapDropped} snapshot(s) were skipped for this panel: it fell behind the live stream.`; kind = "gap";
    }
    if (banner.textContent !== text) banner.textContent = text;
    banner.dataset.kind = kind;
    banner.hidden = !text;
  }

  function pair(list, label, text) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = text;
    list.append(dt, dd);
    return dd;
  }

  function renderStatus() {
    const status = state.status;
    if (!status) return;
    const box = $("exporters");
    const names = Object.keys(status.exporters || {}).sort();
    $("no-exporters").hidden = names.length !== 0;
    box.replaceChildren(...names.map((name) => {
      const e = status.exporters[name];
      const item = document.createElement("article");
      item.className = "exporter";
      item.dataset.exporter = name;
      item.dataset.ok = String(Boolean(e.ok));
      const title = document.createElement("h3");
      const badge = document.createElement("span");
      badge.className = e.ok ? "badge ok" : "badge failing";
      badge.textContent = e.ok ? "OK" : "failing";
      title.append(name, " ", badge);
      const list = document.createElement("dl");
      list.className = "pairs";
      if (!e.ok) pair(list, "Failing since", when(e.failing_since));
      if (e.last_error) pair(list, "Last error", e.last_error).className = "error";
      pair(list, "Last success", when(e.last_success_time));
      pair(list, "Backlog", `${e.backlog ?? 0} snapshot(s)`);
      item.append(title, list);
      return item;
    }));
    const spool = status.spool || {};
    $("spool-snapshots").textContent = String(spool.snapshots ?? "–");
    $("spool-bytes").textContent = humanBytes(spool.bytes);
    $("spool-oldest").textContent = spool.oldest_time ? when(spool.oldest_time) : "empty";
    const flush = status.flush || {};
    $("flush-total").textContent = `${flush.total ?? 0}, last ${when(flush.last_time)}`;
    const dropped = $("dropped");
    dropped.replaceChildren();
    for (const [reason, count] of Object.entries(status.dropped || {}).sort()) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = reason;
      dd.textContent = String(count);
      dd.dataset.reason = reason;
      dropped.append(dt, dd);
    }
  }

  // -- flush ------------------------------------------------------------------------

  async function flushNow() {
    const button = $("flush"), result = $("flush-result");
    button.disabled = true;
    result.dataset.ok = "";
    result.textContent = "Flushing…";
    try {
      const response = await fetch("api/flush", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      const answer = await response.json();
      if (answer.ok) {
        result.dataset.ok = "true";
        result.textContent = `Flushed at ${new Date().toLocaleTimeString()} (flush #${answer.flush.total})`;
      } else {
        result.dataset.ok = "false";
        result.textContent = `Flush failed: ${answer.error}`;
      }
    } catch (err) {
      result.dataset.ok = "false";
      result.textContent = `Flush failed: the panel server is not reachable`;
    } finally {
      button.disabled = false;
    }
  }

  // -- stream -----------------------------------------------------------------------

  async function loadHistory() {
    try {
      const response = await fetch("api/history");
      if (!response.ok) return;
      for (const s of await response.json()) addSnapshot(s);
    } catch (err) {
      state.needHistory = true; // the server went away meanwhile: retry on the next state event
    }
  }

  // A gap stays on the banner for 30 s after the stream reported it.
  function showGap(gap) {
    state.gapDropped = gap.dropped;
    state.gapUntil = performance.now() + 30000 - (Date.now() / 1000 - gap.at) * 1000;
    renderBanner();
  }

  function connect() {
    const source = new EventSource("api/events");
    source.onopen = () => { state.panelUp = true; state.needHistory = true; renderFacts(); };
    source.onerror = () => {
      state.panelUp = false;
      renderFacts();
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
    source.addEventListener("state", (ev) => {
      const msg = JSON.parse(ev.data);
      state.panelUp = true;
      state.agentUp = msg.connected;
      state.agentReason = msg.reason || "";
      if (msg.hello) state.hello = msg.hello;
      if (msg.gap) showGap(msg.gap);
      if (msg.status) { state.status = msg.status; state.statusAt = performance.now(); renderStatus(); }
      if (state.needHistory) { state.needHistory = false; loadHistory(); }
      renderFacts();
    });
    source.addEventListener("snapshot", (ev) => addSnapshot(JSON.parse(ev.data)));
    source.addEventListener("status", (ev) => {
      state.status = JSON.parse(ev.data);
      state.statusAt = performance.now();
      renderStatus();
      renderFacts();
    });
    source.addEventListener("gap", (ev) => showGap(JSON.parse(ev.data)));
  }

  $("flush").addEventListener("click", flushNow);
  window.addEventListener("resize", () => {
    for (const name of Object.keys(charts)) {
      const spec = charts[name];
      if (spec.plot) spec.plot.setSize({ width: Math.max(200, $(`chart-${name}`).clientWidth - 24), height: 200 });
    }
  });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    for (const name of Object.keys(charts)) build(name);
  });
  setInterval(() => { renderFacts(); }, 1000);
  window.argusPanel = { state, charts };
  renderFacts();
  connect();
})();
