import { useEffect, useId, useRef, useState } from 'react';
import { ApiError, myPurchases, type Drop, type Purchase } from '../api';
import { plainError } from '../errors';
import { formatPrice, formatWhen } from '../format';
import { appendPage, withNewestPage, type Shown } from '../purchases';

/** Purchases per page of the list. */
export const PURCHASES_PAGE = 10;

/**
 * The signed-in buyer's purchases, newest first, a page at a time ("More"
 * asks the server for the next, older page). Cancelled ones stay listed,
 * marked. When `version` changes (the buyer bought something, here or
 * elsewhere) the first page is read again and older pages already shown
 * stay; the page remounts the list (a new `key`) when a purchase is
 * cancelled, so every status shown is fresh.
 */
export function MyPurchases({ drops, version, onClose }: { drops: Drop[]; version: number; onClose: () => void }) {
  const uid = useId();
  const [shown, setShown] = useState<Shown>({ purchases: [], next: null });
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const closed = useRef(false);

  const failed = (e: unknown) => {
    setError(plainError(e instanceof ApiError ? e.code : 'NETWORK'));
    setLoading(false);
  };

  useEffect(() => {
    closed.current = false;
    return () => {
      closed.current = true;
    };
  }, []);

  // The first page, and again whenever `version` moves on.
  useEffect(() => {
    let stale = false;
    myPurchases({ limit: PURCHASES_PAGE }).then(
      ({ data }) => {
        if (stale) return;
        setShown((s) => withNewestPage(s, { purchases: data.purchases, next: data.nextBefore ?? null }));
        setError(null);
        setLoading(false);
      },
      (e: unknown) => !stale && failed(e),
    );
    return () => {
      stale = true;
    };
  }, [version]);

  const more = async (before: string) => {
    setLoading(true);
    try {
      const { data } = await myPurchases({ before, limit: PURCHASES_PAGE });
      if (closed.current) return;
      setShown((s) => ({ purchases: appendPage(s.purchases, data.purchases), next: data.nextBefore ?? null }));
      setError(null);
      setLoading(false);
    } catch (e) {
      if (!closed.current) failed(e);
    }
  };

  const items = shown.purchases;
  const next = shown.next;
  return (
    <section className="admin purchases" aria-labelledby={`${uid}-title`}>
      <div className="admin-head">
        <h2 id={`${uid}-title`}>My purchases</h2>
        <button type="button" className="btn btn-ghost btn-small" onClick={onClose}>
          Close
        </button>
      </div>
      {items.length === 0 && !loading && !error ? (
        <p className="empty">No purchases yet. What you buy is listed here.</p>
      ) : (
        <ol className="purchase-list" aria-label="Your purchases, newest first">
          {items.map((p) => (
            <PurchaseRow key={p.id} purchase={p} drop={drops.find((d) => d.id === p.dropId)} />
          ))}
        </ol>
      )}
      <div className="purchases-foot">
        {error && (
          <p className="field-error" role="alert">
            {error}
          </p>
        )}
        {next && (
          <button type="button" className="btn btn-ghost btn-small" disabled={loading} onClick={() => void more(next)}>
            {loading ? 'Loading…' : 'More'}
          </button>
        )}
        {loading && !next && <p className="field-help">Loading…</p>}
      </div>
    </section>
  );
}

// Purchases name their drop and variant by id; the names come from the
// drops the page knows (live and upcoming ones).
function PurchaseRow({ purchase: p, drop }: { purchase: Purchase; drop: Drop | undefined }) {
  const cancelled = p.status === 'cancelled';
  const variants = drop?.variants ?? [];
  const size = variants.length > 1 ? variants.find((v) => v.id === p.variantId)?.name : undefined;
  return (
    <li className={`purchase${cancelled ? ' purchase-cancelled' : ''}`} data-testid="purchase" data-purchase-id={p.id}>
      <div className="purchase-main">
        <strong className="purchase-drop">{drop?.name ?? 'A drop no longer on sale'}</strong>
        {size && <span className="purchase-size">{size}</span>}
        <span className="purchase-qty">× {p.quantity}</span>
        <span className="purchase-paid">{formatPrice(p.amountPaid)}</span>
      </div>
      <div className="purchase-meta">
        <span>{formatWhen(p.createdAt)}</span>
        {cancelled ? (
          <span className="chip chip-cancelled" data-testid="purchase-status">
            Cancelled{p.cancelledAt ? ` ${formatWhen(p.cancelledAt)}` : ''}
          </span>
        ) : (
          <span className="chip chip-onsale" data-testid="purchase-status">
            Completed
          </span>
        )}
        <span className="purchase-id" title="Purchase id">
          {p.id}
        </span>
      </div>
    </li>
  );
}
