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

  // Dialogs (native <dialog>): a link with data-dialog-open="ID" also loads the dialog's
  // body with htmx (hx-get); without JavaScript the link simply opens the full page.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-dialog-open]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog-open"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.showModal();
      }
      return;
    }
    var closer = event.target.closest && event.target.closest("[data-dialog-close]");
    if (closer) {
      var parent = closer.closest("dialog");
      if (parent) {
        // Cleared now, not in the (asynchronous) close event: nothing secret outlives the click.
        resetDialog(parent);
        parent.close();
      }
    }
  });
  // Nothing stays behind in the page: a one-time password, a half-filled form.
  function resetDialog(dialog) {
    dialog.querySelectorAll("[data-dialog-reset]").forEach(function (body) {
      body.innerHTML = "";
      var note = document.createElement("p");
      note.className = "muted";
      note.textContent = body.getAttribute("data-dialog-reset");
      if (note.textContent) body.appendChild(note);
    });
  }
  // Closing a dialog refreshes the live part of the page (a follower was registered, a copy
  // was placed) and gives the focus back to what opened it.
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (!(dialog instanceof HTMLDialogElement)) return;
    resetDialog(dialog);  // closed by Escape or by a form with method="dialog"
    var live = document.getElementById("live");
    if (live && window.htmx) window.htmx.trigger(live, "refresh");
    var opener = document.querySelector('[data-dialog-open="' + dialog.id + '"]');
    if (opener) opener.focus();
  }, true);

  // "Use it in the form": data-fill='{"field name": "value", ...}' fills the form fields of
  // the same dialog (radio buttons by value).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-fill]");
    if (!button) return;
    var scope = button.closest("dialog") || document;
    var values;
    try { values = JSON.parse(button.getAttribute("data-fill")); } catch (e) { return; }
    Object.keys(values).forEach(function (name) {
      scope.querySelectorAll('form [name="' + name + '"]').forEach(function (input) {
        if (input.type === "radio" || input.type === "checkbox") {
          input.checked = input.value === values[name];
        } else {
          input.value = values[name];
        }
        input.dispatchEvent(new Event("change", {bubbles: true}));
      });
    });
    button.textContent = "Filled in";
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-fill][hidden]").forEach(function (b) { b.hidden = false; });
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    event.target.querySelectorAll("[data-fill][hidden]").forEach(function (b) { b.hidden = false; });
  });

  // Expanded rows stay expanded when a polled region is replaced.
  var openDetails = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || !target.querySelectorAll) return;
    target.querySelectorAll("details[id]").forEach(function (d) {
      if (d.open) { openDetails[d.id] = true; } else { delete openDetails[d.id]; }
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    Object.keys(openDetails).forEach(function (id) {
      var d = document.getElementById(id);
      if (d && d.tagName === "DETAILS") d.open = true;
    });
  });
})();
