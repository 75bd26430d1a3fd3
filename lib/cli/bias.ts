/** `tinyemo bias --model DIR [--data DIR] [--attributes FILE] [--probes FILE] --out DIR`: find and rank suspicious associations for review. */
import { optionalNumber } from './args';
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
    alpha: optionalNumber(f.alpha, 'alpha', false),
    minGroup: optionalNumber(f.minGroup, 'min-group', true),
    bootstrap: optionalNumber(f.bootstrap, 'bootstrap', true),
    permutations: optionalNumber(f.permutations, 'permutations', true),
    seed: optionalNumber(f.seed, 'seed', true),
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
