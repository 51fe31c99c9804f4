-- The durable event log: every committed change, numbered store-wide, in
-- the transaction of the change.
--
-- - `dropkit_events`: one row per change. `seq` from `dropkit_events_seq`,
--   `at` by the database clock, `kind` the change's `type`, `data` the
--   change as drop_core's serde writes it (`type` tag included; seq, at and
--   drop_id are columns). Indexed by (drop_id, seq) for a drop's history.
-- - `dropkit_log_head`: one row, `pruned_to`, the highest number retention
--   has removed (entries at or below it are gone, or about to be deleted,
--   and are never read again). Its oid also names the log's advisory lock.
-- - `dropkit_cursors`: named consumers' positions, each leased to one
--   holder at a time by the database clock. Retention never removes an
--   entry above the lowest position.
--
-- Why a reader never skips an entry. Sequence numbers are taken when a
-- transaction asks, not when it commits: two writers could commit 8 after
-- 9 became visible, and a consumer that read 9 would skip 8. Writers do
-- not wait for each other to prevent it (that would make every writing
-- transaction of the database commit one at a time, each with its own WAL
-- flush); readers wait instead, and only when there is something new:
--
-- - An append takes the log's advisory lock in SHARE mode (transaction
--   level, so held to its commit), THEN takes its numbers. Shared locks do
--   not wait for each other: writers run and commit in parallel.
-- - A read (dropkit_log_settle) first reads L, the sequence's last value:
--   every number at or below L has been handed out already, to a writer
--   that took the shared lock before it took the number and holds it to
--   its end. If L is not above what the reader has seen, there is nothing
--   to read and it returns at once, locking nothing. Otherwise it takes
--   the lock EXCLUSIVE and releases it at once: granted only once every
--   such writer has ended, and PostgreSQL makes a transaction visible to
--   new snapshots before it releases its locks. The read that follows, a
--   new statement with a new snapshot (READ COMMITTED), sees every entry
--   numbered up to L that will ever exist, and answers nothing above L.
--   A rolled back writer leaves a hole, which a consumer passes over.
--
-- The cost falls on writers only while a reader waits: PostgreSQL queues
-- new shared requests behind the waiting exclusive one, so each read that
-- finds something new holds new appends back for about one in-flight
-- commit. Idle polls cost writers nothing. The append is the last
-- statement of every writing transaction: a transaction holding the
-- shared lock waits for nothing but its commit, so no deadlock can involve
-- the lock.
--
-- The lock is the two-int advisory key (1685221232, the oid of
-- `dropkit_log_head` mapped into int4): the first half is "drop" in ASCII,
-- the two-int form never collides with a host application's one-bigint
-- keys, and the oid, resolved through search_path, gives stores in
-- different schemas of one database different locks.
--
-- The write functions are not replaced: `dropkit_*_logged` wrappers call
-- them, build the entries from their answers and append. Called with the
-- same arguments they answer the same rows, so the store switches between
-- logged and unlogged writes by the name it calls (`event_log(false)`).
-- No SET clause is involved: dropkit_expire_due keeps its own, and the
-- wrappers' statements (lookups by primary key, one insert) have one plan
-- whatever the tables hold (tests/cold_start.rs checks them).

-- CACHE 1 (the default) is required: a reader takes the sequence's last
-- value as the highest number handed out. With a cache, a session would
-- hand out numbers from its cached range after a reader read the range's
-- end, without having taken the lock at that time, and the reader could
-- skip them.
CREATE SEQUENCE dropkit_events_seq AS bigint MINVALUE 1 CACHE 1;

-- A buyer's change (a hold taken, bought, released or expired) is kept in
-- typed columns, and its JSON is built when it is read: building it in the
-- writing transaction cost more than everything else the log adds to a
-- batch of reserves (docs/postgres.md). Other changes (a drop's, or an
-- admin's cancellation, appended from Rust) keep the JSON in `data`.
CREATE TABLE dropkit_events (
    seq            bigint PRIMARY KEY,
    at             timestamptz NOT NULL,
    drop_id        uuid NOT NULL,
    kind           text NOT NULL,
    data           jsonb,
    reservation_id uuid,
    purchase_id    uuid,
    buyer_id       text,
    display_name   text,
    variant_id     uuid,
    quantity       integer,
    amount_minor   bigint,
    expires_at     timestamptz,
    CHECK (data IS NOT NULL OR reservation_id IS NOT NULL)
);

CREATE INDEX dropkit_events_by_drop ON dropkit_events (drop_id, seq);

CREATE TABLE dropkit_log_head (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    pruned_to bigint NOT NULL DEFAULT 0 CHECK (pruned_to >= 0)
);

INSERT INTO dropkit_log_head DEFAULT VALUES;

CREATE TABLE dropkit_cursors (
    name        text PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 200),
    position    bigint NOT NULL CHECK (position >= 0),
    holder      uuid,
    lease_until timestamptz,
    CHECK ((holder IS NULL) = (lease_until IS NULL))
);

-- A time as chrono's serde writes it (RFC 3339 in UTC, `Z`, the fraction
-- in the fewest of 0, 3 or 6 digits that hold it), so an entry built here
-- reads exactly like one built from `Change` in Rust.
CREATE FUNCTION dropkit_log_time(p_at timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE
                  WHEN extract(microseconds FROM p_at)::bigint % 1000000 = 0 THEN ''
                  WHEN extract(microseconds FROM p_at)::bigint % 1000 = 0
                      THEN to_char(p_at AT TIME ZONE 'UTC', '.MS')
                  ELSE to_char(p_at AT TIME ZONE 'UTC', '.US')
              END
           || 'Z'
$$;

-- An amount in minor units as Money's serde writes it: "12.00".
CREATE FUNCTION dropkit_log_money(p_minor bigint)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT (p_minor / 100)::text || '.' || lpad((p_minor % 100)::text, 2, '0')
$$;

-- The second half of the log's advisory lock key (see above): the oid of
-- the `dropkit_log_head` that search_path finds, mapped into int4.
CREATE FUNCTION dropkit_log_lock_key()
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT ('dropkit_log_head'::regclass::oid::bigint - 2147483648)::integer
$$;

-- Appends entries (p_drop[i], p_kind[i], p_data[i]) in array order. Must
-- be the last statement of its transaction (see above). Nothing to append
-- takes no lock.
CREATE FUNCTION dropkit_log_append(p_drop uuid[], p_kind text[], p_data jsonb[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_at timestamptz;
BEGIN
    IF coalesce(cardinality(p_drop), 0) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_drop) <> coalesce(cardinality(p_kind), 0)
       OR cardinality(p_drop) <> coalesce(cardinality(p_data), 0) THEN
        RAISE EXCEPTION 'dropkit_log_append: arrays of different lengths';
    END IF;
    -- The shared lock before the numbers: a reader that sees a number
    -- taken here waits for this transaction's end (see above).
    PERFORM pg_advisory_xact_lock_shared(1685221232, dropkit_log_lock_key());
    v_at := clock_timestamp();
    -- Volatile functions in the target list run after the sort, so the
    -- numbers follow the arrays' order.
    INSERT INTO dropkit_events (seq, at, drop_id, kind, data)
    SELECT nextval('dropkit_events_seq'), v_at, t.d, t.k, t.x
      FROM unnest(p_drop, p_kind, p_data) WITH ORDINALITY AS t(d, k, x, i)
     ORDER BY t.i;
END;
$$;

-- Appends buyers' changes in typed columns, in array order (every array
-- of one length; NULL where a kind has no such field). As
-- dropkit_log_append: the last statement of its transaction, the shared
-- lock before the numbers, nothing to append takes no lock.
CREATE FUNCTION dropkit_log_append_typed(
    p_drop uuid[], p_kind text[], p_res uuid[], p_pur uuid[], p_buyer text[], p_name text[],
    p_var uuid[], p_qty integer[], p_amount bigint[], p_expires timestamptz[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_at timestamptz;
BEGIN
    IF coalesce(cardinality(p_drop), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1685221232, dropkit_log_lock_key());
    v_at := clock_timestamp();
    INSERT INTO dropkit_events (seq, at, drop_id, kind, reservation_id, purchase_id, buyer_id,
                                display_name, variant_id, quantity, amount_minor, expires_at)
    SELECT nextval('dropkit_events_seq'), v_at, t.d, t.k, t.r, t.p, t.b, t.n, t.v, t.q, t.a, t.e
      FROM unnest(p_drop, p_kind, p_res, p_pur, p_buyer, p_name, p_var, p_qty, p_amount,
                  p_expires) WITH ORDINALITY AS t(d, k, r, p, b, n, v, q, a, e, i)
     ORDER BY t.i;
END;
$$;

-- An entry's change as drop-core's serde writes a `Change`: `data` when
-- the change was appended as JSON, else built from the typed columns.
CREATE FUNCTION dropkit_log_data(e dropkit_events)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN e.data IS NOT NULL THEN e.data
        WHEN e.kind = 'holdCreated' THEN
            jsonb_build_object('type', e.kind, 'reservationId', e.reservation_id,
                               'buyerId', e.buyer_id, 'displayName', e.display_name,
                               'variantId', e.variant_id, 'quantity', e.quantity,
                               'expiresAt', dropkit_log_time(e.expires_at))
        WHEN e.kind = 'purchaseCompleted' THEN
            jsonb_build_object('type', e.kind, 'purchaseId', e.purchase_id,
                               'reservationId', e.reservation_id, 'buyerId', e.buyer_id,
                               'displayName', e.display_name, 'variantId', e.variant_id,
                               'quantity', e.quantity,
                               'amount', dropkit_log_money(e.amount_minor))
        -- holdReleased, holdExpired
        ELSE jsonb_build_object('type', e.kind, 'reservationId', e.reservation_id,
                                'buyerId', e.buyer_id, 'variantId', e.variant_id,
                                'quantity', e.quantity)
    END
$$;

-- Appends `holdExpired` for the holds a write ended (ids in the order
-- given), read from the rows it just wrote.
CREATE FUNCTION dropkit_log_expired(p_ids uuid[])
RETURNS void
LANGUAGE sql
AS $$
    SELECT dropkit_log_append_typed(
               array_agg(r.drop_id ORDER BY e.i), array_agg('holdExpired'::text ORDER BY e.i),
               array_agg(r.id ORDER BY e.i), array_agg(NULL::uuid ORDER BY e.i),
               array_agg(r.buyer_id ORDER BY e.i), array_agg(NULL::text ORDER BY e.i),
               array_agg(r.variant_id ORDER BY e.i), array_agg(r.quantity ORDER BY e.i),
               array_agg(NULL::bigint ORDER BY e.i), array_agg(NULL::timestamptz ORDER BY e.i))
      FROM unnest(p_ids) WITH ORDINALITY AS e(id, i)
      JOIN dropkit_reservations r ON r.id = e.id
$$;

-- The entries of the holds a reserve created (`o_answers` of
-- dropkit_reserve_units, `p_buyers` its callers), numbered in caller order.
CREATE FUNCTION dropkit_log_holds(p_drop uuid, p_buyers text[], p_answers dropkit_unit_answer[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_at timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM unnest(p_answers) a WHERE a.outcome = 'created') THEN
        RETURN;
    END IF;
    -- The log's shared lock, then the numbers (see the top of this file).
    PERFORM pg_advisory_xact_lock_shared(1685221232, dropkit_log_lock_key());
    v_at := clock_timestamp();
    INSERT INTO dropkit_events (seq, at, drop_id, kind, reservation_id, buyer_id, display_name,
                                variant_id, quantity, expires_at)
    SELECT nextval('dropkit_events_seq'), v_at, p_drop, 'holdCreated', a.hold_id,
           p_buyers[a.i], a.display_name, a.variant_id, a.quantity, a.expires_at
      FROM unnest(p_answers) WITH ORDINALITY
           AS a(outcome, hold_id, created_at, expires_at, display_name, variant_id, quantity,
                taken, i)
     WHERE a.outcome = 'created'
     ORDER BY a.i;
END;
$$;

-- dropkit_reserve_units, logged: the holds it ended (holdExpired) first,
-- then each hold it created (holdCreated), in answer order. Holds
-- answered as existing were logged when they were made.
CREATE FUNCTION dropkit_reserve_logged(
    p_drop uuid, p_buyers text[], p_names text[], p_variants uuid[], p_quantities integer[],
    p_ids uuid[], p_callers text[], p_keys text[], p_prints bytea[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[],
    o_max_per_buyer integer,
    o_answers  dropkit_unit_answer[],
    o_expired  uuid[]
)
LANGUAGE plpgsql
AS $$
BEGIN
    SELECT u.* INTO o_outcome, o_total, o_reserved, o_sold, o_version, o_variants,
                    o_max_per_buyer, o_answers, o_expired
      FROM dropkit_reserve_units(p_drop, p_buyers, p_names, p_variants, p_quantities,
                                 p_ids, p_callers, p_keys, p_prints) u;
    IF o_outcome = 'ok' THEN
        IF cardinality(o_expired) > 0 THEN
            PERFORM dropkit_log_expired(o_expired);
        END IF;
        PERFORM dropkit_log_holds(p_drop, p_buyers, o_answers);
    END IF;
    RETURN NEXT;
END;
$$;

-- dropkit_purchase_units, logged: a purchaseCompleted per purchase made
-- (not for a repeat), in answer order.
CREATE FUNCTION dropkit_purchase_logged(
    p_drop uuid, p_res uuid[], p_buyers text[], p_pids uuid[],
    p_callers text[], p_keys text[], p_prints bytea[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[],
    o_answers  dropkit_bought_answer[],
    o_latest   dropkit_buyer[]
)
LANGUAGE plpgsql
AS $$
BEGIN
    SELECT u.* INTO o_outcome, o_total, o_reserved, o_sold, o_version, o_variants,
                    o_answers, o_latest
      FROM dropkit_purchase_units(p_drop, p_res, p_buyers, p_pids, p_callers, p_keys, p_prints) u;
    IF o_outcome = 'ok' THEN
        PERFORM dropkit_log_append_typed(
                    array_agg(p_drop ORDER BY a.i),
                    array_agg('purchaseCompleted'::text ORDER BY a.i),
                    array_agg(p_res[a.i] ORDER BY a.i),
                    array_agg(a.purchase_id ORDER BY a.i),
                    array_agg(p_buyers[a.i] ORDER BY a.i),
                    array_agg(a.display_name ORDER BY a.i),
                    array_agg(a.variant_id ORDER BY a.i),
                    array_agg(a.quantity ORDER BY a.i),
                    array_agg(a.amount_minor ORDER BY a.i),
                    array_agg(NULL::timestamptz ORDER BY a.i))
           FROM (SELECT x.*
                   FROM unnest(o_answers) WITH ORDINALITY
                        AS x(outcome, purchase_id, variant_id, quantity, amount_minor, status,
                             created_at, cancelled_at, display_name, i)
                  WHERE x.outcome = 'purchased') a;
    END IF;
    RETURN NEXT;
END;
$$;

-- dropkit_release, logged: holdReleased when it released.
CREATE FUNCTION dropkit_release_logged(p_res uuid, p_buyer text)
RETURNS TABLE (
    o_outcome      dropkit_outcome,
    o_drop         uuid,
    o_display_name text,
    o_created_at   timestamptz,
    o_expires_at   timestamptz,
    o_variant      uuid,
    o_quantity     integer,
    o_total        integer,
    o_reserved     integer,
    o_sold         integer,
    o_version      bigint,
    o_variants     dropkit_variant_stock[]
)
LANGUAGE plpgsql
AS $$
BEGIN
    SELECT u.* INTO o_outcome, o_drop, o_display_name, o_created_at, o_expires_at, o_variant,
                    o_quantity, o_total, o_reserved, o_sold, o_version, o_variants
      FROM dropkit_release(p_res, p_buyer) u;
    IF o_outcome = 'released' THEN
        PERFORM dropkit_log_append_typed(
            ARRAY[o_drop], ARRAY['holdReleased'], ARRAY[p_res], ARRAY[NULL::uuid], ARRAY[p_buyer],
            ARRAY[NULL::text], ARRAY[o_variant], ARRAY[o_quantity], ARRAY[NULL::bigint],
            ARRAY[NULL::timestamptz]);
    END IF;
    RETURN NEXT;
END;
$$;

-- dropkit_expire_due, logged: a holdExpired per hold it expired, drop by
-- drop in its answer's order.
CREATE FUNCTION dropkit_expire_due_logged(p_limit integer)
RETURNS TABLE (
    o_drop     uuid,
    o_expired  uuid[],
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[]
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_ids   uuid[] := '{}';
BEGIN
    FOR o_drop, o_expired, o_total, o_reserved, o_sold, o_version, o_variants IN
        SELECT * FROM dropkit_expire_due(p_limit)
    LOOP
        v_ids := v_ids || o_expired;
        RETURN NEXT;
    END LOOP;
    IF cardinality(v_ids) > 0 THEN
        PERFORM dropkit_log_expired(v_ids);
    END IF;
END;
$$;

-- L, the last number handed out (0 before the first), once every writer
-- that may hold a number at or below L has ended (see above): a new
-- statement then sees every entry up to L that will ever exist. When L is
-- not above p_after it answers at once and locks nothing.
--
-- The exclusive lock is taken at session level and released at once, so
-- it is not held while the caller reads. A session lock outlives an
-- error, and one left held would stop every writer of the database: a
-- cancel (statement_timeout included) that lands between the grant and
-- the release releases it on the way out. A snapshot taken before the
-- wait (REPEATABLE READ and above) would not see the writers it waited
-- for, so those isolation levels are refused rather than answered wrong.
CREATE FUNCTION dropkit_log_settle(p_after bigint)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_last bigint;
    v_key  integer;
BEGIN
    -- A sequence's row always shows the last value handed out by any
    -- session, committed or not.
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END INTO v_last
      FROM dropkit_events_seq s;
    IF v_last <= p_after THEN
        RETURN v_last;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'dropkit reads the event log under READ COMMITTED only, not %',
            current_setting('transaction_isolation');
    END IF;
    v_key := dropkit_log_lock_key();
    BEGIN
        PERFORM pg_advisory_lock(1685221232, v_key);
        PERFORM pg_advisory_unlock(1685221232, v_key);
    EXCEPTION WHEN query_canceled THEN
        IF EXISTS (SELECT 1 FROM pg_locks l
                    WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                      AND l.classid = 1685221232::oid AND l.objid = v_key::oid
                      AND l.objsubid = 2 AND l.mode = 'ExclusiveLock' AND l.granted) THEN
            PERFORM pg_advisory_unlock(1685221232, v_key);
        END IF;
        RAISE;
    END;
    RETURN v_last;
END;
$$;

-- The entries above p_after (of drop p_drop when it is not null), at most
-- p_limit, oldest first, each with `pruned_to` as the same snapshot saw
-- it; one row with only `pruned_to` when there are none. Settles first,
-- then reads in a new snapshot (a volatile function under READ COMMITTED
-- takes one per statement) up to the settled number only: anything above
-- it may still have unsettled numbers below it. Entries at or below
-- `pruned_to` that are not deleted yet are never answered.
CREATE FUNCTION dropkit_log_read(p_after bigint, p_limit integer, p_drop uuid)
RETURNS TABLE (o_pruned_to bigint, o_seq bigint, o_at timestamptz, o_drop uuid, o_data jsonb)
LANGUAGE plpgsql
AS $$
DECLARE
    v_last bigint := dropkit_log_settle(p_after);
BEGIN
    -- Two statements rather than one with `p_drop IS NULL OR ...`: each
    -- has one plan, by primary key or by (drop_id, seq).
    IF p_drop IS NULL THEN
        RETURN QUERY
        SELECT h.pruned_to, e.seq, e.at, e.drop_id, e.data
          FROM dropkit_log_head h
          LEFT JOIN LATERAL (SELECT x.seq, x.at, x.drop_id, dropkit_log_data(x) AS data FROM dropkit_events x
                              WHERE x.seq > greatest(p_after, h.pruned_to) AND x.seq <= v_last
                              ORDER BY x.seq LIMIT p_limit) e ON true
         ORDER BY e.seq;
    ELSE
        RETURN QUERY
        SELECT h.pruned_to, e.seq, e.at, e.drop_id, e.data
          FROM dropkit_log_head h
          LEFT JOIN LATERAL (SELECT x.seq, x.at, x.drop_id, dropkit_log_data(x) AS data FROM dropkit_events x
                              WHERE x.drop_id = p_drop
                                AND x.seq > greatest(p_after, h.pruned_to) AND x.seq <= v_last
                              ORDER BY x.seq LIMIT p_limit) e ON true
         ORDER BY e.seq;
    END IF;
END;
$$;

-- Retention's first step: moves `pruned_to` up to the last of the oldest
-- entries (at most p_limit) that are older than p_keep_secs by the
-- database clock and not above any cursor's position. Only a prefix of
-- the log goes, so everything at or below `pruned_to` is gone for readers
-- at once; the store deletes the rows afterwards, outside the head row's
-- lock. The prefix is of the visible log, without waiting for writers: an
-- entry still in flight below old visible ones took its number before
-- them, so it is about as old (an entry's time is taken with its number),
-- a reader below the new horizon is told its entries were pruned, and a
-- row that commits below the horizon after the delete goes with the next
-- run's. Under the head row's lock: a cursor being created (which reads
-- `pruned_to` under a share lock of the same row) is either seen here or
-- starts at the new horizon. Answers the horizon.
CREATE FUNCTION dropkit_log_prune(p_keep_secs double precision, p_limit integer)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_head bigint;
    v_pin  bigint;
    v_cut  timestamptz;
    v_to   bigint;
BEGIN
    SELECT pruned_to INTO v_head FROM dropkit_log_head FOR UPDATE;
    SELECT min(c.position) INTO v_pin FROM dropkit_cursors c;
    v_pin := coalesce(v_pin, 9223372036854775807);
    v_cut := clock_timestamp() - make_interval(secs => p_keep_secs);
    -- Nothing to do (the common case) costs one index probe: the oldest
    -- entry kept is too young or a cursor needs it.
    PERFORM 1 FROM (SELECT e.seq, e.at FROM dropkit_events e
                     WHERE e.seq > v_head ORDER BY e.seq LIMIT 1) o
     WHERE o.at < v_cut AND o.seq <= v_pin;
    IF NOT FOUND THEN
        RETURN v_head;
    END IF;
    WITH f AS (
        SELECT e.seq, (e.at < v_cut AND e.seq <= v_pin) AS old
          FROM dropkit_events e
         WHERE e.seq > v_head
         ORDER BY e.seq
         LIMIT p_limit)
    SELECT max(f.seq) INTO v_to
      FROM f
     WHERE f.seq < coalesce((SELECT min(g.seq) FROM f g WHERE NOT g.old), 9223372036854775807);
    IF v_to IS NULL THEN
        RETURN v_head;
    END IF;
    UPDATE dropkit_log_head SET pruned_to = v_to;
    RETURN v_to;
END;
$$;

-- The common batch of reserves, decided in two statements. The variants
-- migration's `dropkit_reserve_units` decides each caller in a PL/pgSQL
-- loop step of some twenty expressions. The common batch (the sale open,
-- every caller alone in the batch, holding nothing, with a fresh key or
-- none, within the limit, and stock enough for all) is decided in two
-- statements instead, and gets exactly the answers the loop would give
-- it; any other batch runs the loop, unchanged. With the holds' entries
-- written straight from the answers (`dropkit_log_holds`), a batch of 32
-- new buyers costs the database 0.70–0.96× the CPU
-- (benches/sql/reserve_batch_cpu.sh, docs/postgres.md). The function had
-- no SET clause to restate.
CREATE OR REPLACE FUNCTION dropkit_reserve_units(
    p_drop uuid, p_buyers text[], p_names text[], p_variants uuid[], p_quantities integer[],
    p_ids uuid[], p_callers text[], p_keys text[], p_prints bytea[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,         -- ok | drop_not_found
    o_total    integer,                 -- the drop's counters after the call
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[], -- each variant's, in order
    o_max_per_buyer integer,            -- the drop's limit
    o_answers  dropkit_unit_answer[],   -- when ok: one per caller, in order
    o_expired  uuid[]                   -- holds this call ended (overdue ones)
)
LANGUAGE plpgsql
AS $$
DECLARE
    n          integer := coalesce(cardinality(p_buyers), 0);
    d          dropkit_drops%ROWTYPE;
    v_now      timestamptz;
    v_expires  timestamptz;
    v_window   dropkit_outcome;
    vid        uuid[];
    vname      text[];
    vtotal     integer[];
    vres       integer[];
    vsold      integer[];
    vres0      integer[];
    h_id       uuid[];
    h_var      uuid[];
    h_qty      integer[];
    h_made     timestamptz[];
    h_until    timestamptz[];
    h_name     text[];
    bought     integer[];
    recorded   boolean[];
    a_out      dropkit_outcome[];
    a_var      integer[];          -- per caller: the variant's index, once known
    v_keyed    boolean := false;
    v_taken    integer[];
    v_reclaim  uuid[];
    v_lost     integer[];
    v_units    integer;
    v_free     integer;
    v_changed  boolean := false;
    j          integer;
    k          integer;
    q          integer;
    k_var      uuid;
    v_simple   boolean;            -- the common batch (below)
    v_sum_var  integer[];          -- its variants' indexes and the
    v_sum_qty  integer[];          -- units asked of each
BEGIN
    IF n IS DISTINCT FROM coalesce(cardinality(p_names), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_variants), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_quantities), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_ids), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_callers), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_keys), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_prints), 0) THEN
        RAISE EXCEPTION 'dropkit_reserve_units: arrays of different lengths';
    END IF;
    o_answers := '{}';
    o_expired := '{}';

    IF n = 1 AND p_callers[1] IS NULL AND p_quantities[1] BETWEEN 1 AND 100 THEN
        -- One caller without a key, the common case of a lone call: the
        -- UPDATE that counts the units is also what takes the drop's lock,
        -- the variant's UPDATE checks its stock, one probe checks the
        -- limit, and the INSERT says through the one-active index whether
        -- the buyer holds already. Anything else (a hold, a short variant,
        -- the limit, a bad request) gives the units back and goes the
        -- general way below, under the lock already held.
        q := p_quantities[1];
        UPDATE dropkit_drops
           SET reserved = reserved + q, version = version + 1
         WHERE id = p_drop AND q <= max_per_buyer AND NOT paused
           AND price_minor * q <= 100000000000
           AND reserved + sold + q <= total_stock
           AND (starts_at IS NULL OR starts_at <= clock_timestamp())
           AND (ends_at IS NULL OR ends_at > clock_timestamp())
        RETURNING * INTO d;
        IF FOUND THEN
            v_now := clock_timestamp();
            v_expires := v_now + d.hold_micros * interval '1 microsecond';
            IF p_variants[1] IS NULL THEN
                -- The drop's only variant (none at position 1).
                UPDATE dropkit_variants v SET reserved = v.reserved + q
                 WHERE v.drop_id = p_drop AND v.position = 0
                   AND v.reserved + v.sold + q <= v.total_stock
                   AND NOT EXISTS (SELECT 1 FROM dropkit_variants w
                                    WHERE w.drop_id = p_drop AND w.position = 1)
                RETURNING v.id INTO k_var;
            ELSE
                UPDATE dropkit_variants v SET reserved = v.reserved + q
                 WHERE v.id = p_variants[1] AND v.drop_id = p_drop
                   AND v.reserved + v.sold + q <= v.total_stock
                RETURNING v.id INTO k_var;
            END IF;
            IF k_var IS NOT NULL THEN
                SELECT coalesce(sum(p.quantity), 0)::integer INTO v_units
                  FROM dropkit_purchases p
                 WHERE p.buyer_id = p_buyers[1] AND p.drop_id = p_drop AND p.status = 'completed';
                IF v_units + q <= d.max_per_buyer THEN
                    INSERT INTO dropkit_reservations
                           (id, drop_id, variant_id, quantity, buyer_id, display_name, status,
                            created_at, expires_at)
                    VALUES (p_ids[1], p_drop, k_var, q, p_buyers[1], p_names[1], 'active',
                            v_now, v_expires)
                    ON CONFLICT (buyer_id, drop_id) WHERE status = 'active' DO NOTHING;
                    IF FOUND THEN
                        o_outcome := 'ok';
                        o_total := d.total_stock;
                        o_reserved := d.reserved;
                        o_sold := d.sold;
                        o_version := d.version;
                        o_max_per_buyer := d.max_per_buyer;
                        o_variants := dropkit_variants_of(p_drop);
                        o_answers := ARRAY[ROW('created', p_ids[1], v_now, v_expires, p_names[1],
                                               k_var, q, NULL)::dropkit_unit_answer];
                        RETURN NEXT;
                        RETURN;
                    END IF;
                END IF;
                UPDATE dropkit_variants SET reserved = reserved - q WHERE id = k_var;
            END IF;
            UPDATE dropkit_drops SET reserved = reserved - q, version = version - 1
             WHERE id = p_drop;
        END IF;
    END IF;

    SELECT * INTO d FROM dropkit_drops WHERE id = p_drop FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'drop_not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    v_expires := v_now + d.hold_micros * interval '1 microsecond';
    o_max_per_buyer := d.max_per_buyer;
    IF d.starts_at IS NOT NULL AND v_now < d.starts_at THEN
        v_window := 'not_started';
    ELSIF d.ends_at IS NOT NULL AND v_now >= d.ends_at THEN
        v_window := 'ended';
    ELSIF d.paused THEN
        v_window := 'paused';
    END IF;

    SELECT array_agg(v.id ORDER BY v.position), array_agg(v.name ORDER BY v.position),
           array_agg(v.total_stock ORDER BY v.position), array_agg(v.reserved ORDER BY v.position),
           array_agg(v.sold ORDER BY v.position)
      INTO vid, vname, vtotal, vres, vsold
      FROM dropkit_variants v WHERE v.drop_id = p_drop;
    vres0 := vres;

    -- Per caller, one probe each: the active hold (one-active index), the
    -- units bought (the buyer-units index) and the key's record (its
    -- primary key). LATERAL with the buyer named, never `= ANY`, so that
    -- no plan reads a drop's holds or purchases whole.
    SELECT array_agg(h.id ORDER BY u.i), array_agg(h.variant_id ORDER BY u.i),
           array_agg(h.quantity ORDER BY u.i), array_agg(h.created_at ORDER BY u.i),
           array_agg(h.expires_at ORDER BY u.i), array_agg(h.display_name ORDER BY u.i),
           array_agg(coalesce(b.units, 0) ORDER BY u.i),
           array_agg(k.caller IS NOT NULL ORDER BY u.i),
           bool_or(u.caller IS NOT NULL)
      INTO h_id, h_var, h_qty, h_made, h_until, h_name, bought, recorded, v_keyed
      FROM unnest(p_buyers, p_callers, p_keys) WITH ORDINALITY AS u(buyer, caller, key, i)
      LEFT JOIN LATERAL (
            SELECT r.id, r.variant_id, r.quantity, r.created_at, r.expires_at, r.display_name
              FROM dropkit_reservations r
             WHERE r.buyer_id = u.buyer AND r.drop_id = p_drop AND r.status = 'active'
             LIMIT 1) h ON true
      LEFT JOIN LATERAL (
            SELECT sum(p.quantity)::integer AS units FROM dropkit_purchases p
             WHERE p.buyer_id = u.buyer AND p.drop_id = p_drop AND p.status = 'completed') b ON true
      LEFT JOIN dropkit_idempotency k ON k.caller = u.caller AND k.key = u.key;

    a_out := array_fill(NULL::dropkit_outcome, ARRAY[n]);
    a_var := array_fill(NULL::integer, ARRAY[n]);
    v_taken := array_fill(NULL::integer, ARRAY[n]);

    -- The common batch, decided in two statements rather than a loop step
    -- per caller: the sale is open, and every caller names a variant of
    -- this drop (or it has one), asks a quantity within the limit, holds
    -- nothing, is alone in the batch, has a fresh key or none, and stays
    -- within the limit with what they bought; and each variant has the
    -- units all its callers ask. Then every caller gets a hold, exactly as
    -- the loop below would decide one by one. Anything else takes the loop.
    IF v_window IS NULL THEN
        SELECT bool_and(c.j IS NOT NULL AND c.q BETWEEN 1 AND d.max_per_buyer
                        AND d.price_minor * c.q <= 100000000000
                        AND c.h IS NULL AND NOT c.rec AND c.bo + c.q <= d.max_per_buyer)
               AND count(DISTINCT c.b) = n,
               array_agg(c.j ORDER BY c.i)
          INTO v_simple, a_var
          FROM (SELECT u.i, u.q, u.b, u.h, u.rec, u.bo,
                       CASE WHEN u.v IS NULL
                            THEN CASE WHEN cardinality(vid) = 1 THEN 1 END
                            ELSE array_position(vid, u.v) END AS j
                  FROM unnest(p_variants, p_quantities, p_buyers, h_id, recorded, bought)
                       WITH ORDINALITY AS u(v, q, b, h, rec, bo, i)) c;
        IF v_simple THEN
            SELECT bool_and(s.need <= vtotal[s.j] - vres[s.j] - vsold[s.j]),
                   array_agg(s.j), array_agg(s.need)
              INTO v_simple, v_sum_var, v_sum_qty
              FROM (SELECT t.j, sum(t.q)::integer AS need
                      FROM unnest(a_var, p_quantities) AS t(j, q) GROUP BY t.j) s;
        END IF;
        IF v_simple THEN
            FOR x IN 1 .. cardinality(v_sum_var) LOOP
                vres[v_sum_var[x]] := vres[v_sum_var[x]] + v_sum_qty[x];
            END LOOP;
            a_out := array_fill('created'::dropkit_outcome, ARRAY[n]);
            h_id := p_ids;
            SELECT array_agg(vid[t.j] ORDER BY t.i) INTO h_var
              FROM unnest(a_var) WITH ORDINALITY AS t(j, i);
            h_qty := p_quantities;
            h_made := array_fill(v_now, ARRAY[n]);
            h_until := array_fill(v_expires, ARRAY[n]);
            h_name := p_names;
        ELSE
            a_var := array_fill(NULL::integer, ARRAY[n]);
        END IF;
    END IF;

    FOR i IN 1 .. CASE WHEN v_simple THEN 0 ELSE n END LOOP
        q := p_quantities[i];
        IF recorded[i] THEN
            a_out[i] := 'key_taken';
            CONTINUE;
        END IF;
        IF p_variants[i] IS NULL THEN
            j := CASE WHEN cardinality(vid) = 1 THEN 1 END;
            IF j IS NULL THEN
                a_out[i] := 'variant_required';
                CONTINUE;
            END IF;
        ELSE
            j := array_position(vid, p_variants[i]);
            IF j IS NULL THEN
                a_out[i] := 'variant_not_found';
                CONTINUE;
            END IF;
        END IF;
        a_var[i] := j;
        -- Above the limit, or a total above the largest amount
        -- (drop_core::money::MONEY_MAX_MINOR): a hold granted can be paid.
        IF q IS NULL OR q < 1 OR q > d.max_per_buyer
           OR d.price_minor * q > 100000000000 THEN
            a_out[i] := 'bad_quantity';
            CONTINUE;
        END IF;
        IF v_window IS NOT NULL THEN
            a_out[i] := v_window;
            CONTINUE;
        END IF;
        IF h_id[i] IS NOT NULL AND h_until[i] > v_now THEN
            a_out[i] := CASE WHEN h_var[i] = vid[j] AND h_qty[i] = q
                             THEN 'existing'::dropkit_outcome ELSE 'hold_exists'::dropkit_outcome END;
            CONTINUE;
        END IF;
        IF h_id[i] IS NOT NULL THEN
            -- The caller's own hold is overdue: it ends now (unless an
            -- earlier caller's reclaim ended it already).
            UPDATE dropkit_reservations SET status = 'expired'
             WHERE id = h_id[i] AND status = 'active';
            IF FOUND THEN
                k := array_position(vid, h_var[i]);
                vres[k] := vres[k] - h_qty[i];
                o_expired := o_expired || h_id[i];
                v_changed := true;
            END IF;
            h_id[i] := NULL;
        END IF;
        IF bought[i] + q > d.max_per_buyer THEN
            a_out[i] := 'buyer_limit';
            v_taken[i] := bought[i];
            CONTINUE;
        END IF;
        v_free := vtotal[j] - vres[j] - vsold[j];
        IF v_free < q THEN
            -- Lazy reclaim: this variant's overdue holds, earliest first,
            -- only as many units as needed (each hold is one unit or
            -- more, so that many holds at most are read).
            WITH c AS (
                SELECT o.id, o.quantity,
                       sum(o.quantity) OVER (ORDER BY o.expires_at, o.id) AS run
                  FROM (SELECT r.id, r.quantity, r.expires_at FROM dropkit_reservations r
                         WHERE r.drop_id = p_drop AND r.status = 'active'
                           AND r.created_at < r.expires_at AND r.expires_at <= v_now
                           AND r.variant_id = vid[j]
                         ORDER BY r.expires_at
                         LIMIT q - v_free) o),
            x AS (
                UPDATE dropkit_reservations r SET status = 'expired'
                  FROM c
                 WHERE r.id = c.id AND c.run - c.quantity < q - v_free
                RETURNING r.id, r.quantity)
            SELECT coalesce(array_agg(x.id), '{}'), coalesce(sum(x.quantity), 0)::integer
              INTO v_reclaim, v_units FROM x;
            IF v_units > 0 THEN
                vres[j] := vres[j] - v_units;
                o_expired := o_expired || v_reclaim;
                v_free := v_free + v_units;
                v_changed := true;
            END IF;
        END IF;
        IF v_free < q THEN
            a_out[i] := 'out_of_stock';
            CONTINUE;
        END IF;
        vres[j] := vres[j] + q;
        a_out[i] := 'created';
        -- The same buyer later in this batch finds this hold.
        FOREACH k IN ARRAY array_positions(p_buyers, p_buyers[i]) LOOP
            IF k > i THEN
                h_id[k] := p_ids[i];
                h_var[k] := vid[j];
                h_qty[k] := q;
                h_made[k] := v_now;
                h_until[k] := v_expires;
                h_name[k] := p_names[i];
            END IF;
        END LOOP;
        h_id[i] := p_ids[i];
        h_var[i] := vid[j];
        h_qty[i] := q;
        h_made[i] := v_now;
        h_until[i] := v_expires;
        h_name[i] := p_names[i];
    END LOOP;

    IF v_keyed THEN
        -- Record the keys of the callers served, in key order (two batches
        -- recording the same keys wait on each other in one order). A key
        -- recorded by another transaction meanwhile, or twice in this
        -- batch, leaves its caller key_taken, with no hold.
        WITH t AS (
            SELECT DISTINCT ON (t.caller, t.key) t.caller, t.key, t.print, t.i::integer AS i
              FROM unnest(p_callers, p_keys, p_prints, a_out) WITH ORDINALITY AS t(caller, key, print, said, i)
             WHERE t.caller IS NOT NULL AND t.said IN ('created', 'existing')
             ORDER BY t.caller, t.key, t.i),
        ins AS (
            INSERT INTO dropkit_idempotency (caller, key, fingerprint, entity_kind, entity_id, created, recorded_at)
            SELECT t.caller, t.key, t.print, 'reservation', h_id[t.i], a_out[t.i] = 'created', v_now
              FROM t ORDER BY t.caller, t.key
            ON CONFLICT DO NOTHING
            RETURNING caller, key)
        SELECT coalesce(array_agg(u.i::integer), '{}') INTO v_lost
          FROM unnest(p_callers, p_keys, a_out) WITH ORDINALITY AS u(caller, key, said, i)
         WHERE u.caller IS NOT NULL AND u.said IN ('created', 'existing')
           AND NOT EXISTS (SELECT 1 FROM t JOIN ins ON ins.caller = t.caller AND ins.key = t.key
                            WHERE t.i = u.i);
        FOREACH k IN ARRAY v_lost LOOP
            IF a_out[k] = 'created' THEN
                -- Not made after all: its units go back (a later caller of
                -- this batch refused for them is not asked again; this
                -- race needs one key sent to two drops at once).
                j := a_var[k];
                vres[j] := vres[j] - p_quantities[k];
            END IF;
            a_out[k] := 'key_taken';
        END LOOP;
    END IF;

    INSERT INTO dropkit_reservations
           (id, drop_id, variant_id, quantity, buyer_id, display_name, status, created_at, expires_at)
    SELECT t.rid, p_drop, vid[t.j], t.q, t.buyer, t.name, 'active', v_now, v_expires
      FROM unnest(p_ids, a_var, p_quantities, p_buyers, p_names, a_out)
           AS t(rid, j, q, buyer, name, said)
     WHERE t.said = 'created';
    IF FOUND THEN
        v_changed := true;
    END IF;

    IF v_changed THEN
        UPDATE dropkit_variants v SET reserved = t.reserved
          FROM unnest(vid, vres, vres0) AS t(id, reserved, was)
         WHERE v.id = t.id AND t.reserved <> t.was;
        UPDATE dropkit_drops
           SET reserved = (SELECT sum(x) FROM unnest(vres) x), version = version + 1
         WHERE id = p_drop
        RETURNING reserved, version INTO o_reserved, o_version;
    ELSE
        o_reserved := d.reserved;
        o_version := d.version;
    END IF;

    SELECT array_agg(ROW(t.id, t.name, t.total, t.reserved, t.sold)::dropkit_variant_stock ORDER BY t.j)
      INTO o_variants
      FROM unnest(vid, vname, vtotal, vres, vsold) WITH ORDINALITY AS t(id, name, total, reserved, sold, j);
    SELECT array_agg(CASE
               WHEN t.said IN ('created', 'existing', 'hold_exists')
                   THEN ROW(t.said, t.hid, t.made, t.until, t.hname, t.hvar, t.hqty, NULL)::dropkit_unit_answer
               WHEN t.said = 'buyer_limit'
                   THEN ROW(t.said, NULL, NULL, NULL, NULL, NULL, NULL, t.taken)::dropkit_unit_answer
               ELSE ROW(t.said, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::dropkit_unit_answer
           END ORDER BY t.i)
      INTO o_answers
      FROM unnest(a_out, h_id, h_made, h_until, h_name, h_var, h_qty, v_taken)
           WITH ORDINALITY AS t(said, hid, made, until, hname, hvar, hqty, taken, i);
    o_answers := coalesce(o_answers, '{}');
    o_outcome := 'ok';
    o_total := d.total_stock;
    o_sold := d.sold;
    RETURN NEXT;
END;
$$;
