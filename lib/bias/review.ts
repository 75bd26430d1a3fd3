/**
 * The review loop: a person reads the flagged findings and appends one JSON
 * line per decision to a review file,
 *   {"id": "rate:gender=female:joy", "decision": "confirmed", "note": "...", "reviewer": "ana"}
 * and the next run folds the decisions into its report (the last line for an
 * id wins, so a decision can be changed by appending another).
 */
import * as fs from 'fs';

import { invalidFile } from '../errors';
import { jsonLines } from '../io/json';
import { Finding, Review } from './findings';

export function readReviews(file: string): Map<string, Review> {
  const out = new Map<string, Review>();
  if (!fs.existsSync(file)) return out;
  for (const { line, value } of jsonLines(fs.readFileSync(file, 'utf8'), file)) {
    const k = line - 1;
    const r = value as { id?: unknown; decision?: unknown; note?: unknown; reviewer?: unknown; at?: unknown };
    if (!r || typeof r !== 'object' || typeof r.id !== 'string' || !r.id) throw invalidFile(file, `line ${k + 1}: needs a string "id"`);
    if (r.decision !== 'confirmed' && r.decision !== 'dismissed') throw invalidFile(file, `line ${k + 1}: "decision" must be "confirmed" or "dismissed"`);
    for (const key of ['note', 'reviewer', 'at'] as const) {
      if (r[key] !== undefined && typeof r[key] !== 'string') throw invalidFile(file, `line ${k + 1}: "${key}" must be a string`);
    }
    out.set(r.id, {
      decision: r.decision,
      ...(r.note !== undefined ? { note: r.note as string } : {}),
      ...(r.reviewer !== undefined ? { reviewer: r.reviewer as string } : {}),
      ...(r.at !== undefined ? { at: r.at as string } : {}),
    });
  }
  return out;
}

/** Attaches decisions to findings; returns the ids decided but not found (the inputs changed since). */
export function applyReviews(findings: Finding[], reviews: Map<string, Review>): string[] {
  const ids = new Set(findings.map((f) => f.id));
  for (const f of findings) {
    const r = reviews.get(f.id);
    if (r) f.review = r;
  }
  return [...reviews.keys()].filter((id) => !ids.has(id));
}
