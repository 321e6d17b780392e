// sse_page.cjs - a bare EventSource in Debian's headless Chromium against
// GET /sse, for test_sse_browser.py.
//
//   NODE_PATH=.../node_modules node sse_page.cjs BASEURL PUSHKEY USER FLAGFILE
//
// Steps (JSON lines): "open" once connected; "got2" after two notifications
// sent with POST /push; then the test restarts notifyd and publishes three
// more, and creates FLAGFILE; the browser reconnects by itself (retry:) with
// Last-Event-ID; "done" with every event seen, after one more live one.
'use strict';

const fs = require('fs');
const { say, push: pushTo, run, until } = require('./browser_lib.cjs');

const [base, pushKey, user, flag] = process.argv.slice(2);
const push = (body) => pushTo(base, pushKey, body);

const count = (page, type) => page.evaluate((t) => window.seen.filter((e) => e.type === t).length, type);


run(async (browser) => {
  const page = await browser.newPage();
  await page.goto(base + '/');
  await page.evaluate((u) => new Promise((resolve) => {
    window.seen = [];
    window.opens = 0;
    const es = new EventSource('/sse?userId=' + encodeURIComponent(u));
    const keep = (ev) => window.seen.push({ type: ev.type, data: ev.data, id: ev.lastEventId });
    es.onmessage = keep;
    es.addEventListener('recovered', keep);
    es.onopen = () => { window.opens++; resolve(); };
  }), user);
  say({ step: 'open' });
  await push({ user_id: user, n: 1 });
  await push({ broadcast: true, n: 2 });
  await until('2 messages', async () => (await count(page, 'message')) >= 2, 15000);
  say({ step: 'got2' });
  await until('the flag file', async () => fs.existsSync(flag), 60000);
  await until('recovered', async () => (await count(page, 'recovered')) >= 1, 30000);
  await push({ user_id: user, n: 6 });
  await until('6 messages', async () => (await count(page, 'message')) >= 6, 15000);
  say({ step: 'done', seen: await page.evaluate(() => window.seen),
    opens: await page.evaluate(() => window.opens) });
});
