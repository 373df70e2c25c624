/* The compact checklist's keyboard: Enter opens a line (it is a link), Escape closes the open
   editor, "n" opens the next criterion that is not met yet. No inline script (CSP). */
(function () {
  "use strict";
  var lastRowId = null;

  function isTyping(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  function openEditors() {
    return Array.prototype.slice.call(document.querySelectorAll("#checklist article.crit.is-expanded"));
  }

  // Ask htmx directly rather than clicking the link: a link in content swapped in a moment
  // ago may not be wired up yet, and a plain click would leave the page.
  function load(article, url) {
    return htmx.ajax("GET", url, { source: article, target: article, swap: "outerHTML" });
  }

  function closeEditor(article) {
    var link = article.querySelector("a.collapse");
    if (link) { load(article, link.getAttribute("href")); }
  }

  function nextOpen() {
    var lines = Array.prototype.slice.call(document.querySelectorAll("#checklist article"));
    var start = 0;
    if (lastRowId) {
      var current = document.getElementById(lastRowId);
      var index = lines.indexOf(current);
      if (index >= 0) { start = index + 1; }
    }
    var ordered = lines.slice(start).concat(lines.slice(0, start));
    for (var i = 0; i < ordered.length; i++) {
      var el = ordered[i];
      if (el.classList.contains("line") && el.dataset.open === "1") { return el; }
    }
    return null;
  }

  function goNext() {
    openEditors().forEach(closeEditor);
    var target = nextOpen();
    if (!target) {
      var button = document.getElementById("next-open");
      if (button) { button.textContent = "Nothing open here"; button.disabled = true; }
      return;
    }
    lastRowId = target.id;
    load(target, target.querySelector("a.line-main").getAttribute("href"));
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#next-open")) { goNext(); }
    var line = event.target.closest && event.target.closest("article.line");
    if (line) { lastRowId = line.id; }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var open = event.target.closest ? event.target.closest("article.crit.is-expanded") : null;
      var editors = open ? [open] : openEditors();
      if (editors.length) { event.preventDefault(); editors.forEach(closeEditor); }
      return;
    }
    if ((event.key === "n" || event.key === "N") && !event.ctrlKey && !event.metaKey && !event.altKey && !isTyping(event.target)) {
      if (document.getElementById("checklist")) { event.preventDefault(); goNext(); }
    }
  });

  // After a line opens, put the cursor on its status; after an editor closes, back on its line.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var el = event.detail.elt;
    if (!el || !el.id || el.id.indexOf("row-") !== 0) { return; }
    var fresh = document.getElementById(el.id);
    if (!fresh) { return; }
    lastRowId = fresh.id;
    if (fresh.classList.contains("is-expanded") && event.detail.requestConfig && event.detail.requestConfig.verb === "get") {
      var status = fresh.querySelector("select[name$='-status']");
      if (status) { status.focus(); }
    } else if (fresh.classList.contains("line") && event.detail.requestConfig && event.detail.requestConfig.verb === "get") {
      var main = fresh.querySelector("a.line-main");
      if (main) { main.focus(); }
    }
  });
})();
