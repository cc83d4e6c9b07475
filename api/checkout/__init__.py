"""The checkout page: its answers' shapes, its template and its one script."""
