/** tinyemo: TinyEmo emotion classification and reasoning over a native core. */
export { TinyEmoError } from './errors';
export type { ErrorCode } from './errors';
export type { DType, StorageArray } from './dtype';
export { Tensor } from './tensor';
export type { Shape, FloatDType } from './tensor';
export { backendInfo, setThreads, setCpuIsa, hostBytesInUse } from './backend';
export type { BackendInfo, CpuIsa } from './backend';
export type { Activation } from './ops/activation';
export { gemm, gemmSync } from './ops/gemm';
export type { GemmOptions } from './ops/gemm';
