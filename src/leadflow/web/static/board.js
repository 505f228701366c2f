// Pipeline board: drag a card onto another column to move the lead (POST to the lead's
// status, as the card's own stage menu does), then move the card and fix both counts.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board) return;
  var token = document.querySelector('meta[name="csrf-token"]').content;
  var dragged = null;

  function count(column, delta) {
    var badge = column.querySelector("h2 .badge");
    var n = parseInt(badge.dataset.count, 10) + delta;
    badge.dataset.count = String(n);
    badge.textContent = String(n);
  }

  function move(card, target) {
    var source = card.closest(".column");
    if (!target || target === source) return;
    var body = new URLSearchParams({ status: target.dataset.stage, from: "board" });
    fetch("/crm/leads/" + card.dataset.lead + "/status", {
      method: "POST",
      headers: { "X-CSRF-Token": token, "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
      credentials: "same-origin"
    }).then(function (response) {
      if (response.status !== 204) {
        return response.text().then(function (html) {
          document.getElementById("flash").innerHTML = html;
        });
      }
      target.querySelector(".cards").prepend(card);
      var select = card.querySelector("select[name=status]");
      if (select) select.value = target.dataset.stage;
      count(source, -1);
      count(target, 1);
      card.classList.add("moved");
    });
  }

  board.addEventListener("dragstart", function (event) {
    dragged = event.target.closest(".card");
    if (!dragged) return;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.lead);
  });
  board.addEventListener("dragover", function (event) {
    if (dragged && event.target.closest(".column")) event.preventDefault();
  });
  board.addEventListener("drop", function (event) {
    var column = event.target.closest(".column");
    if (!dragged || !column) return;
    event.preventDefault();
    move(dragged, column);
    dragged = null;
  });
})();
