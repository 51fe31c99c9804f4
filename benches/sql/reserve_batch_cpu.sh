#!/usr/bin/env bash
# The database's CPU time for one batch of reserves: 32 new buyers of one
# drop through `dropkit_reserve_logged`, 1,000 committed batches, read from
# the backend's /proc/self/stat (so outside load moves it little), against
# the same batches through the functions as they were before the common
# batch was decided in two statements: the variants migration's
# `dropkit_reserve_units` (its loop for every batch) and a wrapper that hands
# the new holds to `dropkit_log_append_typed` as ten arrays. Three
# alternations; `synchronous_commit = off`, so commits cost no flush.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test benches/sql/reserve_batch_cpu.sh
#
# It creates its own database (dropkit_bench_cpu_<pid>, dropped at the
# end) and needs psql and a superuser (pg_read_file).
set -euo pipefail
cd "$(dirname "$0")/../.."
URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
DB="dropkit_bench_cpu_$$"
BATCHES="${BENCH_BATCHES:-1000}"
psql -qX "$URL" -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -qX "$URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT
DBURL="${URL%/*}/$DB"
for f in drop-store-postgres/migrations/*.sql; do
  psql -qX -v ON_ERROR_STOP=1 -1 "$DBURL" -f "$f" >/dev/null
done
{
  # The previous functions, under names of their own.
  awk '/^CREATE FUNCTION dropkit_reserve_units\(/,/^\$\$;/' \
    drop-store-postgres/migrations/20261208000001_variants_limits_idempotency.sql |
    sed 's/^CREATE FUNCTION dropkit_reserve_units(/CREATE FUNCTION prev_reserve_units(/'
  cat <<'SQL'
CREATE FUNCTION prev_reserve_logged(
    p_drop uuid, p_buyers text[], p_names text[], p_variants uuid[], p_quantities integer[],
    p_ids uuid[], p_callers text[], p_keys text[], p_prints bytea[])
RETURNS SETOF dropkit_unit_answer[] LANGUAGE plpgsql AS $$
DECLARE a dropkit_unit_answer[];
BEGIN
    SELECT u.o_answers INTO a FROM prev_reserve_units(p_drop, p_buyers, p_names, p_variants,
        p_quantities, p_ids, p_callers, p_keys, p_prints) u;
    PERFORM dropkit_log_append_typed(
                array_agg(p_drop ORDER BY x.i), array_agg('holdCreated'::text ORDER BY x.i),
                array_agg(x.hold_id ORDER BY x.i), array_agg(NULL::uuid ORDER BY x.i),
                array_agg(p_buyers[x.i] ORDER BY x.i), array_agg(x.display_name ORDER BY x.i),
                array_agg(x.variant_id ORDER BY x.i), array_agg(x.quantity ORDER BY x.i),
                array_agg(NULL::bigint ORDER BY x.i), array_agg(x.expires_at ORDER BY x.i))
       FROM unnest(a) WITH ORDINALITY
            AS x(outcome, hold_id, created_at, expires_at, display_name, variant_id, quantity, taken, i)
      WHERE x.outcome = 'created';
    RETURN NEXT a;
END $$;
INSERT INTO dropkit_drops (id, name, price_minor, total_stock, hold_micros, max_per_buyer, max_per_buyer_high)
VALUES ('00000000-0000-0000-0000-000000000001', 'cpu', 100, 10000000, 600000000, 1, 1);
INSERT INTO dropkit_variants (id, drop_id, position, name, total_stock)
VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001', 0, 'Standard', 10000000);
SQL
} | psql -qX -v ON_ERROR_STOP=1 "$DBURL" >/dev/null

run() { # $1: the function, $2: a tag for buyer names
  psql -qX -v ON_ERROR_STOP=1 "$DBURL" 2>&1 <<SQL | sed -n 's/.*NOTICE: *//p'
SET synchronous_commit = off;
DO \$\$
DECLARE
  n int := 32; b int := $BATCHES; buyers text[]; ids uuid[]; cpu0 bigint; t0 timestamptz;
  cpu bigint;
BEGIN
  cpu0 := (SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint
             FROM pg_read_file('/proc/self/stat') s);
  t0 := clock_timestamp();
  FOR k IN 1..b LOOP
    SELECT array_agg('$2_' || k || '_' || i), array_agg(gen_random_uuid())
      INTO buyers, ids FROM generate_series(1, n) i;
    PERFORM $1('00000000-0000-0000-0000-000000000001', buyers, buyers,
        array_fill(NULL::uuid, ARRAY[n]), array_fill(1, ARRAY[n]), ids,
        array_fill(NULL::text, ARRAY[n]), array_fill(NULL::text, ARRAY[n]),
        array_fill(NULL::bytea, ARRAY[n]));
    COMMIT;
  END LOOP;
  cpu := (SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint
            FROM pg_read_file('/proc/self/stat') s) - cpu0;
  -- /proc counts in clock ticks of 10 ms.
  RAISE NOTICE '%', round(cpu * 10000.0 / b);
END \$\$;
SQL
}

echo "CPU µs per batch of 32 ($BATCHES batches each): this version | previous"
for round in 1 2 3; do
  now=$(run dropkit_reserve_logged "now$round")
  prev=$(run prev_reserve_logged "prev$round")
  echo "round $round: $now | $prev  ($(awk "BEGIN { printf \"%.2f\", $now / $prev }")×)"
done
