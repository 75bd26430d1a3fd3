/** Which build of the native core is loaded, on which device, with how many threads. */
import { callNative, invalid } from './errors';
import { addonPath, binding } from './native';
import type { CpuCaches } from './native';

export type { CpuCaches };

export type CpuIsa = 'avx512' | 'avx2' | 'generic';

export interface BackendInfo {
  /** tinyemo's native core version. */
  version: string;
  /** 'cpu' for the CPU addon, 'cuda' for the CUDA addon (a superset). */
  build: 'cpu' | 'cuda';
  /**
   * 'cuda' when the CUDA build is loaded and a device answers (and TINYEMO_DEVICE is not 'cpu'): the place
   * for tensors meant for the GPU. An op runs where its tensors are; the models still run on the CPU.
   */
  device: 'cpu' | 'cuda';
  /** The CPU kernels in use. */
  isa: CpuIsa;
  cpuFeatures: string[];
  /** Per-core L1d and L2 sizes, from which the GEMMs choose their cache blocking. */
  cpuCaches: CpuCaches;
  /** Threads of the native pool (TINYEMO_THREADS overrides the core count). */
  threads: number;
  cudaDevices: number;
  /** Name and compute capability of each CUDA device, e.g. "NVIDIA H200 (sm_90)". */
  cudaDeviceNames: string[];
  /**
   * Whether f32 GEMMs on the GPU use TF32 tensor cores (10-bit mantissa products, f32 sums); off unless
   * TINYEMO_TF32=1 or setCudaTf32(true), as PyTorch's matmul default. 16-bit weights always use tensor cores.
   */
  cudaTf32: boolean;
  napiVersion: number;
  addonPath: string;
}

export function backendInfo(): BackendInfo {
  const i = binding().info();
  return {
    version: i.version,
    build: i.build,
    device: i.cudaDevices > 0 && process.env.TINYEMO_DEVICE !== 'cpu' ? 'cuda' : 'cpu',
    isa: i.isa as CpuIsa,
    cpuFeatures: i.cpuFeatures.split(' ').filter((s) => s.length > 0),
    cpuCaches: i.cpuCaches,
    threads: i.threads,
    cudaDevices: i.cudaDevices,
    cudaDeviceNames: i.cudaDeviceNames ?? [],
    cudaTf32: i.cudaTf32 ?? false,
    napiVersion: i.napiVersion,
    addonPath: addonPath(),
  };
}

/**
 * Where models put their weights unless told otherwise: 'cuda' when the CUDA
 * build is loaded and a device answers (TINYEMO_DEVICE=cpu says no), else 'cpu'.
 */
export function defaultDevice(): 'cpu' | 'cuda' {
  return backendInfo().device;
}

/** Resizes the native thread pool (waits for running work). */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw invalid('threads must be an integer in 1..1024');
  callNative(() => binding().setThreads(n));
}

/**
 * Chooses the CPU kernels: 'avx512' (default where the CPU and OS support
 * AVX-512 F/DQ/BW/VL), 'avx2' (AVX2+FMA+F16C) or the portable 'generic' ones.
 * Mainly for testing them against each other.
 */
export function setCpuIsa(isa: CpuIsa): void {
  if (isa !== 'avx512' && isa !== 'avx2' && isa !== 'generic') throw invalid(`isa must be 'avx512', 'avx2' or 'generic'`);
  callNative(() => binding().setIsa(isa));
}

/**
 * Lets f32 GEMMs on the GPU use TF32 tensor cores (faster, ~1e-3 relative error) or keeps them exact f32
 * (the default). No effect without a CUDA device; backendInfo().cudaTf32 says what is in force.
 */
export function setCudaTf32(allow: boolean): void {
  if (typeof allow !== 'boolean') throw invalid('allow must be a boolean');
  callNative(() => binding().setCudaTf32(allow));
}

/** Bytes of host memory held by native tensors and their views right now. */
export function hostBytesInUse(): number {
  return binding().hostBytesInUse();
}

/** Bytes of GPU memory held by tensors right now, all devices (0 in the CPU build). */
export function deviceBytesInUse(): number {
  return binding().deviceBytesInUse();
}
