// notifyd.js - the browser client of notifyd, an ES module with no
// dependencies and no build step (types: notifyd.d.ts beside it).
//
//   import { Notifyd } from "https://notify.example.com/notifyd.js";
//   const n = new Notifyd({ url: "https://notify.example.com", token: getJwt,
//                           lastId: localStorage.getItem("notifyd.last") });
//   n.on("message", ({ id, data }) => { show(data); localStorage.setItem("notifyd.last", id); });
//   n.on("recovered", (f) => { if (!f.recovered) reloadFromServer(); });
//   n.on("authfailed", () => login().then(() => n.start()));
//   n.on("disconnected", ({ code, reason }) => showLoggedOut(code, reason));
//
// WebSocket with the notifyd.v2 subprotocol first; Server-Sent Events
// (GET /sse) when WebSocket cannot get through but /sse answers, and
// WebSocket again retryWebSocketAfter later.  Every reconnect, over either
// transport, resumes from the last id seen (the id of the last frame that
// had one), so the server replays what was missed, then says "recovered".
// Retries wait a random time in [0, min(maxDelay, minDelay * 2^failures)]
// ("full jitter").  A 1008 close (token expired or refused) or a 401/403
// stops the client with "authfailed" instead of retrying: give it a new
// token (a token function is called again on each connect) and start().
// When the server ends the user's session (POST /users/<id>/disconnect: a
// WebSocket close 4000 "logged out" or 4001 "banned"/"revoked", or an SSE
// "disconnect" event) the client stops with "disconnected" {transport,
// code, reason}: no reconnect, no fallback, until start() is called.
// Other 4000-4999 closes are retried like any other close.

const DEFAULTS = {
  transports: ['websocket', 'sse'],
  minDelay: 500, // ms, the first retry waits up to this
  maxDelay: 30000, // ms, the cap of the doubling
  fallbackAfter: 3, // WebSocket failures before open, then /sse is probed
  retryWebSocketAfter: 300000, // ms on SSE before WebSocket is tried again (0: never)
};

export class Notifyd extends EventTarget {
  #o; #base; #last; #token = null;
  #sock = null; #kind = null; #open = false;
  #gen = 0; // bumped whenever the current connection is abandoned: stale events are ignored
  #fails = 0; // consecutive attempts that ended before open (any transport)
  #wsFails = 0; // consecutive WebSocket attempts that ended before open
  #useSse = false; #timer = 0; #waiting = false; #upgrade = 0;
  #stopped = true; #closed = false;
  #online = () => { if (this.#waiting) this.#connect(); };

  constructor(options = {}) {
    super();
    const o = { ...DEFAULTS, ...options };
    o.transports = (o.transports || []).filter((t) => t === 'websocket' || t === 'sse');
    if (!o.transports.length) throw new TypeError('Notifyd: transports names neither "websocket" nor "sse"');
    if (!o.token && (o.userId == null || o.userId === '')) throw new TypeError('Notifyd: give a token or a userId');
    this.#o = o;
    this.#base = new URL(o.url || '/', globalThis.location && globalThis.location.href);
    this.#last = o.lastId || null;
    globalThis.addEventListener?.('online', this.#online);
    this.start();
  }

  /** The id of the last frame that had one: persist it, give it back as lastId. */
  get lastId() { return this.#last; }
  /** "websocket" or "sse" while connected, else null. */
  get transport() { return this.#open ? this.#kind : null; }
  get state() {
    return this.#closed ? 'closed' : this.#stopped ? 'stopped' : this.#open ? 'open' : 'connecting';
  }

  /** fn(detail) for each event of that type; returns a function that removes it. */
  on(type, fn) {
    const h = (ev) => fn(ev.detail);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }

  /** Connects again after "authfailed" or "disconnected" (the constructor starts the client). */
  start() {
    if (this.#closed) throw new Error('Notifyd: close() was called, make a new one');
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#fails = 0;
    // Not before the caller's next statements: they add the listeners.
    queueMicrotask(() => { if (!this.#stopped) this.#connect(); });
  }

  /** Closes the connection and stops for good. */
  close() {
    if (this.#closed) return;
    this.#closed = this.#stopped = true;
    globalThis.removeEventListener?.('online', this.#online);
    this.#halt();
  }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // Drops the connection and every timer, emitting "close" if it was open.
  #halt() {
    this.#gen++;
    clearTimeout(this.#timer);
    clearTimeout(this.#upgrade);
    this.#waiting = false;
    const s = this.#sock, was = this.#open;
    this.#sock = null;
    this.#open = false;
    if (s) s.close();
    if (was) this.#emit('close', { transport: this.#kind, code: 1000, reason: 'closed by the client' });
  }

  #url(path, params, ws) {
    const u = new URL(this.#base.href);
    const secure = u.protocol === 'https:' || u.protocol === 'wss:';
    u.protocol = ws ? (secure ? 'wss:' : 'ws:') : (secure ? 'https:' : 'http:');
    u.pathname = u.pathname.replace(/\/+$/, '') + path;
    u.search = params.toString();
    u.hash = '';
    return u.href;
  }

  #who(params) {
    if (this.#token) params.set('token', this.#token);
    else params.set('userId', this.#o.userId);
    return params;
  }

  #pick() {
    const t = this.#o.transports;
    if (!t.includes('websocket') || typeof WebSocket === 'undefined') return 'sse';
    if (!t.includes('sse') || typeof EventSource === 'undefined') return 'websocket';
    return this.#useSse ? 'sse' : 'websocket';
  }

  async #connect() {
    clearTimeout(this.#timer);
    this.#waiting = false;
    const gen = ++this.#gen;
    try {
      const t = this.#o.token;
      this.#token = (typeof t === 'function' ? await t() : t) || null;
    } catch (error) {
      if (gen !== this.#gen) return;
      this.#fails++;
      this.#emit('error', { transport: null, attempt: this.#fails, error });
      return this.#retry(gen, false);
    }
    if (gen !== this.#gen) return; // closed or restarted while the token came
    this.#kind = this.#pick();
    if (this.#kind === 'websocket') this.#openWs(gen);
    else this.#openSse(gen);
  }

  #openWs(gen) {
    const q = new URLSearchParams(), protocols = ['notifyd.v2'];
    // The token in a subprotocol rather than the URL: URLs end up in logs.
    if (this.#token) protocols.push('bearer.' + this.#token);
    else q.set('userId', this.#o.userId);
    if (this.#last) q.set('since', this.#last);
    let ws, opened = false;
    try {
      ws = new WebSocket(this.#url('/ws', q, true), protocols);
    } catch (error) {
      return this.#lost(gen, false, { error });
    }
    this.#sock = ws;
    ws.onopen = () => { if (gen === this.#gen) { opened = true; this.#opened(); } };
    ws.onmessage = (ev) => { if (gen === this.#gen) this.#frame(ev.data); };
    ws.onclose = (ev) => this.#lost(gen, opened, { code: ev.code, reason: ev.reason });
  }

  #openSse(gen) {
    const q = this.#who(new URLSearchParams());
    // Only for this first request: the browser's own reconnects send the
    // Last-Event-ID header, which the server prefers.
    if (this.#last) q.set('last_event_id', this.#last);
    let es, opened = false, errors = 0;
    try {
      es = new EventSource(this.#url('/sse', q, false));
    } catch (error) {
      return this.#lost(gen, false, { error });
    }
    this.#sock = es;
    const live = () => gen === this.#gen;
    es.onopen = () => { if (live()) { errors = 0; opened = true; this.#opened(); } };
    es.onmessage = (ev) => {
      if (!live()) return;
      if (ev.lastEventId) this.#last = ev.lastEventId;
      let data;
      try { data = JSON.parse(ev.data); } catch { return; }
      this.#emit('message', { id: ev.lastEventId || null, data });
    };
    // hello (where live delivery starts) and recovered carry the same JSON
    // as the WebSocket frames.
    for (const type of ['hello', 'recovered'])
      es.addEventListener(type, (ev) => { if (live()) this.#frame(ev.data); });
    // The session was ended ({"code":4000,"reason":"logged out"}), then the
    // stream ends: closed before the browser can reconnect by itself.
    es.addEventListener('disconnect', (ev) => {
      if (!live()) return;
      let d;
      try { d = JSON.parse(ev.data); } catch { d = null; }
      const code = d && typeof d.code === 'number' ? d.code : 4000;
      const reason = d && typeof d.reason === 'string' ? d.reason : '';
      const was = opened;
      opened = false;
      es.close();
      this.#lost(gen, was, { code, reason }, true);
    });
    es.onerror = () => {
      if (!live()) return;
      const was = opened;
      opened = false;
      // CLOSED: refused (HTTP error).  Else the browser reconnects by itself
      // (retry: from the server); after a few failed tries we take over.
      if (es.readyState === EventSource.CLOSED || ++errors >= this.#o.fallbackAfter) {
        es.close();
        return this.#lost(gen, was, {});
      }
      if (was) { this.#open = false; this.#emit('close', { transport: 'sse' }); }
    };
  }

  #opened() {
    this.#open = true;
    this.#fails = 0;
    if (this.#kind === 'websocket') this.#wsFails = 0;
    this.#emit('open', { transport: this.#kind });
  }

  #frame(text) {
    let f;
    try { f = JSON.parse(text); } catch { return; }
    if (!f || typeof f !== 'object') return;
    if (typeof f.id === 'string' && f.id) this.#last = f.id;
    if (f.type === 'message') this.#emit('message', { id: f.id ?? null, data: f.data });
    else if (f.type === 'recovered') this.#emit('recovered', f);
  }

  // The connection ended (opened: it had been open; ended: the server
  // ended the session, whatever the code).
  #lost(gen, opened, info, ended = false) {
    if (gen !== this.#gen) return;
    const kind = this.#kind;
    this.#sock = null;
    this.#open = false;
    if (opened) this.#emit('close', { transport: kind, ...info });
    if (info.code === 1008) return this.#stop('authfailed', { transport: kind, ...info });
    if (ended || info.code === 4000 || info.code === 4001)
      return this.#stop('disconnected', { transport: kind, code: info.code, reason: info.reason });
    if (!opened) {
      this.#fails++;
      if (kind === 'websocket') this.#wsFails++;
      this.#emit('error', { transport: kind, attempt: this.#fails, ...info });
    }
    // A browser does not show why a handshake failed: ask /sse, which has
    // the same admission and whose answer fetch() can read.
    this.#retry(gen, !opened && (kind === 'sse' || this.#wsFails >= this.#o.fallbackAfter));
  }

  async #retry(gen, probe) {
    let n = this.#fails;
    if (probe) {
      const status = await this.#probe();
      if (gen !== this.#gen) return;
      if (status === 401 || status === 403) return this.#stop('authfailed', { transport: this.#kind, status });
      // /sse answers while WebSocket fails: a proxy in the way, use SSE now.
      if (status === 200 && this.#kind === 'websocket' && this.#o.transports.includes('sse')) {
        this.#toSse();
        n = 0;
      }
    }
    const cap = Math.min(this.#o.maxDelay, this.#o.minDelay * 2 ** n);
    this.#waiting = true;
    this.#timer = setTimeout(() => this.#connect(), Math.random() * cap);
  }

  // Status of GET /sse with the same credentials (0: no answer or not
  // readable, e.g. cross-origin without CORS headers); the body is dropped.
  async #probe() {
    if (typeof fetch !== 'function') return 0;
    const ac = new AbortController(), t = setTimeout(() => ac.abort(), 10000);
    try {
      const r = await fetch(this.#url('/sse', this.#who(new URLSearchParams()), false),
        { signal: ac.signal, cache: 'no-store', credentials: 'omit' });
      return r.status;
    } catch {
      return 0;
    } finally {
      clearTimeout(t);
      ac.abort();
    }
  }

  #toSse() {
    this.#useSse = true;
    clearTimeout(this.#upgrade);
    if (this.#o.retryWebSocketAfter > 0) {
      this.#upgrade = setTimeout(() => {
        this.#useSse = false;
        this.#wsFails = this.#o.fallbackAfter - 1; // one failure and back to SSE
        if (this.#sock) { this.#halt(); this.#connect(); }
      }, this.#o.retryWebSocketAfter);
    }
  }

  // "authfailed" or "disconnected": no retry until start().
  #stop(type, detail) {
    this.#stopped = true;
    this.#halt();
    this.#emit(type, detail);
  }
}

export default Notifyd;
