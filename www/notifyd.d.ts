// notifyd.d.ts - types of notifyd.js, the browser client of notifyd.

export type Transport = "websocket" | "sse";

export interface NotifydOptions {
  /** notifyd's base URL (http(s):// or ws(s)://, a path prefix is kept);
   *  relative to the page, default its origin. /ws and /sse are appended. */
  url?: string;
  /** A JWT (auth = jwt), or a function giving one, called before every
   *  connect: return a fresh token there.  Over WebSocket it travels as the
   *  subprotocol "bearer.<jwt>", over SSE in the query string. */
  token?: string | (() => string | Promise<string>);
  /** The user, with auth = none only (ignored when a token is given). */
  userId?: string;
  /** The last id the application kept (see Notifyd.lastId): the first
   *  connect resumes from it. */
  lastId?: string | null;
  /** The transports allowed (default both).  WebSocket is always tried
   *  first when allowed; SSE when WebSocket fails but /sse answers. */
  transports?: Transport[];
  /** Backoff in ms: a retry after n failures waits a random time in
   *  [0, min(maxDelay, minDelay * 2^n)].  Defaults 500 and 30000. */
  minDelay?: number;
  maxDelay?: number;
  /** WebSocket failures before open after which /sse is probed (default 3). */
  fallbackAfter?: number;
  /** ms on SSE before WebSocket is tried again (default 300000; 0: never). */
  retryWebSocketAfter?: number;
}

/** A notification: its id (null without ids, amqp_source = queue) and its
 *  body, parsed, as it was published. */
export interface MessageDetail<T = unknown> {
  id: string | null;
  data: T;
}

export type RecoveryFailure = "too_old" | "unknown_epoch" | "malformed" | "unavailable";

/** After a resume: what was missed has been delivered (recovered: true),
 *  or it could not be (recovered: false): reload from your own database. */
export type RecoveredDetail =
  | { type: "recovered"; recovered: true; count: number; id?: string }
  | { type: "recovered"; recovered: false; reason: RecoveryFailure | (string & {}); id?: string };

export interface OpenDetail {
  transport: Transport;
}

export interface CloseDetail {
  transport: Transport;
  /** WebSocket close code (1000 when the client itself closed it); over
   *  SSE only after a "disconnect" event, with its code. */
  code?: number;
  reason?: string;
}

/** A connection attempt failed before open (the client retries by itself),
 *  or the token function threw (transport null, error set). */
export interface ErrorDetail {
  transport: Transport | null;
  /** Consecutive failed attempts so far. */
  attempt: number;
  code?: number;
  reason?: string;
  error?: unknown;
}

/** The client stopped: a WebSocket close 1008 (token expired or refused),
 *  or /sse answered 401 or 403.  Give a new token and call start(). */
export interface AuthFailedDetail {
  transport: Transport;
  code?: number;
  reason?: string;
  status?: number;
}

/** The client stopped: the server ended the user's session (POST
 *  /users/<id>/disconnect on the backend).  Over WebSocket a close 4000
 *  (logged out) or 4001 (banned or revoked), over SSE a "disconnect" event;
 *  a "close" event with the same code comes first when the connection was
 *  open.  No reconnect until start() (while a ban or a revocation holds,
 *  that ends in "authfailed" with status 403). */
export interface DisconnectedDetail {
  transport: Transport;
  /** 4000: logged out; 4001: banned or revoked. */
  code: 4000 | 4001 | (number & {});
  /** The message given to the disconnect call, or "logged out", "banned",
   *  "revoked". */
  reason: string;
}

export interface NotifydEventMap<T = unknown> {
  message: MessageDetail<T>;
  recovered: RecoveredDetail;
  open: OpenDetail;
  close: CloseDetail;
  error: ErrorDetail;
  authfailed: AuthFailedDetail;
  disconnected: DisconnectedDetail;
}

/** "stopped": after "authfailed" or "disconnected", until start(). */
export type NotifydState = "connecting" | "open" | "stopped" | "closed";

/** Connects at once; reconnects with backoff and resumes until close(),
 *  or until "authfailed" or "disconnected" (then start()). */
export declare class Notifyd<T = unknown> extends EventTarget {
  constructor(options: NotifydOptions);

  /** The id of the last frame that had one: persist it and pass it back as
   *  options.lastId to resume after a page load. */
  readonly lastId: string | null;
  /** The transport while connected, else null. */
  readonly transport: Transport | null;
  readonly state: NotifydState;

  /** listener(detail) for each event of that type; returns a function that
   *  removes it. */
  on<K extends keyof NotifydEventMap<T>>(type: K, listener: (detail: NotifydEventMap<T>[K]) => void): () => void;

  /** Connects again after "authfailed" or "disconnected" (calling the
   *  token function again); does nothing while running; throws after
   *  close(). */
  start(): void;
  /** Closes the connection and stops for good. */
  close(): void;

  addEventListener<K extends keyof NotifydEventMap<T>>(
    type: K,
    listener: (this: Notifyd<T>, ev: CustomEvent<NotifydEventMap<T>[K]>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof NotifydEventMap<T>>(
    type: K,
    listener: (this: Notifyd<T>, ev: CustomEvent<NotifydEventMap<T>[K]>) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

export default Notifyd;
