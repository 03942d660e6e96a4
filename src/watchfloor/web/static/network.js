/* The network view: draws /api/network with the vendored cytoscape (canvas, no inline code).
   Every fact the graph shows is also in the tables of the page, for screen readers and print. */
(function () {
  "use strict";

  var PALETTE = ["#79c0ff", "#ffa657", "#56d364", "#d2a8ff", "#ff7b72", "#e3b341", "#39c5cf", "#f778ba",
                 "#a5d6ff", "#7ee787"];

  function colour(component) {
    return PALETTE[(component - 1) % PALETTE.length];
  }

  function say(box, text) {
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "empty-note";
    p.textContent = text;
    box.appendChild(p);
  }

  function pick(cy, component) {
    cy.elements().removeClass("faded");
    document.querySelectorAll("section.component.picked").forEach(function (s) { s.classList.remove("picked"); });
    if (component === null) { return; }
    cy.elements().filter(function (el) { return el.data("component") !== component; }).addClass("faded");
    var section = document.getElementById("component-" + component);
    if (section) { section.classList.add("picked"); }
  }

  function draw(box, data) {
    if (!data.nodes.length) {
      say(box, "No coordinated components for these settings.");
      box.dataset.ready = "empty";
      return;
    }
    var elements = data.nodes.map(function (n) {
      return { data: { id: n.id, component: n.component, community: n.community, colour: colour(n.component) } };
    }).concat(data.edges.map(function (e, i) {
      return { data: { id: "e" + i, source: e.source, target: e.target, weight: e.weight, pairs: e.pairs,
                       component: e.component, colour: colour(e.component) } };
    }));
    box.textContent = "";
    var cy = cytoscape({
      container: box,
      elements: elements,
      layout: { name: "cose", animate: false, nodeRepulsion: 400000, idealEdgeLength: 80, nodeOverlap: 40,
                edgeElasticity: 50, gravity: 0.2, componentSpacing: 80 },
      minZoom: 0.2,
      maxZoom: 2.5,
      wheelSensitivity: 0.3,
      style: [
        { selector: "node", style: {
          "background-color": "data(colour)", "width": 14, "height": 14,
          "label": data.nodes.length <= 12 ? "data(id)" : "", "font-size": 7, "color": "#a3adb8",
          "text-valign": "bottom", "text-margin-y": 3 } },
        { selector: "node:selected", style: { "border-width": 2, "border-color": "#f2cc60", "label": "data(id)" } },
        { selector: "edge", style: {
          "line-color": "data(colour)", "opacity": 0.7, "curve-style": "haystack",
          "width": "mapData(weight, 1, 10, 1, 6)" } },
        { selector: ".faded", style: { "opacity": 0.12 } }
      ]
    });
    cy.on("tap", "node", function (evt) { pick(cy, evt.target.data("component")); });
    cy.on("tap", function (evt) { if (evt.target === cy) { pick(cy, null); } });
    box.dataset.ready = "true";
    box.dataset.nodes = String(cy.nodes().length);
    box.dataset.edges = String(cy.edges().length);
  }

  function start() {
    var box = document.getElementById("network-graph");
    if (!box) { return; }
    if (typeof window.cytoscape !== "function") {
      say(box, "The graph library did not load; the components are listed below.");
      box.dataset.ready = "error";
      return;
    }
    fetch(box.dataset.src, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)); })
      .then(function (data) { draw(box, data); })
      .catch(function () {
        say(box, "The graph could not be loaded; the components are listed below.");
        box.dataset.ready = "error";
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
