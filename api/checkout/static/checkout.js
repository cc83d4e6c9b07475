// The checkout page's script: shows the checkout, collects the card with Stripe.js, asks the
// API to pay with it and follows what the saga records: live through Socket.IO (live.js), and
// by polling the REST API whenever the socket is not connected. No build step: plain browser JS.
//
// The buyer's token arrives in the URL fragment (#token=...), which browsers never send to a
// server, or from the sign-in form; it is kept in sessionStorage and sent as
// `Authorization: Bearer`.
(function () {
  "use strict";

  // How often the page reads the checkout: often without the socket; with it, rarely, only in
  // case an event was lost. A page may set `window.checkoutTiming` before this script runs.
  const TIMING = Object.assign({ pollMs: 2000, livePollMs: 30000 }, window.checkoutTiming || {});
  const TOKEN_KEY = "auction-checkout-token";
  const root = document.getElementById("checkout");
  const bidId = root.dataset.bidId;
  const $ = (id) => document.getElementById(id);
  const form = $("pay-form");
  const button = $("pay-button");
  const FINAL = new Set(["paid", "expired", "canceled", "forbidden", "not_found", "signed_out"]);

  let view = null; // the last answer of GET /api/payments/{bid}/checkout
  let attempt = null; // {declinesBefore} while a payment the page started awaits its outcome
  let busy = false; // a request of the page's own is in flight
  let stripe = null;
  let card = null;
  let live = null; // the socket, once the checkout is known
  let pollTimer = null;
  let cardChange = null; // the card element's last change event (Stripe's: {complete, error})

  function takeToken() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const token = fragment.get("token");
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      // Out of the address bar, the history and any bookmark.
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }
  const token = takeToken();

  async function api(method, path, body) {
    const response = await fetch(path, {
      method: method,
      headers: Object.assign(
        { Authorization: "Bearer " + token },
        body ? { "Content-Type": "application/json" } : {}
      ),
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => ({}));
    return { status: response.status, data: data };
  }

  function money(amount, currency) {
    if (amount === null || amount === undefined) return "—";
    try {
      // Intl knows each currency's decimals: none for JPY, three for KWD.
      return new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() })
        .format(Number(amount));
    } catch (unknownCurrency) {
      return amount + " " + currency.toUpperCase();
    }
  }

  function detail(data, fallback) {
    if (typeof data.detail === "string") return data.detail;
    return fallback;
  }

  function show(state, message) {
    root.dataset.state = state;
    $("message").textContent = message;
    const payable = state === "awaiting_payment" || state === "declined";
    form.hidden = !payable && state !== "processing";
    button.disabled = !payable || busy;
    if (FINAL.has(state)) form.hidden = true;
    if (FINAL.has(state) || state === "expired") $("deadline").hidden = true;
  }

  function render() {
    if (!view) return;
    $("summary").hidden = false;
    $("title").textContent = view.title;
    $("hammer-price").textContent = money(view.hammer_price, view.currency);
    $("fee").textContent = money(view.fee_amount, view.currency);
    $("total").textContent = money(view.amount, view.currency);
    button.textContent = view.amount ? "Pay " + money(view.amount, view.currency) : "Pay";
    tick();
    const state = view.state;
    if (state === "paid") return show("paid", "Paid — the artwork is yours. A receipt is on its way by email.");
    if (state === "expired") return show("expired", "The time to pay has run out: the artwork is back on sale and nothing was charged.");
    if (state === "canceled") return show("canceled", "This checkout was called off: nothing was charged.");
    if (state === "not_won") return show("not_won", "This auction is still open: there is nothing to pay yet.");
    if (state === "opening") return show("opening", "Your checkout is being opened…");
    if (secondsLeft() <= 0) return show("expired", "The time to pay has run out.");
    if (attempt && view.declines > attempt.declinesBefore) {
      attempt = null;
      return declined(view.failure_reason || "the card was declined");
    }
    if (busy || attempt) return show("processing", "Processing your payment…");
    if (state === "declined") return show("declined", notPaid(view.failure_reason));
    return show("awaiting_payment", "Enter your card and press Pay.");
  }

  function declined(reason) {
    show("declined", notPaid(reason));
    readyForAnotherCard();
  }

  // Stripe's reason as a sentence: the saga records `code: message`, Stripe.js a message.
  function notPaid(reason) {
    const text = String(reason || "the card was declined").replace(/^[a-z_]+: /, "");
    const sentence = text.charAt(0).toUpperCase() + text.slice(1).replace(/\.*$/, ".");
    return "Not paid: " + sentence + " You can try another card.";
  }

  function readyForAnotherCard() {
    const inputs = $("card-element").querySelectorAll("input");
    inputs.forEach((input) => { input.value = ""; });
    if (inputs.length) inputs[0].focus();
  }

  function secondsLeft() {
    if (!view || !view.expires_at) return Infinity;
    return Math.floor((Date.parse(view.expires_at) - Date.now()) / 1000);
  }

  function tick() {
    const left = secondsLeft();
    const deadline = $("deadline");
    if (left === Infinity || FINAL.has(root.dataset.state)) {
      deadline.hidden = true;
      return;
    }
    deadline.hidden = false;
    const s = Math.max(0, left);
    const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
    const pad = (n) => String(n).padStart(2, "0");
    $("countdown").textContent = (hh ? hh + ":" + pad(mm) : mm) + ":" + pad(ss);
    if (left <= 0 && (root.dataset.state === "awaiting_payment" || root.dataset.state === "declined")) {
      show("expired", "The time to pay has run out.");
    }
  }

  // Reads the checkout; `by` says what asked (the page itself, a poll or a live event), and
  // is kept on the page with the answer it brought.
  async function refresh(by) {
    let answer;
    try {
      answer = await api("GET", "/api/payments/" + bidId + "/checkout");
    } catch (offline) {
      return; // the next poll tries again
    }
    if (answer.status === 200) {
      view = answer.data;
      root.dataset.updatedBy = by;
      render();
      follow();
    } else if (answer.status === 403) {
      show("forbidden", "This is not your checkout: sign in as the winning bidder.");
      offerSignIn();
    } else if (answer.status === 404) {
      show("not_found", "There is no checkout at this address.");
    } else if (answer.status === 401) {
      signedOut("Your sign-in was refused (" + detail(answer.data, "refused") + "): sign in again.");
    }
    if (stopped()) stopFollowing();
  }

  async function pay(event) {
    event.preventDefault();
    if (busy || !stripe || !view) return;
    const missing = missingCardField();
    if (missing) return show(root.dataset.state, "Enter the " + missing + ", then press Pay.");
    busy = true;
    show("processing", "Processing your payment…");
    try {
      await attemptPayment();
    } finally {
      busy = false;
      button.disabled = !(root.dataset.state === "awaiting_payment" || root.dataset.state === "declined");
    }
  }

  async function attemptPayment() {
    const setup = await api("POST", "/api/payments/" + bidId + "/setup-intent");
    if (setup.status !== 200) return refused(setup);
    const collected = await stripe.confirmCardSetup(setup.data.client_secret, {
      payment_method: { card: card },
    });
    if (collected.error || !collected.setupIntent) {
      const error = collected.error || {};
      return declined(error.message || error.code || "the card was refused");
    }
    const method = collected.setupIntent.payment_method;
    const declinesBefore = view.declines;
    const paid = await api("POST", "/api/payments/" + bidId + "/pay", {
      payment_method: typeof method === "string" ? method : method.id,
    });
    if (paid.status === 402) return declined(detail(paid.data, "the card was declined"));
    if (paid.status !== 200) return refused(paid);
    if (paid.data.status === "requires_action") {
      const authenticated = await stripe.confirmCardPayment(paid.data.client_secret);
      if (authenticated.error) {
        return declined(authenticated.error.message || "the authentication failed");
      }
    }
    // Stripe has it: the saga records the outcome on Stripe's word; the page waits for that.
    attempt = { declinesBefore: declinesBefore };
    show("processing", "Processing your payment…");
    await refresh("page");
  }

  function refused(answer) {
    const reason = detail(answer.data, "the payment could not be started");
    if (answer.status === 403) return show("forbidden", "This is not your checkout: sign in as the winning bidder.");
    if (answer.status === 401) return signedOut("Your sign-in was refused: sign in again.");
    show("declined", "The payment could not go through: " + reason + ".");
    return refresh("page");
  }

  // Following stops once the saga has decided, or the page cannot be this caller's.
  function stopped() {
    if (["forbidden", "not_found", "signed_out"].includes(root.dataset.state)) return true;
    return Boolean(view) && ["paid", "expired", "canceled"].includes(view.state);
  }

  // The live channel, opened once the checkout (and so its artwork) is known.
  function follow() {
    if (live || stopped() || !window.CheckoutLive) return;
    live = window.CheckoutLive.follow({
      token: token,
      artworkId: view.artwork_id,
      bidId: bidId,
      onEvent: function (name) {
        if (name !== "watching") root.dataset.lastEvent = name;
        refresh("socket");
      },
      onMode: setMode,
    });
  }

  function setMode(mode) {
    if (stopped() || root.dataset.live === mode) return;
    root.dataset.live = mode;
    schedulePoll(mode === "polling" ? 0 : TIMING.livePollMs);
  }

  function stopFollowing() {
    if (live) live.stop();
    live = null;
    root.dataset.live = "stopped";
    clearTimeout(pollTimer);
  }

  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async function () {
      if (stopped()) return;
      await refresh("poll");
      if (!stopped()) schedulePoll(root.dataset.live === "socket" ? TIMING.livePollMs : TIMING.pollMs);
    }, delay);
  }

  function signedOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    show("signed_out", message);
    offerSignIn();
  }

  // For a buyer who opened the link without a token (as the emails send it): the token the
  // auction signs them in with, pasted here, kept in this tab's sessionStorage only.
  function offerSignIn() {
    const signIn = $("sign-in");
    if (!signIn.hidden) return;
    signIn.hidden = false;
    signIn.addEventListener("submit", function (event) {
      event.preventDefault();
      const pasted = $("token-input").value.trim().replace(/^Bearer\s+/i, "");
      if (!pasted) return;
      sessionStorage.setItem(TOKEN_KEY, pasted);
      window.location.reload();
    });
  }

  // Stripe's own card element is an iframe the page cannot reach, and needs none of this.
  // localstripe's stand-in is five bare inputs named by placeholders (`exp_year`...) that move
  // on after 16 characters and take the year as two digits: names a person reads, and a number
  // typed or pasted with its spaces kept whole.
  const PLAIN_CARD_INPUTS = {
    number: ["Card number", "1234 1234 1234 1234"],
    exp_month: ["Expiry month", "MM"],
    exp_year: ["Expiry year, two digits", "YY"],
    cvc: ["Security code", "CVC"],
    postal_code: ["Postcode", "Postcode"],
  };

  function dressPlainCardInputs() {
    $("card-element").querySelectorAll("input").forEach((input) => {
      const names = PLAIN_CARD_INPUTS[input.getAttribute("placeholder")];
      if (!names) return;
      input.setAttribute("aria-label", names[0]);
      input.setAttribute("placeholder", names[1]);
      input.setAttribute("inputmode", "numeric");
      input.setAttribute("autocomplete", "off");
      if (names[1] === "MM" || names[1] === "YY") input.setAttribute("maxlength", "2");
      if (names[0] !== "Card number") return;
      input.setAttribute("maxlength", "16");
      input.addEventListener("beforeinput", (event) => {
        if (event.inputType === "insertText" && /^\s+$/.test(event.data || "")) event.preventDefault();
      });
      input.addEventListener("paste", (event) => {
        event.preventDefault();
        input.value = event.clipboardData.getData("text").replace(/\D/g, "").slice(0, 16);
        input.dispatchEvent(new Event("input", { bubbles: true }));
      });
    });
  }

  // What the buyer has not entered yet, said before anything is asked of Stripe: Stripe's
  // element reports it in its change events; localstripe's inputs are read directly.
  function missingCardField() {
    const empty = Array.from($("card-element").querySelectorAll("input"))
      .find((input) => input.getAttribute("aria-label") !== "Postcode" && !input.value.trim());
    if (empty) {
      empty.focus();
      return empty.getAttribute("aria-label").replace(", two digits", "").toLowerCase();
    }
    return cardChange && cardChange.complete === false ? "card details" : null;
  }

  function start() {
    root.dataset.live = "connecting";
    if (!token) {
      root.dataset.live = "stopped";
      show("signed_out", "Sign in to see and pay your checkout.");
      offerSignIn();
      $("token-input").focus();
      return;
    }
    if (typeof window.Stripe === "function") {
      stripe = window.Stripe(root.dataset.publishableKey);
      card = stripe.elements().create("card");
      card.mount("#card-element");
      card.on("change", (event) => { cardChange = event || null; });
      dressPlainCardInputs();
    }
    form.addEventListener("submit", pay);
    refresh("page");
    schedulePoll(TIMING.pollMs);
    setInterval(tick, 1000);
  }

  start();
})();
