/**
 * Sample attributes for data-set probes: a CSV with a header row or JSON
 * lines, each record a sample id and attribute values (gender, age group,
 * object, ...). A sample id names a data file by its path relative to the
 * data folder without the extension ("joy/12") or, when that is unique, by
 * its bare name ("12").
 */
import * as fs from 'fs';

import { invalidFile } from '../errors';
import { jsonLines } from '../io/json';

export interface Metadata {
  /** Attribute names, in file order (the id column excluded). */
  attributes: string[];
  /** id -> attribute -> value ('' when missing). */
  rows: Map<string, Record<string, string>>;
}

const MAX_BYTES = 256 * 1024 * 1024;

/** RFC 4180-style CSV: quoted fields with "" escapes, CRLF or LF. */
export function parseCsv(text: string, where: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += c;
      ++i;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') ++i;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
    ++i;
  }
  if (quoted) throw invalidFile(where, 'a quoted field is not closed');
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0].trim() === ''));
}

function checkId(id: unknown, where: string, line: number): string {
  if (typeof id !== 'string' && typeof id !== 'number') throw invalidFile(where, `line ${line}: no "id"`);
  const s = String(id).trim();
  if (!s) throw invalidFile(where, `line ${line}: empty id`);
  return s;
}

export function readMetadata(file: string): Metadata {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st || !st.isFile()) throw invalidFile(file, 'not a file');
  if (st.size > MAX_BYTES) throw invalidFile(file, `${st.size} bytes, more than ${MAX_BYTES}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(fs.readFileSync(file));
  } catch {
    throw invalidFile(file, 'not UTF-8 text');
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows = new Map<string, Record<string, string>>();
  const attributes: string[] = [];
  const addAttr = (a: string) => !attributes.includes(a) && attributes.push(a);
  if (/\.jsonl?$/i.test(file)) {
    for (const { line, value: o } of jsonLines(text, file)) {
      const k = line - 1;
      if (!o || typeof o !== 'object' || Array.isArray(o)) throw invalidFile(file, `line ${k + 1}: not a JSON object`);
      const rec = o as Record<string, unknown>;
      const id = checkId(rec.id, file, k + 1);
      if (rows.has(id)) throw invalidFile(file, `line ${k + 1}: the id "${id}" appears twice`);
      const r: Record<string, string> = {};
      for (const [key, v] of Object.entries(rec)) {
        if (key === 'id') continue;
        if (v !== null && typeof v === 'object') throw invalidFile(file, `line ${k + 1}: "${key}" must be a string, number or boolean`);
        addAttr(key);
        r[key] = v === null || v === undefined ? '' : String(v);
      }
      rows.set(id, r);
    }
  } else {
    const table = parseCsv(text, file);
    if (table.length < 2) throw invalidFile(file, 'a CSV needs a header row and at least one record');
    const header = table[0].map((h) => h.trim());
    const idCol = header.indexOf('id') >= 0 ? header.indexOf('id') : 0;
    header.forEach((h, j) => {
      if (j === idCol) return;
      if (!h) throw invalidFile(file, `column ${j + 1} has no name`);
      addAttr(h);
    });
    table.slice(1).forEach((r, k) => {
      if (r.length !== header.length) throw invalidFile(file, `line ${k + 2}: ${r.length} fields, the header has ${header.length}`);
      const id = checkId(r[idCol], file, k + 2);
      if (rows.has(id)) throw invalidFile(file, `line ${k + 2}: the id "${id}" appears twice`);
      const rec: Record<string, string> = {};
      header.forEach((h, j) => j !== idCol && (rec[h] = r[j].trim()));
      rows.set(id, rec);
    });
  }
  if (attributes.length === 0) throw invalidFile(file, 'no attribute columns besides the id');
  return { attributes, rows };
}
