// The bias report in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Builds a small model whose label space carries a planted
// association, runs `tinyemo bias` through the library, opens report.html and
// checks what a reader sees: the headings, the flagged rows, the heat map and
// group charts, no script and no request leaving the page.
//
//   npx tsc -p tsconfig.json && node test/browser/bias_report.browser.mjs [--screenshot docs/bias-report.png]
//
// Prints "browser: N passed, M failed" (or a "skipped" line when Chromium is
// missing) and exits non-zero on a failure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { check, chromiumOrSkip, finish, launch, require, root, screenshot } from './harness.mjs';

const chromiumPath = chromiumOrSkip();
const { Tensor, writeSafetensors, TextTokenizer, trainProjector, TRAIN_DEFAULTS } = require(path.join(root, 'dist', 'lib'));
const { runBias } = require(path.join(root, 'dist', 'lib', 'bias', 'run'));

// A seeded generator (xorshift), so the page is the same on every run.
let s = 0x2545f491;
const rnd = () => {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return ((s >>> 0) / 4294967296) * 2 - 1;
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-browser-'));
try {
  // A LLaMA-layout LLM: random table, with male words + joy along one direction and female words + the negative emotions along another.
  const tokCache = path.join(root, 'test', '.cache', 'tokenizers');
  if (!fs.existsSync(path.join(tokCache, 'expected.json'))) execFileSync(process.execPath, [path.join(root, 'scripts', 'fixtures', 'tokenizers.mjs'), tokCache]);
  const llm = path.join(tmp, 'llm');
  fs.mkdirSync(llm);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokCache, 'llama', f), path.join(llm, f));
  const tok = TextTokenizer.fromFolder(llm);
  const D = 24;
  const V = 32000;
  const table = Float32Array.from({ length: V * D }, () => 0.3 * rnd());
  const u = Float32Array.from({ length: D }, rnd);
  const v = Float32Array.from({ length: D }, rnd);
  const push = (words, dir) => {
    for (const w of words) for (const id of tok.encode(w, { addSpecialTokens: false })) for (let h = 0; h < D; ++h) table[id * D + h] += 2 * dir[h];
  };
  push(['man', 'men', 'boy', 'boys', 'he', 'him', 'his', 'father', 'son', 'brother', 'husband', 'male', 'joy', 'surprise'], u);
  push(['woman', 'women', 'girl', 'girls', 'she', 'her', 'hers', 'mother', 'daughter', 'sister', 'wife', 'female', 'anger', 'fear', 'sadness', 'disgust'], v);
  const t = Tensor.from(table, [V, D]);
  writeSafetensors(path.join(llm, 'model.safetensors'), { 'model.embed_tokens.weight': t });
  t.dispose();

  // Features: six emotion clusters; a "site" attribute that follows joy, a "camera" one that follows nothing.
  const classes = ['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise'];
  const data = path.join(tmp, 'data');
  const rows = ['id,site,camera'];
  const dim = 9;
  classes.forEach((c) => {
    fs.mkdirSync(path.join(data, c), { recursive: true });
    const centre = Float32Array.from({ length: dim }, () => 1.8 * rnd());
    for (let i = 0; i < 30; ++i) {
      const x = Tensor.from(
        Float32Array.from(centre, (m) => m + rnd()),
        [dim],
      );
      writeSafetensors(path.join(data, c, `${i}.safetensors`), { image_embeds: x });
      x.dispose();
      const site = (c === 'joy') === rnd() < 0.7 ? 'north' : 'south';
      rows.push(`${c}/${i},${site},${rnd() < 0 ? 'phone' : 'dslr'}`);
    }
  });
  const attrs = path.join(tmp, 'attrs.csv');
  fs.writeFileSync(attrs, rows.join('\n'));
  const model = path.join(tmp, 'model');
  await trainProjector({ ...TRAIN_DEFAULTS, data, out: model, llm, valSplit: 0, epochs: 6, batchSize: 16, lr: 3e-3 });
  const out = path.join(tmp, 'report');
  const report = await runBias({ model, data, attributes: attrs, out, permutations: 500, bootstrap: 300 });
  check('the run flags something to look at', report.counts.flagged > 0, `${report.counts.flagged} flagged`);

  const browser = await launch(chromiumPath);
  try {
    const page = await browser.newPage({ viewport: { width: 1240, height: 1000 } });
    const requests = [];
    const errors = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`file://${path.join(out, 'report.html')}`);
    check('title', (await page.title()) === 'tinyemo bias report');
    check('heading', (await page.textContent('h1')) === 'Bias report');
    const headings = await page.$$eval('h2', (hs) => hs.map((h) => h.textContent));
    for (const h of ['Flagged findings', 'Label × probe associations in the label space', 'Groups', 'All tests'])
      check(`section "${h}"`, headings.includes(h), headings.join(' | '));
    const flaggedRows = await page.$$eval('h2 + table tbody tr.flagged', (rs) => rs.length);
    check('one row per flagged finding', flaggedRows === report.counts.flagged, `${flaggedRows} rows, ${report.counts.flagged} flagged`);
    const svgs = await page.$$eval('svg', (ss) => ss.map((x) => x.getBoundingClientRect().width));
    check('heat map and group charts drawn', svgs.length >= 3 && svgs.every((w) => w > 100), JSON.stringify(svgs));
    const cells = await page.$$eval('svg rect[stroke="#ddd"]', (rs) => rs.length);
    check('heat map has a cell per label and probe set', cells === classes.length * report.probeSets.length, `${cells}`);
    check('no script in the page', (await page.$$('script')).length === 0);
    check('nothing fetched but the page itself', requests.every((r) => r.startsWith('file://')) && requests.length === 1, requests.join(', '));
    check('no errors in the console', errors.length === 0, errors.join('; '));
    const toReview = await page.$$eval('.tag.pending', (t) => t.length);
    check('flagged findings marked "to review"', toReview >= report.counts.pending, `${toReview}`);
    if (screenshot) {
      await page.screenshot({ path: screenshot, fullPage: false });
      console.log(`screenshot: ${screenshot}`);
    }
  } finally {
    await browser.close();
  }
} catch (e) {
  check('the browser test ran', false, e instanceof Error ? e.stack : String(e));
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
finish();
