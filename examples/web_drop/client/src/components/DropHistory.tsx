import { useId, useMemo, useState } from 'react';
import { ApiError, adminEvents, type Drop, type LogEntry } from '../api';
import { plainError } from '../errors';
import { describeEntry, formatTime, namesFrom, variantNames } from '../history';

/** Entries asked for at a time. */
const PAGE = 50;

function errorText(err: unknown): string {
  const e = err instanceof ApiError ? err : new ApiError('NETWORK', String(err), 0);
  return plainError(e.code, e.message);
}

/** The `oldest` an `EVENTS_PRUNED` answer carries. */
function prunedOldest(err: unknown): number | null {
  if (!(err instanceof ApiError) || err.code !== 'EVENTS_PRUNED') return null;
  const oldest = (err.body as { oldest?: unknown } | undefined)?.oldest;
  return typeof oldest === 'number' ? oldest : null;
}

/**
 * One drop's history from the event log (`GET /api/admin/events?dropId=`),
 * oldest first: who held, bought, released, let expire or had a purchase
 * cancelled, and what the shop changed, each with its time. "Load more"
 * reads the next page; "Refresh" reads what happened since.
 */
export function DropHistory({ drop, token }: { drop: Drop; token: string }) {
  const uid = useId();
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [next, setNext] = useState(0);
  const [more, setMore] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [pruned, setPruned] = useState(false);

  const read = async (after: number) => {
    if (!token) {
      setError('Enter the admin token above first.');
      return;
    }
    setLoading(true);
    setError(null);
    try {
      let from = after;
      let answer;
      try {
        answer = await adminEvents(token, { after: from, limit: PAGE, dropId: drop.id });
      } catch (e) {
        // Entries this old are gone (retention): go on from the oldest kept.
        const oldest = prunedOldest(e);
        if (oldest === null) throw e;
        setPruned(true);
        from = Math.max(0, oldest - 1);
        answer = await adminEvents(token, { after: from, limit: PAGE, dropId: drop.id });
      }
      const page = answer.data;
      setEntries((list) => {
        // A page only ever holds entries above `from`: nothing is repeated.
        const kept = list.filter((e) => e.seq <= from);
        return [...kept, ...page.events];
      });
      setNext(page.next);
      setMore(page.more);
      setLoaded(true);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  };

  const ctx = useMemo(
    () => ({ variants: variantNames(drop.variants), names: namesFrom(entries) }),
    [drop.variants, entries],
  );
  const lines = useMemo(() => entries.map((e) => describeEntry(e, ctx)), [entries, ctx]);

  return (
    <div className="admin-edit" aria-labelledby={`${uid}-title`} role="region" data-testid="drop-history">
      <div className="admin-drop-head">
        <strong id={`${uid}-title`}>History, oldest first</strong>
        <button
          type="button"
          className="btn btn-ghost btn-small"
          onClick={() => void read(loaded ? next : 0)}
          disabled={loading}
          aria-label={loaded ? `Refresh the history of ${drop.name}` : `Load the history of ${drop.name}`}
        >
          {loading ? 'Loading…' : loaded ? 'Refresh' : 'Load history'}
        </button>
      </div>
      {pruned && <p className="admin-drop-meta">Older entries were removed by the log’s retention.</p>}
      {loaded && lines.length === 0 && <p className="empty">Nothing has happened to this drop yet.</p>}
      {lines.length > 0 && (
        <ol className="admin-drops" aria-label={`History of ${drop.name}`}>
          {lines.map((l) => (
            <li key={l.seq} className="admin-drop-meta" data-testid="history-entry" data-kind={l.kind}>
              <time dateTime={l.at}>{formatTime(l.at)}</time> · <strong>{l.who}</strong> · {l.text}
            </li>
          ))}
        </ol>
      )}
      {more && (
        <button type="button" className="btn btn-ghost btn-small" onClick={() => void read(next)} disabled={loading}>
          Load more
        </button>
      )}
      <p className="admin-status" role="status" aria-live="polite">
        {error ? <span className="field-error">{error}</span> : ''}
      </p>
    </div>
  );
}
