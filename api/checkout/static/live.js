// The checkout page's live channel: the API's Socket.IO events about one checkout.
//
// Events are a notice, not the record: on each one the page reads the checkout again from the
// REST API. The socket signs in with the same bearer token (sent in Socket.IO's connect packet,
// never in a URL), watches the artwork (the server acknowledges it), and hears the winner's
// events about this bid. Whenever it is not connected and watching, the page polls instead.
window.CheckoutLive = (function () {
  "use strict";

  // What can change a checkout the page shows; `payment_failed` goes to the winner alone.
  const EVENTS = ["payment_failed", "artwork_sold", "bidding_reopened", "deadline_extended"];
  const ACK_MS = 5000;

  // options: {token, artworkId, bidId, onEvent(name, payload), onMode("socket" | "polling")}
  function follow(options) {
    if (typeof window.io !== "function") {
      // The vendored client did not load: polling is all there is.
      options.onMode("polling");
      return { stop: function () {} };
    }
    const socket = window.io({ auth: { token: options.token } });
    socket.on("connect", function () {
      // Watching lasts as long as this connection: asked again after each reconnect.
      socket.timeout(ACK_MS).emit("watch_artwork", { artwork_id: options.artworkId }, (error, ack) => {
        if (error || !ack || !ack.ok) return options.onMode("polling");
        options.onMode("socket");
        // What happened while the socket was away is read from the REST API.
        options.onEvent("watching", null);
      });
    });
    // After a network loss the client reconnects by itself; after the server's own
    // disconnect (the token expired) it does not, and polling then meets the 401.
    socket.on("disconnect", function () { options.onMode("polling"); });
    socket.on("connect_error", function () { options.onMode("polling"); });
    EVENTS.forEach(function (name) {
      socket.on(name, function (payload) {
        // The winner's room carries all their checkouts: this page shows one bid.
        if (payload && String(payload.bid_id) === String(options.bidId)) options.onEvent(name, payload);
      });
    });
    return {
      stop: function () {
        socket.disconnect();
      },
    };
  }

  return { follow: follow };
})();
