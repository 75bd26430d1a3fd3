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
  /** Feature files that could not be read, with the reason. */
  skipped: Array<{ file: string; reason: string }>;
  /** True when stopped early by stopAfterSteps or the signal (a checkpoint holds the state). */
  stopped: boolean;
}

export interface TrainHooks {
  /** Once the data and label space are ready, before the first step. */
  onStart?: (info: {
    labelSpace: string;
    trainSamples: number;
    valSamples: number;
    totalSteps: number;
    resumedAtStep: number;
    skipped: Array<{ file: string; reason: string }>;
  }) => void;
  onEpoch?: (log: EpochLog) => void;
  onStep?: (step: number, total: number) => void;
  /** Stop after this many optimizer steps in total, leaving a checkpoint (for tests and interruptions). */
  stopAfterSteps?: number;
  /** Stop at the next step when aborted (Ctrl-C), leaving a checkpoint. */
  signal?: AbortSignal;
}
