// Dashboard: the status panel refreshes on live events (at most every 3 s) and every 30 s by htmx.
(() => {
  "use strict";
  const stateText = document.getElementById("live-state");
  const perMinute = document.getElementById("per-minute");
  const posts = [];
  const openedAt = Date.now();
  let lastRefresh = 0;
  let pending = false;
  let retryMs = 1000;

  function refresh() {
    const now = Date.now();
    if (now - lastRefresh < 3000) {
      if (!pending) { pending = true; setTimeout(() => { pending = false; refresh(); }, 3000); }
      return;
    }
    lastRefresh = now;
    if (window.htmx) window.htmx.trigger("#status", "refresh");
  }

  function showRate() {
    const now = Date.now();
    while (posts.length && posts[0] < now - 60000) posts.shift();
    const seconds = Math.round((now - openedAt) / 1000);
    perMinute.textContent = seconds >= 60 ? String(posts.length) : `${posts.length} (page open ${seconds} s)`;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams([["kind", "message.posted"], ["kind", "ingest"], ["kind", "backfill"], ["kind", "chat"]]);
    const socket = new WebSocket(`${scheme}://${location.host}/ui/live/ws?${params}`);
    socket.onopen = () => { retryMs = 1000; stateText.textContent = "Live."; };
    socket.onmessage = (message) => {
      const now = Date.now();
      for (const item of JSON.parse(message.data)) if (item.kind === "message.posted") posts.push(now);
      refresh();
    };
    socket.onclose = (event) => {
      stateText.textContent = "Live feed unavailable; the status refreshes every 30 s.";
      // 4401: the access token expired; the 30 s refresh renews the session, then reconnect.
      setTimeout(connect, event.code === 4401 ? 30000 : retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }

  setInterval(showRate, 1000);
  connect();
})();
