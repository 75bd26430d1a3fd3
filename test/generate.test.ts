/** Sampling and streaming generation over the fixture decoders. */
import * as path from 'path';

import { DecoderLM } from '../lib/models/llm/decoder';
import { generateText, generateTokens, sampleToken } from '../lib/models/llm/generate';
import { TextTokenizer } from '../lib/text/tokenizer';
import { Rng } from '../lib/util/rng';
import { tokenizerFixture } from './helpers/tokenizers';

const LLAMA = path.join(__dirname, 'fixtures', 'decoders', 'llama');

function freqs(logits: number[], o: Parameters<typeof sampleToken>[1], n = 20000): number[] {
  const rng = new Rng(7);
  const f = new Array(logits.length).fill(0);
  const l = Float32Array.from(logits);
  for (let i = 0; i < n; ++i) f[sampleToken(l, o, rng, [])] += 1 / n;
  return f;
}

test('sampling: greedy, temperature, top-k, top-p and the repetition penalty do what they say', () => {
  const l = [Math.log(0.5), Math.log(0.3), Math.log(0.2)];
  expect(sampleToken(Float32Array.from([0.1, 0.9, 0.3]), {}, new Rng(1), [])).toBe(1);
  const plain = freqs(l, { temperature: 1 });
  [0.5, 0.3, 0.2].forEach((p, i) => expect(Math.abs(plain[i] - p)).toBeLessThan(0.015));
  const topP = freqs(l, { temperature: 1, topP: 0.6 });
  [0.625, 0.375, 0].forEach((p, i) => expect(Math.abs(topP[i] - p)).toBeLessThan(0.015));
  const topK = freqs(l, { temperature: 1, topK: 1 });
  expect(topK[0]).toBeCloseTo(1, 9);
  expect(topK.slice(1)).toEqual([0, 0]);
  // Temperature 0.5 squares the odds: 0.25 : 0.09 : 0.04.
  const cold = freqs(l, { temperature: 0.5 });
  [0.25 / 0.38, 0.09 / 0.38, 0.04 / 0.38].forEach((p, i) => expect(Math.abs(cold[i] - p)).toBeLessThan(0.015));
  // The penalty divides positive logits of seen tokens and multiplies negative ones.
  expect(sampleToken(Float32Array.from([2, 1.9]), { repetitionPenalty: 1.2 }, new Rng(1), [0])).toBe(1);
  expect(sampleToken(Float32Array.from([-1, -1.1]), { repetitionPenalty: 1.2 }, new Rng(1), [0])).toBe(1);
  expect(() => sampleToken(Float32Array.from([1]), { topP: 0 }, new Rng(1), [])).toThrow(/topP/);
});

test('generation: greedy equals argmax decoding, a seed fixes sampling, stop tokens and the budget hold, abort cancels', async () => {
  const m = DecoderLM.load(LLAMA);
  const prompt = [1, 5, 17, 33, 8];
  const run = async (o: Parameters<typeof generateTokens>[3]) => {
    const cache = m.newCache(64);
    const out: number[] = [];
    for await (const t of generateTokens(m, prompt, cache, o)) out.push(t);
    cache.dispose();
    return out;
  };
  const greedy = await run({ maxNewTokens: 10, stopTokens: [] });
  expect(greedy).toHaveLength(10);
  // The same by hand: argmax after each step.
  const cache = m.newCache(64);
  let logits = await m.forward(prompt, cache);
  for (const t of greedy) {
    let best = 0;
    for (let i = 1; i < logits.length; ++i) if (logits[i] > logits[best]) best = i;
    expect(t).toBe(best);
    logits = await m.forward([t], cache);
  }
  cache.dispose();
  const a = await run({ temperature: 1.3, topK: 20, seed: 11, maxNewTokens: 12, stopTokens: [] });
  const b = await run({ temperature: 1.3, topK: 20, seed: 11, maxNewTokens: 12, stopTokens: [] });
  const c = await run({ temperature: 1.3, topK: 20, seed: 12, maxNewTokens: 12, stopTokens: [] });
  expect(a).toEqual(b);
  expect(a).not.toEqual(c);
  // Stop at the first sampled token that had not come before: everything before it, nothing after.
  const at = a.findIndex((t, j) => j > 0 && !a.slice(0, j).includes(t));
  expect(at).toBeGreaterThan(0);
  expect(await run({ temperature: 1.3, topK: 20, seed: 11, maxNewTokens: 12, stopTokens: [a[at]] })).toEqual(a.slice(0, at));
  expect(await run({ maxNewTokens: 0 })).toEqual([]);
  const ctrl = new AbortController();
  const got: number[] = [];
  const cache2 = m.newCache(64);
  await expect(
    (async () => {
      for await (const t of generateTokens(m, prompt, cache2, { maxNewTokens: 20, stopTokens: [], signal: ctrl.signal })) {
        got.push(t);
        if (got.length === 2) ctrl.abort();
      }
    })(),
  ).rejects.toMatchObject({ code: 'CANCELLED' });
  expect(got).toHaveLength(2);
  cache2.dispose();
  m.dispose();
});

test('streaming text: the pieces add up to the decoded tokens; a stop string cuts the text before it', async () => {
  const m = DecoderLM.load(LLAMA);
  const tok = TextTokenizer.fromFolder(tokenizerFixture('llama'));
  const prompt = [1, 40, 60, 80];
  const opts = { temperature: 1, seed: 5, maxNewTokens: 24, stopTokens: [] };
  const tokens: number[] = [];
  let cache = m.newCache(64);
  for await (const t of generateTokens(m, prompt, cache, opts)) tokens.push(t);
  cache.dispose();
  const full = tok.decode(tokens, { skipSpecialTokens: true }).replace(/\uFFFD+$/, '');
  cache = m.newCache(64);
  let streamed = '';
  let pieces = 0;
  for await (const p of generateText(m, tok, prompt, cache, opts)) {
    streamed += p.text;
    pieces += 1;
  }
  cache.dispose();
  expect(streamed).toBe(full);
  expect(pieces).toBeGreaterThanOrEqual(tokens.length);
  const visible = full.replace(/\s+$/, '');
  if (visible.length >= 4) {
    const stop = visible.slice(Math.floor(visible.length / 2), Math.floor(visible.length / 2) + 2);
    cache = m.newCache(64);
    let cut = '';
    for await (const p of generateText(m, tok, prompt, cache, { ...opts, stopStrings: [stop] })) cut += p.text;
    cache.dispose();
    expect(cut).toBe(full.slice(0, full.indexOf(stop)));
  }
  m.dispose();
});
