import { useId, useState, type FormEvent } from 'react';
import { ApiError, cancelPurchase, newIdempotencyKey } from '../api';
import { plainError } from '../errors';
import { formatPrice } from '../format';
import { Confirm } from './Confirm';

/**
 * Cancels a purchase by its id (admin): its units go back on sale, or to
 * the waiting line. Asks for confirmation first; cancelling a cancelled
 * purchase changes nothing.
 */
export function CancelPurchase({ token }: { token: string }) {
  const uid = useId();
  const [id, setId] = useState('');
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);

  const ask = (e: FormEvent) => {
    e.preventDefault();
    setResult(null);
    if (!token) {
      setResult({ ok: false, text: 'Enter the admin token above first.' });
      return;
    }
    if (!id.trim()) {
      setResult({ ok: false, text: 'Enter the id of the purchase to cancel.' });
      return;
    }
    setAsking(true);
  };

  const confirm = async () => {
    setBusy(true);
    try {
      // One key for this confirmation; the call's retries resend it.
      const { data } = await cancelPurchase(id.trim(), token, newIdempotencyKey());
      setResult({
        ok: true,
        text: `Purchase ${data.id} is cancelled: ${data.quantity} unit${data.quantity === 1 ? '' : 's'} (${formatPrice(data.amountPaid)}) back on sale.`,
      });
      setId('');
    } catch (err) {
      const code = err instanceof ApiError ? err.code : 'NETWORK';
      setResult({ ok: false, text: plainError(code, err instanceof ApiError ? err.message : undefined) });
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };

  return (
    <section className="admin" aria-labelledby={`${uid}-title`}>
      <div className="admin-head">
        <h2 id={`${uid}-title`}>Cancel a purchase</h2>
      </div>
      <form className="admin-inline" onSubmit={ask} noValidate>
        <div className="field field-wide">
          <label htmlFor={`${uid}-id`}>Purchase id</label>
          <input
            id={`${uid}-id`}
            type="text"
            autoComplete="off"
            spellCheck={false}
            value={id}
            disabled={asking}
            onChange={(e) => {
              setId(e.target.value);
              setResult(null);
            }}
          />
        </div>
        {asking ? (
          <Confirm
            question={`Cancel purchase ${id.trim()}? The buyer loses it and the units go back on sale.`}
            confirmLabel="Cancel purchase"
            busy={busy}
            onConfirm={() => void confirm()}
            onCancel={() => setAsking(false)}
          />
        ) : (
          <button type="submit" className="btn btn-ghost">
            Cancel purchase…
          </button>
        )}
      </form>
      <p className="admin-status" role="status" aria-live="polite" data-testid="cancel-result">
        {result ? <span className={result.ok ? '' : 'field-error'}>{result.text}</span> : ''}
      </p>
    </section>
  );
}
