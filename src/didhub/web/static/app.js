// didhub dashboard: modals (<dialog>), the Numbers menu, and the buy table's
// tick boxes. Everything else is server-rendered and swapped in by htmx.
(function () {
  "use strict";

  var opener = null; // the element that opened the current modal, to return focus to

  function slot() { return document.getElementById("modal-slot"); }

  function focusFirst(root) {
    var target = root.querySelector("[data-focus]") ||
      root.querySelector("[autofocus]") ||
      root.querySelector("input:not([type=hidden]), select, textarea, button");
    if (target) { target.focus(); }
  }

  function openModals(root) {
    var dialogs = root.querySelectorAll ? root.querySelectorAll("dialog[data-modal]") : [];
    dialogs.forEach(function (dialog) {
      if (!dialog.open) {
        dialog.addEventListener("close", function () {
          // Cancel, Esc or a finished action: the slot empties, focus goes back.
          var s = slot();
          if (s && s.contains(dialog)) { s.innerHTML = ""; }
          if (opener && document.body.contains(opener)) { opener.focus(); }
          opener = null;
        });
        dialog.showModal();
      }
      focusFirst(dialog);
    });
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.getAttribute && elt.getAttribute("hx-target") === "#modal-slot" &&
        !(slot() && slot().contains(elt))) {
      opener = elt;
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    openModals(event.detail.elt || document);
    var focus = document.querySelector("#messages [data-focus]");
    if (focus && !(slot() && slot().querySelector("dialog[open]"))) {
      focus.removeAttribute("data-focus");
      focus.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-close]");
    if (close) {
      var dialog = close.closest("dialog");
      if (dialog) { dialog.close(); }
    }
    // A click outside the open Numbers menu closes it.
    document.querySelectorAll(".menu details[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll(".menu details[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });

  // The buy table: "select all" and the "N selected" count.
  function updateCount(form) {
    var picks = form.querySelectorAll("input[data-pick]");
    var ticked = form.querySelectorAll("input[data-pick]:checked").length;
    var count = form.querySelector("#selected-count");
    if (count) { count.textContent = ticked + " selected"; }
    var all = form.querySelector("[data-select-all]");
    if (all) {
      all.checked = ticked > 0 && ticked === picks.length;
      all.indeterminate = ticked > 0 && ticked < picks.length;
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.closest && target.closest("form");
    if (!form) { return; }
    if (target.matches("[data-select-all]")) {
      form.querySelectorAll("input[data-pick]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches("[data-select-all], input[data-pick]")) { updateCount(form); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    openModals(document);
    var focus = document.querySelector("#messages [data-focus], main [data-focus]");
    if (focus) { focus.focus(); }
  });
})();
