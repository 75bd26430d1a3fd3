/** `tinyemo bias --model DIR [--data DIR] [--attributes FILE] [--probes FILE] --out DIR`: find and rank suspicious associations for review. */
import { invalid } from '../errors';
import { BiasReport, runBias } from '../bias/run';

export interface BiasFlags {
  model: string;
  data?: string;
  vision?: string;
  attributes?: string;
  probes?: string;
  llm?: string;
  tokenizer?: string;
  out: string;
  alpha?: string;
  minGroup?: string;
  bootstrap?: string;
  permutations?: string;
  seed?: string;
  review?: string;
  json?: boolean;
}

function num(v: string | undefined, flag: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isSafeInteger(x))) throw invalid(`--${flag} takes ${integer ? 'an integer' : 'a number'}, not "${v}"`);
  return x;
}

export async function biasCommand(f: BiasFlags): Promise<BiasReport> {
  return runBias({
    model: f.model,
    data: f.data,
    vision: f.vision,
    attributes: f.attributes,
    probes: f.probes,
    llm: f.llm,
    tokenizer: f.tokenizer,
    out: f.out,
    alpha: num(f.alpha, 'alpha', false),
    minGroup: num(f.minGroup, 'min-group', true),
    bootstrap: num(f.bootstrap, 'bootstrap', true),
    permutations: num(f.permutations, 'permutations', true),
    seed: num(f.seed, 'seed', true),
    review: f.review,
  });
}

export function formatBias(r: BiasReport, out: string): string {
  const lines = [
    `${r.counts.tests} tests (${r.embeddingSpace ? `probes placed with ${r.embeddingSpace}` : 'no embedding tests'}${r.data ? `; ${r.n} samples` : ''}), ` +
      `${r.counts.flagged} flagged: ${r.counts.pending} to review, ${r.counts.confirmed} confirmed, ${r.counts.dismissed} dismissed`,
    ...r.notes.map((n) => `note: ${n}`),
    ...r.warnings.map((w) => `warning: ${w}`),
  ];
  for (const f of r.findings.filter((x) => x.flagged)) {
    const ci = f.ci ? ` [${f.ci[0].toFixed(3)}, ${f.ci[1].toFixed(3)}]` : '';
    lines.push(`  ${f.review ? f.review.decision.padEnd(9) : 'REVIEW   '} ${f.id}: ${f.title} (effect ${f.effect.toFixed(3)}${ci}, q ${f.q.toPrecision(2)})`);
  }
  lines.push(`report: ${out}/report.html and report.json; decisions go in ${out}/review.jsonl`);
  return lines.join('\n');
}
