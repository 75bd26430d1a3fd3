import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { IMAGE_TOKEN_INDEX, fillSlots, getTemplate, tokenizeSegments } from '../lib/text/templates';
import { TextTokenizer } from '../lib/text/tokenizer';

const cache = path.join(__dirname, '.cache', 'tokenizers');
beforeAll(() => {
  if (!fs.existsSync(path.join(cache, 'expected.json'))) {
    execFileSync(process.execPath, [path.join(__dirname, '..', 'scripts', 'fixtures', 'tokenizers.mjs'), cache]);
  }
});

test('TinyLLaVA phi conversation: system prompt, image marker, user text as text', () => {
  const tok = TextTokenizer.fromFolder(path.join(cache, 'codegen'));
  const segs = getTemplate('tinyllava-phi').render([{ role: 'user', content: 'What emotion does this evoke? <|endoftext|>', image: true }]);
  const text = segs.map((s) => (s.kind === 'image' ? '<image>' : s.text)).join('');
  expect(text).toBe(
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: <image>\nWhat emotion does this evoke? <|endoftext|> ASSISTANT:",
  );
  const ids = tokenizeSegments(tok, segs);
  expect(ids.filter((i) => i === IMAGE_TOKEN_INDEX)).toHaveLength(1);
  expect(ids).not.toContain(50256); // the user's "<|endoftext|>" stayed text
  expect(tok.decode(ids.filter((i) => i >= 0))).toBe(text.replace('<image>', ''));
});

test("TinyLlama's chat format closes turns with the real </s> and starts with BOS", () => {
  const tok = TextTokenizer.fromFolder(path.join(cache, 'llama'));
  const ids = tokenizeSegments(
    tok,
    getTemplate('tinyllama').render([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]),
  );
  expect(ids[0]).toBe(1);
  expect(ids.filter((i) => i === 2)).toHaveLength(2);
});

test('slots and unknown templates', () => {
  expect(fillSlots('a scene evoking {emotion} to viewers', { emotion: 'joy' })).toBe('a scene evoking joy to viewers');
  expect(() => fillSlots('{x}', {})).toThrow(/no value/);
  expect(() => getTemplate('nope')).toThrow(/unknown chat template/);
});
