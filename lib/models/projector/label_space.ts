/**
 * The label space: one unit vector per class in the LLM's input-embedding
 * space. A label's vector is the L2-normalised mean of the LLM's token
 * embeddings of its text (tokenised with the model's tokenizer, BOS
 * included when the tokenizer adds it), optionally through a template such
 * as "a scene evoking {emotion} to viewers"; with synonyms, a class is the
 * normalised mean of its texts' vectors. Only the embedding table and the
 * tokenizer of the LLM are read. Without an LLM, a seeded table of random
 * unit vectors stands in (recorded as such).
 */
import * as path from 'path';

import { TinyEmoError } from '../../errors';
import { ModelFolder, readJsonFile } from '../../io/model_folder';
import { writeSafetensors } from '../../io/safetensors';
import { EMBEDDING_NAMES } from '../../io/weight_names';
import { WeightFile } from '../../io/weights';
import { embeddingSync } from '../../ops/embedding';
import { Tensor } from '../../tensor';
import { fillSlots } from '../../text/templates';
import { TextTokenizer } from '../../text/tokenizer';
import { LabelTable } from '../../ops/loss';
import { Rng } from '../../util/rng';
import { LABEL_TEXT } from '../../data/taxonomies';

export type LabelSource =
  | { kind: 'llm'; llm: string; embedding: string; tokenizer: string; template?: string; synonyms?: Record<string, string[]> }
  | { kind: 'random'; seed: number; dim: number }
  | { kind: 'table'; file: string };

export { EMBEDDING_NAMES };

export class LabelSpace {
  constructor(
    readonly names: readonly string[],
    /** [C, dim], unit rows. */
    readonly table: Float32Array,
    readonly dim: number,
    readonly source: LabelSource,
  ) {
    if (table.length !== names.length * dim) throw new TinyEmoError('INVALID_ARGUMENT', 'label table size does not match the names');
  }

  static random(names: readonly string[], dim: number, seed: number): LabelSpace {
    const rng = new Rng((seed ^ 0x1abe1) >>> 0);
    const t = new Float32Array(names.length * dim);
    for (let c = 0; c < names.length; ++c) {
      let n = 0;
      for (let h = 0; h < dim; ++h) n += (t[c * dim + h] = rng.normal()) ** 2;
      const inv = 1 / Math.sqrt(n);
      for (let h = 0; h < dim; ++h) t[c * dim + h] *= inv;
    }
    return new LabelSpace(names, t, dim, { kind: 'random', seed, dim });
  }

  /** From an LLM folder: its embedding table and tokenizer only (tokenizer from another folder when it has none, as OpenELM). */
  static fromLlm(names: readonly string[], llmDir: string, opts: { tokenizerDir?: string; template?: string; synonyms?: Record<string, readonly string[]> } = {}): LabelSpace {
    const m = ModelFolder.open(llmDir, { requireConfig: false });
    let table: Tensor;
    let embName: string;
    try {
      const found = EMBEDDING_NAMES.find((n) => m.has(n));
      if (!found) throw new TinyEmoError('INVALID_FILE', `${llmDir}: no token embedding table (looked for ${EMBEDDING_NAMES.join(', ')})`);
      embName = found;
      table = m.load(found);
    } finally {
      m.close();
    }
    const tokDir = opts.tokenizerDir ?? llmDir;
    const tok = TextTokenizer.fromFolder(tokDir);
    try {
      const [V, dim] = table.shape;
      const vectors = new Float32Array(names.length * dim);
      names.forEach((name, c) => {
        const texts = [name, ...(opts.synonyms?.[name] ?? [])].map((n) => {
          const word = LABEL_TEXT[n] ?? n;
          return opts.template ? fillSlots(opts.template, { emotion: word, label: word }) : word;
        });
        const acc = new Float64Array(dim);
        for (const text of texts) {
          const ids = tok.encode(text);
          if (ids.length === 0) throw new TinyEmoError('INVALID_ARGUMENT', `label text "${text}" has no tokens`);
          if (ids.some((i) => i >= V)) throw new TinyEmoError('INVALID_FILE', `the tokenizer at ${tokDir} gives ids past the ${V}-row embedding table`);
          const rows = embeddingSync(table, Tensor.fromArray('i32', Int32Array.from(ids), [ids.length]));
          const r = rows.toArray() as Float32Array;
          rows.dispose();
          // The mean of the token embeddings, normalised, then averaged over the texts.
          const mean = new Float64Array(dim);
          for (let i = 0; i < ids.length; ++i) for (let h = 0; h < dim; ++h) mean[h] += r[i * dim + h] / ids.length;
          const n = Math.hypot(...mean) || 1;
          for (let h = 0; h < dim; ++h) acc[h] += mean[h] / n;
        }
        const n = Math.hypot(...acc) || 1;
        for (let h = 0; h < dim; ++h) vectors[c * dim + h] = acc[h] / n;
      });
      const synonyms = opts.synonyms ? Object.fromEntries(Object.entries(opts.synonyms).map(([k, v]) => [k, [...v]])) : undefined;
      return new LabelSpace(names, vectors, dim, {
        kind: 'llm',
        llm: path.resolve(llmDir),
        embedding: embName,
        tokenizer: path.resolve(tokDir),
        ...(opts.template ? { template: opts.template } : {}),
        ...(synonyms ? { synonyms } : {}),
      });
    } finally {
      table.dispose();
    }
  }

  /** A table saved by save(): tensor "label_embeddings" with the names and source in the metadata. */
  static load(file: string): LabelSpace {
    const w = WeightFile.open(file);
    try {
      if (!w.has('label_embeddings')) throw new TinyEmoError('INVALID_FILE', `${file} holds no "label_embeddings"`);
      const t = w.load('label_embeddings', { dtype: 'f32' });
      const data = t.toArray() as Float32Array;
      const [C, dim] = t.shape;
      t.dispose();
      let names: unknown;
      let source: unknown;
      try {
        names = JSON.parse(w.metadata.names ?? 'null');
        source = JSON.parse(w.metadata.source ?? 'null');
      } catch {
        throw new TinyEmoError('INVALID_FILE', `${file}: label metadata is not JSON`);
      }
      if (!Array.isArray(names) || names.length !== C || !names.every((n) => typeof n === 'string')) {
        throw new TinyEmoError('INVALID_FILE', `${file}: label names missing or not matching the table`);
      }
      const src = (source ?? { kind: 'table', file: path.resolve(file) }) as LabelSource;
      return new LabelSpace(names as string[], data, dim, src);
    } finally {
      w.close();
    }
  }

  save(file: string): void {
    const t = Tensor.from(this.table, [this.names.length, this.dim]);
    try {
      writeSafetensors(file, { label_embeddings: t }, { names: JSON.stringify(this.names), source: JSON.stringify(this.source) });
    } finally {
      t.dispose();
    }
  }

  asTable(): LabelTable {
    return { count: this.names.length, dim: this.dim, data: this.table };
  }

  /** A short description for logs ("random unit vectors (seed 3)", "OpenELM-270M embeddings"). */
  describe(): string {
    const s = this.source;
    if (s.kind === 'random') return `random unit vectors of dimension ${s.dim} (seed ${s.seed})`;
    if (s.kind === 'llm') return `token embeddings of ${path.basename(s.llm)}${s.template ? ` through "${s.template}"` : ''}`;
    return `the label table ${s.file}`;
  }

  /**
   * Whether two label spaces are the same space: the same dimension and, for
   * every class both name, the same vector (to 1e-5, as a table survives a
   * save in f32 exactly but an LLM folder may have been moved or re-saved).
   */
  sameSpaceAs(other: LabelSpace): boolean {
    if (this.dim !== other.dim) return false;
    const common = this.names.filter((n) => other.names.includes(n));
    if (common.length === 0) return false;
    return common.every((n) => {
      const a = this.vector(n);
      const b = other.vector(n);
      return a.every((v, h) => Math.abs(v - b[h]) <= 1e-5);
    });
  }

  /** The unit vector of one class. */
  vector(name: string): Float32Array {
    const c = this.names.indexOf(name);
    if (c < 0) throw new TinyEmoError('INVALID_ARGUMENT', `"${name}" is not a label (${this.names.join(', ')})`);
    return this.table.subarray(c * this.dim, (c + 1) * this.dim);
  }
}

/** A synonyms file: JSON {"class": ["synonym", ...]}. */
export function readSynonymsFile(file: string): Record<string, string[]> {
  const j = readJsonFile(file) as Record<string, unknown>;
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(j)) {
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s.trim().length > 0)) {
      throw new TinyEmoError('INVALID_FILE', `${file}: "${k}" must map to a list of non-empty strings`);
    }
    out[k] = v as string[];
  }
  return out;
}
