-- Revoked sign-in sessions, shared by every instance of the store.
--
-- A signed session token is valid by its signature and its expiry alone,
-- so signing out has to reach every instance: each one follows this table.
-- A row matters only until the token would have expired anyway
-- (`expires_at`); the store deletes expired rows as it records new ones.
--
-- `revoked_at` is the database's clock when the revocation was recorded
-- (again, for a session revoked twice). Instances read the rows recorded
-- since their previous read, hence its index; the pruning reads the
-- expiry's. Both stay small: a row per sign-out in the last session length.
--
-- The table is new and nothing else changes: instances of the previous
-- version go on working beside this one (they never read it).

CREATE TABLE IF NOT EXISTS dropkit_revoked_sessions (
    id         uuid        PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS dropkit_revoked_sessions_recent
    ON dropkit_revoked_sessions (revoked_at);

CREATE INDEX IF NOT EXISTS dropkit_revoked_sessions_expiry
    ON dropkit_revoked_sessions (expires_at);
