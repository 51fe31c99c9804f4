import type { TopPurchaser } from '../api';
import { buyerName, timeAgo } from '../format';

/** The three most recent buyers of a drop; always three rows tall so the card never jumps. */
export function RecentBuyers({ buyers, now, dropName }: { buyers: TopPurchaser[]; now: number; dropName: string }) {
  const recent = [...buyers].sort((a, b) => Date.parse(b.purchasedAt) - Date.parse(a.purchasedAt)).slice(0, 3);
  return (
    <section className="buyers" aria-label={`Recent buyers of ${dropName}`}>
      <h3 className="buyers-title">Recent buyers</h3>
      {recent.length === 0 ? (
        <p className="buyers-empty">No buyers yet. Be the first.</p>
      ) : (
        <ol className="buyers-list">
          {recent.map((b, i) => {
            const name = buyerName(b);
            return (
              // With names hidden two buyers can share a name and a second.
              <li key={`${name}:${b.purchasedAt}:${i}`}>
                <span className="buyer-avatar" aria-hidden="true">
                  {name.charAt(0).toUpperCase()}
                </span>
                <span className="buyer-name">{name}</span>
                <time className="buyer-time" dateTime={b.purchasedAt}>
                  {timeAgo(b.purchasedAt, now)}
                </time>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
