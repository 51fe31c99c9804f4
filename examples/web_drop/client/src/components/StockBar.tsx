/**
 * Available, held and sold units as one bar, with the count in words, and
 * how many buyers wait in the drop's lines when it has them.
 */
export function StockBar({
  total,
  available,
  reserved,
  sold,
  waiting,
}: {
  total: number;
  available: number;
  reserved: number;
  sold: number;
  /** Buyers waiting in the drop's lines; null for a drop without waiting lines. */
  waiting: number | null;
}) {
  const pct = (n: number) => (total > 0 ? `${Math.max(0, Math.min(100, (n / total) * 100))}%` : '0%');
  const low = available > 0 && available <= Math.max(1, Math.ceil(total * 0.1));
  return (
    <div className="stock">
      <p className="stock-line">
        {/* As wide as the total's digits, so the count never pushes the text beside it. */}
        <span className="stock-count" data-testid="available" style={{ minWidth: `${String(total).length}ch` }}>
          {available}
        </span>
        <span className="stock-of"> of {total} left</span>
        {low && <span className="stock-low">Almost gone</span>}
      </p>
      <div
        className="stock-bar"
        role="meter"
        aria-label="Units left"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={available}
        aria-valuetext={`${available} of ${total} left`}
      >
        <span className="stock-available" style={{ width: pct(available) }} />
        <span className="stock-held" style={{ width: pct(reserved) }} />
      </div>
      <p className="stock-detail">
        <span data-testid="reserved">{reserved}</span> on hold · <span data-testid="sold">{sold}</span> sold
        {waiting !== null && (
          <>
            {' · '}
            <span data-testid="waiting">{waiting}</span> waiting
          </>
        )}
      </p>
    </div>
  );
}
