// weft dashboard: one page, hash routes, no framework.
//
//   #/                       overview: namespaces, workloads, services, denied
//                            requests, topology
//   #/namespaces/NS          the same, for one namespace
//   #/workloads/NS/NAME      routes, edges, identity and live tap of one workload
//   #/topology               the edge graph
//   #/identity               trust anchors, issuer, every proxy's certificate
//   #token=…                 the API token (printed by `weft dashboard`); kept
//                            in sessionStorage, then the hash goes to #/
//
// Everything is read from the controller's JSON API (docs/api.md) and
// rendered with textContent (never innerHTML): names come from the mesh file.
"use strict";

const REFRESH_MS = 3000;
const WINDOW = "1m";
const TAP_ROWS = 200;
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  route: { page: "overview" },
  timer: null,
  tap: null, // { controller, rows: Map(id → tr) }
  generation: 0,
};

// ---- small helpers -------------------------------------------------------

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attributes, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function token() {
  return sessionStorage.getItem("weft-token") || "";
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

// Settles to the body or to { error }: one failing endpoint does not blank the page.
function tryApi(path) {
  return api(path).catch((error) => ({ error: error.message }));
}

function percent(value) {
  return value === null || value === undefined ? "-" : `${(value * 100).toFixed(2)}%`;
}

function number(value, digits) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

function ms(value) {
  if (value === null || value === undefined) return "-";
  return `${Number(value) >= 10 ? Math.round(value) : Number(value).toFixed(2)} ms`;
}

function micros(value) {
  if (value === null || value === undefined) return "";
  if (value >= 1000000) return `${(value / 1000000).toFixed(2)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(1)} ms`;
  return `${value} µs`;
}

function rateClass(value) {
  if (value === null || value === undefined) return "";
  if (value >= 0.99) return "good";
  if (value >= 0.9) return "warn";
  return "bad";
}

function workloadLink(namespace, name) {
  if (!name) return el("span", { class: "muted", text: namespace ? `${namespace}/?` : "-" });
  return el("a", { href: `#/workloads/${namespace}/${name}`, text: `${namespace}/${name}` });
}

function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = isError ? "status error" : "status";
}

// ---- routing -------------------------------------------------------------

function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "workloads" && parts.length === 3) {
    return { page: "workload", namespace: parts[1], name: parts[2] };
  }
  if (parts[0] === "namespaces" && parts.length === 2) {
    return { page: "overview", namespace: parts[1] };
  }
  if (parts[0] === "topology") return { page: "topology" };
  if (parts[0] === "identity") return { page: "identity" };
  return { page: "overview" };
}

function takeTokenFromHash() {
  const match = location.hash.match(/^#token=([^&]*)/);
  if (!match) return false;
  sessionStorage.setItem("weft-token", decodeURIComponent(match[1]));
  history.replaceState(null, "", "#/");
  return true;
}

function onRoute() {
  takeTokenFromHash();
  stopTap();
  state.route = parseRoute(location.hash);
  state.generation += 1;
  for (const link of document.querySelectorAll("header nav a")) {
    const page = state.route.page === "workload" ? "overview" : state.route.page;
    link.classList.toggle("active", link.dataset.nav === page);
  }
  const main = document.getElementById("main");
  main.replaceChildren();
  main.dataset.page = state.route.page;
  if (state.route.page === "workload") buildWorkloadPage(main, state.route);
  refresh();
}

async function refresh() {
  clearTimeout(state.timer);
  const generation = state.generation;
  try {
    const route = state.route;
    if (route.page === "overview") await renderOverview(route.namespace);
    else if (route.page === "topology") await renderTopologyPage();
    else if (route.page === "identity") await renderIdentity();
    else if (route.page === "workload") await renderWorkload(route);
    if (generation === state.generation) {
      setStatus(`updated ${new Date().toLocaleTimeString()}`, false);
    }
  } catch (error) {
    setStatus(error.message, true);
  }
  state.timer = setTimeout(refresh, REFRESH_MS);
}

// Replaces (or creates) the section with this id inside main.
function section(id, title, ...content) {
  const main = document.getElementById("main");
  const fresh = el("section", { id, class: "card" }, el("h2", { text: title }), ...content);
  const existing = document.getElementById(id);
  if (existing) existing.replaceWith(fresh);
  else main.append(fresh);
  return fresh;
}

// ---- tables --------------------------------------------------------------

const STAT_COLUMNS = [
  ["meshed", "Meshed", "num"],
  ["success", "Success", "num"],
  ["rps", "RPS", "num"],
  ["p50", "P50", "num"],
  ["p95", "P95", "num"],
  ["p99", "P99", "num"],
  ["tcp", "TCP", "num"],
  ["denied", "Denied", "num"],
];

// Requests (and TCP connections) the proxies' authorization refused in the
// window: `-` when the row's proxies export no authorization counters.
function deniedCell(row) {
  const denied = row.authz_denied;
  const text = denied === null || denied === undefined ? "-" : String(denied);
  return el("td", { class: `denied num ${denied > 0 ? "bad" : ""}`, text });
}

function statTable(id, kind, rows, linkOf) {
  const head = el("tr", {}, el("th", { text: kind === "namespace" ? "Namespace" : "Name" }),
    STAT_COLUMNS.map(([, label, cls]) => el("th", { class: cls, text: label })));
  const body = el("tbody");
  if (rows.error) {
    body.append(el("tr", {}, el("td", { class: "empty", colspan: 9, text: rows.error })));
  } else if (rows.length === 0) {
    body.append(el("tr", {}, el("td", { class: "empty", colspan: 9, text: "none" })));
  }
  for (const row of rows.error ? [] : rows) {
    const key = kind === "namespace" ? row.name : `${row.namespace}/${row.name}`;
    const latency = row.latency_ms || {};
    const attributes = { [`data-${kind}`]: key };
    body.append(el("tr", attributes,
      el("td", { class: "name" }, linkOf(row)),
      el("td", { class: "meshed num", text: `${row.meshed ?? "-"}/${row.running ?? "-"}` }),
      el("td", { class: `success num ${rateClass(row.success_rate)}`, text: percent(row.success_rate) }),
      el("td", { class: "rps num", text: number(row.rps, 2) }),
      el("td", { class: "p50 num", text: ms(latency.p50) }),
      el("td", { class: "p95 num", text: ms(latency.p95) }),
      el("td", { class: "p99 num", text: ms(latency.p99) }),
      el("td", { class: "tcp num", text: row.tcp_connections ?? "-" }),
      deniedCell(row)));
  }
  return el("table", { id, "data-kind": kind }, el("thead", {}, head), body);
}

function rowsOf(response) {
  return response.error ? { error: response.error } : response.rows || [];
}

async function renderOverview(namespace) {
  const filter = namespace ? `&namespace=${encodeURIComponent(namespace)}` : "";
  const [namespaces, workloads, services, edges] = await Promise.all([
    tryApi(`/api/stat?kind=namespace&window=${WINDOW}`),
    tryApi(`/api/stat?kind=workload&window=${WINDOW}${filter}`),
    tryApi(`/api/stat?kind=service&window=${WINDOW}${filter}`),
    tryApi(`/api/edges?kind=workload&window=${WINDOW}${filter}`),
  ]);
  if (state.route.page !== "overview") return;
  const main = document.getElementById("main");
  if (!document.getElementById("page-title")) {
    main.prepend(el("h1", { id: "page-title", text: namespace ? `Namespace ${namespace}` : "Overview" }));
  }
  section("namespaces-card", "Namespaces", statTable("namespaces", "namespace", rowsOf(namespaces),
    (row) => el("a", { href: `#/namespaces/${row.name}`, text: row.name })));
  section("workloads-card", "Workloads", statTable("workloads", "workload", rowsOf(workloads),
    (row) => workloadLink(row.namespace, row.name)));
  section("services-card", "Services", statTable("services", "service", rowsOf(services),
    (row) => el("span", { text: `${row.namespace}/${row.name}` })));
  section("denied-card", "Denied requests", deniedPanel(rowsOf(workloads)));
  section("topology-card", "Topology", topology(rowsOf(edges)));
}

// The workloads whose proxies refused requests in the window, most first.
function deniedPanel(rows) {
  if (rows.error) return el("p", { class: "empty", text: rows.error });
  const denying = rows.filter((row) => row.authz_denied > 0)
    .sort((a, b) => b.authz_denied - a.authz_denied || `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  if (denying.length === 0) {
    return el("p", { id: "denied-none", class: "muted", text: "no denied requests in the window" });
  }
  return el("table", { id: "denied" },
    el("thead", {}, el("tr", {},
      el("th", { text: "Workload" }), el("th", { class: "num", text: "Denied" }),
      el("th", { class: "num", text: "Allowed" }), el("th", { class: "num", text: "Denied share" }))),
    el("tbody", {}, denying.map((row) => {
      const total = row.authz_denied + (row.authz_allowed || 0);
      return el("tr", { "data-workload": `${row.namespace}/${row.name}` },
        el("td", { class: "name" }, workloadLink(row.namespace, row.name)),
        el("td", { class: "denied num bad", text: String(row.authz_denied) }),
        el("td", { class: "allowed num", text: row.authz_allowed ?? "-" }),
        el("td", { class: "share num", text: percent(row.authz_denied / total) }));
    })));
}

// ---- topology ------------------------------------------------------------

// Lays workloads out in columns by how far they are from a source (a
// workload nothing calls), edges as arrows labelled with their RPS.
function topology(edges) {
  if (edges.error) return el("p", { class: "empty", text: edges.error });
  if (edges.length === 0) return el("p", { class: "muted", text: "no traffic between workloads in the window" });
  const key = (end) => `${end.namespace}/${end.name}`;
  const nodes = new Map();
  const incoming = new Map();
  for (const edge of edges) {
    for (const end of [edge.src, edge.dst]) nodes.set(key(end), end);
    if (!incoming.has(key(edge.dst))) incoming.set(key(edge.dst), []);
    incoming.get(key(edge.dst)).push(key(edge.src));
  }
  const level = new Map();
  const depth = (name, seen) => {
    if (level.has(name)) return level.get(name);
    if (seen.has(name)) return 0;
    seen.add(name);
    const parents = (incoming.get(name) || []).filter((parent) => parent !== name);
    const value = parents.length === 0 ? 0 : 1 + Math.max(...parents.map((parent) => depth(parent, seen)));
    level.set(name, value);
    return value;
  };
  for (const name of nodes.keys()) depth(name, new Set());
  const columns = [];
  for (const [name, value] of [...level.entries()].sort()) {
    (columns[value] = columns[value] || []).push(name);
  }
  const width = 200;
  const gap = 150;
  const rowHeight = 56;
  const position = new Map();
  columns.forEach((names, column) => names.forEach((name, row) => {
    position.set(name, { x: 20 + column * (width + gap), y: 20 + row * rowHeight });
  }));
  const height = 40 + Math.max(...columns.map((names) => names.length)) * rowHeight;
  const totalWidth = 40 + columns.length * (width + gap);
  const graph = svg("svg", { class: "topology", id: "topology", viewBox: `0 0 ${totalWidth} ${height}`, width: totalWidth, height });
  graph.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#7d8aa8" }))));
  for (const edge of edges) {
    const from = position.get(key(edge.src));
    const to = position.get(key(edge.dst));
    const x1 = from.x + width;
    const y1 = from.y + 16;
    const x2 = to.x === from.x ? to.x + width : to.x;
    const y2 = to.y + 16;
    graph.append(svg("g", { class: `edge ${edge.secured ? "secure" : "insecure"}`, "data-edge": `${key(edge.src)}->${key(edge.dst)}` },
      svg("line", { x1, y1, x2, y2, "marker-end": "url(#arrow)" }),
      svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle", text: `${number(edge.rps, 1)} rps${edge.secured ? ", mTLS" : ""}` })));
  }
  for (const [name, at] of position) {
    const link = svg("a", { href: `#/workloads/${name}` },
      svg("rect", { x: at.x, y: at.y, width, height: 32 }),
      svg("text", { x: at.x + 10, y: at.y + 20, text: name }));
    graph.append(svg("g", { class: "node", "data-node": name }, link));
  }
  return graph;
}

async function renderTopologyPage() {
  const edges = await tryApi(`/api/edges?kind=workload&window=${WINDOW}`);
  if (state.route.page !== "topology") return;
  if (!document.getElementById("page-title")) {
    document.getElementById("main").prepend(el("h1", { id: "page-title", text: "Topology" }));
  }
  section("topology-card", "Edges between workloads", topology(rowsOf(edges)));
}

// ---- identity ------------------------------------------------------------

function expiry(unix) {
  if (unix === null || unix === undefined) return el("span", { class: "muted", text: "none" });
  const seconds = unix - Date.now() / 1000;
  const hours = seconds / 3600;
  const left = hours < 48 ? `in ${Math.round(hours)} h` : `in ${Math.round(hours / 24)} d`;
  const text = `${new Date(unix * 1000).toISOString().replace(".000", "")} (${seconds < 0 ? "expired" : left})`;
  return el("span", { class: seconds < 0 ? "bad" : seconds < 3600 ? "warn" : "good", text });
}

async function renderIdentity() {
  const [identity, workloads] = await Promise.all([tryApi("/api/identity"), tryApi("/api/workloads")]);
  if (state.route.page !== "identity") return;
  if (!document.getElementById("page-title")) {
    document.getElementById("main").prepend(el("h1", { id: "page-title", text: "Certificates" }));
  }
  if (identity.error) {
    section("identity-card", "Identity", el("p", { class: "empty", text: identity.error }));
  } else if (!identity.enabled) {
    section("identity-card", "Identity", el("p", { class: "muted", text: "identity is off: the proxies talk plaintext" }));
  } else {
    const issuer = identity.issuer || {};
    section("identity-card", "Identity",
      el("dl", { class: "kv", id: "identity" },
        el("dt", { text: "Trust domain" }), el("dd", { text: identity.trust_domain }),
        el("dt", { text: "Issuer" }), el("dd", { id: "issuer-subject", text: issuer.subject || "-" }),
        el("dt", { text: "Issuer expires" }), el("dd", {}, expiry(issuer.not_after_unix)),
        el("dt", { text: "Signed by an anchor" }), el("dd", { text: issuer.issued_by_anchor ? "yes" : "no" }),
        el("dt", { text: "Leaf lifetime" }), el("dd", { text: `${identity.leaf_lifetime_seconds} s` })),
      el("h2", { text: "Trust anchors" }),
      el("table", { id: "anchors" }, el("thead", {}, el("tr", {}, el("th", { text: "Subject" }), el("th", { text: "Expires" }))),
        el("tbody", {}, (identity.trust_anchors || []).map((anchor) =>
          el("tr", {}, el("td", { text: anchor.subject }), el("td", {}, expiry(anchor.not_after_unix)))))));
  }
  const rows = workloads.error ? [] : workloads.workloads.filter((workload) => workload.meshed);
  section("certificates-card", "Proxy certificates",
    el("table", { id: "certificates" },
      el("thead", {}, el("tr", {}, ["Workload", "Identity", "Scrape", "Certificate expires"].map((text) => el("th", { text })))),
      el("tbody", {}, rows.map((workload) => el("tr", { "data-workload": `${workload.namespace}/${workload.name}` },
        el("td", {}, workloadLink(workload.namespace, workload.name)),
        el("td", { class: "identity", text: workload.identity || "-" }),
        el("td", { class: "scrape" }, workload.scrape && workload.scrape.up
          ? el("span", { class: "pill good", text: "up" })
          : el("span", { class: "pill bad", text: (workload.scrape && workload.scrape.error) || "not scraped" })),
        el("td", { class: "expiry" }, expiry(workload.cert_expiry_unix)))))));
}

// ---- one workload --------------------------------------------------------

function buildWorkloadPage(main, route) {
  main.append(el("h1", { id: "page-title", text: `Workload ${route.namespace}/${route.name}` }));
  main.append(el("div", { id: "workload-stat" }));
  const maxRps = el("input", { id: "tap-max-rps", type: "number", min: 1, value: 10, title: "max requests per second" });
  const path = el("input", { id: "tap-path", placeholder: "path prefix" });
  const start = el("button", { id: "tap-start", text: "Start tap" });
  const stop = el("button", { id: "tap-stop", class: "secondary", text: "Stop", disabled: "" });
  const note = el("span", { id: "tap-status", class: "muted", text: token() ? "" : "no API token: open the URL `weft dashboard` prints" });
  start.addEventListener("click", () => startTap(route, { maxRps: maxRps.value, path: path.value }));
  stop.addEventListener("click", stopTap);
  const table = el("table", { id: "tap-table" },
    el("thead", {}, el("tr", {}, ["Dir", "From", "To", "Method", "Authority", "Path", "Status", "Latency", "Duration", "Bytes"].map((text) => el("th", { text })))),
    el("tbody", { id: "tap-rows" }));
  main.append(el("section", { id: "tap-card", class: "card" },
    el("h2", { text: "Live tap" }),
    el("div", { class: "tap-controls" }, el("label", { text: "max rps" }), maxRps, path, start, stop, note),
    table));
  main.append(el("div", { id: "workload-routes" }));
  main.append(el("div", { id: "workload-edges" }));
  main.append(el("div", { id: "workload-identity" }));
}

async function renderWorkload(route) {
  const { namespace, name } = route;
  const query = `namespace=${encodeURIComponent(namespace)}&name=${encodeURIComponent(name)}`;
  const [stat, routes, edges, workloads] = await Promise.all([
    tryApi(`/api/stat?kind=workload&${query}&window=${WINDOW}`),
    tryApi(`/api/routes?kind=workload&${query}&window=${WINDOW}`),
    tryApi(`/api/edges?kind=workload&namespace=${encodeURIComponent(namespace)}&window=${WINDOW}`),
    tryApi(`/api/workloads?namespace=${encodeURIComponent(namespace)}`),
  ]);
  if (state.route !== route) return;
  const replace = (id, node) => document.getElementById(id).replaceChildren(node);
  replace("workload-stat", el("section", { class: "card" }, el("h2", { text: "Inbound" }),
    statTable("workload-stat-table", "workload", rowsOf(stat), (row) => el("span", { text: `${row.namespace}/${row.name}` }))));

  const routeRows = rowsOf(routes);
  replace("workload-routes", el("section", { class: "card" }, el("h2", { text: "Routes" }),
    routeRows.error ? el("p", { class: "empty", text: routeRows.error }) :
      el("table", { id: "routes" },
        el("thead", {}, el("tr", {}, ["Route", "Authority", "Success", "RPS", "P50", "P95", "P99"].map((text) => el("th", { text })))),
        el("tbody", {}, routeRows.length === 0 ? el("tr", {}, el("td", { class: "empty", colspan: 7, text: "no routes in the window" })) :
          routeRows.map((row) => el("tr", { "data-route": row.route },
          el("td", { class: "route", text: row.route }),
          el("td", { class: "authority", text: row.authority || "-" }),
          el("td", { class: `success num ${rateClass(row.success_rate)}`, text: percent(row.success_rate) }),
          el("td", { class: "rps num", text: number(row.rps, 2) }),
          el("td", { class: "p50 num", text: ms((row.latency_ms || {}).p50) }),
          el("td", { class: "p95 num", text: ms((row.latency_ms || {}).p95) }),
          el("td", { class: "p99 num", text: ms((row.latency_ms || {}).p99) })))))));

  const mine = rowsOf(edges).error ? [] : rowsOf(edges).filter((edge) =>
    (edge.src.namespace === namespace && edge.src.name === name) || (edge.dst.namespace === namespace && edge.dst.name === name));
  replace("workload-edges", el("section", { class: "card" }, el("h2", { text: "Edges" }),
    el("table", { id: "edges" },
      el("thead", {}, el("tr", {}, ["From", "To", "Client identity", "Server identity", "Secured", "RPS"].map((text) => el("th", { text })))),
      el("tbody", {}, mine.length === 0 ? el("tr", {}, el("td", { class: "empty", colspan: 6, text: "none in the window" })) :
        mine.map((edge) => el("tr", {},
          el("td", {}, workloadLink(edge.src.namespace, edge.src.name)),
          el("td", {}, workloadLink(edge.dst.namespace, edge.dst.name)),
          el("td", { text: edge.client_id || "-" }),
          el("td", { text: edge.server_id || "-" }),
          el("td", { class: edge.secured ? "good" : "warn", text: edge.secured ? "√" : edge.no_tls_reason || "no" }),
          el("td", { class: "num", text: number(edge.rps, 2) })))))));

  const workload = workloads.error ? null : workloads.workloads.find((candidate) => candidate.name === name);
  replace("workload-identity", el("section", { class: "card" }, el("h2", { text: "Identity and proxy" }),
    workload ? el("dl", { class: "kv", id: "workload-info" },
      el("dt", { text: "Service account" }), el("dd", { text: workload.service_account }),
      el("dt", { text: "Identity" }), el("dd", { class: "identity", text: workload.identity || "identity off" }),
      el("dt", { text: "Certificate expires" }), el("dd", {}, expiry(workload.cert_expiry_unix)),
      el("dt", { text: "Labels" }), el("dd", { text: Object.entries(workload.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "-" }),
      el("dt", { text: "Addresses" }), el("dd", { text: (workload.addresses || []).join(", ") }),
      el("dt", { text: "Proxy" }), el("dd", { text: workload.proxy ? `admin ${workload.proxy.admin}, tap ${workload.proxy.tap}, inbound ${workload.proxy.inbound}` : "not meshed" }))
      : el("p", { class: "empty", text: workloads.error || "not in the catalog" })));
}

// ---- tap -----------------------------------------------------------------

function stopTap() {
  if (!state.tap) return;
  state.tap.controller.abort();
  state.tap = null;
  const start = document.getElementById("tap-start");
  const stop = document.getElementById("tap-stop");
  if (start) start.removeAttribute("disabled");
  if (stop) stop.setAttribute("disabled", "");
}

async function startTap(route, options) {
  stopTap();
  const status = document.getElementById("tap-status");
  const rows = document.getElementById("tap-rows");
  rows.replaceChildren();
  const params = new URLSearchParams({ kind: "workload", namespace: route.namespace, name: route.name, max_rps: options.maxRps || "10" });
  if (options.path) params.set("path", options.path);
  const controller = new AbortController();
  const session = { controller, rows: new Map() };
  state.tap = session;
  document.getElementById("tap-start").setAttribute("disabled", "");
  document.getElementById("tap-stop").removeAttribute("disabled");
  status.textContent = "connecting…";
  status.className = "muted";
  try {
    const response = await fetch(`/api/tap?${params}`, {
      headers: { Authorization: `Bearer ${token()}` },
      signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error || `HTTP ${response.status}`);
    }
    status.textContent = "streaming";
    status.dataset.state = "streaming";
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) showTapEvent(session, JSON.parse(line));
      }
    }
    status.textContent = "ended";
  } catch (error) {
    if (error.name !== "AbortError") {
      status.textContent = error.message;
      status.className = "bad";
      status.dataset.state = "error";
    }
  } finally {
    if (state.tap === session) stopTap();
  }
}

function showTapEvent(session, event) {
  const body = document.getElementById("tap-rows");
  if (!body) return;
  let row = session.rows.get(event.id);
  if (!row) {
    if (event.type !== "req") return; // started before the session
    const end = (side) => side ? `${side.namespace}/${side.workload || "?"}` : "-";
    row = el("tr", { class: "tap-row", "data-id": event.id, "data-proxy": event.proxy },
      el("td", { class: "direction", text: event.proxy === "in" ? "in" : "out" }),
      el("td", { class: "src", text: end(event.src), title: event.source || "" }),
      el("td", { class: "dst", text: end(event.dst), title: event.destination || "" }),
      el("td", { class: "method", text: event.method || "" }),
      el("td", { class: "authority", text: event.authority || "" }),
      el("td", { class: "path", text: event.path || "" }),
      el("td", { class: "status-code" }),
      el("td", { class: "latency num" }),
      el("td", { class: "duration num" }),
      el("td", { class: "bytes num" }));
    session.rows.set(event.id, row);
    body.prepend(row);
    while (body.children.length > TAP_ROWS) {
      const last = body.lastElementChild;
      session.rows.delete(last.dataset.id);
      last.remove();
    }
    return;
  }
  if (event.type === "rsp") {
    const cell = row.querySelector(".status-code");
    cell.textContent = event.status;
    // 4xx (a 403 is what a proxy's authorization policy answers) warns.
    cell.className = `status-code ${event.status >= 500 ? "bad" : event.status >= 400 ? "warn" : "good"}`;
    row.querySelector(".latency").textContent = micros(event.latency_us);
  } else if (event.type === "end") {
    row.querySelector(".duration").textContent = micros(event.duration_us);
    row.querySelector(".bytes").textContent = event.response_bytes;
    if (event.grpc_status !== null && event.grpc_status !== undefined) {
      row.querySelector(".status-code").textContent += ` grpc ${event.grpc_status}`;
    }
    if (event.reset_error) row.querySelector(".status-code").textContent += ` ${event.reset_error}`;
  }
}

// ---- start ---------------------------------------------------------------

document.getElementById("refresh-seconds").textContent = String(REFRESH_MS / 1000);
window.addEventListener("hashchange", onRoute);
onRoute();
