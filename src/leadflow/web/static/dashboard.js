// The dashboard's lead volume chart (Chart.js, data from the canvas's data-chart attribute).
(function () {
  "use strict";
  function draw() {
    var canvas = document.getElementById("volume-chart");
    if (!canvas || !window.Chart) return;
    var data = JSON.parse(canvas.dataset.chart);
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [{ label: canvas.dataset.label, data: data.counts, borderColor: "#0172ad", backgroundColor: "rgba(1,114,173,0.15)", fill: true, tension: 0.25 }]
      },
      options: { animation: false, responsive: true, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
