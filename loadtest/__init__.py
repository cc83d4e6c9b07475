"""`make load`: many checkouts at once through the real stack, then an audit of the promise."""
