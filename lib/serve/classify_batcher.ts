/**
 * Dynamic batching of classifications, as inference servers do it: images
 * from concurrent requests wait up to `batchWaitMs` (or until `maxBatch` are
 * there) and go through the tower in one forward pass. Batching trades a
 * little latency for throughput; bench/serve_load.ts measures both. Each
 * image's rows are computed alike in any batch, except that the matrix
 * products switch kernels at 48 rows (images × tokens per image), which can
 * move a score's last bit; with ViT-L/14's 257 tokens every batch is past the
 * switch, and answers are exactly what `tinyemo classify` prints.
 */
import { TinyEmoError } from '../errors';
import type { RgbImage } from '../io/image';
import type { Prediction } from '../models/projector/classifier';
import type { ImageClassifier } from '../models/projector/image_classifier';
import type { Scheduler } from './scheduler';

export interface BatchOptions {
  maxBatch: number;
  batchWaitMs: number;
}

interface Item {
  file: string;
  image: RgbImage;
  topK: number;
  signal: AbortSignal;
  resolve: (p: Prediction[]) => void;
  reject: (e: unknown) => void;
  /** Still counted in the scheduler's queue (until its batch starts, or it is cancelled). */
  queued: boolean;
}

export class ClassifyBatcher {
  private pending: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Sizes of the batches run, for the metrics. */
  onBatch?: (size: number) => void;

  constructor(
    private readonly classifier: ImageClassifier,
    private readonly scheduler: Scheduler,
    private readonly opts: BatchOptions,
  ) {}

  /** Queues one decoded image (already admitted by scheduler.reserve()); resolves with its top-k labels. */
  classify(file: string, image: RgbImage, topK: number, signal: AbortSignal): Promise<Prediction[]> {
    return new Promise((resolve, reject) => {
      const item: Item = { file, image, topK, signal, resolve, reject, queued: true };
      const cancel = () => {
        // It leaves the queue now, whether it waits for a batch or in a batch that waits for a slot.
        this.leave(item);
        const i = this.pending.indexOf(item);
        if (i >= 0) this.pending.splice(i, 1);
        reject(new TinyEmoError('CANCELLED', 'the request was cancelled'));
      };
      if (signal.aborted) return cancel();
      signal.addEventListener('abort', cancel, { once: true });
      this.pending.push(item);
      if (this.pending.length >= this.opts.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.opts.batchWaitMs);
    });
  }

  private leave(item: Item): void {
    if (!item.queued) return;
    item.queued = false;
    this.scheduler.unreserve();
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.splice(0, this.opts.maxBatch);
    if (this.pending.length > 0) this.timer = setTimeout(() => this.flush(), this.opts.batchWaitMs);
    if (batch.length > 0) void this.run(batch);
  }

  private async run(batch: Item[]): Promise<void> {
    let release: (() => void) | undefined;
    try {
      release = await this.scheduler.acquire();
      for (const x of batch) this.leave(x);
      // Requests cancelled while they waited are not computed (they were answered when they left).
      const live = batch.filter((x) => !x.signal.aborted);
      if (live.length === 0) return;
      this.onBatch?.(live.length);
      const topK = Math.max(...live.map((x) => x.topK));
      const r = await this.classifier.classifyDecoded(live, { topK });
      live.forEach((x, i) => x.resolve(r[i].predictions.slice(0, x.topK)));
    } catch (e) {
      for (const x of batch) x.reject(e);
    } finally {
      release?.();
    }
  }
}
