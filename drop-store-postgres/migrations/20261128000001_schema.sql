-- dropkit schema. The database itself refuses oversell: the counters on the
-- drop row are checked, one active hold per (drop, user) is a unique index,
-- and a hold has at most one purchase. Every statement is idempotent so the
-- file can be re-applied by hand without harm.

CREATE TABLE IF NOT EXISTS dropkit_drops (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    price_minor bigint      NOT NULL,
    total_stock integer     NOT NULL,
    reserved    integer     NOT NULL DEFAULT 0,
    sold        integer     NOT NULL DEFAULT 0,
    version     bigint      NOT NULL DEFAULT 1,
    starts_at   timestamptz,
    ends_at     timestamptz,
    hold_micros bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT dropkit_drops_price_nonneg    CHECK (price_minor >= 0),
    CONSTRAINT dropkit_drops_total_positive  CHECK (total_stock > 0),
    CONSTRAINT dropkit_drops_reserved_nonneg CHECK (reserved >= 0),
    CONSTRAINT dropkit_drops_sold_nonneg     CHECK (sold >= 0),
    CONSTRAINT dropkit_drops_no_oversell     CHECK (reserved + sold <= total_stock),
    CONSTRAINT dropkit_drops_hold_positive   CHECK (hold_micros > 0),
    CONSTRAINT dropkit_drops_window          CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);

-- list_drops: drops that have not ended, soonest start first.
CREATE INDEX IF NOT EXISTS dropkit_drops_listing
    ON dropkit_drops (coalesce(starts_at, created_at));

-- drop_id has no foreign key on purpose: a foreign-key check takes a KEY
-- SHARE lock on the referenced row, and on a hot drop every concurrent
-- insert would share-lock the row the reserve path updates, turning its
-- lock into a MultiXact and halving throughput. Drops are never deleted,
-- and every write function reads the drop row before it writes a hold or a
-- purchase; verify_invariants checks there are no orphans.
CREATE TABLE IF NOT EXISTS dropkit_reservations (
    id         uuid        PRIMARY KEY,
    drop_id    uuid        NOT NULL,
    username   text        NOT NULL,
    status     text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT dropkit_reservations_status
        CHECK (status IN ('active', 'purchased', 'expired', 'released')),
    CONSTRAINT dropkit_reservations_window CHECK (expires_at > created_at)
);

-- Invariant 4: at most one active hold per (drop, user). Also the index the
-- reserve path uses to find a caller's existing hold. The username leads so
-- that no plan can use it to walk all of a drop's holds: a lookup by user
-- stays a lookup even when the statistics are stale.
CREATE UNIQUE INDEX IF NOT EXISTS dropkit_reservations_one_active
    ON dropkit_reservations (username, drop_id) WHERE status = 'active';

-- Due expiries without a scan: the sweeper and next_expiry read this one.
CREATE INDEX IF NOT EXISTS dropkit_reservations_due
    ON dropkit_reservations (expires_at) WHERE status = 'active';

-- No index leads with drop_id on purpose: with stale statistics (a table
-- that filled up in seconds, as in a flash sale) the planner used such an
-- index for the per-user lookups and scanned every active hold of the drop
-- on each reserve. Lazy reclaim reads "dropkit_reservations_due".

CREATE TABLE IF NOT EXISTS dropkit_purchases (
    id             uuid        PRIMARY KEY,
    -- Tie-breaker for purchases committed in the same instant (one batch).
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    reservation_id uuid        NOT NULL REFERENCES dropkit_reservations (id),
    drop_id        uuid        NOT NULL,
    username       text        NOT NULL,
    amount_minor   bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    CONSTRAINT dropkit_purchases_one_per_hold UNIQUE (reservation_id),
    CONSTRAINT dropkit_purchases_amount_nonneg CHECK (amount_minor >= 0)
);

CREATE INDEX IF NOT EXISTS dropkit_purchases_recent
    ON dropkit_purchases (drop_id, created_at DESC, seq DESC);
