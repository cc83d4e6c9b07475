"""Configuration and persistence: settings, database tables and sessions, service clients."""
