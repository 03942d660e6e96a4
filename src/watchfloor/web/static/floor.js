// The watch floor's behaviours (queue and wall), kept out of the pages so the
// Content-Security-Policy can forbid inline scripts. Everything works without it
// (plain forms); this adds:
// - countdowns to every deadline ([data-due]), on the server's clock (data-server-now);
// - selection, bulk actions and keyboard shortcuts on the queue;
// - live refresh of the queue when alerts arrive (the feed's event stream), but never
//   while someone is selecting or typing.
(function () {
  "use strict";

  // ------------------------------------------------------------------ countdowns
  var clockRoot = document.querySelector("[data-server-now]");
  var offset = 0;  // server time minus this browser's time, in ms
  if (clockRoot) {
    var serverNow = Date.parse(clockRoot.getAttribute("data-server-now"));
    if (!isNaN(serverNow)) { offset = serverNow - Date.now(); }
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function countdownText(ms) {
    var late = ms < 0;
    var total = Math.floor(Math.abs(ms) / 1000);
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var seconds = total % 60;
    var text;
    if (hours >= 24) { text = Math.floor(hours / 24) + " d " + (hours % 24) + " h"; }
    else if (hours) { text = hours + " h " + pad(minutes) + " min"; }
    else { text = minutes + ":" + pad(seconds); }
    return late ? "overdue " + text : text + " left";
  }

  function tick() {
    var now = Date.now() + offset;
    var clocks = document.querySelectorAll("[data-due]");
    for (var i = 0; i < clocks.length; i++) {
      var due = Date.parse(clocks[i].getAttribute("data-due"));
      if (isNaN(due)) { continue; }
      var left = due - now;
      var text = countdownText(left);
      if (clocks[i].textContent !== text) { clocks[i].textContent = text; }
      var row = clocks[i].closest(".queue-row, li");
      if (row) { row.classList.toggle("overdue", left < 0); }
    }
  }
  tick();
  window.setInterval(tick, 1000);

  // ------------------------------------------------------------------ the queue
  var rowsBody = document.getElementById("queue-rows");
  var bulk = document.getElementById("bulk");
  if (!rowsBody) { return; }

  var picked = document.getElementById("picked");
  var actionSelect = document.getElementById("bulk-action");
  var reasonInput = document.getElementById("bulk-reason");
  var pickAll = document.getElementById("pick-all");
  var live = document.getElementById("queue-live");
  var NEEDS_REASON = { escalate: true, open_case: true, add_to_case: true };
  var focusedId = null;
  var stale = false;

  function rows() { return Array.prototype.slice.call(rowsBody.querySelectorAll("tr.queue-row")); }
  function boxes() { return Array.prototype.slice.call(rowsBody.querySelectorAll("input.pick-box")); }
  function selected() { return boxes().filter(function (b) { return b.checked; }); }

  function setLive(state, text) {
    if (!live) { return; }
    live.setAttribute("data-state", state);
    var label = live.querySelector(".label");
    if (label) { label.textContent = text; }
  }

  function updatePicked() {
    var n = selected().length;
    if (picked) { picked.textContent = n + " selected"; }
    rows().forEach(function (r) {
      var box = r.querySelector("input.pick-box");
      r.classList.toggle("picked", !!(box && box.checked));
    });
  }

  function updateFields() {
    if (!bulk || !actionSelect) { return; }
    var action = actionSelect.value;
    var fields = bulk.querySelectorAll("[data-for]");
    for (var i = 0; i < fields.length; i++) {
      fields[i].hidden = fields[i].getAttribute("data-for") !== action;
    }
    if (reasonInput) { reasonInput.required = !!NEEDS_REASON[action]; }
  }

  function focusRow(row) {
    if (!row) { return; }
    rows().forEach(function (r) { r.classList.remove("focused"); });
    row.classList.add("focused");
    focusedId = row.id;
    row.focus({ preventScroll: false });
    row.scrollIntoView({ block: "nearest" });
  }

  function currentRow() {
    return (focusedId && document.getElementById(focusedId)) || rows()[0] || null;
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var focused = focusedId && document.getElementById(focusedId);
    var at = focused ? all.indexOf(focused) : -1;
    var next = at < 0 ? 0 : Math.min(all.length - 1, Math.max(0, at + step));
    focusRow(all[next]);
  }

  function ensureSelection() {
    if (selected().length) { return true; }
    var row = currentRow();
    var box = row && row.querySelector("input.pick-box");
    if (!box) { return false; }
    box.checked = true;
    updatePicked();
    return true;
  }

  function act(action) {
    if (!bulk || !actionSelect || !ensureSelection()) { return; }
    var option = actionSelect.querySelector('option[value="' + action + '"]');
    if (!option) { return; }
    actionSelect.value = action;
    updateFields();
    if (NEEDS_REASON[action]) {
      reasonInput.focus();  // the analyst writes the reason, then presses Enter
    } else {
      bulk.requestSubmit();
    }
  }

  function claimOrRelease() {
    var row = currentRow();
    if (!row) { return; }
    var button = row.querySelector(".act-claim, .act-release");
    if (button) { button.click(); }
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(target.tagName));
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey) { return; }
    if (evt.key === "Escape") {
      if (typing(evt.target)) { evt.target.blur(); focusRow(currentRow()); return; }
      boxes().forEach(function (b) { b.checked = false; });
      updatePicked();
      return;
    }
    var onBox = evt.target.classList && evt.target.classList.contains("pick-box");
    if (typing(evt.target) && !onBox) { return; }
    if (onBox) {
      if (evt.key === " ") { return; }  // the checkbox toggles itself
      focusedId = evt.target.closest("tr").id;
    }
    var handled = true;
    switch (evt.key) {
      case "j": case "ArrowDown": move(1); break;
      case "k": case "ArrowUp": move(-1); break;
      case "x": {
        var box = currentRow() && currentRow().querySelector("input.pick-box");
        if (box) { box.checked = !box.checked; updatePicked(); }
        break;
      }
      case "Enter": {
        var link = currentRow() && currentRow().querySelector("a.row-link");
        if (link) { link.click(); }
        break;
      }
      case "c": claimOrRelease(); break;
      case "d": act("dismiss"); break;
      case "f": act("false_positive"); break;
      case "e": act("escalate"); break;
      case "o": act("open_case"); break;
      case "a": act("add_to_case"); break;
      case "r": refresh(true); break;
      case "?": {
        var help = document.getElementById("shortcuts");
        if (help) { help.open = !help.open; }
        break;
      }
      default: handled = false;
    }
    if (handled) { evt.preventDefault(); }
  });

  rowsBody.addEventListener("change", function (evt) {
    if (evt.target.classList.contains("pick-box")) { updatePicked(); }
  });
  rowsBody.addEventListener("click", function (evt) {
    var row = evt.target.closest("tr.queue-row");
    if (row) { rows().forEach(function (r) { r.classList.remove("focused"); }); row.classList.add("focused"); focusedId = row.id; }
  });
  if (pickAll) {
    pickAll.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = pickAll.checked; });
      updatePicked();
    });
  }
  if (actionSelect) { actionSelect.addEventListener("change", updateFields); }
  updateFields();
  updatePicked();

  // ------------------------------------------------------------------ live refresh
  function busy() {
    var active = document.activeElement;
    return selected().length > 0 || (active && bulk && bulk.contains(active) && active !== bulk);
  }

  var lastRefresh = 0;
  var MIN_REFRESH_MS = 5000;  // a busy stream refreshes the queue at most every 5 s

  function refresh(force) {
    if (!force && busy()) { stale = true; setLive("stale", "new alerts: press r"); return; }
    stale = false;
    lastRefresh = Date.now();
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("queue-rows");
        var counts = doc.getElementById("queue-counts");
        var root = doc.querySelector("[data-server-now]");
        if (!fresh) { return; }
        if (root) {
          var serverNow = Date.parse(root.getAttribute("data-server-now"));
          if (!isNaN(serverNow)) { offset = serverNow - Date.now(); }
        }
        rowsBody.innerHTML = fresh.innerHTML;
        var mine = document.getElementById("queue-counts");
        if (counts && mine) { mine.innerHTML = counts.innerHTML; }
        if (focusedId && document.getElementById(focusedId)) { document.getElementById(focusedId).classList.add("focused"); }
        if (pickAll) { pickAll.checked = false; }
        updatePicked();
        tick();
        setLive("live", "live");
      })
      .catch(function () { setLive("down", "reconnecting…"); });
  }

  var lastId = parseInt(rowsBody.getAttribute("data-latest") || "0", 10) || 0;
  if (window.EventSource) {
    var source = new EventSource("/events/alerts?after=" + lastId);
    var pending = null;
    source.addEventListener("open", function () { if (!stale) { setLive("live", "live"); } });
    source.addEventListener("error", function () { setLive("down", "reconnecting…"); });
    source.addEventListener("alert", function () {
      if (pending) { return; }
      var wait = Math.max(500, MIN_REFRESH_MS - (Date.now() - lastRefresh));
      pending = window.setTimeout(function () { pending = null; refresh(false); }, wait);
    });
  }
  // claims and decisions by others arrive without an event: look again every 30 s
  window.setInterval(function () { if (!busy()) { refresh(false); } }, 30000);
})();
