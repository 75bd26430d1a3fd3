/**
 * A strict JSON parser for headers of untrusted files. Unlike JSON.parse it
 * refuses duplicate keys (which the safetensors spec forbids and JSON.parse
 * silently resolves to the last) and integers that a double cannot hold
 * exactly (which JSON.parse rounds), and it bounds nesting depth.
 */
import { invalidFile } from '../errors';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export class JsonError extends Error {}

const MAX_DEPTH = 64;

export interface JsonOptions {
  /** Accept Python's NaN, Infinity and -Infinity (config.json files written by json.dump). */
  allowNonFinite?: boolean;
  /** Counts the characters the string scanner reads (each once: tests bound it by the text's length). */
  work?: { chars: number };
}

// One scanner over the text with its position, depth and limits in scope: split up, each piece would take and return them all.
// eslint-disable-next-line max-lines-per-function
export function parseStrictJson(text: string, opts: JsonOptions = {}): Json {
  let i = 0;
  const fail = (msg: string): never => {
    throw new JsonError(`${msg} at offset ${i}`);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const str = (): string => {
    // At the opening quote. Escapes per RFC 8259; raw control characters refused.
    i++;
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        // The run up to the next quote or backslash, in one pass (searching ahead for each of them separately
        // scanned to the end of the text for every string: quadratic on a header of many names).
        let j = i;
        for (; j < text.length; j++) {
          const d = text.charCodeAt(j);
          if (d === 0x22 || d === 0x5c) break;
          if (d < 0x20) {
            i = j;
            fail('control character in string');
          }
        }
        if (opts.work) opts.work.chars += j - i;
        out += text.slice(i, j);
        i = j;
        continue;
      }
      const e = text[i + 1];
      i += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          fail('bad escape');
      }
    }
  };
  const num = (): number => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail('bad number');
    i += m![0].length;
    const v = Number(m![0]);
    if (!m![2] && !m![3] && !Number.isSafeInteger(v)) fail(`integer ${m![0]} is too large to hold exactly`);
    if (!Number.isFinite(v)) fail('number out of range');
    return v;
  };
  // eslint-disable-next-line max-lines-per-function -- the value grammar, one case per JSON type (see above)
  const value = (depth: number): Json => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: { [key: string]: Json } = Object.create(null) as { [key: string]: Json };
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const k = str();
        if (seen.has(k)) fail(`duplicate key "${k.slice(0, 80)}"`);
        seen.add(k);
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr: Json[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    if (opts.allowNonFinite) {
      for (const [word, v] of [
        ['NaN', NaN],
        ['Infinity', Infinity],
        ['-Infinity', -Infinity],
      ] as const) {
        if (text.startsWith(word, i)) {
          i += word.length;
          return v;
        }
      }
    }
    return num();
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

export function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The records of a JSON-lines text, with their 1-based line numbers; blank
 * lines are skipped, a line that is not JSON is an error naming it.
 */
export function jsonLines(text: string, file: string): Array<{ line: number; value: unknown }> {
  const out: Array<{ line: number; value: unknown }> = [];
  text.split(/\r?\n/).forEach((l, k) => {
    if (!l.trim()) return;
    try {
      out.push({ line: k + 1, value: JSON.parse(l) as unknown });
    } catch {
      throw invalidFile(file, `line ${k + 1}: not JSON`);
    }
  });
  return out;
}
