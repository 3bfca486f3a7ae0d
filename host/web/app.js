// The buyer's app: events on sale, the waiting room (live over WebSocket),
// the seat map (live), a hold with its countdown, payment with the
// simulator's test cards, and the outcome. Plain JavaScript over the
// contract's REST/JSON and the host's live routes; nothing to build.
"use strict";

(() => {
  const { api, ApiError, el, show, money, newId } = tacos;
  const main = document.getElementById("main");
  const notice = document.getElementById("notice");
  const who = document.getElementById("who");
  const store = window.sessionStorage;

  /** What the app knows now. */
  const state = {
    site: null,
    token: store.getItem("tacos.token"),
    user: store.getItem("tacos.user"),
    session: store.getItem("tacos.session") || newId(),
    event: null,
    waitingToken: null,
    socket: null,
    timers: [],
  };
  store.setItem("tacos.session", state.session);

  /** The test cards: each a payment scenario of the simulator. */
  const CARDS = [
    { scenario: undefined, number: "4242 4242 4242 4242", label: "Card (the shop's default outcome)" },
    { scenario: "PAYMENT_SCENARIO_APPROVE", number: "4000 0000 0000 0077", label: "Approved after 2–4 s" },
    { scenario: "PAYMENT_SCENARIO_FAIL", number: "4000 0000 0000 0002", label: "Declined after 1–2 s" },
    { scenario: "PAYMENT_SCENARIO_DELAY", number: "4000 0000 0000 3220", label: "Slow: approved after 10–29 s" },
    { scenario: "PAYMENT_SCENARIO_RANDOM", number: "4000 0000 0000 9995", label: "Random: 70 % approved" },
  ];

  /** Stop what the previous screen left running (sockets, timers). */
  function leaveScreen() {
    if (state.socket) state.socket.stop();
    state.socket = null;
    for (const t of state.timers) clearInterval(t);
    state.timers = [];
  }

  /** Show a screen: a heading that takes focus (for keyboards and screen readers), then its content. */
  function screen(title, ...content) {
    leaveScreen();
    hideNotice();
    const h = el("h1", { tabindex: "-1" }, title);
    show(main, h, ...content);
    h.focus();
  }

  function say(message) {
    notice.textContent = message;
    notice.hidden = false;
    notice.scrollIntoView({ block: "nearest" });
  }

  function hideNotice() {
    notice.hidden = true;
    notice.textContent = "";
  }

  /** Say what went wrong in plain words. */
  function failed(e) {
    say(e instanceof ApiError ? e.sentence : String(e));
  }

  function showWho() {
    show(
      who,
      state.user
        ? [
            el("span", {}, `Signed in as ${state.user}`),
            el("button", { type: "button", class: "link", onclick: signOut }, "Sign out"),
          ]
        : null,
    );
  }

  function signOut() {
    store.removeItem("tacos.token");
    store.removeItem("tacos.user");
    state.token = null;
    state.user = null;
    showWho();
    signInScreen();
  }

  // ---- sign-in ----------------------------------------------------------

  function signInScreen() {
    const input = el("input", { id: "user", name: "user", autocomplete: "username", required: true, maxlength: 64, pattern: "[A-Za-z0-9._@\\-]+" });
    const form = el(
      "form",
      {
        class: "card",
        onsubmit: async (ev) => {
          ev.preventDefault();
          try {
            const r = state.site.demo_sign_in
              ? await api("/api/v1/demo/sign-in", { method: "POST", body: { user_id: input.value.trim() } })
              : { token: input.value.trim(), user_id: "you" };
            state.token = r.token;
            state.user = r.user_id;
            store.setItem("tacos.token", r.token);
            store.setItem("tacos.user", r.user_id);
            showWho();
            eventsScreen();
          } catch (e) {
            failed(e);
          }
        },
      },
      state.site.demo_sign_in
        ? [
            el("label", { for: "user" }, "Your name (a demo sign-in: any name works on this host)"),
            input,
          ]
        : [el("label", { for: "user" }, "Your sign-in token from the ticket seller"), input],
      el("button", { type: "submit", class: "primary" }, "Sign in"),
    );
    if (!state.site.demo_sign_in) input.removeAttribute("pattern");
    screen("Sign in", form);
  }

  // ---- events -----------------------------------------------------------

  async function eventsScreen() {
    screen("Events on sale", el("p", {}, "Loading events…"));
    try {
      const r = await api("/api/v1/events");
      const events = r.events || [];
      const list = el(
        "ul",
        { class: "events" },
        events.map((e) =>
          el(
            "li",
            { class: "card" },
            el("h2", {}, e.name || e.id),
            e.description ? el("p", {}, e.description) : null,
            el("p", { class: "muted" }, `${e.remaining_seats ?? 0} of ${e.total_seats ?? 0} seats left`),
            el(
              "button",
              {
                type: "button",
                class: "primary",
                disabled: !e.remaining_seats,
                "data-event": e.id,
                onclick: () => joinQueue(e),
              },
              e.remaining_seats ? "Join the waiting room" : "Sold out",
            ),
          ),
        ),
      );
      screen("Events on sale", events.length ? list : el("p", {}, "Nothing is on sale right now."));
    } catch (e) {
      failed(e);
    }
  }

  // ---- the waiting room ---------------------------------------------------

  async function joinQueue(event) {
    state.event = event;
    try {
      const r = await api("/api/v1/queue/join", {
        method: "POST",
        token: state.token,
        body: { event_id: event.id, session_id: state.session },
      });
      state.waitingToken = r.waiting_token;
      waitingScreen(r.position_hint);
    } catch (e) {
      failed(e);
    }
  }

  function waitingScreen(firstPosition) {
    const position = el("strong", { id: "position" }, String(firstPosition));
    const eta = el("span", { id: "eta" }, "");
    const bar = el("progress", { id: "progress", max: Math.max(firstPosition, 1), value: 0 });
    const status = el("p", { id: "queue-status", role: "status", "aria-live": "polite" }, "Connecting…");
    screen(
      `Waiting room: ${state.event.name || state.event.id}`,
      el("div", { class: "card" }, el("p", {}, "Your place in line: ", position), el("p", {}, eta), bar, status),
      el("p", { class: "muted" }, "Keep this page open. Your place updates by itself."),
    );
    let start = Math.max(firstPosition, 1);
    state.socket = tacos.live(`/ws/queue/${encodeURIComponent(state.waitingToken)}?session_id=${encodeURIComponent(state.session)}`, {
      message: (m) => {
        const u = m.queue_update || {};
        if (m.error) return status.replaceChildren(new ApiError(0, m.error).sentence);
        switch (m.type) {
          case "QUEUE_EVENT_TYPE_POSITION_CHANGED": {
            const p = u.position || 0;
            if (p > start) {
              start = p;
              bar.max = p;
            }
            position.textContent = String(p);
            bar.value = start - p;
            eta.textContent = u.eta_seconds ? `About ${u.eta_seconds} s to wait` : "";
            status.textContent = "Waiting…";
            break;
          }
          case "QUEUE_EVENT_TYPE_ADMISSION_READY":
            position.textContent = "0";
            bar.value = bar.max;
            eta.textContent = "";
            status.textContent = "It's your turn!";
            setTimeout(() => seatsScreen(), 600);
            break;
          case "QUEUE_EVENT_TYPE_TOKEN_EXPIRED":
            expiredPlace();
            break;
          case "QUEUE_EVENT_TYPE_LEFT":
            eventsScreen();
            break;
        }
      },
      closed: (code, reason) => {
        if (code >= 4000) status.textContent = reason.replace(/^ERROR_CODE_[A-Z_]+: /, "");
      },
      status: (text) => (status.textContent = text),
    });
  }

  function expiredPlace() {
    screen(
      "Your place has expired",
      el("p", {}, "You were away too long after your turn came."),
      el("button", { type: "button", class: "primary", onclick: () => joinQueue(state.event) }, "Join again"),
    );
  }

  // ---- seats ------------------------------------------------------------

  const MAX_SEATS = 10;

  function seatsScreen() {
    const event = state.event;
    const chosen = new Set();
    const map = el("div", { class: "seatmap", role: "group", "aria-label": "Seats" });
    const summary = el("p", { id: "chosen", "aria-live": "polite" }, "Choose up to 10 seats.");
    const left = el("p", { class: "muted", id: "left" }, "");
    const hold = el("button", { type: "button", class: "primary", id: "hold", disabled: true }, "Hold seats");
    const buttons = new Map();
    const seats = new Map();

    const render = () => {
      summary.textContent = chosen.size
        ? `${chosen.size} chosen: ${[...chosen].join(", ")}`
        : `Choose up to ${MAX_SEATS} seats.`;
      hold.disabled = chosen.size === 0;
      hold.textContent = chosen.size ? `Hold ${chosen.size} seat${chosen.size > 1 ? "s" : ""}` : "Hold seats";
    };
    const paint = (seat) => {
      seats.set(seat.id, seat);
      let b = buttons.get(seat.id);
      if (!b) {
        b = el("button", { type: "button", class: "seat", "data-seat": seat.id, onclick: () => toggle(seat.id) });
        buttons.set(seat.id, b);
        map.append(b);
      }
      const free = seat.status === "SEAT_STATUS_AVAILABLE";
      if (!free) chosen.delete(seat.id);
      b.textContent = seat.number || seat.id;
      b.className = `seat ${seat.status.replace("SEAT_STATUS_", "").toLowerCase()}${chosen.has(seat.id) ? " chosen" : ""}`;
      b.disabled = !free;
      b.setAttribute("aria-pressed", chosen.has(seat.id) ? "true" : "false");
      b.setAttribute("aria-label", `Seat ${seat.id}, ${free ? "available" : seat.status.replace("SEAT_STATUS_", "").toLowerCase()}`);
    };
    const toggle = (id) => {
      if (chosen.has(id)) chosen.delete(id);
      else if (chosen.size >= MAX_SEATS) return say(`At most ${MAX_SEATS} seats per reservation.`);
      else chosen.add(id);
      hideNotice();
      paint(seats.get(id));
      render();
    };
    hold.addEventListener("click", () => holdSeats([...chosen]));

    screen(
      `Choose seats: ${event.name || event.id}`,
      el("p", { class: "banner" }, "You're in. Seats others take disappear as you watch."),
      el(
        "p",
        { class: "legend" },
        el("span", { class: "seat available" }, "Free"),
        el("span", { class: "seat reserved" }, "Held"),
        el("span", { class: "seat sold" }, "Sold"),
      ),
      map,
      left,
      summary,
      hold,
    );
    state.socket = tacos.live(`/ws/events/${encodeURIComponent(event.id)}/seats`, {
      message: (m) => {
        if (m.error) return say(new ApiError(0, m.error).sentence);
        for (const seat of m.seats || []) paint(seat);
        left.textContent = `${m.remaining_seats ?? 0} seats left`;
        render();
      },
      closed: (code, reason) => say(reason.replace(/^ERROR_CODE_[A-Z_]+: /, "")),
      status: (text) => (left.textContent = text),
    });
  }

  async function holdSeats(seatIds) {
    try {
      // The reservation token is good for 30 s: take it when the hold is made.
      const admitted = await api("/api/v1/queue/enter", {
        method: "POST",
        body: { waiting_token: state.waitingToken },
      });
      const r = await api("/api/v1/reservations", {
        method: "POST",
        token: state.token,
        idempotencyKey: newId(),
        body: { event_id: state.event.id, seat_ids: seatIds, reservation_token: admitted.reservation_token },
      });
      // A place in line makes one hold: another needs a new place, which
      // a new session gets.
      state.session = newId();
      store.setItem("tacos.session", state.session);
      holdScreen(r);
    } catch (e) {
      failed(e);
    }
  }

  // ---- the hold and payment -----------------------------------------------

  function holdScreen(r) {
    const id = r.reservation_id;
    const seats = (r.reserved_seats || []).map((s) => s.id).join(", ");
    const countdown = el("strong", { id: "countdown" }, "…");
    const cards = el(
      "div",
      { class: "cards", role: "group", "aria-label": "Test cards" },
      CARDS.map((c) =>
        el(
          "button",
          {
            type: "button",
            class: "testcard",
            "data-scenario": c.scenario || "DEFAULT",
            onclick: () => pay(r, c.scenario),
          },
          el("span", { class: "number" }, c.number),
          el("span", {}, c.label),
        ),
      ),
    );
    screen(
      "Your seats are held",
      el(
        "div",
        { class: "card" },
        el("p", {}, `Seats ${seats} for ${money(r.total_amount)}`),
        el("p", {}, "Pay within ", countdown, " or they go back on sale."),
      ),
      el("h2", {}, "Pay with a test card"),
      cards,
    );
    // The hold's length by the host's clock (which may be virtual), counted
    // down by this one.
    let ends = null;
    api(`/api/v1/reservations/${encodeURIComponent(id)}`, { token: state.token })
      .then(({ reservation: held }) => {
        const length = Date.parse(held.hold_expires_at) - Date.parse(held.created_at);
        ends = Date.now() + Math.max(0, length);
        tick();
      })
      .catch(failed);
    const tick = () => {
      if (ends === null) return;
      const left = Math.max(0, Math.round((ends - Date.now()) / 1000));
      countdown.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    };
    state.timers.push(setInterval(tick, 1000));
    watchReservation(id);
  }

  async function pay(r, scenario) {
    try {
      await api("/api/v1/payments/intent", {
        method: "POST",
        token: state.token,
        idempotencyKey: newId(),
        body: { reservation_id: r.reservation_id, amount: r.total_amount, scenario },
      });
      screen(
        "Processing your payment…",
        el("p", { role: "status" }, "This takes a few seconds. Keep this page open."),
      );
      watchReservation(r.reservation_id);
    } catch (e) {
      failed(e);
    }
  }

  /** Follow a reservation until it is confirmed, failed or expired. */
  function watchReservation(id) {
    const check = async () => {
      try {
        const r = (await api(`/api/v1/reservations/${encodeURIComponent(id)}`, { token: state.token })).reservation;
        switch (r.status) {
          case "RESERVATION_STATUS_CONFIRMED":
            return outcome("confirmed", r);
          case "RESERVATION_STATUS_EXPIRED":
            return outcome("expired", r);
          case "RESERVATION_STATUS_FAILED":
          case "RESERVATION_STATUS_CANCELLED":
            return outcome("failed", r);
        }
      } catch (e) {
        failed(e);
      }
    };
    state.timers.push(setInterval(check, 1000));
  }

  function outcome(kind, r) {
    const seats = (r.seats || []).map((s) => s.id).join(", ");
    const again = el("button", { type: "button", class: "primary", onclick: eventsScreen }, "Back to events");
    if (kind === "confirmed") {
      screen(
        "You have your tickets",
        el(
          "div",
          { class: "card ok" },
          el("p", {}, "Order ", el("strong", { id: "order-id" }, r.order_id)),
          el("p", {}, `Seats ${seats}, ${money(r.total_amount)}`),
        ),
        again,
      );
    } else if (kind === "expired") {
      screen(
        "Your hold expired",
        el("p", { class: "card bad", id: "outcome" }, `Seats ${seats} went back on sale because the hold ran out before payment.`),
        again,
      );
    } else {
      screen(
        "The payment failed",
        el("p", { class: "card bad", id: "outcome" }, `The payment was not approved, so seats ${seats} were released. Nothing was charged.`),
        again,
      );
    }
  }

  // ---- start ------------------------------------------------------------

  async function start() {
    try {
      state.site = await api("/api/v1/site");
    } catch (e) {
      screen("This site is not available", el("p", {}, e instanceof ApiError ? e.sentence : String(e)));
      return;
    }
    // The default tenant of a one-seller host has no name of its own.
    const name = state.site.name === "default" ? "Tickets" : state.site.name;
    document.title = name;
    document.getElementById("site-name").textContent = name;
    showWho();
    if (state.token) eventsScreen();
    else signInScreen();
  }

  start();
})();
