/* Meeting mode's keyboard: → or j next item, ← or k previous, g focuses "Jump to",
   s goes to the sign-off. Keys are ignored while typing. No inline script (CSP). */
(function () {
  "use strict";

  function isTyping(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (!link) { return; }
    if (window.htmx && link.hasAttribute("hx-get")) {
      htmx.ajax("GET", link.getAttribute("href"), { source: link, target: "#stage", swap: "outerHTML" }).then(function () {
        history.pushState({}, "", link.getAttribute("href"));
      });
    } else {
      window.location.href = link.href;
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) { return; }
    if (event.key === "ArrowRight" || event.key === "j") { event.preventDefault(); follow("next-item"); }
    else if (event.key === "ArrowLeft" || event.key === "k") { event.preventDefault(); follow("prev-item"); }
    else if (event.key === "g") { var jump = document.getElementById("jump"); if (jump) { event.preventDefault(); jump.focus(); } }
    else if (event.key === "s") { var sign = document.getElementById("to-signoff"); if (sign) { window.location.href = sign.href; } }
  });

  // Choosing an item in "Jump to" goes there at once.
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "jump") {
      var form = event.target.form;
      if (form && window.htmx) { htmx.trigger(form, "submit"); }
    }
  });

  // Keep the stage in view and its heading focused after each swap, so a screen reader reads it.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail && event.detail.target && event.detail.target.id === "stage") {
      var stage = document.getElementById("stage");
      var title = stage && stage.querySelector(".stage-title");
      if (title) { title.setAttribute("tabindex", "-1"); title.focus({ preventScroll: true }); }
      window.scrollTo(0, 0);
    }
  });
})();
