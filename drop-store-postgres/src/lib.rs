//! PostgreSQL store for dropkit (in progress).
