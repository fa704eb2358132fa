// mailpost preview UI. Every message value goes into the page through textContent (never
// innerHTML); the message HTML itself only ever loads in the sandboxed iframe.
"use strict";
(function () {
  const base = document.body.dataset.base || "";
  const $ = (id) => document.getElementById(id);
  let version = null;
  let selected = null;
  let current = null;
  let remote = false;
  let failures = 0;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function when(message) {
    const seconds = message.received_at;
    if (!seconds) return message.origin;
    const d = new Date(seconds * 1000);
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString() : d.toLocaleString();
  }

  async function getJSON(path) {
    const response = await fetch(base + path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  async function refreshList() {
    const q = $("search").value.trim();
    const data = await getJSON("/api/messages?q=" + encodeURIComponent(q));
    version = data.version;
    const list = $("messages");
    list.replaceChildren();
    for (const m of data.messages) {
      const li = el("li");
      li.dataset.id = m.id;
      const row = el("div", "row");
      row.append(el("span", "from", m.from || "(no sender)"), el("span", "when", when(m)));
      const subj = el("div", "subj", m.subject || "(no subject)");
      if (m.attachments) subj.append(el("span", "tag", m.attachments + (m.attachments === 1 ? " file" : " files")));
      if (m.source !== "capture") subj.append(el("span", "tag", m.origin));
      li.append(row, subj, el("div", "snip", m.snippet));
      if (m.id === selected) li.classList.add("selected");
      li.addEventListener("click", () => { location.hash = "#/m/" + m.id; });
      list.append(li);
    }
    $("empty").hidden = data.messages.length > 0;
    $("count").textContent = data.messages.length + (data.messages.length === 1 ? " message" : " messages");
  }

  function showPane(name) {
    for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("on", tab.dataset.pane === name);
    for (const pane of document.querySelectorAll(".pane")) pane.hidden = pane.id !== "pane-" + name;
    if (name === "raw" && current && !$("raw").dataset.loaded) loadRaw();
  }

  async function loadRaw() {
    const response = await fetch(current.raw_url);
    $("raw").textContent = await response.text();
    $("raw").dataset.loaded = "1";
  }

  function setFrame() {
    const frame = $("frame");
    if (current && current.has_html) {
      frame.src = current.html_url + (remote ? "?remote=1" : "");
      frame.hidden = false;
      $("no-html").hidden = true;
    } else {
      frame.removeAttribute("src");
      frame.hidden = true;
      $("no-html").hidden = false;
    }
    $("allow-remote").hidden = !(current && current.remote_content) || remote;
  }

  async function openMessage(id) {
    selected = id;
    for (const li of $("messages").children) li.classList.toggle("selected", li.dataset.id === id);
    let m;
    try { m = await getJSON("/api/messages/" + encodeURIComponent(id)); }
    catch (e) { $("view").hidden = true; return; }
    current = m;
    remote = false;
    $("view").hidden = false;
    $("placeholder").hidden = true;
    $("subject").textContent = m.subject || "(no subject)";
    $("from").textContent = m.from;
    $("to").textContent = m.to;
    $("date").textContent = m.date;
    $("source").textContent = m.source + " \u00b7 " + m.size + " bytes";
    const attachments = $("attachments");
    attachments.replaceChildren();
    for (const a of m.attachments) {
      const li = el("li");
      const link = el("a", null, a.filename + " (" + a.content_type + ", " + a.size + " B)");
      link.href = a.url;
      link.setAttribute("download", a.filename);
      li.append(link);
      attachments.append(li);
    }
    $("text").textContent = m.text === null ? "(no text part)" : m.text;
    const tbody = $("headers").tBodies[0];
    tbody.replaceChildren();
    for (const [name, value] of m.headers) {
      const tr = el("tr");
      tr.append(el("td", null, name), el("td", null, value));
      tbody.append(tr);
    }
    $("raw").textContent = "";
    delete $("raw").dataset.loaded;
    const checks = $("checks");
    checks.replaceChildren();
    const errors = m.lint.filter((f) => f.severity === "error").length;
    for (const f of m.lint) {
      const li = el("li", f.severity);
      li.append(el("span", "rule", f.severity + " \u00b7 " + f.rule), document.createTextNode(f.message));
      checks.append(li);
    }
    if (!m.lint.length) checks.append(el("li", "ok", "No deliverability problems found."));
    const badge = $("checks-count");
    badge.textContent = String(m.lint.length);
    badge.className = "badge" + (errors ? " error" : m.lint.length ? " warning" : "");
    setFrame();
    showPane(m.has_html ? "html" : "text");
  }

  function route() {
    const match = /^#\/m\/([A-Za-z0-9._-]+)$/.exec(location.hash);
    if (match) openMessage(match[1]);
  }

  async function poll() {
    try {
      const data = await getJSON("/api/version");
      if (data.version !== version) await refreshList();
      failures = 0;
      $("live").classList.remove("off");
    } catch (e) {
      failures += 1;
      $("live").classList.add("off");
    }
    setTimeout(poll, failures ? Math.min(10000, 1000 * 2 ** failures) : 1000);
  }

  let searchTimer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refreshList, 200);
  });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showPane(tab.dataset.pane));
  $("width-desktop").addEventListener("click", () => {
    $("frame-box").classList.remove("mobile");
    $("width-desktop").classList.add("on"); $("width-mobile").classList.remove("on");
  });
  $("width-mobile").addEventListener("click", () => {
    $("frame-box").classList.add("mobile");
    $("width-mobile").classList.add("on"); $("width-desktop").classList.remove("on");
  });
  $("allow-remote").addEventListener("click", () => { remote = true; setFrame(); });
  window.addEventListener("hashchange", route);
  refreshList().then(route).finally(() => setTimeout(poll, 1000));
})();
