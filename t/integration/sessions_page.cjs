// sessions_page.cjs - www/notifyd.js in Debian's headless Chromium while the
// backend ends the user's session (POST /users/<id>/disconnect), for
// test_sessions_browser.py.
//
//   NODE_PATH=.../node_modules node sessions_page.cjs BASEURL PUSHKEY SCENARIO USER FLAGFILE [PORT]
//
// BASEURL is notifyd with demo = on (its page gives the browser an origin
// notifyd accepts); www/notifyd.js is served to it as BASEURL/notifyd.js.
// The page counts what it asks of the server: WebSocket handshakes
// (wsTries), EventSource requests (esTries) and fetch() calls (the client's
// /sse probes).  Steps (JSON lines):
//   "open"          the client is connected;
//   "got"           one notification sent with POST /push arrived (the test
//                   then calls POST /users/USER/disconnect);
//   "disconnected"  the client emitted "disconnected";
//   "quiet"         once the test created FLAGFILE (after watching notifyd
//                   for a few seconds): the log and the counters;
//   "done"          after the page called start() again: in "logout" and
//                   "sse" it connected and got one more notification, in
//                   "ban" (the user is blocked) it stopped with "authfailed".
// Scenarios: "logout" and "ban" over WebSocket; "sse" with every WebSocket
// sent to the closed port PORT (a proxy that breaks WebSocket), so that the
// client falls back to SSE.  Failures: {"step":"error","message":...}.
'use strict';

const fs = require('fs');
const path = require('path');
const { say, push: pushTo, run, until } = require('./browser_lib.cjs');

const [base, pushKey, scenario, user, flag, brokenPort] = process.argv.slice(2);
const push = (body) => pushTo(base, pushKey, body);
const SRC = fs.readFileSync(path.join(__dirname, '..', '..', 'www', 'notifyd.js'), 'utf8');


// Before the page's own scripts: count (and maybe break) what goes out.
function instrument(page, port) {
  return page.addInitScript((p) => {
    window.wsTries = 0;
    window.esTries = 0;
    window.fetches = 0;
    const RealWS = window.WebSocket;
    window.WebSocket = class WebSocket extends RealWS {
      constructor(url, protocols) {
        window.wsTries++;
        super(p ? 'ws://127.0.0.1:' + p + '/' : url, protocols);
      }
    };
    const RealES = window.EventSource;
    window.EventSource = class EventSource extends RealES {
      constructor(url, init) {
        window.esTries++;
        super(url, init);
      }
    };
    const realFetch = window.fetch;
    window.fetch = function fetch(...a) {
      window.fetches++;
      return realFetch.apply(this, a);
    };
  }, port || 0);
}

const startClient = (opts) => import('/notifyd.js').then(({ Notifyd }) => {
  window.log = [];
  const n = new Notifyd(opts);
  for (const type of ['open', 'close', 'message', 'recovered', 'error', 'authfailed', 'disconnected']) {
    n.on(type, (d) => {
      const e = { ev: type, t: Date.now(), state: n.state };
      for (const [k, v] of Object.entries(d || {})) e[k] = v instanceof Error ? String(v) : v;
      window.log.push(e);
    });
  }
  window.n = n;
});

const count = (page, type) => page.evaluate((t) => window.log.filter((e) => e.ev === t).length, type);
const waitCount = (page, type, k, ms) => until(k + ' ' + type, async () => (await count(page, type)) >= k, ms);
const snapshot = (page) => page.evaluate(() => ({
  log: window.log, state: window.n.state, transport: window.n.transport,
  wsTries: window.wsTries, esTries: window.esTries, fetches: window.fetches,
}));

run(async (browser) => {
  if (!['logout', 'sse', 'ban'].includes(scenario)) throw new Error('unknown scenario ' + scenario);
  const page = await browser.newPage();
  page.on('pageerror', (e) => say({ step: 'pageerror', message: String(e) }));
  await page.route('**/notifyd.js', (route) => route.fulfill({
    status: 200, contentType: 'text/javascript; charset=utf-8', body: SRC,
  }));
  await instrument(page, scenario === 'sse' ? brokenPort : 0);
  await page.goto(base + '/');
  await page.evaluate(startClient, { url: base, userId: user });

  await waitCount(page, 'open', 1, 60000);
  say({ step: 'open', ...(await snapshot(page)) });
  await push({ user_id: user, n: 'first' });
  await waitCount(page, 'message', 1, 15000);
  say({ step: 'got', ...(await snapshot(page)) });

  await waitCount(page, 'disconnected', 1, 30000);
  say({ step: 'disconnected', ...(await snapshot(page)) });
  await until('the flag file', async () => fs.existsSync(flag), 60000);
  say({ step: 'quiet', ...(await snapshot(page)) });

  await page.evaluate(() => window.n.start()); // what an app does after logging in again
  if (scenario === 'ban') {
    await waitCount(page, 'authfailed', 1, 60000);
  } else {
    await waitCount(page, 'open', 2, 60000);
    await push({ user_id: user, n: 'again' });
    await waitCount(page, 'message', 2, 15000);
  }
  say({ step: 'done', ...(await snapshot(page)) });
});
