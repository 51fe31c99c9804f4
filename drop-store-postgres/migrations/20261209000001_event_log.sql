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
        PERFORM dropkit_log_append_typed(
                    array_agg(p_drop ORDER BY a.i),
                    array_agg('holdCreated'::text ORDER BY a.i),
                    array_agg(a.hold_id ORDER BY a.i),
                    array_agg(NULL::uuid ORDER BY a.i),
                    array_agg(p_buyers[a.i] ORDER BY a.i),
                    array_agg(a.display_name ORDER BY a.i),
                    array_agg(a.variant_id ORDER BY a.i),
                    array_agg(a.quantity ORDER BY a.i),
                    array_agg(NULL::bigint ORDER BY a.i),
                    array_agg(a.expires_at ORDER BY a.i))
           FROM (SELECT x.*
                   FROM unnest(o_answers) WITH ORDINALITY
                        AS x(outcome, hold_id, created_at, expires_at, display_name, variant_id,
                             quantity, taken, i)
                  WHERE x.outcome = 'created') a;
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
