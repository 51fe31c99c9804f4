import { useEffect, useId, useState } from 'react';
import { ApiError, getDraw, type DrawInfo, type Variant } from '../api';
import { checkDraw, parsePublishedDraw, standingIn, type DrawCheck, type PublishedDraw } from '../drawCheck';
import { seedHashAgreement, shortHash, standingText } from '../draws';
import { plainError } from '../errors';

/**
 * A draw drop's public draw record (`GET /api/drops/:id/draw`), read when
 * the card mounts and again when the drop's `drawnAt` changes (the draw has
 * happened: the seed and the entry list are out); nothing is read unless
 * `enabled` (a first-come drop has no draw). Also keeps the seed hash
 * the page showed before the draw, so the check can say it is the same one.
 */
export function useDrawInfo(dropId: string, drawnAt: string | null | undefined, enabled: boolean) {
  const [state, setState] = useState<{ info: DrawInfo | null; shownBefore: string | null; error: string | null }>({
    info: null,
    shownBefore: null,
    error: null,
  });
  useEffect(() => {
    if (!enabled) return;
    let cancelled = false;
    getDraw(dropId)
      .then(({ data }) => {
        if (cancelled) return;
        setState((prev) => ({
          info: data,
          // The hash shown while the draw was still to come: what the seed
          // must match. Read after the draw only, it is the same answer's.
          shownBefore: prev.shownBefore ?? (data.drawnAt ? null : data.seedHash),
          error: null,
        }));
      })
      .catch((e: unknown) => {
        if (cancelled) return;
        const err = e instanceof ApiError ? e : new ApiError('NETWORK', String(e), 0);
        setState((prev) => ({ ...prev, error: plainError(err.code, err.message) }));
      });
    return () => {
      cancelled = true;
    };
  }, [dropId, drawnAt, enabled]);
  return state;
}

/** The card's line on the draw's commitment: the seed hash published when entries opened. */
export function SeedHash({ seedHash }: { seedHash: string }) {
  return (
    <p className="draw-seed">
      Committed seed hash{' '}
      <code title={seedHash} data-testid="seed-hash" data-hash={seedHash}>
        {shortHash(seedHash)}
      </code>
    </p>
  );
}

type Checked =
  | { status: 'loading' }
  | { status: 'notDrawn'; info: DrawInfo }
  | { status: 'error'; message: string }
  | { status: 'done'; info: DrawInfo; draw: PublishedDraw; check: DrawCheck };

/**
 * "Check this draw": reads the published draw, recomputes it in the browser
 * (`drawCheck.ts`, WebCrypto) and shows the seed, its hash and whether it is
 * the one shown before the draw, the entry list hash, the recomputed and the
 * published winners, whether they match, and where the viewer's receipt landed.
 */
export function DrawCheckView({
  dropId,
  dropName,
  variants,
  shownSeedHash,
  receipt,
  onClose,
}: {
  dropId: string;
  dropName: string;
  variants: Variant[];
  /** The seed hash this page showed before the draw, if it did. */
  shownSeedHash: string | null;
  /** The viewer's own receipt, when they entered. */
  receipt: string | null;
  onClose: () => void;
}) {
  const uid = useId();
  const [checked, setChecked] = useState<Checked>({ status: 'loading' });
  const [progress, setProgress] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const { data } = await getDraw(dropId);
        if (cancelled) return;
        if (data.published === null || data.published === undefined) {
          setChecked({ status: 'notDrawn', info: data });
          return;
        }
        const parsed = parsePublishedDraw(data.published);
        if (!parsed.ok) {
          setChecked({ status: 'error', message: `The published draw cannot be read: ${parsed.message}` });
          return;
        }
        const check = await checkDraw(parsed.draw, {
          onProgress: (done, total) => {
            if (!cancelled && total > 2048) setProgress(`Ranked ${done} of ${total} entries…`);
          },
        });
        if (!cancelled) setChecked({ status: 'done', info: data, draw: parsed.draw, check });
      } catch (e) {
        if (cancelled) return;
        const message =
          e instanceof ApiError ? plainError(e.code, e.message) : e instanceof Error ? e.message : String(e);
        setChecked({ status: 'error', message });
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [dropId]);

  const sizeName = (id: string) => (variants.length > 1 ? (variants.find((v) => v.id === id)?.name ?? id) : null);

  let body;
  if (checked.status === 'loading') {
    body = (
      <p className="check-status" role="status">
        {progress ?? 'Recomputing the draw in your browser…'}
      </p>
    );
  } else if (checked.status === 'error') {
    body = (
      <p className="check-status field-error" role="alert">
        {checked.message}
      </p>
    );
  } else if (checked.status === 'notDrawn') {
    body = (
      <>
        <p className="check-status" role="status">
          The draw has not happened yet: only the seed hash is public.
        </p>
        <SeedHash seedHash={checked.info.seedHash} />
      </>
    );
  } else {
    const { draw, check } = checked;
    const agreement = seedHashAgreement(shownSeedHash, draw.seedHash);
    const published = new Map(draw.winners.map((w) => [w.variantId, w.receipts] as const));
    const standing = receipt && check.ok ? standingIn(check.outcome, receipt) : null;
    body = (
      <>
        <p
          className={`check-verdict ${check.ok ? 'check-ok' : 'check-bad'}`}
          data-testid="check-verdict"
          data-ok={check.ok}
          role="status"
        >
          {check.ok
            ? 'The draw checks out: the recomputed winners are the published ones.'
            : `The draw does not check out. ${check.failure.message}`}
        </p>
        <dl className="check-facts">
          <dt>Seed</dt>
          <dd>
            <code data-testid="check-seed">{draw.seed}</code>
          </dd>
          <dt>Seed hash</dt>
          <dd>
            <code data-testid="check-seed-hash">{draw.seedHash}</code>
            <span className="check-note" data-testid="check-seed-agreement" data-agreement={agreement}>
              {agreement === 'same'
                ? ' Same as the hash shown before the draw.'
                : agreement === 'differs'
                  ? ' NOT the hash shown before the draw.'
                  : ' (This page did not show a hash before the draw.)'}
            </span>
          </dd>
          {draw.beacon !== undefined && (
            <>
              <dt>Beacon{checked.info.beaconName ? ` (${checked.info.beaconName})` : ''}</dt>
              <dd>
                <code>{draw.beacon}</code>
              </dd>
            </>
          )}
          <dt>Entry list hash</dt>
          <dd>
            <code data-testid="check-entry-list-hash">{draw.entryListHash}</code>
            <span className="check-note"> {draw.entries.length === 1 ? '1 entry' : `${draw.entries.length} entries`}</span>
          </dd>
        </dl>
        {check.ok && (
          <table className="check-winners">
            <caption>Winners</caption>
            <thead>
              <tr>
                {variants.length > 1 && <th scope="col">Size</th>}
                <th scope="col">Recomputed</th>
                <th scope="col">Published</th>
              </tr>
            </thead>
            <tbody>
              {check.outcome.variants.map((v) => (
                <tr key={v.variantId}>
                  {variants.length > 1 && <th scope="row">{sizeName(v.variantId)}</th>}
                  <td data-testid="check-recomputed">
                    {v.winners.length === 0 ? '—' : v.winners.map((r) => <code key={r}>{r}</code>)}
                  </td>
                  <td data-testid="check-published">
                    {(published.get(v.variantId) ?? []).length === 0
                      ? '—'
                      : (published.get(v.variantId) ?? []).map((r) => <code key={r}>{r}</code>)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {receipt && (
          <p className="check-mine" data-testid="check-mine" data-standing={standing?.status ?? 'unchecked'}>
            {standing ? standingText(standing, sizeName) : 'Your receipt cannot be placed: the draw does not check out.'}
          </p>
        )}
      </>
    );
  }

  return (
    <section className="check" aria-labelledby={`${uid}-title`} data-testid="draw-check">
      <div className="check-head">
        <h3 id={`${uid}-title`}>Check of the draw for {dropName}</h3>
        <button type="button" className="btn btn-ghost btn-small" onClick={onClose}>
          Close
        </button>
      </div>
      {body}
    </section>
  );
}
