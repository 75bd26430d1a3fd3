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
export { activation, activationSync, swiglu, swigluSync, softmax, softmaxSync, add, addSync, scale, scaleSync } from './ops/activation';
export type { OutOption, SoftmaxOptions, AddOptions } from './ops/activation';
export { layerNorm, layerNormSync, rmsNorm, rmsNormSync } from './ops/norm';
export type { LayerNormOptions, RmsNormOptions } from './ops/norm';
export { rope, ropeSync } from './ops/rope';
export type { RopeOptions } from './ops/rope';
export { embedding, embeddingSync, patchEmbed, patchEmbedSync } from './ops/embedding';
export type { PatchEmbedOptions } from './ops/embedding';
export { l2Normalize, l2NormalizeSync, cosine, cosineSync, cosineTopk, cosineTopkSync } from './ops/metric';
export type { TopK, CosineTopkOptions } from './ops/metric';
export {
  projectionForward,
  projectionForwardSync,
  projectionForwardTrain,
  projectionForwardTrainSync,
  projectionBackward,
  projectionBackwardSync,
} from './ops/projection';
export type {
  ProjectionWeights,
  ProjectionSaved,
  ProjectionGrads,
  Dropout,
  ProjectionTrainOptions,
  ProjectionTrainResult,
  ProjectionBackwardOptions,
  ProjectionBackwardResult,
} from './ops/projection';
export { adamwStep, adamwStepSync } from './ops/optim';
export type { AdamWOptions, AdamWState } from './ops/optim';
export { attention, attentionSync } from './ops/attention';
export type { AttentionOptions } from './ops/attention';
export { WeightFile, withWeights } from './io/weights';
export type { WeightFormat, WeightInfo, OpenOptions, LoadOptions } from './io/weights';
export type { FileDType } from './io/dtypes';
export { writeSafetensors } from './io/safetensors';
export { ModelFolder, subConfig, readJsonFile } from './io/model_folder';
export type { JsonObject } from './io/model_folder';
export { TextTokenizer } from './text/tokenizer';
export type { SpecialToken, TokenizerSources, EncodeOptions } from './text/tokenizer';
export { IMAGE_TOKEN_INDEX, TEMPLATES, getTemplate, tokenizeSegments, fillSlots } from './text/templates';
export type { ChatMessage, ChatTemplate, Segment } from './text/templates';
export { pull, resolveModel } from './hub/client';
export type { PullOptions, PullResult } from './hub/client';
export { DEFAULT_REPOS } from './hub/defaults';
export type { PinnedRepo } from './hub/defaults';
export { hubCacheDir } from './hub/cache';
