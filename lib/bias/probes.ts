/**
 * Probe vocabularies: attribute pairs (gender, age, nationality, scenes,
 * objects, ...) and the valence of emotion labels, from tinyemo's defaults
 * (probes.json next to this file) or a user's file in the same shape.
 */
import { TinyEmoError, invalidFile } from '../errors';
import { readJsonFile } from '../io/model_folder';
import DEFAULT_PROBES_JSON from './probes.json';

export interface ProbeSide {
  name: string;
  words: string[];
}

export interface ProbeSet {
  id: string;
  a: ProbeSide;
  b: ProbeSide;
}

export interface Probes {
  sets: ProbeSet[];
  valence: { positive: string[]; negative: string[] };
}

function side(v: unknown, where: string, what: string): ProbeSide {
  const o = v as { name?: unknown; words?: unknown };
  if (!o || typeof o.name !== 'string' || !Array.isArray(o.words) || o.words.length === 0 || !o.words.every((w) => typeof w === 'string' && w.trim() !== '')) {
    throw invalidFile(where, `${what} needs a "name" and a non-empty "words" list of strings`);
  }
  return { name: o.name, words: (o.words as string[]).map((w) => w.trim()) };
}

function words(v: unknown, where: string, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((w) => typeof w === 'string')) throw invalidFile(where, `${what} must be a list of strings`);
  return v as string[];
}

/** Checks a probes document (the defaults' shape). */
export function parseProbes(doc: unknown, where: string): Probes {
  const o = doc as { sets?: unknown; valence?: { positive?: unknown; negative?: unknown } };
  if (!o || typeof o !== 'object' || !Array.isArray(o.sets)) throw invalidFile(where, 'a probes file needs a "sets" list');
  const seen = new Set<string>();
  const sets = o.sets.map((s, i) => {
    const x = s as { id?: unknown; a?: unknown; b?: unknown };
    if (!x || typeof x.id !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(x.id)) throw invalidFile(where, `sets[${i}] needs an "id" of letters, digits, _ . -`);
    if (seen.has(x.id)) throw invalidFile(where, `the probe set id "${x.id}" appears twice`);
    seen.add(x.id);
    return { id: x.id, a: side(x.a, where, `sets[${i}].a`), b: side(x.b, where, `sets[${i}].b`) };
  });
  return { sets, valence: { positive: words(o.valence?.positive, where, 'valence.positive'), negative: words(o.valence?.negative, where, 'valence.negative') } };
}

export const DEFAULT_PROBES: Probes = parseProbes(DEFAULT_PROBES_JSON, 'tinyemo/lib/bias/probes.json');

export function readProbes(file: string | undefined): Probes {
  if (file === undefined) return DEFAULT_PROBES;
  try {
    return parseProbes(readJsonFile(file), file);
  } catch (e) {
    if (e instanceof TinyEmoError) throw e;
    throw invalidFile(file, String(e));
  }
}
