/** What a projector training run reports: per epoch, at the start, and at the end. */

export interface EpochLog {
  epoch: number;
  step: number;
  lr: number;
  trainLoss: number;
  val?: { top1: number; top5: number; macroF1: number };
  best: boolean;
  seconds: number;
}

export interface TrainResult {
  out: string;
  epochs: EpochLog[];
  best: { epoch: number; top1: number } | undefined;
  labelSpace: string;
  trainSamples: number;
  valSamples: number;
  /** True when stopped early by stopAfterSteps (a checkpoint holds the state). */
  stopped: boolean;
}

export interface TrainHooks {
  /** Once the data and label space are ready, before the first step. */
  onStart?: (info: { labelSpace: string; trainSamples: number; valSamples: number; totalSteps: number; resumedAtStep: number; skipped: number }) => void;
  onEpoch?: (log: EpochLog) => void;
  onStep?: (step: number, total: number) => void;
  /** Stop after this many optimizer steps in total, leaving a checkpoint (for tests and interruptions). */
  stopAfterSteps?: number;
}
