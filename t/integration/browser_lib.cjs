// browser_lib.cjs - what the Chromium drivers of the integration tests
// share: launching Debian's headless Chromium, JSON-line steps, waiting
// for a condition, and sending a notification with POST /push from Node.
'use strict';

const { chromium } = require('playwright-core');

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    timeout: 60000,
  });
}

async function push(base, key, body) {
  const r = await fetch(base + '/push', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (r.status !== 202) throw new Error('push answered ' + r.status);
}

// Poll fn every 100 ms until it answers true; after ms, an error naming
// what was awaited.
async function until(what, fn, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out waiting for ' + what);
}

// Run main(browser) with a fresh browser; any failure is an "error" step
// and exit status 1.
async function run(main) {
  let browser;
  try {
    browser = await launch();
    await main(browser);
  } catch (e) {
    say({ step: 'error', message: String((e && e.stack) || e) });
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close();
  }
}

module.exports = { say, push, run, until };
