// What the buyer's app and the operator's console share: calls to the host's
// API in the contract's JSON, its errors as plain sentences, and a small DOM
// builder that only ever sets text (never HTML), so nothing a server or a
// user sends can become markup.
"use strict";

const tacos = (() => {
  const sentences = {
    ERROR_CODE_INVALID_ARGUMENT: "That request was not valid.",
    ERROR_CODE_UNAUTHENTICATED: "Please sign in again.",
    ERROR_CODE_FORBIDDEN: "That is not yours to change.",
    ERROR_CODE_UNAUTHORIZED: "That is not yours to change.",
    ERROR_CODE_NOT_FOUND: "We could not find that.",
    ERROR_CODE_ALREADY_EXISTS: "That exists already.",
    ERROR_CODE_FAILED_PRECONDITION: "That cannot be done right now.",
    ERROR_CODE_RATE_LIMITED: "Too many requests: wait a moment and try again.",
    ERROR_CODE_QUOTA_EXCEEDED: "The site is busy: try again in a moment.",
    ERROR_CODE_IDEMPOTENCY_CONFLICT: "That request was already made with other details.",
    ERROR_CODE_RESERVATION_EXPIRED: "Your hold has expired and the seats were released.",
    ERROR_CODE_PAYMENT_NOT_APPROVED: "The payment was not approved.",
    ERROR_CODE_INVENTORY_CONFLICT: "Someone else just took one of those seats: pick others.",
    ERROR_CODE_INSUFFICIENT_INVENTORY: "There are not enough seats left.",
    ERROR_CODE_CONCURRENT_MODIFICATION: "Someone else changed this at the same moment: try again.",
    ERROR_CODE_UNAVAILABLE: "The service is unavailable: try again shortly.",
    ERROR_CODE_TIMEOUT: "That took too long: try again.",
  };

  /** An API failure: the contract's error, said plainly. */
  class ApiError extends Error {
    constructor(status, error) {
      const code = (error && error.code) || "ERROR_CODE_INTERNAL";
      super((error && error.message) || `HTTP ${status}`);
      this.status = status;
      this.code = code;
      this.traceId = error && error.trace_id;
    }
    /** A sentence for people: what happened, then the host's own words. */
    get sentence() {
      const plain = sentences[this.code] || "Something went wrong on our side: try again.";
      return this.message && !plain.includes(this.message) ? `${plain} (${this.message})` : plain;
    }
  }

  /** A random id, for idempotency keys and sessions. */
  function newId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /**
   * Call the host: `path` with `body` (JSON) as `method`; `token` a bearer
   * token; `idempotencyKey` makes a retry safe; `headers` more headers
   * (the console's `x-tenant-id`).
   */
  async function api(path, { method = "GET", body, token, idempotencyKey, headers: extra } = {}) {
    const headers = { ...(extra || {}) };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
    let resp;
    try {
      resp = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, { code: "ERROR_CODE_UNAVAILABLE", message: "the host cannot be reached" });
    }
    const text = await resp.text();
    let json = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch (e) {
      json = {};
    }
    if (!resp.ok) throw new ApiError(resp.status, json.error);
    return json;
  }

  /** An element with attributes and children (strings become text). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /** Replace what `node` shows. */
  function show(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  /** An amount of money in its currency (the smallest unit, as the contract has it). */
  function money(m) {
    if (!m) return "";
    const amount = Number(m.amount || 0);
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: m.currency || "KRW" }).format(
        m.currency === "KRW" || m.currency === "JPY" ? amount : amount / 100,
      );
    } catch (e) {
      return `${amount} ${m.currency || ""}`;
    }
  }

  /** A WebSocket URL on this host. */
  function wsUrl(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${path}`;
  }

  /**
   * A live route: reconnects with backoff (1, 2, 4, 8, 16 s) and resumes
   * (every connection starts from the state now); a close with a reason
   * (1000, 4xxx) is final.
   */
  function live(path, { message, closed, status }) {
    let ws = null;
    let attempt = 0;
    let stopped = false;
    let timer = null;
    const connect = () => {
      ws = new WebSocket(wsUrl(path));
      ws.onopen = () => {
        attempt = 0;
      };
      ws.onmessage = (ev) => {
        try {
          message(JSON.parse(ev.data));
        } catch (e) {
          status(String(e));
        }
      };
      ws.onclose = (ev) => {
        if (stopped) return;
        if (ev.code === 1000 || ev.code >= 4000) return closed(ev.code, ev.reason);
        if (attempt >= 5) return status("Connection lost. Reload the page to try again.");
        const delay = 1000 * 2 ** attempt++;
        status(`Reconnecting in ${delay / 1000} s…`);
        timer = setTimeout(connect, delay);
      };
    };
    connect();
    return {
      stop() {
        stopped = true;
        clearTimeout(timer);
        if (ws) ws.close(1000, "done");
      },
    };
  }

  return { api, ApiError, el, show, money, newId, wsUrl, live };
})();
