// Live feed: a WebSocket of log events, rendered at most every 500 ms; resumes after the last seq.
// Why the render budget: docs/decisions/017-console-server-rendered.md
(() => {
  "use strict";
  const MAX_ROWS = 500;
  const RENDER_EVERY_MS = 500; // one DOM update per interval, however fast events come
  const feed = document.getElementById("feed");
  const stateText = document.getElementById("live-state");
  const seqText = document.getElementById("live-seq");
  const pauseButton = document.getElementById("pause");
  const chat = feed.dataset.chat;
  const kind = feed.dataset.kind;
  let socket = null;
  let lastSeq = null;
  let paused = false;
  let retryMs = 500;
  let queue = [];
  let frameRequested = false;
  let lastRender = -Infinity;
  const rows = new Map(); // "chat:message" -> <li>
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" }); // built once: costly

  function url() {
    const params = new URLSearchParams();
    if (chat) params.set("chat_id", chat);
    if (kind) params.append("kind", kind);
    if (lastSeq !== null) params.set("after_seq", String(lastSeq));
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/ui/live/ws?${params}`;
  }

  let renewedAt = 0;
  async function renewSession() {
    if (Date.now() - renewedAt < 10000) return false; // renewed just now and refused again
    renewedAt = Date.now();
    try {
      const response = await fetch("/ui/session", { redirect: "manual", cache: "no-store" });
      return response.status === 204;
    } catch (_) {
      return false;
    }
  }

  function connect() {
    if (paused) return;
    socket = new WebSocket(url());
    socket.onopen = () => {
      retryMs = 500;
      stateText.textContent = lastSeq === null ? "Live." : `Live (resumed after seq ${lastSeq}).`;
    };
    socket.onmessage = (message) => {
      const items = JSON.parse(message.data);
      for (const item of items) queue.push(item);
      if (!frameRequested) {
        frameRequested = true;
        const wait = Math.max(0, lastRender + RENDER_EVERY_MS - performance.now());
        setTimeout(() => requestAnimationFrame(flush), wait);
      }
    };
    socket.onclose = (event) => {
      socket = null;
      if (paused) return;
      if (event.code === 4401) {
        // The access token expired: renew the session (the console does it on any request) and
        // resume from the last seq; signed out only when that fails.
        stateText.textContent = "Renewing the session…";
        renewSession().then((ok) => {
          if (ok) connect();
          else stateText.textContent = "Signed out: reload the page to sign in.";
        });
        return;
      }
      stateText.textContent = "Disconnected; reconnecting…";
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  function key(chatId, messageId) { return `${chatId}:${messageId}`; }

  function row(item, label) {
    const li = document.createElement("li");
    li.className = "msg";
    li.dataset.seq = String(item.seq);
    const meta = document.createElement("p");
    meta.className = "meta";
    const event = item.event || {};
    const when = event.observed_at ? clock.format(new Date(event.observed_at)) : "";
    meta.textContent = `${when} · ${label} · group ${item.chat_id ?? "?"} · seq ${item.seq}`;
    li.append(meta);
    return li;
  }

  function messageRow(item) {
    const m = item.event.message;
    const li = row(item, `#${m.message_id} ${m.sender?.display_name ?? m.sender?.username ?? ""}`.trim());
    li.id = `m-${item.chat_id}-${m.message_id}`;
    li.dataset.key = key(item.chat_id, m.message_id);
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = m.text || (m.media ? `(${m.media.type})` : "(no text)");
    li.append(text);
    return li;
  }

  function mark(li, cls, words) {
    if (li.querySelector(`.${cls}`)) return;
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = ` ${words}`;
    li.querySelector(".meta").append(span);
  }

  function apply(item, fragment, build) {
    const event = item.event || {};
    if (item.kind === "message.posted") {
      const k = key(item.chat_id, event.message.message_id);
      if (!build || rows.has(k)) return;
      const li = messageRow(item);
      rows.set(k, li);
      fragment.prepend(li);
    } else if (item.kind === "message.edited") {
      const k = key(item.chat_id, event.message.message_id);
      const li = rows.get(k);
      if (li) {
        const text = li.querySelector(".text");
        text.textContent = event.message.text || "(no text)";
        mark(li, "edited-mark", "edited");
      } else if (build) {
        const fresh = messageRow(item);
        mark(fresh, "edited-mark", "edited");
        rows.set(k, fresh);
        fragment.prepend(fresh);
      }
    } else if (item.kind === "message.deleted") {
      const li = rows.get(key(item.chat_id, event.message_id));
      if (li) {
        li.classList.add("deleted");
        const text = li.querySelector(".text");
        if (text && !text.querySelector("del")) {
          const del = document.createElement("del");
          del.textContent = text.textContent;
          text.replaceChildren(del);
        }
        mark(li, "deleted-mark", "deleted");
      } else if (build) {
        const fresh = row(item, `#${event.message_id} deleted`);
        fresh.classList.add("deleted");
        fragment.prepend(fresh);
      }
    } else if (build) {
      fragment.prepend(row(item, item.kind));
    }
  }

  function flush() {
    frameRequested = false;
    lastRender = performance.now();
    if (!queue.length) return;
    const batch = queue;
    queue = [];
    // In a burst, new rows older than the newest MAX_ROWS events would be dropped at once: they
    // are never built, but their edits and deletes still reach the rows on screen.
    const buildFrom = batch.length - MAX_ROWS;
    const fragment = document.createDocumentFragment();
    batch.forEach((item, i) => {
      if (lastSeq !== null && item.seq <= lastSeq) return; // never twice
      lastSeq = item.seq;
      apply(item, fragment, i >= buildFrom);
    });
    feed.prepend(fragment);
    let extra = feed.childElementCount - MAX_ROWS;
    while (extra-- > 0) {
      const old = feed.lastElementChild;
      if (old.dataset.key) rows.delete(old.dataset.key);
      old.remove();
    }
    seqText.textContent = `Last seq ${lastSeq}.`;
  }

  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.setAttribute("aria-pressed", String(paused));
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (paused) {
      if (socket) socket.close(1000, "paused");
      stateText.textContent = `Paused after seq ${lastSeq ?? "—"}.`;
    } else {
      connect();
    }
  });

  connect();
})();
