/**
 * `tinyemo synth` against a teacher imitation on 127.0.0.1 that answers well,
 * badly (malformed, wrong label), with 429s and 500s, and too slowly; then a
 * run killed mid-way and resumed: every id ends up in the file exactly once.
 */
import { spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';

import sharp from 'sharp';

import type { SynthStats } from '../lib/data/synth';
import { parseReasoning } from '../lib/text/emotion_prompts';
import { readInstructFile } from '../lib/data/instruct';

const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');

type Behaviour = 'good' | 'malformed-once' | 'wrong' | '429-twice' | '500-once' | 'slow-once' | 'always-500';

let tmp: string;
let data: string;
let server: http.Server;
let url = '';
/** base64 of each image -> how the teacher treats it. */
const behaviourOf = new Map<string, Behaviour>();
const seen = new Map<string, number>();
let delayAll = 0;
let requests = 0;
let badAuth = 0;

const FILES: Array<[string, Behaviour, [number, number, number]]> = [
  ['joy/a.png', 'good', [250, 200, 40]],
  ['joy/b.png', 'malformed-once', [240, 180, 60]],
  ['joy/c.png', '429-twice', [230, 220, 20]],
  ['sadness/d.png', 'good', [30, 40, 120]],
  ['sadness/e.png', 'wrong', [20, 30, 140]],
  ['anger/f.png', '500-once', [200, 20, 20]],
  ['anger/g.png', 'slow-once', [180, 10, 30]],
  ['fear/h.png', 'always-500', [40, 40, 40]],
  ['fear/i.png', 'good', [60, 50, 70]],
];

/** The command as a child process; asynchronous, because the teacher answers from this very process. */
function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, TINYEMO_TEACHER_API_KEY: 'k-123' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-synth-'));
  data = path.join(tmp, 'images');
  for (const [rel, b, [r, g, bl]] of FILES) {
    fs.mkdirSync(path.dirname(path.join(data, rel)), { recursive: true });
    const png = await sharp({ create: { width: 8, height: 6, channels: 3, background: { r, g, b: bl } } })
      .png()
      .toBuffer();
    fs.writeFileSync(path.join(data, rel), png);
    behaviourOf.set(png.toString('base64'), b);
  }
  fs.writeFileSync(path.join(data, 'joy', 'broken.png'), 'not a png');
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests += 1;
      if (req.url !== '/v1/chat/completions' || req.headers.authorization !== 'Bearer k-123') {
        badAuth += 1;
        res.writeHead(401).end('{}');
        return;
      }
      const msg = (JSON.parse(body) as { messages: Array<{ content: Array<{ type: string; text?: string; image_url?: { url: string } }> }> }).messages[0];
      const prompt = msg.content.find((p) => p.type === 'text')!.text!;
      const dataUrl = msg.content.find((p) => p.type === 'image_url')!.image_url!.url;
      const b64 = dataUrl.replace(/^data:image\/png;base64,/, '');
      const b = behaviourOf.get(b64) ?? 'good';
      const n = (seen.get(b64) ?? 0) + 1;
      seen.set(b64, n);
      const gold = /Predicted Label: (\w+)\s*$/.exec(prompt)?.[1] ?? '';
      const reply = (text: string) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: text } }] }));
      const good = () =>
        prompt.startsWith('Describe')
          ? `A plain colour field (${createHash('sha256').update(b64).digest('hex').slice(0, 8)}).`
          : `Reasoning: The colours feel ${gold}-like and the scene is plain.\n\nPredicted Label: ${gold}`;
      const answer = () => {
        if (b === 'wrong') return reply(`Reasoning: It looks cheerful.\n\nPredicted Label: ${gold === 'joy' ? 'anger' : 'joy'}`);
        if (b === 'malformed-once' && n === 1) return reply('I think this is happy.');
        if (b === '429-twice' && n <= 2) return res.writeHead(429, { 'retry-after': '0' }).end('{}');
        if (b === '500-once' && n === 1) return res.writeHead(500).end('oops');
        if (b === 'always-500') return res.writeHead(503).end('down');
        return reply(good());
      };
      if (b === 'slow-once' && n === 1) setTimeout(answer, 2500);
      else if (delayAll) setTimeout(answer, delayAll);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('reason: good answers kept in the exact form, bad ones retried or discarded with reasons, transient errors retried', async () => {
  const out = path.join(tmp, 'reason.jsonl');
  const r = await run(
    'synth',
    '--data',
    data,
    '--task',
    'reason',
    '--teacher',
    url,
    '--teacher-model',
    'mini',
    '--out',
    out,
    '--concurrency',
    '3',
    '--timeout',
    '1',
    '--retries',
    '2',
    '--json',
  );
  expect(r.status).toBe(0);
  const s = JSON.parse(r.stdout) as SynthStats;
  // The CLI's one rule: each image given up on is listed, and said once on stderr.
  expect(s.skipped.map((x) => x.reason).sort()).toEqual(['teacher error 503', 'unreadable image (INVALID_FILE)', 'wrong label']);
  expect(r.stderr.trim().split('\n').sort()).toEqual(s.skipped.map((x) => `skipped ${x.file}: ${x.reason}`).sort());
  expect(badAuth).toBe(0);
  expect(s).toMatchObject({ task: 'reason', images: 10, written: 7, resumed: 0, records: 7, duplicates: 0 });
  expect(s.rejected).toEqual({ 'wrong label': 1, 'teacher error 503': 1, 'unreadable image (INVALID_FILE)': 1 });
  expect(s.retriedAnswers).toMatchObject({ 'not in "Reasoning: ...\\n\\nPredicted Label: X" form': 1, 'wrong label': 2 });
  // 429 twice, 500 once, the slow answer once, 503 three times (the first try and two retries).
  expect(s.transientRetries).toBe(2 + 1 + 1 + 2);
  expect(s.perLabel).toEqual({ joy: 3, sadness: 1, anger: 2, fear: 1 });
  const { records, invalid } = readInstructFile(out, { imageRoot: data });
  expect(invalid).toEqual([]);
  expect(records.map((x) => x.id).sort()).toEqual(['reason:anger/f', 'reason:anger/g', 'reason:fear/i', 'reason:joy/a', 'reason:joy/b', 'reason:joy/c', 'reason:sadness/d']);
  for (const x of records) {
    const human = x.conversations[0].value;
    expect(human.startsWith('<image>\nProvide emotional reasoning about the image')).toBe(true);
    const listed = /Labels: \[(.*)\]/.exec(human)![1].split(', ');
    expect(listed).toContain(x.label);
    expect(listed.length).toBeGreaterThanOrEqual(2);
    expect(human).toMatch(new RegExp(`Important: note that the correct label is ${String(x.label)}\\.$`));
    expect(parseReasoning(x.conversations[1].value)).toMatchObject({ label: x.label });
    expect(x.teacher).toBe('mini');
  }
  expect(fs.readFileSync(`${out}.stats.svg`, 'utf8')).toContain('<svg');
  expect(JSON.parse(fs.readFileSync(`${out}.stats.json`, 'utf8'))).toEqual(s);
  // A second run finds everything done and asks nothing.
  const before = requests;
  const again = JSON.parse((await run('synth', '--data', data, '--task', 'reason', '--teacher', url, '--teacher-model', 'mini', '--out', out, '--json')).stdout) as SynthStats;
  expect(again.written).toBe(0);
  expect(again.resumed).toBe(7);
  expect(requests - before).toBeLessThanOrEqual(3 * 3 + 1); // only the three rejected images are tried again
});

test('caption: identical images give one record (deduplicated); the answer is the record', async () => {
  const dup = path.join(tmp, 'dup');
  fs.mkdirSync(path.join(dup, 'joy'), { recursive: true });
  fs.mkdirSync(path.join(dup, 'calm'), { recursive: true });
  fs.copyFileSync(path.join(data, 'joy', 'a.png'), path.join(dup, 'joy', 'x.png'));
  fs.copyFileSync(path.join(data, 'joy', 'a.png'), path.join(dup, 'joy', 'y.png'));
  fs.copyFileSync(path.join(data, 'sadness', 'd.png'), path.join(dup, 'calm', 'z.png'));
  const out = path.join(tmp, 'caption.jsonl');
  const r = await run('synth', '--data', dup, '--task', 'caption', '--teacher', url, '--teacher-model', 'mini', '--out', out, '--json');
  const s = JSON.parse(r.stdout) as SynthStats;
  expect(s).toMatchObject({ written: 2, duplicates: 1, records: 2 });
  const { records } = readInstructFile(out);
  expect(records[0].conversations[0].value).toBe('<image>\nDescribe the image.');
});

test('killed mid-run and resumed (with a torn last line): every id exactly once', async () => {
  delayAll = 120;
  const out = path.join(tmp, 'killed.jsonl');
  const child = spawn(
    process.execPath,
    [bin, 'synth', '--data', data, '--task', 'reason', '--teacher', url, '--teacher-model', 'mini', '--out', out, '--concurrency', '1', '--timeout', '5', '--retries', '1'],
    {
      env: { ...process.env, TINYEMO_TEACHER_API_KEY: 'k-123' },
      stdio: 'ignore',
    },
  );
  const t0 = Date.now();
  while (Date.now() - t0 < 20000) {
    await new Promise((r) => setTimeout(r, 50));
    if (fs.existsSync(out) && fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length >= 2) break;
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  delayAll = 0;
  const partial = fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
  expect(partial).toBeGreaterThanOrEqual(2);
  expect(partial).toBeLessThan(7);
  fs.appendFileSync(out, '{"id": "reason:joy/torn", "conv'); // a crash in the middle of a write
  const r = await run('synth', '--data', data, '--task', 'reason', '--teacher', url, '--teacher-model', 'mini', '--out', out, '--retries', '1', '--json');
  expect(r.status).toBe(0);
  const s = JSON.parse(r.stdout) as SynthStats;
  expect(s.repairedBytes).toBe(31);
  expect(s.resumed).toBe(partial);
  const lines = fs.readFileSync(out, 'utf8').split('\n').filter(Boolean);
  const ids = lines.map((l) => (JSON.parse(l) as { id: string }).id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.sort()).toEqual(['reason:anger/f', 'reason:anger/g', 'reason:fear/i', 'reason:joy/a', 'reason:joy/b', 'reason:joy/c', 'reason:sadness/d']);
});

test('a teacher unreachable for every image: no record, each image reported, exit 2', async () => {
  const out = path.join(tmp, 'nobody.jsonl');
  const r = await run('synth', '--data', data, '--task', 'caption', '--teacher', 'http://127.0.0.1:1/v1', '--teacher-model', 'm', '--out', out, '--retries', '0', '--json');
  expect(r.status).toBe(2);
  const s = JSON.parse(r.stdout) as SynthStats;
  expect(s.records).toBe(0);
  expect(s.skipped.length).toBe(s.images);
  expect(r.stderr).toMatch(/skipped joy\/a\.\w+: teacher unreachable or too slow/);
  expect(r.stderr).toMatch(/tinyemo: no result: all \d+ inputs were skipped/);
  // The statistics picture keeps the whole reason.
  expect(fs.readFileSync(`${out}.stats.svg`, 'utf8')).toContain('>teacher unreachable or too slow</text>');
});

test('mistakes: no teacher, a bad URL, an unknown task, a file that is not ours', async () => {
  expect((await run('synth', '--data', data, '--task', 'reason', '--out', path.join(tmp, 'x.jsonl'))).stderr).toMatch(/give --teacher URL/);
  expect((await run('synth', '--data', data, '--task', 'reason', '--teacher', 'ftp://x', '--teacher-model', 'm', '--out', path.join(tmp, 'x.jsonl'))).stderr).toMatch(
    /--teacher must be http\(s\)/,
  );
  expect((await run('synth', '--data', data, '--task', 'poem', '--teacher', url, '--teacher-model', 'm', '--out', path.join(tmp, 'x.jsonl'))).stderr).toMatch(
    /--task is one of caption, vqa, sqa, reason, not "poem" \[INVALID_ARGUMENT\]/,
  );
  const notOurs = path.join(tmp, 'notours.jsonl');
  fs.writeFileSync(notOurs, 'hello\n');
  expect((await run('synth', '--data', data, '--task', 'caption', '--teacher', url, '--teacher-model', 'm', '--out', notOurs)).stderr).toMatch(
    /line 1 is not JSON \(not a file this command wrote\?\) \[INVALID_FILE\]/,
  );
});
