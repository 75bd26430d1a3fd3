/**
 * Training a Metric Projector on a data folder of features, as `tinyemo
 * train` runs it: the out folder kept clean (nothing of a refused or
 * diverged run stays behind), and the run's trainings in order. With a
 * validation split of --data and refit on (the default) there are two: the
 * recipe trained on the rest of the split and validated each epoch, which
 * measures it, then the same recipe from the same initialisation on all of
 * --data, which is the model kept. A checkpoint of either resumes bit for
 * bit. One training is projector_run.ts.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { Tensor } from '../tensor';
import { CHECKPOINT, freshModel, resumedModel } from './projector_checkpoint';
import { TrainConfig, checkConfig, configKey } from './projector_config';
import { TrainData, loadTrainData, withoutSplit } from './projector_data';
import { TrainHooks, TrainResult } from './projector_log';
import { ProjectorRun } from './projector_run';

export { TRAIN_DEFAULTS } from './projector_config';
export type { TrainConfig } from './projector_config';
export type { EpochLog, TrainHooks, TrainResult } from './projector_log';

export async function trainProjector(config: TrainConfig, opts: { resume?: boolean; hooks?: TrainHooks } = {}): Promise<TrainResult> {
  checkConfig(config);
  const data = loadTrainData(config);
  const device = config.device ?? 'cpu';
  // A device that cannot hold the model fails here, before --out exists.
  if (device !== 'cpu') Tensor.empty([1], 'f32', device).dispose();
  const key = configKey(config);
  // Refused before anything is written (no empty --out).
  if (opts.resume && !fs.existsSync(path.join(config.out, CHECKPOINT))) throw new TinyEmoError('NOT_FOUND', `--resume: no checkpoint in ${config.out}`);
  const created = !fs.existsSync(config.out);
  fs.mkdirSync(config.out, { recursive: true }); // only once the data, labels and device are known good
  removeStaleTemps(config.out);
  const before = stamps(config.out);
  let run: ProjectorRun | undefined;
  try {
    let model = opts.resume ? resumedModel(config.out, key, device) : freshModel(data.train.dim, data.labels.dim, config.seed, key, device);
    const refits = refitting(config, data);
    // A resumed checkpoint may be of either training (a refit's carries what validation measured); the log is
    // rewritten by the training it belongs to.
    const resumedRefit = opts.resume === true && model.state.validated !== undefined;
    if (refits && !resumedRefit) {
      run = new ProjectorRun(config, data, model, device, opts.hooks ?? {}, 'validation');
      if (opts.resume) run.rewriteLog();
      const r = await run.train();
      if (r.stopped) return r;
      const validated = { logs: model.state.logs, best: model.state.best, trainSamples: r.trainSamples, valSamples: r.valSamples };
      run.dispose();
      run = undefined;
      // The same initialisation as the validation training: only the data differs.
      model = freshModel(data.train.dim, data.labels.dim, config.seed, key, device, validated);
    }
    run = new ProjectorRun(config, refits ? withoutSplit(config, data) : data, model, device, opts.hooks ?? {}, refits ? 'refit' : 'only');
    if (opts.resume && (!refits || resumedRefit)) run.rewriteLog();
    return await run.train();
  } catch (e) {
    // A refused or diverged run leaves no model (nor an empty --out) behind; a resumed one keeps its checkpoint.
    if (!opts.resume) {
      if (created) fs.rmSync(config.out, { recursive: true, force: true });
      else {
        // Only what this run wrote: an earlier run's files it never reached stay.
        const after = stamps(config.out);
        for (const [f, t] of after) if (before.get(f) !== t) fs.rmSync(path.join(config.out, f), { force: true });
      }
    }
    throw e;
  } finally {
    run?.dispose();
  }
}

/** Whether the run trains again on all of --data once its validation split has measured the recipe. */
function refitting(c: TrainConfig, data: TrainData): boolean {
  return c.refit && c.val === undefined && data.val !== undefined;
}

/** What a run writes into --out. */
const RUN_FILES = ['tinyemo.json', 'projector.safetensors', 'labels.safetensors', CHECKPOINT, 'log.jsonl', 'train.json'];

/** When each of the run's files in `out` was last written (absent files left out). */
function stamps(out: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of RUN_FILES) {
    const file = path.join(out, f);
    if (fs.existsSync(file)) m.set(f, fs.statSync(file).mtimeMs);
  }
  return m;
}

/** Temporary files an interrupted write left (a process killed mid-write cannot remove its own). */
function removeStaleTemps(out: string): void {
  for (const f of fs.readdirSync(out)) if (/\.tmp-[^/]*$/.test(f)) fs.rmSync(path.join(out, f), { force: true });
}
