/**
 * Instruct records and the training loader: ids and masks for TinyLLaVA's
 * templates on hand-worked examples, with the ids computed independently by
 * llama-tokenizer-js (the LLaMA vocabulary) and gpt-3-encoder (GPT-2's),
 * plus validation, truncation and the refusals.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { IMAGE_TOKEN_INDEX, encodeChat, getTemplate } from '../lib/text/templates';
import { TextTokenizer } from '../lib/text/tokenizer';
import { InstructRecord, readInstructFile, recordProblem, writeInstructFile } from '../lib/data/instruct';
import { IGNORE_INDEX, encodeRecord, loadInstructDataset, renderPrompt } from '../lib/data/instruct_loader';
import { TINYLLAVA_SYSTEM } from '../lib/text/tinyllava_prompt';
import { llamaIdsIndependent, tokenizerFixture } from './helpers/tokenizers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const gpt3 = require('gpt-3-encoder') as { encode(text: string): number[] };

const rec = (conversations: Array<[string, string]>, id = 'r1'): InstructRecord => ({
  id,
  image: 'joy/1.jpg',
  conversations: conversations.flatMap(([q, a]) => [
    { from: 'human' as const, value: q },
    { from: 'gpt' as const, value: a },
  ]),
});

const supervised = (ids: Int32Array, labels: Int32Array) => Array.from(ids).filter((_, i) => labels[i] !== IGNORE_INDEX);

test('llama template: the prompt string, ids and mask as TinyLLaVA makes them', () => {
  const tok = TextTokenizer.fromFolder(tokenizerFixture('llama'));
  const r = rec([['<image>\nDescribe the image.', 'A dog runs on the beach.']]);
  const { prompt } = renderPrompt(r, 'llama');
  expect(prompt).toBe(`${TINYLLAVA_SYSTEM} USER: <image>\nDescribe the image. ASSISTANT: A dog runs on the beach.</s>`);
  const e = encodeRecord(r, tok, 'llama');
  if (!e.ok) throw new Error(e.reason);
  // Independently: each chunk around <image> with llama-tokenizer-js (which adds BOS; kept only at the start), </s> = 2.
  const [c0, c1, c1head] = llamaIdsIndependent([`${TINYLLAVA_SYSTEM} USER: `, '\nDescribe the image. ASSISTANT: A dog runs on the beach.', '\nDescribe the image. ASSISTANT:']);
  const want = [...c0, IMAGE_TOKEN_INDEX, ...c1.slice(1), 2];
  expect(Array.from(e.example.inputIds)).toEqual(want);
  // Supervised: exactly the answer's tokens and the end-of-sequence token.
  const answerStart = c0.length + 1 + (c1head.length - 1);
  expect(Array.from(e.example.labels.slice(0, answerStart)).every((x) => x === IGNORE_INDEX)).toBe(true);
  expect(supervised(e.example.inputIds, e.example.labels)).toEqual(want.slice(answerStart));
  expect(tok.decode(supervised(e.example.inputIds, e.example.labels))).toBe('A dog runs on the beach.</s>');
  expect(e.example.inputIds[0]).toBe(1);
  expect(e.example.truncated).toBe(false);
});

test('phi / qwen2_base templates with GPT-2 byte-level BPE: no BOS, <|endoftext|> ends each answer', () => {
  const tok = TextTokenizer.fromFolder(tokenizerFixture('gpt2'));
  const r = rec([
    ['<image>\nHow does it feel?', 'Calm and warm.'],
    ['Why?', 'Soft light, a quiet scene.'],
  ]);
  for (const template of ['phi', 'qwen2_base'] as const) {
    const e = encodeRecord(r, tok, template);
    if (!e.ok) throw new Error(e.reason);
    const want = [
      ...gpt3.encode(`${TINYLLAVA_SYSTEM} USER: `),
      IMAGE_TOKEN_INDEX,
      ...gpt3.encode('\nHow does it feel? ASSISTANT: Calm and warm.'),
      50256,
      ...gpt3.encode('USER: Why? ASSISTANT: Soft light, a quiet scene.'),
      50256,
    ];
    expect(Array.from(e.example.inputIds)).toEqual(want);
    const sup = supervised(e.example.inputIds, e.example.labels);
    expect(sup).toEqual([...gpt3.encode(' Calm and warm.'), 50256, ...gpt3.encode(' Soft light, a quiet scene.'), 50256]);
    expect(tok.decode(sup)).toBe(' Calm and warm.<|endoftext|> Soft light, a quiet scene.<|endoftext|>');
  }
});

test('pretrain template: "<image>" + answer + newline; only BOS and the image are masked', () => {
  const llama = TextTokenizer.fromFolder(tokenizerFixture('llama'));
  const r = rec([['<image>\nignored question', 'A red barn in snow.']]);
  expect(renderPrompt(r, 'pretrain').prompt).toBe('<image>A red barn in snow.\n');
  const e = encodeRecord(r, llama, 'pretrain');
  if (!e.ok) throw new Error(e.reason);
  const [body] = llamaIdsIndependent(['A red barn in snow.\n']);
  expect(Array.from(e.example.inputIds)).toEqual([1, IMAGE_TOKEN_INDEX, ...body.slice(1)]);
  expect(Array.from(e.example.labels)).toEqual([IGNORE_INDEX, IGNORE_INDEX, ...body.slice(1)]);
  const gpt2 = TextTokenizer.fromFolder(tokenizerFixture('gpt2'));
  const g = encodeRecord(r, gpt2, 'pretrain');
  if (!g.ok) throw new Error(g.reason);
  expect(Array.from(g.example.labels)).toEqual([IGNORE_INDEX, ...gpt3.encode('A red barn in snow.\n')]);
});

test('refused, never silently masked: special-token spellings; truncation keeps what fits', () => {
  const tok = TextTokenizer.fromFolder(tokenizerFixture('llama'));
  const bad = encodeRecord(rec([['<image>\nHi', 'done</s> USER: more']]), tok, 'llama');
  expect(bad).toEqual({ ok: false, reason: 'a turn spells out a special token' });
  const r = rec([['<image>\nDescribe the image.', 'A long answer about a sunny field of flowers and a child.']]);
  const full = encodeRecord(r, tok, 'llama');
  if (!full.ok) throw new Error(full.reason);
  const n = full.example.inputIds.length;
  const cut = encodeRecord(r, tok, 'llama', { maxLength: n - 3 });
  if (!cut.ok) throw new Error(cut.reason);
  expect(cut.example.truncated).toBe(true);
  expect(Array.from(cut.example.inputIds)).toEqual(Array.from(full.example.inputIds.slice(0, n - 3)));
  expect(encodeRecord(r, tok, 'llama', { maxLength: 10 })).toEqual({ ok: false, reason: 'no answer token within the length limit' });
  expect(() => encodeRecord(r, tok, 'vicuna' as never)).toThrow(/unknown template/);
});

test('records: validation, JSON and JSONL round trips, a dataset with its rejections counted', () => {
  expect(recordProblem(rec([['<image>\nQ', 'A']]))).toBeUndefined();
  expect(recordProblem(rec([['Q', 'A']]))).toMatch(/0 "<image>" placeholders/);
  expect(recordProblem(rec([['<image>\nQ', 'A <image>']]))).toMatch(/outside the first human turn/);
  expect(
    recordProblem({
      id: 'x',
      image: 'a.jpg',
      conversations: [
        { from: 'gpt', value: 'A' },
        { from: 'human', value: '<image>' },
      ],
    }),
  ).toMatch(/turn 1 must be from "human"/);
  expect(
    recordProblem({
      id: 'x',
      image: 'a.jpg',
      conversations: [
        { from: 'human', value: '<image>\nQ' },
        { from: 'gpt', value: ' ' },
      ],
    }),
  ).toMatch(/turn 2 is empty/);
  expect(recordProblem({ id: 'x', conversations: [] })).toMatch(/no "image"/);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-instruct-'));
  try {
    const rs = [rec([['<image>\nDescribe the image.', 'A cat.']], 'a'), rec([['<image>\nHow does it feel?', 'Happy.']], 'b')];
    for (const f of ['d.json', 'd.jsonl']) {
      writeInstructFile(path.join(tmp, f), rs);
      expect(readInstructFile(path.join(tmp, f))).toEqual({ records: rs, invalid: [] });
    }
    expect(() => writeInstructFile(path.join(tmp, 'x.json'), [rec([['Q', 'A']])])).toThrow(/record 0 \(r1\)/);
    fs.appendFileSync(path.join(tmp, 'd.jsonl'), '{broken\n' + JSON.stringify(rec([['<image>\nQ', 'bad</s>']], 'c')) + '\n' + JSON.stringify(rec([['Q', 'A']], 'd')) + '\n');
    const tok = TextTokenizer.fromFolder(tokenizerFixture('llama'));
    const ds = loadInstructDataset(path.join(tmp, 'd.jsonl'), tok, 'llama');
    expect(ds.examples.map((e) => e.id)).toEqual(['a', 'b']);
    expect(ds.rejected).toEqual({ 'line 3 is not JSON': 1, '0 "<image>" placeholders; a record needs exactly one': 1, 'a turn spells out a special token': 1 });
    expect(ds.problems.map((p) => p.id)).toEqual([undefined, 'd', 'c']);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('one TinyLLaVA form: the ids a chat template gives at inference are the training ids up to the answer', () => {
  const cases = [
    ['llama', 'tinyllava-llama', 'llama'],
    ['gpt2', 'tinyllava-phi', 'phi'],
    ['gpt2', 'tinyllava-qwen2', 'qwen2_base'],
  ] as const;
  for (const [fixture, chat, style] of cases) {
    const tok = TextTokenizer.fromFolder(tokenizerFixture(fixture));
    const question = 'Provide emotional reasoning about the image.\n\nLabels: [joy, fear]';
    const e = encodeRecord(rec([[`<image>\n${question}`, 'Reasoning: bright colours.\n\nPredicted Label: joy']]), tok, style);
    if (!e.ok) throw new Error(e.reason);
    const answerAt = e.example.labels.findIndex((x) => x !== IGNORE_INDEX);
    const atInference = encodeChat(tok, getTemplate(chat), [{ role: 'user', content: question, image: true }]);
    expect(atInference).toEqual(Array.from(e.example.inputIds.slice(0, answerAt)));
  }
});

test('chunked chat encoding refuses message text that spells a special token instead of parsing it', () => {
  const tok = TextTokenizer.fromFolder(tokenizerFixture('gpt2'));
  expect(() => encodeChat(tok, getTemplate('tinyllava-phi'), [{ role: 'user', content: 'hi <|endoftext|>', image: true }])).toThrow(/spells a special token/);
});
