// The live feed's small behaviours, kept out of the pages so the Content-Security-Policy
// can forbid inline scripts:
// - the live indicator follows the event stream (htmx sse extension events);
// - a row that is already on the page is never added twice (after a reconnect);
// - a reconnect resumes after the newest alert shown, not the one the page loaded with;
// - the feed keeps at most MAX_ROWS rows, so a screen left open for days stays fast.
(function () {
  "use strict";
  var MAX_ROWS = 500;

  function setIndicator(state, text) {
    var el = document.getElementById("live");
    if (!el) { return; }
    el.setAttribute("data-state", state);
    var label = el.querySelector(".label");
    if (label) { label.textContent = text; }
  }

  document.addEventListener("htmx:sseOpen", function () { setIndicator("live", "live"); });
  document.addEventListener("htmx:sseError", function () { setIndicator("down", "reconnecting…"); });
  document.addEventListener("htmx:sseClose", function () { setIndicator("down", "disconnected"); });

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var id = evt.detail && evt.detail.lastEventId;
    if (id && document.getElementById("alert-" + id)) {
      evt.preventDefault();
    }
  });

  document.addEventListener("htmx:sseMessage", function (evt) {
    var id = evt.detail && evt.detail.lastEventId;
    var source = document.querySelector("[sse-connect]");
    if (id && source && /^[0-9]+$/.test(id)) {
      source.setAttribute("sse-connect", "/events/alerts?after=" + id);
    }
    var rows = document.querySelectorAll("#feed-rows > tr");
    for (var i = MAX_ROWS; i < rows.length; i++) {
      rows[i].remove();
    }
    setIndicator("live", "live");
  });
})();
