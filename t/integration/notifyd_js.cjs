// notifyd_js.cjs - www/notifyd.js (the browser client) in Debian's headless
// Chromium, for test_notifyd_js.py.
//
//   NODE_PATH=.../node_modules node notifyd_js.cjs BASEURL PUSHKEY SCENARIO USER FLAGFILE [ARG...]
//
// BASEURL is notifyd with demo = on: its page gives the browser an origin
// notifyd accepts, and www/notifyd.js is served to it as BASEURL/notifyd.js
// (intercepted here until notifyd serves the file itself), then imported.
// Every event of the client goes to window.log.  Scenarios:
//   resume   "open", 3 pushed, "got3"; the test restarts notifyd, publishing
//            meanwhile, and writes their number to FLAGFILE; the client
//            reconnects by itself and resumes; one more pushed; "done" once
//            3 + that number + 1 arrived.
//   sse      the same with WebSocket broken (every WebSocket goes to the
//            closed port ARG), so the client falls back to SSE.
//   upgrade  WebSocket broken, SSE, then WebSocket works again: the client
//            moves back to it (retryWebSocketAfter 2 s); one pushed; "done".
//   bogus    lastId ARG that the server cannot resume: "done" after the
//            recovered event and one live notification.
//   authbad  token ARG refused: "authfailed", then "done" 6 s later.
//   expiry   ARGs: the HS256 secret, issuer and audience.  The token
//            function's first token expires 3 s after it is made, the next
//            ones are good: open, 1 pushed, the server closes with 1008 at
//            the expiry: "authfailed"; the page calls start(), which takes a
//            good token and resumes; one more pushed; "done".
// Prints JSON lines {"step":...}, or {"step":"error","message":...}.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { say, push: pushTo, run, until } = require('./browser_lib.cjs');

const [base, pushKey, scenario, user, flag, ...rest] = process.argv.slice(2);
const push = (body) => pushTo(base, pushKey, body);
const SRC = fs.readFileSync(path.join(__dirname, '..', '..', 'www', 'notifyd.js'), 'utf8');

let tokenCalls = 0;
function makeToken() {
  const [secret, iss, aud] = rest;
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const signed = b64({ alg: 'HS256', typ: 'JWT' }) + '.' +
    b64({ sub: user, iss, aud, iat: now, exp: now + (tokenCalls++ === 0 ? 3 : 300) });
  return signed + '.' + crypto.createHmac('sha256', secret).update(signed).digest('base64url');
}


// In the page: import the module and start a client that logs its events.
// opts.nodeToken: the token function asks makeToken() in Node.
const startClient = (opts) => import('/notifyd.js').then(({ Notifyd }) => {
  window.log = [];
  const o = { ...opts };
  if (o.nodeToken) o.token = () => window.makeToken();
  const n = new Notifyd(o);
  for (const type of ['open', 'close', 'message', 'recovered', 'error', 'authfailed']) {
    n.on(type, (d) => {
      const e = { ev: type, t: Date.now(), state: n.state, lastId: n.lastId };
      for (const [k, v] of Object.entries(d || {})) e[k] = v instanceof Error ? String(v) : v;
      window.log.push(e);
    });
  }
  window.n = n;
});

const count = (page, type) => page.evaluate((t) => window.log.filter((e) => e.ev === t).length, type);
const waitCount = (page, type, k, ms) => until(k + ' ' + type, async () => (await count(page, type)) >= k, ms);
const result = async (page, extra) => say({
  step: 'done', ...extra,
  ...(await page.evaluate(() => ({ log: window.log, lastId: window.n.lastId, state: window.n.state,
    transport: window.n.transport, wsTries: window.wsTries || 0 }))),
  tokenCalls,
});

// Every WebSocket the page makes goes to a closed port: what a proxy that
// breaks WebSocket looks like to the page (error, then close 1006).
function breakWebSocket(page, port) {
  return page.addInitScript((p) => {
    const Real = window.WebSocket;
    window.wsBroken = true;
    window.wsTries = 0;
    window.WebSocket = function WebSocket(url, protocols) {
      window.wsTries++;
      return new Real(window.wsBroken ? 'ws://127.0.0.1:' + p + '/' : url, protocols);
    };
    Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    window.WebSocket.prototype = Real.prototype;
  }, port);
}

async function restartedAway(page, n0) {
  say({ step: 'got' + n0, lastId: await page.evaluate(() => window.n.lastId) });
  await until('the flag file', async () => fs.existsSync(flag) && fs.readFileSync(flag, 'utf8') !== '', 90000);
  const away = Number(fs.readFileSync(flag, 'utf8'));
  await waitCount(page, 'recovered', 1, 60000);
  await push({ user_id: user, n: 'live' });
  await waitCount(page, 'message', n0 + away + 1, 30000);
}

run(async (browser) => {
  const page = await browser.newPage();
  page.on('pageerror', (e) => say({ step: 'pageerror', message: String(e) }));
  await page.route('**/notifyd.js', (route) => route.fulfill({
    status: 200, contentType: 'text/javascript; charset=utf-8', body: SRC,
  }));
  if (scenario === 'sse' || scenario === 'upgrade') await breakWebSocket(page, rest[0]);
  await page.goto(base + '/');
  const opts = { url: base, userId: user };
  if (scenario === 'bogus') opts.lastId = rest[0];
  if (scenario === 'upgrade') opts.retryWebSocketAfter = 2000;
  if (scenario === 'authbad') { delete opts.userId; opts.token = rest[0]; }
  if (scenario === 'expiry') {
    delete opts.userId;
    opts.nodeToken = true;
    await page.exposeFunction('makeToken', makeToken);
  }
  await page.evaluate(startClient, opts);

  if (scenario === 'authbad') {
    await waitCount(page, 'authfailed', 1, 60000);
    say({ step: 'authfailed' });
    await new Promise((r) => setTimeout(r, 6000));
    return await result(page);
  }
  await waitCount(page, 'open', 1, 60000);
  say({ step: 'open', transport: await page.evaluate(() => window.n.transport) });
  if (scenario === 'resume' || scenario === 'sse') {
    for (let i = 0; i < 3; i++) await push({ user_id: user, n: 'before-' + i });
    await waitCount(page, 'message', 3, 15000);
    await restartedAway(page, 3);
  } else if (scenario === 'upgrade') {
    await page.evaluate(() => { window.wsBroken = false; });
    await until('a WebSocket open', () => page.evaluate(
      () => window.log.some((e) => e.ev === 'open' && e.transport === 'websocket')), 30000);
    await push({ user_id: user, n: 'over-ws' });
    await waitCount(page, 'message', 1, 15000);
  } else if (scenario === 'bogus') {
    await waitCount(page, 'recovered', 1, 30000);
    await push({ user_id: user, n: 'live' });
    await waitCount(page, 'message', 1, 15000);
  } else if (scenario === 'expiry') {
    await push({ user_id: user, n: 'first' });
    await waitCount(page, 'message', 1, 15000);
    await waitCount(page, 'authfailed', 1, 60000);
    say({ step: 'authfailed', state: await page.evaluate(() => window.n.state) });
    await page.evaluate(() => window.n.start()); // what an app does once it has a new token
    await waitCount(page, 'recovered', 1, 30000);
    await push({ user_id: user, n: 'second' });
    await waitCount(page, 'message', 2, 15000);
  } else {
    throw new Error('unknown scenario ' + scenario);
  }
  await result(page);
});
