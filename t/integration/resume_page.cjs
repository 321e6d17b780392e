// resume_page.cjs - the README's browser example of notifyd.v2 (ids and
// resuming) in Debian's headless Chromium, for test_stream_browser.py.
//
//   NODE_PATH=.../node_modules node resume_page.cjs BASEURL PUSHKEY USER
//
// BASEURL is notifyd with demo = on (the page gives the browser an origin
// notifyd accepts).  Notifications are sent with POST /push from Node.
// Prints JSON lines: {"step":"first",...}, {"step":"resumed",...},
// {"step":"done","frames":[...]} or {"step":"error","message":...}.
'use strict';

const { say, push: pushTo, run, until } = require('./browser_lib.cjs');

const [base, pushKey, user] = process.argv.slice(2);
const push = (body) => pushTo(base, pushKey, body);

// Messages in notifyd's history (its /metrics).  A 202 from /push means
// the broker has the message, not that notifyd has read it back from the
// stream: one still on its way when the page resumes comes live instead of
// replayed, and this test is about the replay.
async function inHistory() {
  const text = await (await fetch(base + '/metrics')).text();
  const m = text.match(/^notifyd_history_messages (\d+)$/m);
  if (!m) throw new Error('no notifyd_history_messages in /metrics');
  return Number(m[1]);
}

// The README example, as a page would run it; frames go to window.seen.
const connect = (args) => new Promise((resolve, reject) => {
  const [u, wsBase] = args;
  window.seen = window.seen || [];
  const last = localStorage.getItem('notifyd.last');
  const url = wsBase + '/ws?userId=' + encodeURIComponent(u) +
      (last ? '&since=' + encodeURIComponent(last) : '');
  const ws = new WebSocket(url, ['notifyd.v2']);
  window.ws = ws;
  ws.onerror = () => reject(new Error('websocket error'));
  ws.onmessage = (ev) => {
    const f = JSON.parse(ev.data);
    if (f.id) localStorage.setItem('notifyd.last', f.id);
    window.seen.push(f);
    if (f.type === 'hello' || f.type === 'recovered') resolve({ protocol: ws.protocol, extensions: ws.extensions, first: f });
  };
});

async function waitFor(page, n) {
  await page.waitForFunction((k) => window.seen.filter((f) => f.type === 'message').length >= k,
    n, { timeout: 15000 });
}

run(async (browser) => {
  const page = await browser.newPage();
  await page.goto(base + '/');
  const wsBase = base.replace(/^http/, 'ws');
  const first = await page.evaluate(connect, [user, wsBase]);
  say({ step: 'first', ...first });
  // Live, and large enough to go compressed (permessage-deflate).
  for (let i = 0; i < 3; i++) await push({ user_id: user, n: 'before-' + i, pad: 'caf\u00e9 \u2603 '.repeat(100 * (i + 1)) });
  await waitFor(page, 3);
  await page.evaluate(() => new Promise((r) => { window.ws.onclose = r; window.ws.close(); }));
  const held = await inHistory();
  for (let i = 0; i < 5; i++) await push(i % 2 ? { broadcast: true, n: 'missed-' + i } : { user_id: user, n: 'missed-' + i });
  await until('the 5 missed in the history', async () => (await inHistory()) >= held + 5, 15000);
  const resumed = await page.evaluate(connect, [user, wsBase]);
  say({ step: 'resumed', ...resumed });
  await waitFor(page, 8);
  await push({ user_id: user, n: 'live' });
  await waitFor(page, 9);
  say({ step: 'done', frames: await page.evaluate(() => window.seen) });
});
