// Leadflow web app: the live notifications bell, "select all" of the lead list, confirmations
// of plain forms and copy buttons.
(function () {
  "use strict";

  function startBell() {
    var bell = document.getElementById("bell");
    if (!bell || !window.EventSource) return;
    var source = new EventSource(bell.dataset.stream);
    source.addEventListener("notification", function (event) {
      var count = document.getElementById("bell-count");
      var n = parseInt(count.dataset.count || "0", 10) + 1;
      count.dataset.count = String(n);
      count.textContent = String(n);
      bell.setAttribute("aria-label", bell.dataset.labelTemplate.replace("{n}", String(n)));
      bell.classList.add("ringing");
      try {
        var item = JSON.parse(event.data);
        bell.title = item.title;
      } catch (e) { /* a malformed event only skips the title */ }
    });
    source.addEventListener("session_ended", function () {
      source.close();
      window.location.assign("/login");
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.classList || !box.classList.contains("select-all")) return;
    document.querySelectorAll('input[name="ids"][form="bulk"]').forEach(function (other) {
      other.checked = box.checked;
    });
  });

  // The lead list's search box fetches as the user types ("input … from:#q"). Its "change",
  // fired when the box is left, would fetch the same results again and swap them in under
  // the cursor: a view name typed into the swapped part meanwhile was lost.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.id === "q" && box.form && box.form.id === "filters") event.stopPropagation();
  }, true);

  // Forms that ask first (plain forms; htmx ones use hx-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // "Copy" buttons: the text of the element their data-copy selector names.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    var text = source.value !== undefined && source.tagName !== "CODE" ? source.value : source.textContent;
    navigator.clipboard.writeText(text).then(function () {
      button.dataset.copied = "true";
    }, function () { /* not allowed: the text stays selectable */ });
  });

  // Dialogs: a button with data-dialog opens the <dialog> it names; data-close-dialog closes.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest ? event.target.closest("[data-dialog]") : null;
    if (opener) {
      var dialog = document.querySelector(opener.dataset.dialog);
      if (dialog && dialog.showModal) dialog.showModal();
      return;
    }
    var closer = event.target.closest ? event.target.closest("[data-close-dialog]") : null;
    if (closer) {
      var open = closer.closest("dialog");
      if (open) open.close();
    }
  });

  // After a full sign-out elsewhere, htmx requests get HX-Redirect; nothing else to do here.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startBell);
  } else {
    startBell();
  }
})();
