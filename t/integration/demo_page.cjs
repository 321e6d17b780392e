// demo_page.cjs - drives notifyd's demo page in Debian's headless Chromium
// with playwright-core, for test_demo_page.py.
//
//   NODE_PATH=.../node_modules node demo_page.cjs URL PUSHKEY PUSHTEXT AMQPTEXT SCREENSHOT PROFILEDIR
//
// Prints one JSON object per line on stdout as it goes:
//   {"step":"loaded","ids":[...]}              the page and the ids it has
//   {"step":"connected","status":"connected"}  after clicking Connect (user 3)
//   {"step":"pushed","sendstatus":"202 queued","log":[...]}
//   {"step":"amqp","log":[...],"consoleErrors":[...],"badResponses":[...]}
//                                             once AMQPTEXT shows in #log
//   {"step":"done","screenshot":PATH}
// or {"step":"error","message":...} (exit status 1).  The test publishes
// AMQPTEXT through RabbitMQ when it reads "pushed".
'use strict';

const { chromium } = require('playwright-core');

const [url, pushKey, pushText, amqpText, screenshot, profileDir] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const T = 15000;

async function logTexts(page) {
  return page.$$eval('#log li', (lis) => lis.map((li) => li.textContent));
}

(async () => {
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(profileDir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60000,
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    const consoleErrors = [];
    const badResponses = [];
    // "Failed to load resource" console lines are reported with their URL
    // through badResponses instead (the browser asks for /favicon.ico).
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('response', (r) => { if (r.status() >= 400) badResponses.push(r.status() + ' ' + r.url()); });

    const resp = await page.goto(url, { timeout: T });
    const ids = await page.$$eval('[id]', (els) => els.map((e) => e.id));
    say({ step: 'loaded', status: resp.status(), ids, title: await page.title() });

    await page.fill('#user', '3');
    await page.click('#connect');
    await page.waitForFunction(() => document.getElementById('status').textContent === 'connected',
      null, { timeout: T });
    say({ step: 'connected', status: await page.textContent('#status') });

    await page.fill('#pushkey', pushKey);
    await page.fill('#target', '3');
    await page.fill('#message', pushText);
    await page.click('#send');
    await page.waitForFunction((t) => [...document.querySelectorAll('#log li')]
      .some((li) => li.textContent.includes(t)), pushText, { timeout: T });
    await page.waitForFunction(() => document.getElementById('sendstatus').textContent !== '',
      null, { timeout: T });
    say({ step: 'pushed', sendstatus: await page.textContent('#sendstatus'), log: await logTexts(page) });

    await page.waitForFunction((t) => [...document.querySelectorAll('#log li')]
      .some((li) => li.textContent.includes(t)), amqpText, { timeout: T });
    say({ step: 'amqp', log: await logTexts(page), status: await page.textContent('#status'),
      consoleErrors, badResponses });

    await page.screenshot({ path: screenshot, fullPage: true });
    say({ step: 'done', screenshot });
    await ctx.close();
    process.exit(0);
  } catch (e) {
    say({ step: 'error', message: String(e && e.stack || e) });
    if (ctx) await ctx.close().catch(() => {});
    process.exit(1);
  }
})();
