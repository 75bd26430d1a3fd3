/** What a projector training run reports: per epoch, at the start, and at the end. */

/** A refitting run trains twice: on the split with validation, then on all data (the kept model). */
export type TrainPhase = 'validation' | 'refit';

export interface EpochLog {
  /** Set when the run refits. */
  phase?: TrainPhase;
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
  /** Every epoch logged, the validation training's before the refit's. */
  epochs: EpochLog[];
  /** The validation epoch with the best top-1 (the kept model unless the run refit). */
  best: { epoch: number; top1: number } | undefined;
  /**
   * When the model kept was refit on all the data: the validation training's last epoch on the split, which
   * estimates it (that training ran the same recipe on fewer samples, so the estimate leans low).
   */
  refitted?: { validationTop1: number; validationTrainSamples: number };
  labelSpace: string;
  /** How many samples the kept model trained on. */
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
    phase?: TrainPhase;
    labelSpace: string;
    trainSamples: number;
    valSamples: number;
    totalSteps: number;
    resumedAtStep: number;
    skipped: Array<{ file: string; reason: string }>;
  }) => void;
  onEpoch?: (log: EpochLog) => void;
  onStep?: (step: number, total: number) => void;
  /** Stop after this many optimizer steps in total (a refit's after the validation training's), leaving a checkpoint (for tests and interruptions). */
  stopAfterSteps?: number;
  /** Stop at the next step when aborted (Ctrl-C), leaving a checkpoint. */
  signal?: AbortSignal;
}
