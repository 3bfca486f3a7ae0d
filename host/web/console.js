// The operator's console: live charts of the sale (from the host's own
// pulse, read every second), services with their versions and one-click
// swaps and rollbacks, tenants with quotas and usage, a form to create an
// event, and dead letters. Everything goes through the admin API with the
// admin token (none needed on a loopback host that has none).
"use strict";

(() => {
  const { api, ApiError, el, show } = tacos;
  const main = document.getElementById("main");
  const notice = document.getElementById("notice");
  const done = document.getElementById("done");
  const store = window.sessionStorage;
  let adminToken = store.getItem("tacos.admin") || null;

  const admin = (path, options = {}) => api(path, { ...options, token: adminToken || undefined });

  /** What went wrong, or (`ok`) what was done. */
  function say(message, ok = false) {
    (ok ? notice : done).hidden = true;
    const line = ok ? done : notice;
    line.textContent = message;
    line.hidden = !message;
  }

  function failed(e) {
    say(e instanceof ApiError ? e.sentence : String(e));
  }

  // ---- admin token ---------------------------------------------------------

  function askToken() {
    const input = el("input", { id: "admin-token", type: "password", autocomplete: "off", required: true });
    const form = el(
      "form",
      {
        class: "card",
        onsubmit: (ev) => {
          ev.preventDefault();
          adminToken = input.value.trim();
          store.setItem("tacos.admin", adminToken);
          start();
        },
      },
      el("label", { for: "admin-token" }, "Admin token (TACOS_ADMIN_TOKEN, or <data-dir>/admin-token)"),
      input,
      el("button", { type: "submit", class: "primary" }, "Open the console"),
    );
    const h = el("h1", { tabindex: "-1" }, "Sign in");
    show(main, h, form);
    h.focus();
  }

  // ---- live charts ---------------------------------------------------------

  const SERIES = [
    { key: "joins", title: "Joins / s" },
    { key: "holds", title: "Holds / s" },
    { key: "confirmations", title: "Confirmations / s" },
    { key: "failed", title: "Failed payments and calls / s" },
    { key: "depth", title: "Messages waiting (queue depth)" },
    { key: "p99", title: "p99 latency (ms)" },
  ];
  const WINDOW = 120;

  /** A line chart of the last WINDOW points, drawn as SVG. */
  function chart(title) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${WINDOW} 50`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", title);
    const line = document.createElementNS(ns, "polyline");
    svg.append(line);
    const now = el("span", { class: "now" }, "–");
    const box = el("figure", { class: "chart" }, el("figcaption", {}, title, " ", now), svg);
    return {
      box,
      draw(points) {
        const max = Math.max(1, ...points);
        line.setAttribute(
          "points",
          points.map((v, i) => `${i + WINDOW - points.length},${(50 - (v / max) * 46).toFixed(1)}`).join(" "),
        );
        const last = points[points.length - 1];
        now.textContent = last === undefined ? "–" : `${Math.round(last * 10) / 10} (max ${Math.round(max)})`;
      },
    };
  }

  /** The p99 of the requests between two latency histograms, in ms. */
  function p99(before, after, bounds) {
    const counts = after.map((n, i) => n - (before[i] || 0));
    const total = counts.reduce((a, b) => a + b, 0);
    if (!total) return 0;
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i];
      if (seen >= total * 0.99) return bounds[i] ?? bounds[bounds.length - 1] * 2;
    }
    return 0;
  }

  function liveSection(tenants) {
    const pick = el(
      "select",
      { id: "chart-tenant", "aria-label": "Tenant" },
      el("option", { value: "" }, "All tenants"),
      tenants.map((t) => el("option", { value: t.id }, t.name || t.id)),
    );
    const charts = Object.fromEntries(SERIES.map((s) => [s.key, chart(s.title)]));
    const watchers = el("p", { class: "muted", id: "watchers" });
    const section = el(
      "section",
      { "aria-labelledby": "live-h" },
      el("h2", { id: "live-h" }, "Live"),
      el("label", { for: "chart-tenant" }, "Show "),
      pick,
      watchers,
      el("div", { class: "charts" }, SERIES.map((s) => charts[s.key].box)),
    );
    const points = Object.fromEntries(SERIES.map((s) => [s.key, []]));
    let last = null;
    let shown = pick.value;
    const poll = async () => {
      let pulse;
      try {
        pulse = await admin("/admin/v1/pulse");
      } catch (e) {
        return failed(e);
      }
      if (pick.value !== shown) {
        shown = pick.value;
        last = null;
        for (const k in points) points[k].length = 0;
      }
      const view = shown ? pulse.tenants[shown] : pulse.all;
      if (!view) return;
      const depth = shown ? view.queue_pending : pulse.queue_pending;
      watchers.textContent = `Watching live: ${pulse.watchers.places} places in waiting rooms, ${pulse.watchers.seat_maps} seat maps.`;
      if (last) {
        const secs = Math.max(0.001, (pulse.now_ms - last.now_ms) / 1000);
        const rate = (k) => (view[k] - last.view[k]) / secs;
        const add = (k, v) => {
          points[k].push(v);
          if (points[k].length > WINDOW) points[k].shift();
        };
        add("joins", rate("joins"));
        add("holds", rate("holds"));
        add("confirmations", rate("confirmations"));
        add("failed", rate("payments_failed") + rate("failures"));
        add("depth", depth || 0);
        add("p99", p99(last.view.latency, view.latency, pulse.latency_buckets_ms));
        for (const s of SERIES) charts[s.key].draw(points[s.key]);
      }
      last = { now_ms: pulse.now_ms, view };
    };
    poll();
    setInterval(poll, 1000);
    return section;
  }

  // ---- services ------------------------------------------------------------

  const SCENARIOS = ["APPROVE", "FAIL", "DELAY", "RANDOM"];

  function short(hash) {
    return (hash || "").slice(0, 12);
  }

  function when(ms) {
    return ms ? new Date(ms).toLocaleString() : "";
  }

  /** Make a change, show the services as they are now, and keep the
   *  keyboard's place on the button that made it. */
  async function change(path, body, what, button) {
    try {
      const r = await admin(path, { method: "POST", body });
      say(`${what}: ${r.changed === false ? "nothing to change" : `now ${short(r.current && r.current.hash)}`}`, true);
    } catch (e) {
      failed(e);
    }
    const row = button.closest("tr").dataset.service;
    const action = button.dataset.action;
    await refresh(true);
    const again = slots.services.querySelector(`tr[data-service="${row}"] [data-action="${action}"]`);
    if (again) again.focus();
  }

  function servicesSection(services) {
    const rows = services.map((s) => {
      const v = s.current || {};
      const swap = (body, what, ev) =>
        change(`/admin/v1/services/${encodeURIComponent(s.name)}/swap`, body, what, ev.currentTarget);
      const actions = [
        ...(s.builds || []).map((b) =>
          el(
            "button",
            { type: "button", "data-action": `build-${b}`, onclick: (ev) => swap({ build: b }, `${s.name} → ${b}`, ev) },
            `Swap to ${b}`,
          ),
        ),
        ...("default_scenario" in (v.config || {}) || s.name === "payment-sim"
          ? SCENARIOS.map((sc) =>
              el(
                "button",
                {
                  type: "button",
                  "data-action": `scenario-${sc}`,
                  "aria-pressed": (v.config || {}).default_scenario === sc ? "true" : "false",
                  onclick: (ev) => swap({ config: { default_scenario: sc } }, `${s.name} scenario ${sc}`, ev),
                },
                sc,
              ),
            )
          : []),
        (s.history || []).length
          ? el(
              "button",
              {
                type: "button",
                "data-action": "rollback",
                onclick: (ev) =>
                  change(`/admin/v1/services/${encodeURIComponent(s.name)}/rollback`, {}, `${s.name} rolled back`, ev.currentTarget),
              },
              "Roll back",
            )
          : null,
      ];
      const origin = (v.origin || "").split("/").pop();
      return el(
        "tr",
        { "data-service": s.name },
        el("th", { scope: "row" }, s.name),
        el("td", { class: "version" }, el("code", {}, short(v.hash)), " ", el("span", { class: "muted" }, origin)),
        el("td", {}, when(v.since_ms)),
        el("td", { class: "num" }, String(v.calls ?? 0)),
        el("td", { class: "num" }, String(v.failures ?? 0)),
        el("td", {}, el("code", {}, JSON.stringify(v.config || {}))),
        el("td", {}, el("div", { class: "actions" }, actions)),
        el("td", {}, (s.history || []).slice(-3).map((h) => el("div", { class: "muted" }, short(h.hash), " ", when(h.since_ms)))),
      );
    });
    return el(
      "section",
      { "aria-labelledby": "services-h" },
      el("h2", { id: "services-h" }, "Services"),
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ["Service", "Version", "Since", "Calls", "Failures", "Config", "Change", "Before"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, rows),
        ),
      ),
    );
  }

  // ---- tenants, events, dead letters ----------------------------------------

  function tenantsSection(tenants) {
    return el(
      "section",
      { "aria-labelledby": "tenants-h" },
      el("h2", { id: "tenants-h" }, "Tenants"),
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ["Tenant", "Quotas", "Keys", "Bytes", "Queued", "Calls", "Failed", "Quota hits", "Own versions"].map((h) => el("th", { scope: "col" }, h)))),
          el(
            "tbody",
            {},
            tenants.map((t) =>
              el(
                "tr",
                { "data-tenant": t.id },
                el("th", { scope: "row" }, t.name && t.name !== t.id ? `${t.name} (${t.id})` : t.id),
                el("td", {}, el("code", {}, JSON.stringify(t.quotas || {}))),
                el("td", { class: "num" }, String((t.storage || {}).keys ?? 0)),
                el("td", { class: "num" }, String((t.storage || {}).bytes ?? 0)),
                el("td", { class: "num" }, String(t.queue_pending ?? 0)),
                el("td", { class: "num" }, String(t.calls_ok ?? 0)),
                el("td", { class: "num" }, String(t.calls_failed ?? 0)),
                el("td", { class: "num" }, String(t.quota_hits ?? 0)),
                el("td", {}, (t.services || []).filter((s) => s.own).map((s) => s.name).join(", ")),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function tenantPicker(id, tenants) {
    return el("select", { id }, tenants.map((t) => el("option", { value: t.id }, t.name || t.id)));
  }

  function eventSection(tenants) {
    const field = (id, label, attrs) => [el("label", { for: id }, label), el("input", { id, name: id, ...attrs })];
    const tenant = tenantPicker("event-tenant", tenants);
    const form = el(
      "form",
      {
        class: "card grid",
        onsubmit: async (ev) => {
          ev.preventDefault();
          const f = ev.target.elements;
          try {
            await admin("/admin/v1/events", {
              method: "POST",
              headers: { "x-tenant-id": tenant.value },
              body: {
                event_id: f["event-id"].value.trim(),
                name: f["event-name"].value.trim(),
                seat_count: Number(f["event-seats"].value),
                price: { amount: Number(f["event-price"].value), currency: f["event-currency"].value.trim() },
                admission_per_second: Number(f["event-rate"].value),
              },
            });
            say(`Event ${f["event-id"].value} created.`, true);
            form.reset();
          } catch (e) {
            failed(e);
          }
        },
      },
      el("label", { for: "event-tenant" }, "Tenant"),
      tenant,
      field("event-id", "Event id", { required: true, pattern: "[A-Za-z0-9_\\-]{1,64}" }),
      field("event-name", "Name", { required: true }),
      field("event-seats", "Seats", { type: "number", min: 1, max: 200000, value: 100, required: true }),
      field("event-price", "Price (smallest unit)", { type: "number", min: 0, value: 50000, required: true }),
      field("event-currency", "Currency", { value: "KRW", pattern: "[A-Z]{3}", required: true }),
      field("event-rate", "Admissions / s", { type: "number", min: 1, value: 100, required: true }),
      el("button", { type: "submit", class: "primary" }, "Create the event"),
    );
    return el("section", { "aria-labelledby": "event-h" }, el("h2", { id: "event-h" }, "Create an event"), form);
  }

  function deadLettersSection(tenants) {
    const tenant = tenantPicker("dead-tenant", tenants);
    const list = el("div", { id: "dead-letters" });
    const load = async () => {
      try {
        const r = await admin("/admin/v1/dead-letters", { headers: { "x-tenant-id": tenant.value } });
        const dead = r.dead_letters || [];
        show(
          list,
          dead.length
            ? el("ul", {}, dead.map((d) => el("li", {}, el("code", {}, JSON.stringify(d)))))
            : el("p", { class: "muted" }, "No dead letters."),
        );
      } catch (e) {
        failed(e);
      }
    };
    tenant.addEventListener("change", load);
    load();
    return el(
      "section",
      { "aria-labelledby": "dead-h" },
      el("h2", { id: "dead-h" }, "Dead letters"),
      el("label", { for: "dead-tenant" }, "Tenant "),
      tenant,
      el("button", { type: "button", onclick: load }, "Refresh"),
      list,
    );
  }

  // ---- the page ------------------------------------------------------------

  let slots = null;

  /** Re-read services and tenants (the charts keep going); `force` even
   *  under the keyboard's focus. */
  async function refresh(force = false) {
    if (!slots) return;
    try {
      const [services, tenants] = await Promise.all([admin("/admin/v1/services"), admin("/admin/v1/tenants")]);
      // Not under a keyboard user's focus: they would lose their place.
      if (force || !slots.services.contains(document.activeElement)) {
        show(slots.services, servicesSection(services.services || []));
      }
      show(slots.tenants, tenantsSection(tenants.tenants || []));
    } catch (e) {
      failed(e);
    }
  }

  async function start() {
    let services;
    let tenants;
    try {
      [services, tenants] = await Promise.all([admin("/admin/v1/services"), admin("/admin/v1/tenants")]);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return askToken();
      return failed(e);
    }
    say("");
    const list = tenants.tenants || [];
    slots = { services: el("div"), tenants: el("div") };
    const h = el("h1", { tabindex: "-1" }, "The platform, live");
    show(main, h, liveSection(list), slots.services, slots.tenants, eventSection(list), deadLettersSection(list));
    show(slots.services, servicesSection(services.services || []));
    show(slots.tenants, tenantsSection(list));
    setInterval(() => refresh(), 5000);
    h.focus();
  }

  start();
})();
