/** tinyemo: TinyEmo emotion classification and reasoning over a native core. */
export { TinyEmoError } from './errors';
export type { ErrorCode } from './errors';
export type { DType, StorageArray } from './dtype';
export { Tensor } from './tensor';
export type { Device } from './tensor';
export type { Shape, FloatDType } from './tensor';
export { backendInfo, defaultDevice, deviceBytesInUse, setThreads, setCpuIsa, setCudaTf32, hostBytesInUse } from './backend';
export type { BackendInfo, CpuCaches, CpuIsa } from './backend';
export type { Activation } from './ops/activation';
export { PackedWeight, checkPrecision, gemm, gemmSync, gemmQueued } from './ops/gemm';
export { OpBatch } from './ops/run';
export type { GemmOptions, MatmulPrecision } from './ops/gemm';
export { activation, activationSync, activationQueued, swiglu, swigluSync, swigluQueued, softmax, softmaxSync, softmaxQueued } from './ops/activation';
export { add, addSync, addQueued, scale, scaleSync, scaleQueued } from './ops/activation';
export { activationBackward, activationBackwardSync, swigluBackward, swigluBackwardSync } from './ops/activation';
export type { OutOption, SoftmaxOptions, AddOptions, ActivationBackwardOptions, SwigluGrads } from './ops/activation';
export { dropoutApply, dropoutApplySync } from './ops/dropout';
export type { Dropout, DropoutApplyOptions } from './ops/dropout';
export {
  layerNorm,
  layerNormSync,
  layerNormQueued,
  rmsNorm,
  rmsNormSync,
  rmsNormQueued,
  layerNormBackward,
  layerNormBackwardSync,
  rmsNormBackward,
  rmsNormBackwardSync,
} from './ops/norm';
export type { LayerNormOptions, RmsNormOptions, NormBackwardOptions, NormBackwardResult } from './ops/norm';
export { rope, ropeSync, ropeQueued } from './ops/rope';
export type { RopeOptions } from './ops/rope';
export { resample, resampleSync } from './ops/resample';
export type { ResampleOptions } from './ops/resample';
export { embedding, embeddingSync, embeddingQueued, patchEmbed, patchEmbedSync, embeddingBackward, embeddingBackwardSync } from './ops/embedding';
export type { EmbeddingBackwardOptions } from './ops/embedding';
export type { PatchEmbedOptions } from './ops/embedding';
export { l2Normalize, l2NormalizeSync, cosine, cosineSync, cosineTopk, cosineTopkSync } from './ops/metric';
export type { TopK, CosineTopkOptions } from './ops/metric';
export { projectionForward, projectionForwardSync, projectionForwardTrain, projectionForwardTrainSync, projectionBackward, projectionBackwardSync } from './ops/projection';
export type {
  ProjectionWeights,
  ProjectionSaved,
  ProjectionGrads,
  ProjectionTrainOptions,
  ProjectionTrainResult,
  ProjectionBackwardOptions,
  ProjectionBackwardResult,
} from './ops/projection';
export { adamwStep, adamwStepSync } from './ops/optim';
export type { AdamWOptions, AdamWState } from './ops/optim';
export { attention, attentionSync, attentionQueued, attentionBackward, attentionBackwardSync } from './ops/attention';
export type { AttentionOptions, AttentionGrads, AttentionBackwardOptions } from './ops/attention';
export { WeightFile, withWeights } from './io/weights';
export type { WeightFormat, WeightInfo, OpenOptions, LoadOptions } from './io/weights';
export type { FileDType } from './io/dtypes';
export { writeSafetensors } from './io/safetensors';
export { ModelFolder, subConfig, readJsonFile } from './io/model_folder';
export type { JsonObject } from './io/model_folder';
export { TextTokenizer } from './text/tokenizer';
export type { SpecialToken, TokenizerSources, EncodeOptions } from './text/tokenizer';
export { IMAGE_TOKEN_INDEX, TEMPLATES, getTemplate, tokenizeSegments, encodeChat, fillSlots } from './text/templates';
export type { ChatMessage, ChatTemplate, Segment } from './text/templates';
export { pull, resolveModel } from './hub/client';
export type { PullOptions, PullResult } from './hub/client';
export { DEFAULT_REPOS } from './hub/defaults';
export type { PinnedRepo } from './hub/defaults';
export { hubCacheDir } from './hub/cache';
export { Projector, PROJECTOR_KEYS } from './models/projector/projector';
export { LabelSpace, EMBEDDING_NAMES, readSynonymsFile } from './models/projector/label_space';
export type { LabelSource } from './models/projector/label_space';
export { MetricClassifier } from './models/projector/classifier';
export type { Prediction, ClassifierOptions } from './models/projector/classifier';
export { readBundle, writeBundle, BUNDLE_FILE } from './models/projector/bundle';
export type { Bundle, LoadedBundle } from './models/projector/bundle';
export { loadFeatureFolder, readFeatureVector, stratifiedSplit, subset, FEATURE_EXTENSIONS } from './data/features';
export type { FeatureSet } from './data/features';
export { TAXONOMIES, findTaxonomy } from './data/taxonomies';
export type { Taxonomy } from './data/taxonomies';
export { evaluate } from './eval/report';
export type { EvalReport, ClassMetrics } from './eval/report';
export { confusionSvg, embeddingMapSvg } from './eval/plots';
export { trainProjector, TRAIN_DEFAULTS } from './train/trainer';
export { evaluateProjector, predict } from './eval/projector';
export type { TrainConfig, TrainHooks, TrainResult, EpochLog } from './train/trainer';
export { LOSSES, DEFAULT_TAU } from './ops/loss';
export { metricLoss, metricLossSync, crossEntropy, crossEntropySync } from './ops/loss';
export type { CrossEntropyOptions, CrossEntropyResult } from './ops/loss';
export type { MetricLossOptions, MetricLossResult } from './ops/loss';
export type { LossName, LabelTable } from './ops/loss';
export { scheduleAt } from './train/schedule';
export type { Schedule } from './train/schedule';
export { readImage, sourceName, IMAGE_FORMATS, IMAGE_EXTENSIONS } from './io/image';
export type { ImageBytes, ImageFormat, ImageSource, ReadImageOptions, RgbImage } from './io/image';
export { resize, crop } from './io/resample';
export type { ResampleFilter } from './io/resample';
export { ClipVision, clipVisionConfig } from './models/vision/clip_vision';
export type { ClipVisionConfig, VisionOutput, VisionForwardOptions, VisionLoadOptions } from './models/vision/clip_vision';
export { SiglipVision, siglipVisionConfig } from './models/vision/siglip_vision';
export type { VitConfig } from './models/vision/vit';
export { loadVisionTower, visionFamily, encodeImages } from './models/vision/tower';
export type { VisionTower, VisionFamily, EncodeOptions as ImageEncodeOptions, EncodedImage, EncodeResult } from './models/vision/tower';
export { CLIP_PREPROCESS, SIGLIP_PREPROCESS, CLIP_MEAN, CLIP_STD, preprocess, resizeAndCrop, toPixels, preprocessForFolder } from './models/vision/preprocess';
export type { ImagePreprocess } from './models/vision/preprocess';
export { ImageClassifier, DEFAULT_CLASSIFIER } from './models/projector/image_classifier';
export type { ImageClassifierOptions, ImagePrediction, ImageClassification } from './models/projector/image_classifier';
export { extractFeatures } from './models/vision/extract_features';
export { listImages } from './io/image';
export type { ExtractOptions, ExtractResult } from './models/vision/extract_features';
export { readFeaturesInfo, FEATURES_INFO_FILE } from './data/features_info';
export type { FeaturesInfo } from './data/features_info';
export { runBias } from './bias/run';
export type { BiasOptions, BiasReport } from './bias/run';
export { weat, wordAssociation, association, benjaminiHochberg, groupDifference, partitionPValue, cramersV } from './bias/stats';
export type { WeatResult, WordAssociation, GroupTest, PermutationOptions, PermutationResult } from './bias/stats';
export { DEFAULT_PROBES, readProbes, parseProbes } from './bias/probes';
export type { Probes, ProbeSet, ProbeSide } from './bias/probes';
export { DEFAULT_THRESHOLDS, decide } from './bias/findings';
export type { Finding, FindingKind, Review } from './bias/findings';
export { readMetadata } from './bias/metadata';
export type { Metadata } from './bias/metadata';
export { readInstructFile, writeInstructFile, recordProblem, IMAGE_PLACEHOLDER } from './data/instruct';
export type { InstructRecord, Turn, ReadResult } from './data/instruct';
export { encodeRecord, loadInstructDataset, renderPrompt, tokenizePrompt, IGNORE_INDEX, TRAIN_TEMPLATES } from './data/instruct_loader';
export { TINYLLAVA_SYSTEM, TINYLLAVA_STYLES, tinyllavaSegments, joinConversation } from './text/tinyllava_prompt';
export type { TinyLlavaStyle, RenderedConversation } from './text/tinyllava_prompt';
export type { TrainTemplate, EncodedExample, EncodeResult as InstructEncodeResult, InstructDataset } from './data/instruct_loader';
export { synthesize } from './data/synth';
export type { SynthOptions, SynthStats } from './data/synth';
export { SYNTH_TASKS, judgeAnswer, labelOptions } from './data/synth_tasks';
export { reasonInstruction, parseReasoning } from './text/emotion_prompts';
export type { SynthTask, SynthItem } from './data/synth_tasks';
export { askTeacher, TeacherError } from './data/teacher';
export type { TeacherConfig } from './data/teacher';
export { copyInto, copyIntoSync, copyIntoQueued } from './ops/copy';
export { DecoderLM, KvCache, decoderConfig } from './models/llm/decoder';
export type { DecoderConfig, DecoderFamily, DecoderLoadOptions } from './models/llm/decoder';
export { generateTokens, generateText, sampleToken } from './models/llm/generate';
export type { SamplingOptions, GenerateOptions, TextPiece } from './models/llm/generate';
export { TinyLlava } from './models/llm/tinyllava';
export { ChatModel, CHAT_DEFAULTS } from './models/llm/chat';
export type { ChatModelOptions, ChatEvent, ChatOptions } from './models/llm/chat';
export { EmotionReasoner, reasonPrompt } from './models/llm/reasoner';
export type { ReasonerOptions, ReasonEvent, ReasonTemplate } from './models/llm/reasoner';
export { startServer, SERVE_DEFAULTS } from './serve/server';
export type { ServeOptions, RunningServer } from './serve/server';
export { ServeModels } from './serve/models';
export type { ServeModelOptions } from './serve/models';
