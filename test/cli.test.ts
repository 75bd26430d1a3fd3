import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'tinyemo.js');

function run(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
}

describe('the tinyemo command', () => {
  test('--version prints the package version', () => {
    const r = run('--version');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });

  test('doctor --json is one JSON document on stdout with a passing self-check', () => {
    const r = run('doctor', '--json');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.selfCheck.ok).toBe(true);
    expect(['avx512', 'avx2', 'generic']).toContain(report.backend.isa);
    expect(report.backend.threads).toBeGreaterThan(0);
  });

  test("doctor reports the cache sizes the GEMMs block for, as the OS's getconf gives them", () => {
    const r = run('doctor', '--json');
    const caches = JSON.parse(r.stdout).backend.cpuCaches;
    const getconf = (name: string) => Number(spawnSync('getconf', [name], { encoding: 'utf8' }).stdout.trim());
    const l1 = process.platform === 'linux' ? getconf('LEVEL1_DCACHE_SIZE') : NaN;
    const l2 = process.platform === 'linux' ? getconf('LEVEL2_CACHE_SIZE') : NaN;
    if (caches.reported) {
      expect([caches.l1dBytes, caches.l2Bytes]).toEqual([l1, l2]);
    } else {
      // Nothing plausible reported (a VM may say 0): the documented defaults.
      expect([caches.l1dBytes, caches.l2Bytes]).toEqual([32 * 1024, 512 * 1024]);
    }
    expect(run('doctor').stdout).toMatch(new RegExp(`caches +.*L1d ${caches.l1dBytes / 1024} KB, L2 ${caches.l2Bytes / 1024} KB`));
  });

  test('doctor says whether bf16 products run here, and with --vision what they do to that tower', () => {
    const r = run('doctor', '--json', '--vision', path.join(__dirname, 'fixtures', 'vision', 'clip'));
    expect(r.status).toBe(0);
    const { bf16, backend } = JSON.parse(r.stdout);
    const here = backend.cpuFeatures.includes('avx512_bf16') && backend.isa === 'avx512';
    expect(bf16.available).toBe(here);
    if (!here) {
      expect(bf16.reason).toMatch(/AVX512_BF16/);
      return;
    }
    expect(bf16.embeddings.images).toBe(4);
    expect(bf16.embeddings.cosineMin).toBeGreaterThan(0.999);
    expect(bf16.embeddings.cosineMin).toBeLessThan(1);
    expect(bf16.embeddings.relError).toBeGreaterThan(1e-5);
    expect(bf16.embeddings.relError).toBeLessThan(3e-2);
    const forced = spawnSync(process.execPath, [bin, 'doctor', '--json'], { encoding: 'utf8', env: { ...process.env, TINYEMO_ISA: 'avx2' } });
    expect(JSON.parse(forced.stdout).bf16).toEqual({ available: false, reason: expect.stringMatching(/avx2 kernels/) });
  });

  test('TINYEMO_THREADS and TINYEMO_ISA are honoured', () => {
    const r = spawnSync(process.execPath, [bin, 'doctor', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, TINYEMO_THREADS: '3', TINYEMO_ISA: 'generic' },
    });
    const report = JSON.parse(r.stdout);
    expect(report.backend.threads).toBe(3);
    expect(report.backend.isa).toBe('generic');
    expect(report.selfCheck.ok).toBe(true);
  });

  test('TINYEMO_DEVICE=cuda without a CUDA build or device is a clear error, not a crash', () => {
    const r = spawnSync(process.execPath, [bin, 'doctor'], { encoding: 'utf8', env: { ...process.env, TINYEMO_DEVICE: 'cuda' } });
    expect(r.status).toBe(2);
    // Without build-cuda/ the build is missing; with it (CI compiles it) no device answers here.
    expect(r.stderr).toMatch(/TINYEMO_DEVICE=cuda, but (this installation has no CUDA build|no CUDA device answers)/);
  });

  test('an unknown command fails with a message on stderr', () => {
    const r = run('frobnicate');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown command/);
    expect(r.stdout).toBe('');
  });
});

test('every native source is in the one source list, and every listed file exists', () => {
  const list = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8')) as Record<string, string[] | string>;
  const listed = new Set(Object.values(list).filter(Array.isArray).flat());
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (/\.(cpp|cu)$/.test(e.name)) found.push(rel);
    }
  };
  walk('native');
  expect(found.filter((f) => !listed.has(f))).toEqual([]);
  expect([...listed].filter((f) => !fs.existsSync(path.join(root, f)))).toEqual([]);
});

test('AVX2 objects define no symbols the linker could share with portable code', () => {
  // An inline function compiled with -mavx2 and emitted as a weak symbol
  // could be picked by the linker for the portable kernels too, and crash a
  // CPU without AVX2. The AVX2 files must keep everything internal.
  const nm = spawnSync('nm', ['--version']);
  for (const isa of ['avx2', 'avx512']) {
    const dir = path.join(root, 'build', 'Release', 'obj.target', `tinyemo_${isa}`, 'native', 'cpu', isa);
    if (!fs.existsSync(dir) || nm.status !== 0) {
      console.warn(`skipped: no ${isa} object files from a local build, or no nm`);
      continue;
    }
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.o'))) {
      const out = spawnSync('nm', ['-C', path.join(dir, f)], { encoding: 'utf8' }).stdout;
      const weak = out.split('\n').filter((l) => / [WVuv] /.test(l));
      expect({ file: f, weak }).toEqual({ file: f, weak: [] });
    }
  }
});
