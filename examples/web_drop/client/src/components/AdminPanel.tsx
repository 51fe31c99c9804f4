import { useId, useState, type FormEvent } from 'react';
import { ApiError, createDrop, type Drop, type NewDrop, type SaleMode } from '../api';
import { plainError } from '../errors';
import { cleanMessage, isFormProblem, parseSizes, saleModeFields, toInstant } from '../adminForm';
import { serverNow } from '../clock';
import { AdminDrops } from './AdminDrops';
import { CancelPurchase } from './CancelPurchase';

const TOKEN_KEY = 'dropkit.adminToken';

type FieldName =
  | 'token'
  | 'name'
  | 'price'
  | 'totalStock'
  | 'variants'
  | 'maxPerBuyer'
  | 'holdSeconds'
  | 'startsAt'
  | 'endsAt'
  | 'mode'
  | 'drawAt'
  | 'beaconName';

interface FormState {
  name: string;
  price: string;
  totalStock: string;
  variants: string;
  maxPerBuyer: string;
  holdSeconds: string;
  startsAt: string;
  endsAt: string;
  mode: SaleMode;
  drawAt: string;
  beaconName: string;
}

const EMPTY: FormState = {
  name: '',
  price: '',
  totalStock: '',
  variants: '',
  maxPerBuyer: '',
  holdSeconds: '',
  startsAt: '',
  endsAt: '',
  mode: 'firstCome',
  drawAt: '',
  beaconName: '',
};

function readToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

/**
 * Creates drops, manages them (edit, pause, resume, end) and cancels
 * purchases. The token stays in this tab's session storage only; the server
 * does all validation and its errors are shown next to the fields.
 */
export function AdminPanel({
  onCreated,
  onChanged,
  onClose,
}: {
  onCreated: (drop: Drop) => void;
  /** A drop was edited, paused, resumed or ended: the answer is how it now is. */
  onChanged: (drop: Drop) => void;
  onClose: () => void;
}) {
  const [token, setToken] = useState(readToken);
  const [form, setForm] = useState<FormState>(EMPTY);
  const [errors, setErrors] = useState<Partial<Record<FieldName, string>>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  // A checkbox, not text: kept apart from the text fields.
  const [waitlist, setWaitlist] = useState(true);
  const uid = useId();

  const set = (key: Exclude<keyof FormState, 'mode'>) => (e: { target: { value: string } }) => {
    setForm((f) => ({ ...f, [key]: e.target.value }));
    setErrors((er) => ({ ...er, [key]: undefined }));
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    setFormError(null);
    setCreated(null);
    const trimmedToken = token.trim();
    if (!trimmedToken) {
      setErrors({ token: 'Enter the admin token the server was started with.' });
      return;
    }
    const sizes = parseSizes(form.variants);
    if ('field' in sizes) {
      setErrors({ variants: sizes.message });
      return;
    }
    // Checked on the server's clock, as the server will check it.
    const sale = saleModeFields(form, serverNow());
    if (isFormProblem(sale)) {
      setErrors({ [sale.field]: sale.message });
      return;
    }
    const body: NewDrop = { name: form.name, price: form.price.trim() };
    if (sizes.variants.length > 0) body.variants = sizes.variants;
    else body.totalStock = /^\d+$/.test(form.totalStock.trim()) ? Number(form.totalStock.trim()) : form.totalStock;
    if (form.maxPerBuyer.trim())
      body.maxPerBuyer = /^\d+$/.test(form.maxPerBuyer.trim()) ? Number(form.maxPerBuyer.trim()) : form.maxPerBuyer;
    if (form.holdSeconds.trim())
      body.holdSeconds = /^\d+(\.\d+)?$/.test(form.holdSeconds.trim())
        ? Number(form.holdSeconds.trim())
        : form.holdSeconds;
    const startsAt = toInstant(form.startsAt);
    const endsAt = toInstant(form.endsAt);
    if (startsAt) body.startsAt = startsAt;
    if (endsAt) body.endsAt = endsAt;
    // Sent only to turn the line off: the server's default is on.
    if (!waitlist) body.waitlist = false;
    Object.assign(body, sale);

    setBusy(true);
    try {
      const { data } = await createDrop(body, trimmedToken);
      try {
        sessionStorage.setItem(TOKEN_KEY, trimmedToken);
      } catch {
        // Not remembering the token only means asking again.
      }
      setForm(EMPTY);
      setWaitlist(true);
      setCreated(data.name);
      onCreated(data);
    } catch (err) {
      const api = err instanceof ApiError ? err : new ApiError('NETWORK', String(err), 0);
      if (api.code === 'UNAUTHORIZED' || api.code === 'FORBIDDEN') {
        setErrors({ token: plainError(api.code) });
      } else if (api.code === 'INVALID_INPUT' && api.field && formField(api.field)) {
        const f = formField(api.field) as FieldName;
        setErrors({ [f]: cleanMessage(api.message, api.field) });
      } else {
        setFormError(plainError(api.code, api.message));
      }
    } finally {
      setBusy(false);
    }
  };

  const field = (name: FieldName) => {
    const id = `${uid}-${name}`;
    const err = errors[name];
    return {
      id,
      name,
      'aria-invalid': err ? true : undefined,
      'aria-describedby': err ? `${id}-error` : `${id}-help`,
    } as const;
  };
  const errorFor = (name: FieldName, help?: string) => {
    const id = `${uid}-${name}`;
    const err = errors[name];
    if (err)
      return (
        <p className="field-error" id={`${id}-error`} data-testid={`error-${name}`}>
          {err}
        </p>
      );
    return (
      <p className="field-help" id={`${id}-help`}>
        {help ?? '\u00a0'}
      </p>
    );
  };

  return (
    <div className="admin-stack">
    <section className="admin" aria-labelledby={`${uid}-title`}>
      <div className="admin-head">
        <h2 id={`${uid}-title`}>Create a drop</h2>
        <button type="button" className="btn btn-ghost btn-small" onClick={onClose}>
          Close
        </button>
      </div>
      <form onSubmit={submit} noValidate className="admin-form">
        <div className="field field-wide field-narrow">
          <label htmlFor={`${uid}-token`}>Admin token</label>
          <input
            {...field('token')}
            type="password"
            autoComplete="off"
            value={token}
            onChange={(e) => {
              setToken(e.target.value);
              setErrors((er) => ({ ...er, token: undefined }));
            }}
          />
          {errorFor('token', 'Kept in this tab only.')}
        </div>
        <div className="field field-wide">
          <label htmlFor={`${uid}-name`}>Name</label>
          <input {...field('name')} type="text" value={form.name} onChange={set('name')} placeholder="Air Jordan 1 Retro" />
          {errorFor('name')}
        </div>
        <div className="field">
          <label htmlFor={`${uid}-price`}>Price</label>
          <input {...field('price')} type="text" inputMode="decimal" value={form.price} onChange={set('price')} placeholder="199.99" />
          {errorFor('price', 'Up to 2 decimals.')}
        </div>
        <div className="field">
          <label htmlFor={`${uid}-totalStock`}>Total stock</label>
          <input {...field('totalStock')} type="text" inputMode="numeric" value={form.totalStock} onChange={set('totalStock')} placeholder="100" />
          {errorFor('totalStock')}
        </div>
        <div className="field field-wide">
          <label htmlFor={`${uid}-variants`}>Sizes</label>
          <input {...field('variants')} type="text" value={form.variants} onChange={set('variants')} placeholder="S=10, M=12, L=5" />
          {errorFor('variants', 'Optional: each size with its stock; then the total stock is left empty.')}
        </div>
        <div className="field">
          <label htmlFor={`${uid}-maxPerBuyer`}>Max per buyer</label>
          <input {...field('maxPerBuyer')} type="text" inputMode="numeric" value={form.maxPerBuyer} onChange={set('maxPerBuyer')} placeholder="1" />
          {errorFor('maxPerBuyer', 'Optional; 1 if empty.')}
        </div>
        <div className="field">
          <label htmlFor={`${uid}-holdSeconds`}>Hold (seconds)</label>
          <input {...field('holdSeconds')} type="text" inputMode="numeric" value={form.holdSeconds} onChange={set('holdSeconds')} placeholder="60" />
          {errorFor('holdSeconds', 'Optional; server default if empty.')}
        </div>
        <div className="field">
          <label htmlFor={`${uid}-startsAt`}>Starts at</label>
          <input {...field('startsAt')} type="datetime-local" value={form.startsAt} onChange={set('startsAt')} />
          {errorFor('startsAt', 'Optional; now if empty.')}
        </div>
        <div className="field">
          <label htmlFor={`${uid}-endsAt`}>Ends at</label>
          <input {...field('endsAt')} type="datetime-local" value={form.endsAt} onChange={set('endsAt')} />
          {errorFor('endsAt', 'Optional; never if empty.')}
        </div>
        <fieldset className="field field-wide field-mode" aria-describedby={`${uid}-mode-help`}>
          <legend>Sale mode</legend>
          <div className="mode-options" role="radiogroup" aria-label="Sale mode">
            {(
              [
                ['firstCome', 'First come'],
                ['draw', 'Draw'],
              ] as const
            ).map(([value, label]) => (
              <label key={value} className="mode-option">
                <input
                  type="radio"
                  name={`${uid}-mode`}
                  value={value}
                  checked={form.mode === value}
                  onChange={() => {
                    setForm((f) => ({ ...f, mode: value }));
                    setErrors((er) => ({ ...er, mode: undefined, drawAt: undefined, beaconName: undefined }));
                  }}
                />
                {label}
              </label>
            ))}
          </div>
          {errors.mode ? (
            <p className="field-error" id={`${uid}-mode-help`} data-testid="error-mode">
              {errors.mode}
            </p>
          ) : (
            <p className="field-help" id={`${uid}-mode-help`}>
              {form.mode === 'draw'
                ? 'Buyers enter until the draw time; winners are drawn at random and verifiably, each held a unit.'
                : 'Whoever reserves first gets the unit.'}
            </p>
          )}
        </fieldset>
        {form.mode === 'draw' && (
          <>
            <div className="field">
              <label htmlFor={`${uid}-drawAt`}>Draw at</label>
              <input {...field('drawAt')} type="datetime-local" value={form.drawAt} onChange={set('drawAt')} />
              {errorFor('drawAt', 'Required: after the start, before the end.')}
            </div>
            <div className="field">
              <label htmlFor={`${uid}-beaconName`}>Beacon (optional)</label>
              <input
                {...field('beaconName')}
                type="text"
                value={form.beaconName}
                onChange={set('beaconName')}
                placeholder="drand round 4242424"
              />
              {errorFor('beaconName', 'Public randomness to mix into the seed, named now.')}
            </div>
          </>
        )}
        <div className="field field-wide field-check">
          <label htmlFor={`${uid}-waitlist`}>
            <input id={`${uid}-waitlist`} type="checkbox" checked={waitlist} onChange={(e) => setWaitlist(e.target.checked)} />
            Waiting list
          </label>
          <p className="field-help">Buyers may line up for sold-out sizes; freed units go to them in turn.</p>
        </div>
        <div className="admin-submit field-wide">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create drop'}
          </button>
          <p className="admin-status" role="status" aria-live="polite">
            {formError ? <span className="field-error">{formError}</span> : created ? `Created “${created}”.` : ''}
          </p>
        </div>
      </form>
    </section>
    <AdminDrops token={token.trim()} onChanged={onChanged} />
    <CancelPurchase token={token.trim()} />
    </div>
  );
}

// The server names a field as the JSON path it read ("variants[1].name");
// the form has one input per top-level field.
function formField(path: string): FieldName | null {
  const top = /^[A-Za-z]+/.exec(path)?.[0];
  return top && top in EMPTY ? (top as FieldName) : null;
}
