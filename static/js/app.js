// copytrade: small progressive enhancements. No inline scripts, no eval (the CSP forbids both).
(function () {
  "use strict";

  // Polling pauses in hidden tabs: elements marked data-poll-visible carry an hx-trigger of
  // "every Ns [pollable]"-free form; instead we cancel requests while the document is hidden.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-poll") && document.hidden) {
      event.preventDefault();
    }
  });
  // Catch up at once when the tab becomes visible again.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && window.htmx) {
      document.querySelectorAll("[data-poll]").forEach(function (elt) {
        window.htmx.trigger(elt, "poll-now");
      });
    }
  });

  // Copy buttons are hidden until this script runs: without JavaScript the text stays
  // selectable and nothing pretends to copy it.
  function revealCopyButtons(root) {
    (root || document).querySelectorAll("[data-copy-target][hidden]").forEach(function (b) {
      b.hidden = false;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { revealCopyButtons(document); });
  document.addEventListener("htmx:afterSettle", function (event) { revealCopyButtons(event.target); });

  // Copy-to-clipboard buttons, with a fallback where the clipboard API is unavailable.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-target]");
    if (!button) return;
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) return;
    var text = target.value !== undefined ? target.value : target.textContent;
    var done = function (ok) {
      button.textContent = ok ? "Copied" : "Select and copy (Ctrl+C)";
      if (!ok && target.select) { target.focus(); target.select(); }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    } else {
      done(false);
    }
  });
})();
