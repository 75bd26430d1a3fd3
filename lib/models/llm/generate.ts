/**
 * Text generation over a decoder and its KV cache: greedy or sampled
 * (temperature, top-k, top-p, repetition penalty, a seed), stop tokens and
 * stop strings, a token budget, cancellation, and streaming as an async
 * iterator of text pieces. Logit processing follows Hugging Face's order:
 * repetition penalty, temperature, top-k, top-p.
 */
import { TinyEmoError } from '../../errors';
import { TextTokenizer } from '../../text/tokenizer';
import { Tensor } from '../../tensor';
import { Rng } from '../../util/rng';
import { DecoderLM, KvCache } from './decoder';

export interface SamplingOptions {
  /** 0 (default) is greedy. */
  temperature?: number;
  /** Keep the k most likely tokens (0: all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1: all). */
  topP?: number;
  /** > 1 discourages tokens already in the context (CTRL's penalty, as Hugging Face applies it). */
  repetitionPenalty?: number;
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number;
  /** Token ids that end generation (default: the model's eos ids). Not emitted. */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
}

function check(o: SamplingOptions): void {
  const t = o.temperature ?? 0;
  if (!(t >= 0 && Number.isFinite(t))) throw new TinyEmoError('INVALID_ARGUMENT', 'temperature must be ≥ 0');
  const k = o.topK ?? 0;
  if (!Number.isSafeInteger(k) || k < 0) throw new TinyEmoError('INVALID_ARGUMENT', 'topK must be a non-negative integer');
  const p = o.topP ?? 1;
  if (!(p > 0 && p <= 1)) throw new TinyEmoError('INVALID_ARGUMENT', 'topP must be in (0, 1]');
  const r = o.repetitionPenalty ?? 1;
  if (!(r > 0 && Number.isFinite(r))) throw new TinyEmoError('INVALID_ARGUMENT', 'repetitionPenalty must be positive');
}

/** Picks the next token from one position's logits. `context` holds the ids so far (for the penalty). */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rng: Rng, context: readonly number[]): number {
  check(o);
  const x = Float64Array.from(logits);
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(context)) {
      if (id >= 0 && id < x.length) x[id] = x[id] > 0 ? x[id] / penalty : x[id] * penalty;
    }
  }
  const temperature = o.temperature ?? 0;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < x.length; ++i) if (x[i] > x[best]) best = i;
    return best;
  }
  for (let i = 0; i < x.length; ++i) x[i] /= temperature;
  // Candidates by falling logit (ties by id, so the order is fixed).
  let order = Array.from(x.keys()).sort((a, b) => x[b] - x[a] || a - b);
  const k = o.topK ?? 0;
  if (k > 0) order = order.slice(0, k);
  const max = x[order[0]];
  let probs = order.map((i) => Math.exp(x[i] - max));
  let sum = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / sum);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < probs.length) {
      acc += probs[keep++];
      if (acc >= topP) break;
    }
    order = order.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / sum);
  }
  let u = rng.next();
  for (let i = 0; i < order.length; ++i) {
    u -= probs[i];
    if (u < 0) return order[i];
  }
  return order[order.length - 1];
}

/**
 * Generates token ids after a prompt (ids, or input embeddings [T, hidden]
 * for a multimodal prompt). The cache is filled from its current length.
 */
export async function* generateTokens(model: DecoderLM, prompt: readonly number[] | Tensor<'f32'>, cache: KvCache, o: GenerateOptions = {}): AsyncGenerator<number> {
  check(o);
  const max = o.maxNewTokens ?? 128;
  if (!Number.isSafeInteger(max) || max < 0) throw new TinyEmoError('INVALID_ARGUMENT', 'maxNewTokens must be a non-negative integer');
  const stop = new Set(o.stopTokens ?? model.config.eos);
  const rng = new Rng(o.seed ?? 0);
  const context: number[] = Array.isArray(prompt) ? [...(prompt as number[])] : [];
  const cancelled = () => new TinyEmoError('CANCELLED', 'generation was cancelled');
  if (o.signal?.aborted) throw cancelled();
  let logits = prompt instanceof Tensor ? await model.forwardEmbeddings(prompt, cache) : await model.forward(prompt, cache);
  for (let n = 0; n < max; ++n) {
    if (o.signal?.aborted) throw cancelled();
    const token = sampleToken(logits, o, rng, context);
    if (stop.has(token)) return;
    context.push(token);
    yield token;
    if (n + 1 < max) {
      // Decode steps run on this thread; give the event loop a turn between tokens (servers stay responsive).
      await new Promise<void>((resolve) => setImmediate(resolve));
      logits = await model.forward([token], cache);
    }
  }
}

export interface TextPiece {
  /** The token just generated; absent on the last piece when it only releases text held back. */
  token?: number;
  /** The text this token completes (may be '' while a multi-byte character is incomplete). */
  text: string;
}

/**
 * Streams text: each token with the new text it completes. Stop strings end
 * generation; the text before the stop string is delivered, the stop string
 * itself is not.
 */
export async function* generateText(
  model: DecoderLM,
  tok: TextTokenizer,
  prompt: readonly number[] | Tensor<'f32'>,
  cache: KvCache,
  o: GenerateOptions & { stopStrings?: readonly string[] } = {},
): AsyncGenerator<TextPiece> {
  const stops = (o.stopStrings ?? []).filter((s) => s.length > 0);
  const ids: number[] = [];
  let emitted = '';
  for await (const token of generateTokens(model, prompt, cache, o)) {
    ids.push(token);
    let text = tok.decode(ids, { skipSpecialTokens: true });
    // An incomplete UTF-8 sequence decodes to U+FFFD: wait for the next token.
    if (text.endsWith('\uFFFD')) {
      yield { token, text: '' };
      continue;
    }
    let stopAt = -1;
    for (const s of stops) {
      const i = text.indexOf(s, Math.max(0, emitted.length - s.length));
      if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
    }
    if (stopAt >= 0) text = text.slice(0, stopAt);
    // Hold back a tail that could be the start of a stop string.
    let hold = 0;
    if (stopAt < 0) {
      for (const s of stops) for (let k = Math.min(s.length - 1, text.length); k > hold; --k) if (s.startsWith(text.slice(text.length - k))) hold = k;
    }
    const ready = text.slice(0, text.length - hold);
    const piece = ready.startsWith(emitted) ? ready.slice(emitted.length) : ready;
    emitted = ready;
    yield { token, text: piece };
    if (stopAt >= 0) return;
  }
  // The end: release what was held back for a stop string that never came.
  const text = ids.length ? tok.decode(ids, { skipSpecialTokens: true }).replace(/\uFFFD+$/, '') : '';
  if (text.length > emitted.length && text.startsWith(emitted)) yield { text: text.slice(emitted.length) };
}
