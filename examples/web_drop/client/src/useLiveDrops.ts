import { useCallback, useEffect, useLayoutEffect, useReducer, useRef } from 'react';
import type { Drop, DrawCompletedFrame, LeaveReason, Reservation, TopPurchaser, VariantStock, WsMessage } from './api';
import { observeServerTime, resetServerClock } from './clock';
import { buyerName } from './format';
import { readDrawCompleted } from './draws';

/** How the page is connected to the live feed. */
export type Connection = 'connecting' | 'live' | 'reconnecting';

/** One purchase heard on the live feed, for the activity list. */
export interface Activity {
  key: string;
  dropId: string;
  dropName: string;
  /** The buyer's public name ("Someone" when the server hides names). */
  name: string;
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
  /**
   * Whose socket `connection` describes: the session it was opened for
   * (a buyer id, or '' for a visitor). A socket of an earlier session says
   * nothing about the current one.
   */
  socketKey: string | null;
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
      /** The drop's total (an admin edit can change it). */
      totalStock?: number;
      /** Per-variant stock. */
      variants?: VariantStock[];
    }
  | { type: 'purchase'; dropId: string; name: string; topPurchasers: TopPurchaser[]; at: string }
  /** A draw drop's draw happened: it sells first come from now on. */
  | { type: 'drawn'; dropId: string; drawnAt: string }
  | { type: 'connection'; value: Connection; key: string };

const ACTIVITY_MAX = 12;

function activityKey(dropId: string, name: string, at: string): string {
  return `${dropId}:${name}:${at}`;
}

// The feed starts from the recent buyers the drops already list, so a page
// opened mid-sale is not empty; later purchases are added as they happen.
function withRecentBuyers(activity: Activity[], drops: Drop[]): Activity[] {
  const seen = new Set(activity.map((a) => a.key));
  const merged = activity.slice();
  for (const d of drops) {
    for (const p of d.topPurchasers ?? []) {
      const name = buyerName(p);
      const key = activityKey(d.id, name, p.purchasedAt);
      if (seen.has(key)) continue;
      seen.add(key);
      merged.push({ key, dropId: d.id, dropName: d.name, name, at: p.purchasedAt });
    }
  }
  return merged.sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, ACTIVITY_MAX);
}

// A stock frame names variants by id; their names stay as the drop listed
// them. A variant the page does not know yet (added
// by an edit it has not heard of) waits for the drop's next full picture.
function mergeVariantStock(current: Drop['variants'] | undefined, fresh: VariantStock[]): Drop['variants'] {
  const list = Array.isArray(current) ? current : [];
  return list.map((v) => {
    const f = fresh.find((x) => x.id === v.id);
    if (!f) return v;
    return {
      ...v,
      availableStock: f.availableStock,
      reservedStock: f.reservedStock,
      soldStock: f.soldStock,
      totalStock: f.totalStock,
      // A server without waiting lines sends no line length: keep what the drop said.
      ...(typeof f.waitlistLength === 'number' ? { waitlistLength: f.waitlistLength } : {}),
    };
  });
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
          totalStock: action.totalStock ?? d.totalStock,
          variants: action.variants ? mergeVariantStock(d.variants, action.variants) : d.variants,
        };
      });
      return { ...state, drops };
    }
    case 'purchase': {
      const drop = state.drops.find((d) => d.id === action.dropId);
      const drops = state.drops.map((d) =>
        d.id === action.dropId ? { ...d, topPurchasers: action.topPurchasers } : d,
      );
      const key = activityKey(action.dropId, action.name, action.at);
      if (state.activity.some((a) => a.key === key)) return { ...state, drops };
      const item: Activity = {
        key,
        dropId: action.dropId,
        dropName: drop?.name ?? 'a drop',
        name: action.name,
        at: action.at,
      };
      return { ...state, drops, activity: [item, ...state.activity].slice(0, ACTIVITY_MAX) };
    }
    case 'drawn': {
      const i = state.drops.findIndex((d) => d.id === action.dropId);
      if (i === -1 || state.drops[i]!.drawnAt === action.drawnAt) return state;
      const drops = state.drops.slice();
      drops[i] = { ...drops[i]!, drawnAt: action.drawnAt };
      return { ...state, drops };
    }
    case 'connection':
      return { ...state, connection: action.value, socketKey: action.key };
  }
}

/** How one of the buyer's holds ended, as their own socket reports it. */
export interface HoldEnd {
  how: 'expired' | 'released' | 'purchased';
  dropId: string;
  reservationId: string;
}

/** A change to a waiting line, as the live feed reports it. */
export type LineChange =
  /** The buyer joined a line (their own socket; perhaps from another tab). */
  | { type: 'joined'; dropId: string; variantId: string; quantity: number; ticket: number }
  /** The buyer left a line, and why (their own socket). */
  | { type: 'left'; dropId: string; variantId: string; ticket: number; reason: LeaveReason }
  /** Someone left the line of a variant: those behind them move up (public). */
  | { type: 'moved'; dropId: string; variantId: string; ticket: number };

/** What one frame of the live feed asks of the page. */
export type FrameEffect =
  /** A full picture: the state restarts from it. */
  | { kind: 'snapshot'; drops: Drop[] }
  /** A change to the public state. */
  | { kind: 'action'; action: Action }
  /** One of the signed-in buyer's holds ended (perhaps in another tab). */
  | { kind: 'holdEnded'; end: HoldEnd }
  /** The shop cancelled one of the signed-in buyer's purchases. */
  | { kind: 'purchaseCancelled'; purchaseId: string; dropId: string }
  /** A unit freed up and is now the signed-in buyer's, as a hold offered from the line. */
  | { kind: 'holdOffered'; dropId: string; reservation: Reservation }
  /** A waiting line changed. */
  | { kind: 'line'; change: LineChange }
  /** A drop's draw happened (public): entrants read their outcome. */
  | { kind: 'drawCompleted'; frame: DrawCompletedFrame }
  /**
   * The socket resumed where the last one left off: the frames it missed
   * came before this one, and the state was kept.
   */
  | { kind: 'resumed' };

const LEAVE_REASONS: readonly string[] = ['left', 'offered', 'skipped'];

function isTicket(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

const HOLD_END: Record<string, HoldEnd['how']> = {
  holdExpired: 'expired',
  holdReleased: 'released',
  holdPurchased: 'purchased',
};

/**
 * What a parsed frame means for the page, or null for a frame it does not
 * know or cannot use (a newer server may send more kinds). Pure, so it is
 * unit tested.
 */
export function interpretFrame(msg: WsMessage): FrameEffect | null {
  // Read as a plain string: a server newer than this page's generated types
  // may send kinds the union does not list yet.
  if ((msg as { type?: unknown }).type === 'resumed') return { kind: 'resumed' };
  switch (msg.type) {
    case 'snapshot':
      return { kind: 'snapshot', drops: Array.isArray(msg.drops) ? msg.drops : [] };
    case 'stock':
      return {
        kind: 'action',
        action: {
          type: 'stock',
          dropId: msg.dropId,
          availableStock: msg.availableStock,
          reservedStock: msg.reservedStock,
          soldStock: msg.soldStock,
          ...(typeof msg.totalStock === 'number' ? { totalStock: msg.totalStock } : {}),
          ...(Array.isArray(msg.variants) ? { variants: msg.variants } : {}),
        },
      };
    case 'purchase': {
      const top = Array.isArray(msg.topPurchasers) ? msg.topPurchasers : [];
      const name = buyerName(msg);
      // The listed entry of this purchase carries its time, so the feed and
      // the recent-buyers list agree. With names hidden every entry is
      // "Someone" and the newest one (listed first) is taken.
      const at = top.find((p) => buyerName(p) === name)?.purchasedAt ?? msg.serverTime;
      return { kind: 'action', action: { type: 'purchase', dropId: msg.dropId, name, topPurchasers: top, at } };
    }
    case 'dropCreated':
    case 'dropUpdated':
      // An edit, pause, resume or end: the whole drop as it now is.
      return msg.drop && typeof msg.drop === 'object' ? { kind: 'action', action: { type: 'upsert', drop: msg.drop } } : null;
    case 'purchaseCancelled':
      if (typeof msg.purchaseId !== 'string' || typeof msg.dropId !== 'string') return null;
      return { kind: 'purchaseCancelled', purchaseId: msg.purchaseId, dropId: msg.dropId };
    case 'holdExpired':
    case 'holdReleased':
    case 'holdPurchased': {
      const how = HOLD_END[msg.type];
      if (!how || typeof msg.dropId !== 'string' || typeof msg.reservationId !== 'string') return null;
      return { kind: 'holdEnded', end: { how, dropId: msg.dropId, reservationId: msg.reservationId } };
    }
    case 'holdOffered': {
      const r = msg.reservation as Reservation | undefined;
      if (typeof msg.dropId !== 'string' || !r || typeof r !== 'object' || typeof r.id !== 'string') return null;
      return { kind: 'holdOffered', dropId: msg.dropId, reservation: r };
    }
    case 'waitlistJoined':
      if (typeof msg.dropId !== 'string' || typeof msg.variantId !== 'string' || !isTicket(msg.ticket)) return null;
      return {
        kind: 'line',
        change: {
          type: 'joined',
          dropId: msg.dropId,
          variantId: msg.variantId,
          quantity: isTicket(msg.quantity) ? msg.quantity : 1,
          ticket: msg.ticket,
        },
      };
    case 'waitlistLeft':
      if (typeof msg.dropId !== 'string' || typeof msg.variantId !== 'string' || !isTicket(msg.ticket)) return null;
      if (!LEAVE_REASONS.includes(msg.reason)) return null;
      return {
        kind: 'line',
        change: { type: 'left', dropId: msg.dropId, variantId: msg.variantId, ticket: msg.ticket, reason: msg.reason },
      };
    case 'waitlistMoved':
      if (typeof msg.dropId !== 'string' || typeof msg.variantId !== 'string' || !isTicket(msg.ticket)) return null;
      return { kind: 'line', change: { type: 'moved', dropId: msg.dropId, variantId: msg.variantId, ticket: msg.ticket } };
    case 'drawCompleted': {
      const frame = readDrawCompleted(msg);
      return frame ? { kind: 'drawCompleted', frame } : null;
    }
    default:
      return null;
  }
}

/** What the live feed tells the rest of the page besides drop state. */
export interface LiveCallbacks {
  /**
   * A fresh snapshot arrived, or the socket resumed; `reconnected` when it
   * had to be opened again for the same session (the session may have ended
   * meanwhile, and after a snapshot changes may have been missed).
   */
  onResync(reconnected: boolean): void;
  /** The server says one of the signed-in buyer's holds ended. */
  onHoldEnded(end: HoldEnd): void;
  /** The shop cancelled one of the signed-in buyer's purchases. */
  onPurchaseCancelled(purchaseId: string, dropId: string): void;
  /** A hold was offered to the signed-in buyer from a waiting line. */
  onHoldOffered(dropId: string, reservation: Reservation): void;
  /** A waiting line changed (the buyer's own place, or someone else leaving one). */
  onLineChange(change: LineChange): void;
  /** A drop's draw happened; the drop's `drawnAt` is already set. */
  onDrawCompleted?(frame: DrawCompletedFrame): void;
}

/** Backoff before reconnect attempt `n` (0-based): 0.5 s doubling to 10 s, with jitter. */
export function backoffMs(n: number): number {
  const base = Math.min(10_000, 500 * 2 ** n);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * The live feed's address; with `after` (the highest `seq` seen), the server
 * resumes from there when it can instead of sending a snapshot.
 */
export function liveFeedUrl(loc: { protocol: string; host: string }, after: number | null): string {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = after === null ? '' : `?after=${after}`;
  return `${proto}//${loc.host}/api/ws${query}`;
}

/** The `seq` a frame carries (every frame but `stock`), or null. */
export function frameSeq(msg: WsMessage): number | null {
  const seq = (msg as { seq?: unknown }).seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : null;
}

/**
 * Whether to apply a frame, and the feed's position in the server's change
 * log after it. A snapshot sets the position (it shows everything up to its
 * `seq`, and may come from another server that is not as far along);
 * `resumed` moves it to where the replay caught up; any other numbered frame
 * is applied unless it is older than the position (the frames of one change
 * share its `seq`, so an equal one is the same change's next frame). The
 * server never sends a change twice; this only makes sure of it.
 */
export function followSeq(last: number | null, msg: WsMessage): { apply: boolean; last: number | null } {
  const seq = frameSeq(msg);
  const type = (msg as { type?: unknown }).type;
  if (type === 'snapshot') return { apply: true, last: seq };
  if (seq === null) return { apply: true, last };
  if (type === 'resumed') return { apply: true, last: last === null ? seq : Math.max(last, seq) };
  if (last !== null && seq < last) return { apply: false, last };
  return { apply: true, last: seq };
}

/**
 * Drops with live stock from `/api/ws`: reconnects with backoff, asking to
 * resume after the highest `seq` it saw; the server answers with the frames
 * missed and `resumed`, or with a snapshot that the state restarts from.
 *
 * `sessionKey` names the session the socket belongs to (the buyer id, '' for
 * a visitor, null while it is not known yet: then no socket opens). The
 * browser sends the session cookie only with the upgrade, so a new sign-in or
 * a sign-out opens a new socket, which then receives that buyer's own frames.
 */
export function useLiveDrops(callbacks: LiveCallbacks, sessionKey: string | null) {
  const [state, dispatch] = useReducer(reducer, {
    drops: [],
    fromSnapshot: false,
    loaded: false,
    connection: 'connecting',
    socketKey: null,
    activity: [],
  });
  const cb = useRef(callbacks);
  useLayoutEffect(() => {
    cb.current = callbacks;
  });

  useEffect(() => {
    if (sessionKey === null) return;
    const key = sessionKey;
    let ws: WebSocket | null = null;
    let attempt = 0;
    let opened = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    // The highest change seen, for resuming; kept across reconnects of this
    // session only (another session's socket has other private frames).
    let lastSeq: number | null = null;

    const schedule = () => {
      if (stopped || timer !== undefined) return;
      dispatch({ type: 'connection', value: 'reconnecting', key });
      timer = setTimeout(() => {
        timer = undefined;
        connect();
      }, backoffMs(attempt++));
    };

    const onMessage = (ev: MessageEvent) => {
      // A socket of an ended session may still deliver a frame or two.
      if (stopped || typeof ev.data !== 'string') return;
      // Frames are `WsMessage`s (see api.ts: generated, plus the buyer's own frames).
      let msg: WsMessage;
      try {
        msg = JSON.parse(ev.data) as WsMessage;
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      observeServerTime(msg.serverTime);
      const followed = followSeq(lastSeq, msg);
      lastSeq = followed.last;
      if (!followed.apply) return;
      const effect = interpretFrame(msg);
      if (!effect) return;
      switch (effect.kind) {
        case 'snapshot':
          dispatch({ type: 'snapshot', drops: effect.drops });
          dispatch({ type: 'connection', value: 'live', key });
          attempt = 0;
          cb.current.onResync(opened > 1);
          break;
        case 'resumed':
          // Nothing was missed, but a session may have ended meanwhile.
          dispatch({ type: 'connection', value: 'live', key });
          attempt = 0;
          cb.current.onResync(opened > 1);
          break;
        case 'action':
          dispatch(effect.action);
          break;
        case 'holdEnded':
          cb.current.onHoldEnded(effect.end);
          break;
        case 'purchaseCancelled':
          cb.current.onPurchaseCancelled(effect.purchaseId, effect.dropId);
          break;
        case 'holdOffered':
          cb.current.onHoldOffered(effect.dropId, effect.reservation);
          break;
        case 'line':
          cb.current.onLineChange(effect.change);
          break;
        case 'drawCompleted':
          dispatch({ type: 'drawn', dropId: effect.frame.dropId, drawnAt: effect.frame.drawnAt });
          cb.current.onDrawCompleted?.(effect.frame);
          break;
      }
    };

    const connect = () => {
      if (stopped) return;
      resetServerClock();
      let socket: WebSocket;
      try {
        socket = new WebSocket(liveFeedUrl(location, lastSeq));
      } catch {
        schedule();
        return;
      }
      ws = socket;
      opened += 1;
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
  }, [sessionKey]);

  const loadList = useCallback((drops: Drop[]) => dispatch({ type: 'list', drops }), []);
  const upsert = useCallback((drop: Drop) => dispatch({ type: 'upsert', drop }), []);

  // Until the socket of the current session has its snapshot, the page is
  // not live for this session, whatever an earlier socket said.
  const connection: Connection = state.socketKey === sessionKey ? state.connection : 'connecting';
  return { ...state, connection, loadList, upsert };
}
