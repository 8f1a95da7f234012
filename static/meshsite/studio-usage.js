// The usage page's charts: Chart.js (static/vendor/chart.js, loaded as a classic script before
// this module) over the daily series the server rendered into #usage-series.
const series = JSON.parse(document.getElementById("usage-series").textContent);
const Chart = window.Chart;
const common = {
  responsive: true,
  maintainAspectRatio: false,
  animation: false,
  interaction: { mode: "index", intersect: false },
  scales: { x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true } }, y: { stacked: true, beginAtZero: true } },
};

function bar(id, datasets) {
  const canvas = document.getElementById(id);
  const chart = new Chart(canvas, { type: "bar", data: { labels: series.days, datasets }, options: common });
  canvas.dataset.drawn = "true"; // for tests and screen readers' sake: the chart exists
  return chart;
}

window.meshsiteCharts = {
  cost: bar("cost-chart", [
    { label: "Models", data: series.usage_cost, backgroundColor: "#2f5bd3" },
    { label: "Tools", data: series.tool_cost, backgroundColor: "#a86400" },
  ]),
  tokens: bar("tokens-chart", [
    { label: "Input", data: series.input_tokens, backgroundColor: "#6b3fb5" },
    { label: "Output", data: series.output_tokens, backgroundColor: "#1d7a46" },
  ]),
  calls: bar("calls-chart", [{ label: "Calls", data: series.calls, backgroundColor: "#5d6678" }]),
};
