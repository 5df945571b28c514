// Draws the candles of one symbol and interval from /api/v3/klines with Lightweight Charts (served locally).
// When drawn, #chart gets data-state="ready" and data-candles=<count>, so a browser test can count them.
(function () {
  "use strict";
  const box = document.getElementById("chart");
  const status = document.getElementById("status");
  const params = new URLSearchParams({ symbol: box.dataset.symbol, interval: box.dataset.interval, limit: "1000" });

  function decimals(text) {
    const dot = text.indexOf(".");
    return dot < 0 ? 0 : text.replace(/0+$/, "").length - dot - 1;
  }

  fetch(box.dataset.klinesUrl + "?" + params.toString(), { headers: { Accept: "application/json" } })
    .then((response) => response.json().then((body) => ({ ok: response.ok, body })))
    .then(({ ok, body }) => {
      if (!ok) throw new Error(body.msg || "request failed");
      // Prices are decimal strings; the chart needs numbers only to draw them.
      const precision = Math.min(10, Math.max(2, ...body.map((k) => Math.max(decimals(k[1]), decimals(k[4])))));
      const chart = LightweightCharts.createChart(box, {
        autoSize: true,
        layout: { background: { color: "#ffffff" }, textColor: "#1f2328" },
        timeScale: { timeVisible: true, secondsVisible: false },
      });
      const series = chart.addSeries(LightweightCharts.CandlestickSeries, {
        priceFormat: { type: "price", precision: precision, minMove: Math.pow(10, -precision) },
      });
      series.setData(
        body.map((k) => ({
          time: k[0] / 1000,
          open: Number(k[1]),
          high: Number(k[2]),
          low: Number(k[3]),
          close: Number(k[4]),
        }))
      );
      chart.timeScale().fitContent();
      // Report after the library painted the next frame.
      requestAnimationFrame(() =>
        requestAnimationFrame(() => {
          box.dataset.candles = String(series.data().length);
          box.dataset.state = "ready";
          status.textContent = series.data().length + " candles";
        })
      );
    })
    .catch((error) => {
      box.dataset.state = "error";
      status.textContent = "could not load candles: " + error.message;
    });
})();
