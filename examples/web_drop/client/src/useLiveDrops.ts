import { useCallback, useEffect, useLayoutEffect, useReducer, useRef } from 'react';
import type { Drop, TopPurchaser, WsMessage } from './api';
import { observeServerTime, resetServerClock } from './clock';

/** How the page is connected to the live feed. */
export type Connection = 'connecting' | 'live' | 'reconnecting';

/** One purchase heard on the live feed, for the activity list. */
export interface Activity {
  key: string;
  dropId: string;
  dropName: string;
  username: string;
  at: string;
}

/**
 * A drop as the page keeps it: the API shape. Stock frames need no version
 * to be put in order: one socket delivers them in the order the server sent
 * them, and the server sends each drop's latest stock.
 */
export type LiveDrop = Drop;

/** The live feed's state (exported for its unit tests). */
export interface State {
  drops: LiveDrop[];
  /** Whether a WebSocket snapshot has arrived (it beats any HTTP listing). */
  fromSnapshot: boolean;
  loaded: boolean;
  connection: Connection;
  activity: Activity[];
}

/** What changes the live feed's state. */
export type Action =
  | { type: 'list'; drops: Drop[] }
  | { type: 'snapshot'; drops: Drop[] }
  | { type: 'upsert'; drop: Drop }
  | {
      type: 'stock';
      dropId: string;
      availableStock: number;
      reservedStock: number;
      soldStock: number;
    }
  | { type: 'purchase'; dropId: string; username: string; topPurchasers: TopPurchaser[]; at: string }
  | { type: 'connection'; value: Connection };

const ACTIVITY_MAX = 12;

function activityKey(dropId: string, username: string, at: string): string {
  return `${dropId}:${username}:${at}`;
}

// The feed starts from the recent buyers the drops already list, so a page
// opened mid-sale is not empty; later purchases are added as they happen.
function withRecentBuyers(activity: Activity[], drops: Drop[]): Activity[] {
  const seen = new Set(activity.map((a) => a.key));
  const merged = activity.slice();
  for (const d of drops) {
    for (const p of d.topPurchasers ?? []) {
      const key = activityKey(d.id, p.username, p.purchasedAt);
      if (seen.has(key)) continue;
      seen.add(key);
      merged.push({ key, dropId: d.id, dropName: d.name, username: p.username, at: p.purchasedAt });
    }
  }
  return merged.sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, ACTIVITY_MAX);
}

/** The live feed's state transitions: pure, so they are unit tested. */
export function reducer(state: State, action: Action): State {
  switch (action.type) {
    case 'list':
      // A listing fetched over HTTP may be older than a snapshot that
      // arrived while it was in flight; the snapshot wins.
      if (state.fromSnapshot) return { ...state, loaded: true };
      return { ...state, drops: action.drops, loaded: true, activity: withRecentBuyers(state.activity, action.drops) };
    case 'snapshot':
      return {
        ...state,
        drops: action.drops,
        fromSnapshot: true,
        loaded: true,
        activity: withRecentBuyers(state.activity, action.drops),
      };
    case 'upsert': {
      const i = state.drops.findIndex((d) => d.id === action.drop.id);
      if (i === -1) return { ...state, drops: [...state.drops, action.drop] };
      const drops = state.drops.slice();
      drops[i] = { ...drops[i], ...action.drop };
      return { ...state, drops };
    }
    case 'stock': {
      const drops = state.drops.map((d) => {
        if (d.id !== action.dropId) return d;
        return {
          ...d,
          availableStock: action.availableStock,
          reservedStock: action.reservedStock,
          soldStock: action.soldStock,
        };
      });
      return { ...state, drops };
    }
    case 'purchase': {
      const drop = state.drops.find((d) => d.id === action.dropId);
      const drops = state.drops.map((d) =>
        d.id === action.dropId ? { ...d, topPurchasers: action.topPurchasers } : d,
      );
      const key = activityKey(action.dropId, action.username, action.at);
      if (state.activity.some((a) => a.key === key)) return { ...state, drops };
      const item: Activity = {
        key,
        dropId: action.dropId,
        dropName: drop?.name ?? 'a drop',
        username: action.username,
        at: action.at,
      };
      return { ...state, drops, activity: [item, ...state.activity].slice(0, ACTIVITY_MAX) };
    }
    case 'connection':
      return { ...state, connection: action.value };
  }
}

/** What the live feed tells the rest of the page besides drop state. */
export interface LiveCallbacks {
  /** A fresh snapshot arrived after (re)connecting. */
  onResync(): void;
}

/** Backoff before reconnect attempt `n` (0-based): 0.5 s doubling to 10 s, with jitter. */
export function backoffMs(n: number): number {
  const base = Math.min(10_000, 500 * 2 ** n);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function wsUrl(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/api/ws`;
}

/**
 * Drops with live stock from `/api/ws`: reconnects with backoff and
 * resynchronises from the snapshot every connection starts with.
 */
export function useLiveDrops(callbacks: LiveCallbacks) {
  const [state, dispatch] = useReducer(reducer, {
    drops: [],
    fromSnapshot: false,
    loaded: false,
    connection: 'connecting',
    activity: [],
  });
  const cb = useRef(callbacks);
  useLayoutEffect(() => {
    cb.current = callbacks;
  });

  useEffect(() => {
    let ws: WebSocket | null = null;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;

    const schedule = () => {
      if (stopped || timer !== undefined) return;
      dispatch({ type: 'connection', value: 'reconnecting' });
      timer = setTimeout(() => {
        timer = undefined;
        connect();
      }, backoffMs(attempt++));
    };

    const onMessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return;
      // Frames are the document's `WsMessage` (types generated from it).
      let msg: WsMessage;
      try {
        msg = JSON.parse(ev.data) as WsMessage;
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      observeServerTime(msg.serverTime);
      switch (msg.type) {
        case 'snapshot':
          dispatch({ type: 'snapshot', drops: Array.isArray(msg.drops) ? msg.drops : [] });
          dispatch({ type: 'connection', value: 'live' });
          attempt = 0;
          cb.current.onResync();
          break;
        case 'stock': {
          dispatch({
            type: 'stock',
            dropId: msg.dropId,
            availableStock: msg.availableStock,
            reservedStock: msg.reservedStock,
            soldStock: msg.soldStock,
          });
          break;
        }
        case 'purchase': {
          const top = Array.isArray(msg.topPurchasers) ? msg.topPurchasers : [];
          const username = msg.username;
          const at = top.find((p) => p.username === username)?.purchasedAt ?? msg.serverTime;
          dispatch({ type: 'purchase', dropId: msg.dropId, username, topPurchasers: top, at });
          break;
        }
        case 'dropCreated':
          if (msg.drop && typeof msg.drop === 'object') dispatch({ type: 'upsert', drop: msg.drop });
          break;
      }
    };

    const connect = () => {
      if (stopped) return;
      resetServerClock();
      let socket: WebSocket;
      try {
        socket = new WebSocket(wsUrl());
      } catch {
        schedule();
        return;
      }
      ws = socket;
      socket.onmessage = onMessage;
      socket.onclose = () => {
        if (ws === socket) ws = null;
        schedule();
      };
      // An error is always followed by close, which schedules the retry.
      socket.onerror = () => undefined;
    };

    // Coming back online is a good moment to retry at once.
    const onOnline = () => {
      if (ws || stopped) return;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      connect();
    };

    connect();
    window.addEventListener('online', onOnline);
    return () => {
      stopped = true;
      window.removeEventListener('online', onOnline);
      if (timer !== undefined) clearTimeout(timer);
      ws?.close();
    };
  }, []);

  const loadList = useCallback((drops: Drop[]) => dispatch({ type: 'list', drops }), []);
  const upsert = useCallback((drop: Drop) => dispatch({ type: 'upsert', drop }), []);

  return { ...state, loadList, upsert };
}
