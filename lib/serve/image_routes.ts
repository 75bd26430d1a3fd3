/**
 * POST /v1/classify and POST /v1/reason: images in, the JSON of
 * `tinyemo classify --json` and `tinyemo reason --json` out (with
 * `Accept: text/event-stream`, reason's events as `reason --stream --json`
 * prints them, one per `data:` line).
 */
import { TinyEmoError } from '../errors';
import { ImageBytes, RgbImage, readImage } from '../io/image';
import { REASON_DEFAULTS, ReasonEvent } from '../models/llm/reasoner';
import { Prediction } from '../models/projector/classifier';
import { CLASSIFY_DEFAULTS } from '../models/projector/image_classifier';
import { skipOf } from '../cli/inputs';
import type { RouteContext, ServeState } from './context';
import { HttpError, httpErrorOf } from './http_error';
import { sendJson, startEvents, wantsEvents } from './http';
import { Params, intParam, numberParam, readImageRequest } from './request_body';

/** Decodes an upload under the server's limits (format allow-list, bytes, pixels). */
export function decodeUpload(state: ServeState, image: ImageBytes): Promise<RgbImage> {
  return readImage(image, { maxPixels: state.limits.maxPixels, maxBytes: state.limits.maxBodyBytes });
}

type Outcome = { file: string; predictions: Prediction[] } | { file: string; error: TinyEmoError };

export async function classifyRoute(c: RouteContext): Promise<void> {
  const { state } = c;
  const { images, params } = await readImageRequest(c.req, c.url.searchParams, { maxBytes: state.limits.maxBodyBytes, maxImages: state.limits.maxImages });
  const topK = intParam(params, 'top_k', { min: 1, max: 1000, default: CLASSIFY_DEFAULTS.topK })!;
  state.scheduler.reserve(images.length);
  const decoded = await decodeAll(state, images);
  // Queued in the same tick, a request's images share one forward pass (unless they fill a batch), whatever
  // order their decoding finished in: as `tinyemo classify` batches the same files.
  const outcomes = await Promise.all(
    decoded.map(async (d): Promise<Outcome> => ('rgb' in d ? { file: d.file, predictions: await state.batcher.classify(d.file, d.rgb, topK, c.signal) } : d)),
  );
  const results = outcomes.flatMap((o) => ('predictions' in o ? [o] : []));
  const failed = outcomes.flatMap((o) => ('error' in o ? [o] : []));
  // Nothing classified: the request itself was bad, and says why as an error (one image: its reason).
  if (results.length === 0) throw failed[0].error;
  state.metrics.images.inc(results.length);
  sendJson(c.res, 200, { results, skipped: failed.map((f) => ({ ...skipOf(f.file, f.error.message), code: f.error.code })) });
}

type Decoded = { file: string; rgb: RgbImage } | { file: string; error: TinyEmoError };

/**
 * Every admitted image decoded, concurrently; an image that fails gives back its place in the queue and is
 * reported, not thrown. An unexpected failure gives back every place and is thrown.
 */
async function decodeAll(state: ServeState, images: ImageBytes[]): Promise<Decoded[]> {
  const settled = await Promise.allSettled(images.map((img) => decodeUpload(state, img)));
  const unexpected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected' && !(s.reason instanceof TinyEmoError));
  if (unexpected) {
    state.scheduler.unreserve(images.length);
    throw unexpected.reason;
  }
  return settled.map((s, i) => {
    if (s.status === 'fulfilled') return { file: images[i].name, rgb: s.value };
    state.scheduler.unreserve();
    return { file: images[i].name, error: s.reason as TinyEmoError };
  });
}

/** Sampling parameters in the OpenAI spelling, checked against the server's limits. */
export function generationParams(params: Params, maxTokens: number, defaultTokens: number) {
  const tokens = intParam(params, 'max_tokens', { min: 1, max: maxTokens }) ?? intParam(params, 'max_completion_tokens', { min: 1, max: maxTokens });
  const seed = intParam(params, 'seed', { min: 0, max: 2 ** 32 - 1 });
  const temperature = numberParam(params, 'temperature', { min: 0, max: 2 });
  const topP = numberParam(params, 'top_p', { min: Number.MIN_VALUE, max: 1 });
  return { maxNewTokens: Math.min(tokens ?? defaultTokens, maxTokens), ...defined({ seed, temperature, topP }) };
}

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export async function reasonRoute(c: RouteContext): Promise<void> {
  const { state } = c;
  const reasoner = state.models.reasoner;
  if (!reasoner) throw new HttpError(404, 'model_not_found', 'no reasoning model is loaded: start tinyemo serve with --mllm DIR');
  const { images, params } = await readImageRequest(c.req, c.url.searchParams, { maxBytes: state.limits.maxBodyBytes, maxImages: 1 });
  await decodeUpload(state, images[0]);
  const gen = generationParams(params, state.limits.maxTokens, REASON_DEFAULTS.maxNewTokens);
  const topK = intParam(params, 'top_k', { min: 1, max: 1000 });
  await state.scheduler.run(async () => {
    const events = reasoner.reason(images[0], { ...gen, ...defined({ topK }), signal: c.signal });
    if (wantsEvents(c.req)) await streamReason(c, events);
    else {
      let scores: Prediction[] = [];
      for await (const e of events) {
        if (e.type === 'label') scores = e.scores;
        if (e.type === 'done') {
          state.metrics.tokens.inc(e.tokens);
          sendJson(c.res, 200, { ...e, scores });
        }
      }
    }
  }, c.signal);
}

/** Events as they come. The first is awaited before the headers, so a failure before the label is still a 4xx. */
async function streamReason(c: RouteContext, events: AsyncGenerator<ReasonEvent>): Promise<void> {
  const first = await events.next();
  const send = startEvents(c.res);
  try {
    if (!first.done) send(first.value);
    for await (const e of events) {
      send(e);
      if (e.type === 'done') c.state.metrics.tokens.inc(e.tokens);
    }
    c.res.end();
  } catch (e) {
    throw httpErrorOf(e);
  }
}
