"""The HTTP API: artworks, bids, checkout and Stripe's webhook."""
