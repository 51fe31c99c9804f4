import { useId, useState, type FormEvent } from 'react';
import {
  ApiError,
  adminDrops,
  dropOperation,
  newIdempotencyKey,
  patchDrop,
  type Drop,
  type DropOperation,
} from '../api';
import {
  adminState,
  cleanMessage,
  editFormFrom,
  hasStarted,
  isFormProblem,
  patchFrom,
  type EditForm,
} from '../adminForm';
import { plainError } from '../errors';
import { formatPrice } from '../format';
import { useServerNow } from '../useNow';
import { Confirm } from './Confirm';
import { DropHistory } from './DropHistory';

const STATE_LABEL = { ended: 'Ended', paused: 'Paused', upcoming: 'Upcoming', onSale: 'On sale' } as const;
const STATE_TONE = { ended: 'soldout', paused: 'paused', upcoming: 'upcoming', onSale: 'onsale' } as const;

function errorText(err: unknown): string {
  const e = err instanceof ApiError ? err : new ApiError('NETWORK', String(err), 0);
  return plainError(e.code, e.message);
}

/**
 * Every drop, ended ones too (`GET /api/admin/drops`), each with edit,
 * pause / resume, end now and its history. Pausing and ending ask for
 * confirmation.
 */
export function AdminDrops({ token, onChanged }: { token: string; onChanged: (drop: Drop) => void }) {
  const uid = useId();
  const [drops, setDrops] = useState<Drop[] | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = async () => {
    setError(null);
    if (!token) {
      setError('Enter the admin token above first.');
      return;
    }
    setLoading(true);
    try {
      const { data } = await adminDrops(token);
      setDrops(data);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  };

  const replace = (drop: Drop) => {
    setDrops((list) => (list ?? []).map((d) => (d.id === drop.id ? { ...d, ...drop } : d)));
    onChanged(drop);
  };

  return (
    <section className="admin" aria-labelledby={`${uid}-title`}>
      <div className="admin-head">
        <h2 id={`${uid}-title`}>Manage drops</h2>
        <button type="button" className="btn btn-ghost btn-small" onClick={() => void load()} disabled={loading}>
          {loading ? 'Loading…' : drops ? 'Refresh' : 'Load drops'}
        </button>
      </div>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      {drops && drops.length === 0 && <p className="empty">No drops yet.</p>}
      {drops && drops.length > 0 && (
        <ul className="admin-drops">
          {drops.map((d) => (
            <AdminDropRow key={d.id} drop={d} token={token} onChanged={replace} />
          ))}
        </ul>
      )}
    </section>
  );
}

type Pending = { kind: 'op'; op: DropOperation } | { kind: 'edit' } | null;

const CONFIRM: Record<'pause' | 'end', (name: string) => { question: string; label: string }> = {
  pause: (name) => ({
    question: `Pause “${name}”? Nobody can reserve it until you resume it; holds already made can still be bought.`,
    label: 'Pause',
  }),
  end: (name) => ({
    question: `End “${name}” now? It leaves the shop for good; holds already made can still be bought in their window.`,
    label: 'End now',
  }),
};

function AdminDropRow({ drop, token, onChanged }: { drop: Drop; token: string; onChanged: (drop: Drop) => void }) {
  const now = useServerNow(1000);
  const state = adminState(drop, now);
  const [asking, setAsking] = useState<'pause' | 'end' | null>(null);
  const [pending, setPending] = useState<Pending>(null);
  const [editing, setEditing] = useState(false);
  const [history, setHistory] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const run = async (op: DropOperation) => {
    setPending({ kind: 'op', op });
    setError(null);
    setDone(null);
    try {
      const { data } = await dropOperation(drop.id, op, token, newIdempotencyKey());
      onChanged(data);
      setDone(op === 'pause' ? 'Paused.' : op === 'resume' ? 'Resumed.' : 'Ended.');
    } catch (e) {
      setError(errorText(e));
    } finally {
      setPending(null);
      setAsking(null);
    }
  };

  const sold = drop.soldStock;
  const confirm = asking ? CONFIRM[asking](drop.name) : null;
  return (
    <li className="admin-drop" data-testid="admin-drop" aria-label={drop.name}>
      <div className="admin-drop-head">
        <strong className="admin-drop-name">{drop.name}</strong>
        <span className={`chip chip-${STATE_TONE[state]}`} data-testid="admin-state">
          {STATE_LABEL[state]}
        </span>
      </div>
      <p className="admin-drop-meta">
        {formatPrice(drop.price)} · {sold} of {drop.totalStock} sold · {drop.reservedStock} held · max {drop.maxPerBuyer ?? 1}{' '}
        per buyer
        {(drop.variants ?? []).length > 1 && ` · ${(drop.variants ?? []).map((v) => `${v.name} ${v.availableStock}/${v.totalStock}`).join(', ')}`}
      </p>
      {confirm ? (
        <Confirm
          question={confirm.question}
          confirmLabel={confirm.label}
          busy={pending !== null}
          onConfirm={() => asking && void run(asking)}
          onCancel={() => setAsking(null)}
        />
      ) : (
        <div className="admin-drop-actions">
          <button
            type="button"
            className="btn btn-ghost btn-small"
            aria-expanded={editing}
            onClick={() => setEditing((e) => !e)}
            aria-label={`Edit ${drop.name}`}
          >
            Edit
          </button>
          <button
            type="button"
            className="btn btn-ghost btn-small"
            aria-expanded={history}
            onClick={() => setHistory((h) => !h)}
            aria-label={`History of ${drop.name}`}
          >
            History
          </button>
          {state !== 'ended' &&
            (drop.paused ? (
              <button
                type="button"
                className="btn btn-ghost btn-small"
                disabled={pending !== null}
                onClick={() => void run('resume')}
                aria-label={`Resume ${drop.name}`}
              >
                {pending?.kind === 'op' && pending.op === 'resume' ? 'Resuming…' : 'Resume'}
              </button>
            ) : (
              <button
                type="button"
                className="btn btn-ghost btn-small"
                disabled={pending !== null}
                onClick={() => setAsking('pause')}
                aria-label={`Pause ${drop.name}`}
              >
                Pause…
              </button>
            ))}
          {state !== 'ended' && (
            <button
              type="button"
              className="btn btn-ghost btn-small"
              disabled={pending !== null}
              onClick={() => setAsking('end')}
              aria-label={`End ${drop.name} now`}
            >
              End now…
            </button>
          )}
        </div>
      )}
      <p className="admin-status" role="status" aria-live="polite">
        {error ? <span className="field-error">{error}</span> : (done ?? '')}
      </p>
      {history && <DropHistory drop={drop} token={token} />}
      {editing && (
        <EditDrop
          drop={drop}
          token={token}
          priceLocked={hasStarted(drop, now)}
          onSaved={(d) => {
            onChanged(d);
            setEditing(false);
            setDone('Saved.');
          }}
          onCancel={() => setEditing(false)}
        />
      )}
    </li>
  );
}

function EditDrop({
  drop,
  token,
  priceLocked,
  onSaved,
  onCancel,
}: {
  drop: Drop;
  token: string;
  priceLocked: boolean;
  onSaved: (drop: Drop) => void;
  onCancel: () => void;
}) {
  const uid = useId();
  const [form, setForm] = useState<EditForm>(() => editFormFrom(drop));
  const [problem, setProblem] = useState<{ field: string; message: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const variants = drop.variants ?? [];

  const set = (key: Exclude<keyof EditForm, 'stock'>) => (e: { target: { value: string } }) => {
    setForm((f) => ({ ...f, [key]: e.target.value }));
    setProblem(null);
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    const patch = patchFrom(drop, form);
    if (isFormProblem(patch)) {
      setProblem(patch);
      return;
    }
    if (Object.keys(patch).length === 0) {
      onCancel();
      return;
    }
    setBusy(true);
    setProblem(null);
    try {
      const { data } = await patchDrop(drop.id, patch, token, newIdempotencyKey());
      onSaved(data);
    } catch (err) {
      const api = err instanceof ApiError ? err : new ApiError('NETWORK', String(err), 0);
      if (api.code === 'INVALID_INPUT' && api.field) setProblem({ field: api.field, message: cleanMessage(api.message, api.field) });
      else setProblem({ field: '', message: plainError(api.code, api.message) });
    } finally {
      setBusy(false);
    }
  };

  const input = (key: Exclude<keyof EditForm, 'stock'>, label: string, extra: Record<string, unknown> = {}) => (
    <div className="field">
      <label htmlFor={`${uid}-${key}`}>{label}</label>
      <input
        id={`${uid}-${key}`}
        type="text"
        value={form[key]}
        onChange={set(key)}
        aria-invalid={problem?.field === key ? true : undefined}
        {...extra}
      />
    </div>
  );

  return (
    <form className="admin-form admin-edit" onSubmit={(e) => void save(e)} noValidate aria-label={`Edit ${drop.name}`}>
      {input('name', 'Name')}
      {input('price', 'Price', {
        disabled: priceLocked,
        inputMode: 'decimal',
        title: priceLocked ? 'The price is locked once the drop has started.' : undefined,
      })}
      {variants.map((v) => (
        <div className="field" key={v.id}>
          <label htmlFor={`${uid}-stock-${v.id}`}>{variants.length > 1 ? `Stock of ${v.name}` : 'Total stock'}</label>
          <input
            id={`${uid}-stock-${v.id}`}
            type="text"
            inputMode="numeric"
            value={form.stock[v.id] ?? ''}
            aria-invalid={problem?.field === `stock-${v.id}` ? true : undefined}
            onChange={(e) => {
              const value = e.target.value;
              setForm((f) => ({ ...f, stock: { ...f.stock, [v.id]: value } }));
              setProblem(null);
            }}
          />
        </div>
      ))}
      {input('maxPerBuyer', 'Max per buyer', { inputMode: 'numeric' })}
      {input('holdSeconds', 'Hold (seconds)', { inputMode: 'numeric' })}
      {input('startsAt', 'Starts at', { type: 'datetime-local' })}
      {input('endsAt', 'Ends at', { type: 'datetime-local' })}
      <div className="admin-submit field-wide">
        <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
          {busy ? 'Saving…' : 'Save changes'}
        </button>
        <button type="button" className="btn btn-ghost btn-small" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
        <p className="admin-status" role="status" aria-live="polite">
          {problem ? <span className="field-error">{problem.message}</span> : priceLocked ? 'The price is locked: the drop has started.' : ''}
        </p>
      </div>
    </form>
  );
}
