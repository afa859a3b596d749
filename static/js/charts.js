// Draws every <div class="chart" data-chart="ID"> from the JSON in <script id="ID">.
// window.innopointsCharts counts the charts drawn (the browser tests read it).
(function () {
  "use strict";
  window.innopointsCharts = { drawn: 0, failed: [] };
  function draw() {
    document.querySelectorAll("div.chart[data-chart]").forEach(function (el) {
      try {
        var option = JSON.parse(document.getElementById(el.dataset.chart).textContent);
        var chart = echarts.init(el, null, { renderer: "canvas" });
        option.animation = false;
        chart.setOption(option);
        window.addEventListener("resize", function () { chart.resize(); });
        window.innopointsCharts.drawn += 1;
      } catch (e) {
        window.innopointsCharts.failed.push(el.dataset.chart + ": " + e);
        throw e;
      }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
