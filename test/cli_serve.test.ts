/**
 * `tinyemo serve` as a process: it says where it listens, `tinyemo synth`
 * uses it as its teacher, and SIGTERM lets the request in flight finish,
 * refuses new ones, and exits 0.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { IMAGES, ServeFixture, makeServeFixture, tinyemoBin } from './helpers/serve_fixture';

let fx: ServeFixture;
beforeAll(async () => {
  fx = await makeServeFixture('tinyemo-cli-serve-');
}, 120000);
afterAll(() => fs.rmSync(fx.tmp, { recursive: true, force: true }));

interface Served {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts the command and resolves once it says where it listens. */
function serve(...args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [tinyemoBin, 'serve', '--model', fx.model, '--mllm', fx.mllm, '--port', '0', ...args]);
  let err = '';
  const exited = new Promise<number | null>((r) => child.on('close', r));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1], stderr: () => err, exited });
    });
    void exited.then((code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tinyemoBin, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('tinyemo synth takes the server as its teacher (OpenAI-compatible chat with images)', async () => {
  const s = await serve();
  try {
    expect(s.stderr()).toMatch(/\/v1\/classify, \/v1\/reason, \/v1\/chat\/completions; API key off/);
    const data = path.join(fx.tmp, 'synth-images');
    for (const [cls, f] of [
      ['joy', 'photo_640x480.jpg'],
      ['sadness', 'grey_225x224.png'],
    ]) {
      fs.mkdirSync(path.join(data, cls), { recursive: true });
      fs.copyFileSync(path.join(IMAGES, f), path.join(data, cls, f));
    }
    const out = path.join(fx.tmp, 'captions.jsonl');
    const r = await run('synth', '--data', data, '--task', 'caption', '--teacher', `${s.url}/v1`, '--teacher-model', 'tinyllava', '--out', out, '--json');
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    const records = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; conversations: Array<{ from: string; value: string }> });
    expect(records.map((x) => x.id).sort()).toEqual(['caption:joy/photo_640x480', 'caption:sadness/grey_225x224']);
    for (const x of records) expect(x.conversations[1].value.length).toBeGreaterThan(0);
  } finally {
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  }
});

test('SIGTERM: the request in flight finishes, new connections are refused, exit 0', async () => {
  const s = await serve('--shutdown-s', '20');
  const photo = fs.readFileSync(path.join(IMAGES, 'photo_640x480.jpg'));
  const inFlight = fetch(`${s.url}/v1/reason?max_tokens=1500`, { method: 'POST', body: photo, headers: { 'content-type': 'image/jpeg', connection: 'close' } });
  await new Promise((r) => setTimeout(r, 400));
  s.child.kill('SIGTERM');
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(((await res.json()) as { tokens: number }).tokens).toBe(1500);
  expect(await s.exited).toBe(0);
  expect(s.stderr()).toMatch(/SIGTERM: no new requests; finishing those in flight/);
  expect(s.stderr()).toMatch(/stopped/);
  await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
}, 60000);

test('bad flags are refused before anything loads', () => {
  const bad = (args: string[], why: RegExp) => {
    const r = spawnSync(process.execPath, [tinyemoBin, 'serve', '--model', fx.model, ...args], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
  };
  bad(['--port', '70000'], /--port takes 0 to 65535/);
  bad(['--api-key', 'short'], /API key must be 8 to 512 printable characters/);
  bad(['--max-queue', '0'], /--max-queue takes a positive number/);
});
