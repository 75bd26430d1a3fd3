// The demo page of `tinyemo serve` in a real browser: Debian's Chromium,
// headless, driven by playwright-core, against a server on 127.0.0.1 with small
// real models. Chooses an image; checks that the label bars appear with the
// API's scores and that the reasoning streams in (several updates) to the
// API's text; shows a refused file's error on the page; no request leaves the
// server, no script error.
//
//   npx tsc -p tsconfig.json && node test/browser/serve_demo.browser.mjs [--screenshot docs/serve-demo.png]
//
// Prints "browser: N passed, M failed" (or a "skipped" line when Chromium is
// missing) and exits non-zero on a failure.
import fs from 'node:fs';
import path from 'node:path';

import { check, chromiumOrSkip, finish, launch, require, root, screenshot } from './harness.mjs';

const chromiumPath = chromiumOrSkip();
const { makeServeFixture, IMAGES } = require(path.join(root, 'dist', 'test', 'helpers', 'serve_fixture'));
const { ServeModels } = require(path.join(root, 'dist', 'lib', 'serve', 'models'));
const { startServer, SERVE_DEFAULTS } = require(path.join(root, 'dist', 'lib', 'serve', 'server'));

const fx = await makeServeFixture('tinyemo-demo-');
const models = ServeModels.load({ model: fx.model, mllm: fx.mllm });
const server = await startServer(models, { ...SERVE_DEFAULTS, port: 0 });
const photo = path.join(IMAGES, 'photo_640x480.jpg');
const browser = await launch(chromiumPath);
try {
  // What the API answers for the same image: the page must show exactly this.
  const body = fs.readFileSync(photo);
  const api = await (await fetch(`${server.url}/v1/classify?top_k=${models.labels.length}`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg' } })).json();
  const reasoned = await (await fetch(`${server.url}/v1/reason`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg' } })).json();

  const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
  const outside = [];
  const errors = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url) && !r.url().startsWith('blob:')) outside.push(r.url());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('ready'));
  check('the page says the server is ready, with its labels', (await page.textContent('#status')).includes(models.labels.join(', ')));

  // Count the reasoning's updates as they happen.
  await page.evaluate(() => {
    window.__updates = 0;
    new MutationObserver(() => (window.__updates += 1)).observe(document.getElementById('reasoning'), { childList: true, characterData: true, subtree: true });
  });
  await page.setInputFiles('#file', photo);
  await page.waitForSelector('.bar');
  const bars = await page.$$eval('.bar', (rows) => rows.map((r) => ({ label: r.dataset.label, score: r.querySelector('span:last-child').textContent })));
  const want = api.results[0].predictions.map((p) => ({ label: p.label, score: p.score.toFixed(3) }));
  check('the bars show the API scores, best first', JSON.stringify(bars) === JSON.stringify(want), `${JSON.stringify(bars)} vs ${JSON.stringify(want)}`);
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('done'), null, { timeout: 60000 });
  const text = await page.textContent('#reasoning');
  check('the reasoning on the page is the API text', text === reasoned.text, `${text.slice(0, 60)} vs ${reasoned.text.slice(0, 60)}`);
  const updates = await page.evaluate(() => window.__updates);
  check('the reasoning streamed in (many updates, not one)', updates > 10, `${updates} updates`);
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);
  }

  // A refused file: the server's reason is shown on the page.
  const svg = path.join(fx.tmp, 'drawing.svg');
  fs.writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>');
  await page.setInputFiles('#file', svg);
  await page.waitForSelector('#error', { state: 'visible' });
  check('a refused image shows the server reason', /svg images are not accepted.*415/.test(await page.textContent('#error')), await page.textContent('#error'));
  check('no request left the server', outside.length === 0, outside.join(', '));
  check('no script error', errors.filter((e) => !/415/.test(e)).length === 0, errors.join(' | '));
} catch (e) {
  check('the run', false, e.stack ?? String(e));
} finally {
  await browser.close();
  await server.close();
  models.dispose();
  fs.rmSync(fx.tmp, { recursive: true, force: true });
}
finish();
