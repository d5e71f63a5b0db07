// Draws the dashboard's trend chart from the page's JSON island (#chart-data): one line per
// indicator over the period's days.
(function () {
  var el = document.getElementById('trend-chart');
  var data = JSON.parse(document.getElementById('chart-data').textContent);
  if (!el || typeof echarts === 'undefined') { return; }
  var chart = echarts.init(el);
  chart.setOption({
    tooltip: { trigger: 'axis', valueFormatter: function (v) { return v == null ? '—' : v + '%'; } },
    legend: { top: 0 },
    grid: { left: 40, right: 16, top: 40, bottom: 30 },
    xAxis: { type: 'category', data: data.days },
    yAxis: { type: 'value', min: function (v) { return Math.max(0, Math.floor(v.min - 5)); }, max: 100 },
    series: data.lines.map(function (l) { return { name: l.name, type: 'line', connectNulls: false, data: l.points, showSymbol: false }; })
  });
  window.addEventListener('resize', function () { chart.resize(); });
})();
