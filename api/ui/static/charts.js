// Analytics: each chart box fetches its named query (session cookie) and draws it with Chart.js.
(() => {
  "use strict";
  const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const COLORS = ["#0b57d0", "#1e6b2e", "#a4161a", "#7a4d00", "#5b2a86", "#00695c", "#8d3b72", "#37474f"];

  function column(result, name) {
    const i = result.columns.indexOf(name);
    return result.rows.map((r) => r[i]);
  }

  function canvas(box, label) {
    const c = document.createElement("canvas");
    c.setAttribute("role", "img");
    c.setAttribute("aria-label", label);
    box.append(c);
    return c;
  }

  function sumBy(result, keyName, valueName) {
    const totals = new Map();
    const keys = column(result, keyName);
    const values = column(result, valueName);
    keys.forEach((k, i) => totals.set(k, (totals.get(k) || 0) + Number(values[i] || 0)));
    return totals;
  }

  function heatmap(box, result) {
    const counts = new Map();
    const days = column(result, "weekday");
    const hours = column(result, "hour");
    const values = column(result, "messages");
    let max = 1;
    days.forEach((d, i) => { counts.set(`${d}:${hours[i]}`, values[i]); max = Math.max(max, values[i]); });
    const table = document.createElement("table");
    table.className = "heatmap";
    const caption = document.createElement("caption");
    caption.className = "visually-hidden";
    caption.textContent = "Messages by weekday (rows) and hour of day in UTC (columns)";
    table.append(caption);
    const head = table.createTHead().insertRow();
    head.append(document.createElement("td"));
    for (let h = 0; h < 24; h++) { const th = document.createElement("th"); th.scope = "col"; th.textContent = String(h); head.append(th); }
    const body = table.createTBody();
    for (let d = 1; d <= 7; d++) {
      const tr = body.insertRow();
      const th = document.createElement("th"); th.scope = "row"; th.textContent = DAYS[d - 1]; tr.append(th);
      for (let h = 0; h < 24; h++) {
        const n = counts.get(`${d}:${h}`) || 0;
        const td = tr.insertCell();
        td.textContent = String(n);
        const level = n / max;
        td.style.background = `rgba(11, 87, 208, ${0.08 + 0.9 * level})`;
        td.style.color = level > 0.45 ? "#ffffff" : "#1a1a1a";
      }
    }
    const wrap = document.createElement("div");
    wrap.className = "scroll";
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", "Heatmap table");
    wrap.append(table);
    box.append(wrap);
  }

  function draw(box, chart, result) {
    const title = box.closest("section").querySelector("h2").textContent;
    if (chart === "heatmap") return heatmap(box, result);
    let config;
    if (chart === "bar") {
      const totals = sumBy(result, "day", "messages");
      config = { type: "bar", data: { labels: [...totals.keys()], datasets: [{ label: "messages", data: [...totals.values()], backgroundColor: COLORS[0] }] } };
    } else if (chart === "line") {
      config = { type: "line", data: { labels: column(result, "day"), datasets: [{ label: "active senders", data: column(result, "active_senders"), borderColor: COLORS[1], backgroundColor: COLORS[1] }] } };
    } else if (chart === "rates") {
      config = { type: "bar", data: { labels: column(result, "chat_id").map(String), datasets: [
        { label: "edit rate", data: column(result, "edit_rate"), backgroundColor: COLORS[3] },
        { label: "delete rate", data: column(result, "delete_rate"), backgroundColor: COLORS[2] }] } };
    } else if (chart === "doughnut") {
      config = { type: "doughnut", data: { labels: column(result, "media_type"), datasets: [{ label: "messages", data: column(result, "messages"), backgroundColor: COLORS }] } };
    } else if (chart === "lag") {
      config = { type: "bar", data: { labels: column(result, "source"), datasets: [
        { label: "p50", data: column(result, "p50_s"), backgroundColor: COLORS[1] },
        { label: "p95", data: column(result, "p95_s"), backgroundColor: COLORS[3] },
        { label: "p99", data: column(result, "p99_s"), backgroundColor: COLORS[2] }] } };
    }
    config.options = { animation: false, responsive: true, maintainAspectRatio: false };
    const holder = document.createElement("div");
    holder.style.position = "relative"; holder.style.height = "16rem";
    box.append(holder);
    new window.Chart(canvas(holder, `${title}: chart of ${result.rows.length} rows`), config);
  }

  async function load(box) {
    const state = box.querySelector(".chart-state");
    try {
      const response = await fetch(`/ui/data/analytics/${box.dataset.query}`, { credentials: "same-origin" });
      if (!response.ok) {
        const text = await response.text();
        const words = new DOMParser().parseFromString(text, "text/html").querySelector(".error");
        state.textContent = words ? words.textContent : "The analytics snapshot is not available yet.";
        return;
      }
      const result = await response.json();
      if (!result.rows.length) { state.textContent = "No data yet."; return; }
      state.textContent = result.truncated ? "Showing the first rows only." : "";
      draw(box, box.dataset.chart, result);
    } catch (e) {
      state.textContent = "Could not load this chart. Reload the page to try again.";
    }
  }

  document.querySelectorAll(".chart-box").forEach(load);
})();
