/**
 * A command's flags, each written once: a table entry gives the flag (its
 * key, in camelCase, is the long name: batchSize is --batch-size), its help,
 * its kind and its default, taken from the library's constants. The table
 * registers the options with commander (the help says the default), and
 * reads commander's strings back as typed values with the defaults applied;
 * the values' type is derived from the table.
 */
import { Command } from 'commander';

import { invalid } from '../errors';
import type { MatmulPrecision } from '../ops/gemm';
import type { Device } from '../tensor';

export type FlagKind = 'string' | 'number' | 'int' | 'boolean' | 'list' | 'device' | 'precision';

export interface FlagSpec {
  help: string;
  /** Default 'string'. */
  kind?: FlagKind;
  /** The value's name in the help ("<dir>"); default "<x>" for numbers, "<value>" otherwise. */
  arg?: string;
  required?: boolean;
  /** Applied when the flag is absent, and shown in the help. */
  default?: string | number | boolean;
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

type KindValue<K> = K extends 'number' | 'int'
  ? number
  : K extends 'boolean'
    ? boolean
    : K extends 'list'
      ? string[]
      : K extends 'device'
        ? Device
        : K extends 'precision'
          ? MatmulPrecision
          : string;
type ValueOf<S extends FlagSpec> = KindValue<S['kind'] extends FlagKind ? S['kind'] : 'string'>;
type Given<S extends FlagSpec> = S extends { required: true } | { kind: 'boolean' } | { default: string | number | boolean } ? true : false;

/** The parsed flags of a table: required, defaulted and boolean flags always hold a value (an absent switch is false). */
export type FlagValues<T extends FlagTable> = {
  -readonly [K in keyof T]: Given<T[K]> extends true ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

function longName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Adds the table's options to a command. */
export function addFlags(cmd: Command, table: FlagTable): Command {
  for (const [key, s] of Object.entries(table)) {
    const kind = s.kind ?? 'string';
    const name = s.arg ?? (kind === 'number' || kind === 'int' ? '<x>' : '<value>');
    // commander spells a list as <name...>.
    const arg = kind === 'boolean' ? '' : ` ${kind === 'list' ? name.replace(/>$/, '...>') : name}`;
    const help = s.default !== undefined && kind !== 'boolean' ? `${s.help} (default ${String(s.default)})` : s.help;
    if (s.required) cmd.requiredOption(`${longName(key)}${arg}`, help);
    else cmd.option(`${longName(key)}${arg}`, help);
  }
  return cmd;
}

/** Commander's raw values (strings, booleans, lists) as the table's typed values; a bad value is a usage error naming the flag. */
export function readFlags<T extends FlagTable>(table: T, raw: Record<string, unknown>): FlagValues<T> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(table)) {
    const v = commanderValue(key, s, raw);
    if (v !== undefined) out[key] = parseValue(s.kind ?? 'string', v, longName(key));
    else out[key] = s.kind === 'boolean' ? (s.default ?? false) : s.default;
  }
  return out as FlagValues<T>;
}

/**
 * A switch named noX (--no-x) is a negation to commander, which stores it as x: true when absent, false
 * when given. The table reads it as noX: true when given.
 */
function commanderValue(key: string, s: FlagSpec, raw: Record<string, unknown>): unknown {
  const m = /^no([A-Z].*)$/.exec(key);
  if (!m || s.kind !== 'boolean') return raw[key];
  return raw[m[1][0].toLowerCase() + m[1].slice(1)] === false ? true : undefined;
}

function parseValue(kind: FlagKind, v: unknown, flag: string): unknown {
  switch (kind) {
    case 'number':
    case 'int':
      return parseNumber(String(v), flag, kind === 'int');
    case 'boolean':
      return v === true;
    case 'list':
      return Array.isArray(v) ? v.map(String) : [String(v)];
    case 'device':
      return parseDevice(String(v), flag);
    case 'precision':
      if (v === 'f32' || v === 'bf16') return v;
      throw invalid(`${flag} takes f32 or bf16, not "${String(v)}"`);
    default:
      return String(v);
  }
}

export function parseNumber(v: string, flag: string, integer: boolean): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isSafeInteger(x))) throw invalid(`${flag} takes ${integer ? 'an integer' : 'a number'}, not "${v}"`);
  return x;
}

/** The vision tower's products, for the commands that run one on images. */
export const PRECISION_FLAG = {
  precision: {
    arg: '<p>',
    kind: 'precision',
    default: 'f32',
    help: "the vision tower's products: f32, or bf16 (about twice as fast on CPUs with AVX512_BF16, refused elsewhere; `tinyemo doctor` measures the embedding error)",
  },
} as const satisfies FlagTable;

/** cpu, cuda or cuda:N. */
export function parseDevice(d: string, flag = '--device'): Device {
  if (d === 'cpu' || d === 'cuda' || /^cuda:\d{1,4}$/.test(d)) return d as Device;
  throw invalid(`${flag} takes cpu, cuda or cuda:N, not "${d}"`);
}

/** Writes a command's result: one JSON document with --json, else its text form. */
export function printResult<R>(json: boolean | undefined, r: R, text: (r: R) => string): void {
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : `${text(r)}\n`);
}
