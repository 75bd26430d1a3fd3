/**
 * The addon, loaded once per process, and the exact shape of what it exports.
 * Nothing outside lib/ should touch these raw functions: they take flags and
 * enum numbers, lib/ops/* gives them names and types.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from './errors';

export interface NativeTensorHandle {
  readonly dtype: number;
  readonly shape: number[];
  readonly strides: number[];
  readonly offset: number;
  readonly disposed: boolean;
  readonly storageBytes: number;
  /** -1 for host memory, else the CUDA device's ordinal. */
  readonly device: number;
  arrayBuffer(): ArrayBuffer;
  asStrided(shape: readonly number[], strides: readonly number[], offset: number): NativeTensorHandle;
  /** Without an offset the source fills the tensor exactly; with a byte offset it must fit there. */
  write(source: ArrayBufferView | ArrayBuffer, byteOffset?: number): void;
  read(dest: ArrayBufferView): void;
  dispose(): void;
}

export interface NativeTensorConstructor {
  new (dtype: number, shape: readonly number[], init: 'zeros' | 'empty' | ArrayBufferView | ArrayBuffer, device?: number): NativeTensorHandle;
}

/** Per-core cache sizes the GEMMs size their blocks from; `reported: false` when the OS did not say (defaults). */
export interface CpuCaches {
  l1dBytes: number;
  l2Bytes: number;
  reported: boolean;
}

export interface NativeInfo {
  version: string;
  abiVersion: number;
  isa: string;
  cpuFeatures: string;
  cpuCaches: CpuCaches;
  threads: number;
  cudaDevices: number;
  /** e.g. "NVIDIA H200 (sm_90)", one per device. */
  cudaDeviceNames: string[];
  cudaTf32: boolean;
  build: 'cpu' | 'cuda';
  napiVersion: number;
}

/** Ops queued from JavaScript, run in order as one native job (lib/ops/run.ts's OpBatch holds one). */
export interface NativeOpBatchHandle {
  readonly size: number;
  /** The queued ops, in order; the batch is empty again after. */
  run(async: boolean): Promise<void> | undefined;
  /** Drops the queued ops unrun. */
  clear(): void;
}

type T = NativeTensorHandle;
type Maybe<X> = X | null;
/** How an op runs, its last argument: true returns a Promise, false runs on this thread, a batch queues it. */
export type RunMode = boolean | NativeOpBatchHandle;
type Op<Args extends unknown[]> = (...args: [...Args, RunMode]) => Promise<void> | undefined;

export interface NativeBinding {
  NativeTensor: NativeTensorConstructor;
  OpBatch: new () => NativeOpBatchHandle;
  info(): NativeInfo;
  setThreads(n: number): void;
  setIsa(isa: string): void;
  setCudaTf32(allow: boolean): void;
  hostBytesInUse(): number;
  /** Bytes of CUDA device memory held by tensors (0 in a CPU build). */
  deviceBytesInUse(): number;
  /** Machine probe: vector FMA GFLOP/s and parallel read GB/s (0 bytes skips the read). */
  probe(threads: number, iters: number, readBytes: number): { gflops: number; readGBs: number };

  copy: Op<[src: T, dst: T]>;
  gemm: Op<[a: T, b: T, bias: Maybe<T>, c: T, aTrans: boolean, bTrans: boolean, alpha: number, beta: number, act: number]>;
  /** The panel width of packed weights under the instruction set in use. */
  gemmPackWidth(): number;
  gemmPackB: Op<[b: T, packed: T]>;
  gemmPacked: Op<[a: T, packed: T, bias: Maybe<T>, c: T, aTrans: boolean, alpha: number, beta: number, act: number]>;
  activation: Op<[x: T, act: number, y: T]>;
  swiglu: Op<[gate: T, up: T, y: T]>;
  softmax: Op<[x: T, scale: number, y: T]>;
  add: Op<[a: T, b: T, alpha: number, y: T]>;
  scale: Op<[x: T, alpha: number, y: T]>;
  dropoutApply: Op<[x: T, p: number, seed: Seed, accumulate: boolean, y: T]>;
  layerNorm: Op<[x: T, weight: Maybe<T>, bias: Maybe<T>, eps: number, y: T]>;
  rmsNorm: Op<[x: T, weight: Maybe<T>, eps: number, y: T]>;
  rope: Op<[x: T, positions: Maybe<T>, offset: number, rotaryDim: number, theta: number, y: T]>;
  resample: Op<[src: T, filter: number, dst: T]>;
  embedding: Op<[table: T, ids: T, out: T]>;
  patchEmbed: Op<[pixels: T, weight: T, bias: Maybe<T>, out: T]>;
  l2Normalize: Op<[x: T, eps: number, y: T]>;
  cosine: Op<[queries: T, table: T, out: T]>;
  cosineTopk: Op<[queries: T, table: T, tableNormalized: boolean, k: number, scores: T, indices: T]>;
  projectionForward: Op<[x: T, weights: NativeProjectionWeights, y: T]>;
  projectionForwardTrain: Op<[x: T, weights: NativeProjectionWeights, momentum: number, dropP: number, seed: Seed, saved: NativeProjectionSaved, y: T]>;
  metricLoss: Op<[y: T, targets: T, labels: T, kind: number, tau: number, grad: T, loss: T]>;
  crossEntropy: Op<[logits: T, targets: T, scale: number, grad: T, loss: T]>;
  attentionBackward: Op<[q: T, k: T, v: T, out: T, dout: T, dq: T, dk: T, dv: T, scale: number, causal: boolean]>;
  layerNormBackward: Op<[x: T, weight: Maybe<T>, eps: number, dy: T, dx: T, dweight: Maybe<T>, dbias: Maybe<T>, accumulate: boolean]>;
  rmsNormBackward: Op<[x: T, weight: Maybe<T>, eps: number, dy: T, dx: T, dweight: Maybe<T>, accumulate: boolean]>;
  activationBackward: Op<[x: T, dy: T, act: number, dx: T]>;
  swigluBackward: Op<[gate: T, up: T, dy: T, dgate: T, dup: T]>;
  embeddingBackward: Op<[ids: T, dy: T, dtable: T, accumulate: boolean]>;
  projectionBackward: Op<[dy: T, x: T, weights: NativeProjectionWeights, saved: NativeProjectionSaved, dropP: number, seed: Seed, grads: NativeProjectionGrads, dx: Maybe<T>]>;
  attention: Op<[q: T, k: T, v: T, out: T, scale: number, causal: boolean]>;
  adamwStep: Op<[params: T[], grads: T[], expAvg: T[], expAvgSq: T[], lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number]>;
}

type Seed = number | bigint;
/** w1, b1, bnWeight, bnBias, runningMean, runningVar, w2, b2, eps. */
/** The projector's weights as the binding reads them: by name. */
export interface NativeProjectionWeights {
  w1: T;
  b1: T;
  bnWeight: T;
  bnBias: T;
  runningMean: T;
  runningVar: T;
  w2: T;
  b2: T;
  eps: number;
}
export interface NativeProjectionSaved {
  z1: T;
  mean: T;
  rstd: T;
}
export interface NativeProjectionGrads {
  w1: T;
  b1: T;
  bnWeight: T;
  bnBias: T;
  w2: T;
  b2: T;
}

/** The package's root folder (holds package.json, build/, prebuilds/). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'tinyemo') return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new TinyEmoError('NATIVE_LOAD', `cannot find the tinyemo package root above ${__dirname}`);
    dir = up;
  }
}

let loaded: { binding: NativeBinding; path: string } | undefined;

/** Where `npm run build:cuda` puts the CUDA addon (never build/Release, which node-gyp-build would pick). */
export function cudaAddonPath(root: string = packageRoot()): string {
  return path.join(root, 'build-cuda', 'Release', 'tinyemo.node');
}

/**
 * Whether an NVIDIA driver is installed, without loading anything: the CUDA
 * addon is only tried where one is, so CPU machines never touch it.
 */
function nvidiaDriverPresent(): boolean {
  if (process.platform === 'linux') return fs.existsSync('/proc/driver/nvidia/version');
  if (process.platform === 'win32') return fs.existsSync(path.join(process.env.SystemRoot ?? 'C:\\Windows', 'System32', 'nvcuda.dll'));
  return false;
}

function loadCpu(root: string): { binding: NativeBinding; path: string } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const gypBuild = require('node-gyp-build') as { (dir: string): unknown; path(dir: string): string };
    const file = gypBuild.path(root);
    return { binding: gypBuild(root) as NativeBinding, path: file };
  } catch (e) {
    throw new TinyEmoError(
      'NATIVE_LOAD',
      `could not load the tinyemo native addon from ${root}: ${(e as Error).message}. ` +
        'No prebuilt binary matches this platform, and it was not built at install time. Build it with ' +
        "`npm rebuild tinyemo` (npm 11 skips dependencies' install scripts unless allowed: " +
        '`npm install-scripts approve tinyemo`), or `npm run build:native` in a clone.',
      { cause: e },
    );
  }
}

/**
 * Exactly one addon per process: the CUDA build (a superset of the CPU one)
 * when it exists and a driver is installed, else the CPU build. A CUDA build
 * without a device answering runs everything on the CPU.
 * TINYEMO_DEVICE=cpu never loads the CUDA build; =cuda insists on a device.
 */
function load(): { binding: NativeBinding; path: string } {
  const root = packageRoot();
  const forced = process.env.TINYEMO_DEVICE;
  if (forced !== undefined && forced !== 'cpu' && forced !== 'cuda' && forced !== '') {
    throw new TinyEmoError('INVALID_ARGUMENT', `TINYEMO_DEVICE must be 'cpu' or 'cuda', not '${forced}'`);
  }
  // TINYEMO_CUDA_ADDON names a CUDA build to use even where no driver is
  // installed (testing a CUDA build on a CPU machine: it then runs on the CPU).
  const named = process.env.TINYEMO_CUDA_ADDON;
  const cudaFile = named ? path.resolve(named) : cudaAddonPath(root);
  const haveCudaBuild = fs.existsSync(cudaFile);
  if (named && !haveCudaBuild) throw new TinyEmoError('NATIVE_LOAD', `TINYEMO_CUDA_ADDON: no file at ${cudaFile}`);
  if (forced !== 'cpu' && haveCudaBuild && (nvidiaDriverPresent() || forced === 'cuda' || named)) {
    let b: NativeBinding;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      b = require(cudaFile) as NativeBinding;
    } catch (e) {
      if (forced === 'cuda') throw new TinyEmoError('NATIVE_LOAD', `TINYEMO_DEVICE=cuda: could not load ${cudaFile}: ${(e as Error).message}`, { cause: e });
      // A broken CUDA build must not take the CPU path down with it, but it is said once.
      process.emitWarning(`the CUDA build at ${cudaFile} could not be loaded (${(e as Error).message}); using the CPU build`, { code: 'TINYEMO_CUDA_LOAD' });
      return loadCpu(root);
    }
    if (forced === 'cuda' && b.info().cudaDevices === 0) {
      throw new TinyEmoError('DEVICE', `TINYEMO_DEVICE=cuda, but no CUDA device answers (the CUDA build at ${cudaFile} found none)`);
    }
    return { binding: b, path: cudaFile };
  }
  if (forced === 'cuda') {
    throw new TinyEmoError('DEVICE', `TINYEMO_DEVICE=cuda, but this installation has no CUDA build of the addon (${cudaFile}; see the README: npm run build:cuda)`);
  }
  return loadCpu(root);
}

/** The loaded addon (loads it on first use). */
export function binding(): NativeBinding {
  if (!loaded) loaded = load();
  return loaded.binding;
}

export function addonPath(): string {
  binding();
  return loaded!.path;
}
