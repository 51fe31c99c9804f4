import { useCallback, useEffect, useState } from 'react';
import { myPurchases, type Purchase } from './api';
import { boughtByDrop } from './purchases';

// Pages read to count a buyer's units; a buyer is limited to 100 units per
// drop, so this covers far more than any real buyer's history.
const PAGE = 100;
const MAX_PAGES = 50;

async function readAll(): Promise<Purchase[]> {
  const all: Purchase[] = [];
  let before: string | null = null;
  for (let i = 0; i < MAX_PAGES; i += 1) {
    const { data } = await myPurchases({ before, limit: PAGE });
    all.push(...data.purchases);
    before = data.nextBefore ?? null;
    if (!before) break;
  }
  return all;
}

/**
 * Units the signed-in buyer has bought per drop (cancelled purchases left
 * out), read from `GET /api/me/purchases`. Empty while nobody is signed in.
 * `refresh` reads them again after a purchase or a cancellation; an answer
 * to an earlier read (or for an earlier buyer) is dropped.
 */
export function useBought(buyerId: string) {
  const [counted, setCounted] = useState<{ buyerId: string; bought: Record<string, number> }>({
    buyerId: '',
    bought: {},
  });
  const [round, setRound] = useState(0);

  useEffect(() => {
    if (!buyerId) return;
    let stale = false;
    readAll().then(
      (all) => {
        if (!stale) setCounted({ buyerId, bought: boughtByDrop(all) });
      },
      () => {
        // Keep the last known counts; the server still enforces the limit
        // and its refusal explains it.
      },
    );
    return () => {
      stale = true;
    };
  }, [buyerId, round]);

  const refresh = useCallback(() => setRound((r) => r + 1), []);
  const bought = counted.buyerId === buyerId && buyerId ? counted.bought : NONE;
  return { bought, refresh };
}

const NONE: Record<string, number> = {};
