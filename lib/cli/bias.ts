/** `tinyemo bias --model DIR [--data DIR] [--attributes FILE] [--probes FILE] --out DIR`: find and rank suspicious associations for review. */
import { Command } from 'commander';
import { BIAS_DEFAULTS, BiasReport, runBias } from '../bias/run';
import { FlagTable, FlagValues, addFlags, printResult, readFlags } from './flags';
import { STRICT_FLAG, inputsOutcome } from './inputs';

const d = BIAS_DEFAULTS;

const FLAGS = {
  model: { arg: '<dir>', required: true, help: 'a model folder from `tinyemo train`' },
  data: { arg: '<dir>', help: 'a data folder (one sub-folder per class) of features or images to probe the classifier on' },
  vision: { arg: '<dir>', help: "for a folder of images: the vision tower (default: the model's)" },
  attributes: { arg: '<file>', help: 'CSV or JSONL: sample id -> attributes (gender, age, object, ...)' },
  probes: { arg: '<file>', help: "probe vocabularies (default: tinyemo's; same JSON shape)" },
  llm: { arg: '<dir>', help: "the LLM whose embeddings place probe words (default: the model's label space)" },
  tokenizer: { arg: '<dir>', help: 'the tokenizer folder when the LLM has none' },
  out: { arg: '<dir>', required: true, help: 'where report.html and report.json go' },
  alpha: { arg: '<q>', kind: 'number', default: d.alpha, help: 'false-discovery rate for flagging' },
  minGroup: { arg: '<n>', kind: 'int', default: d.minGroup, help: 'smallest group tested' },
  bootstrap: { arg: '<n>', kind: 'int', default: d.bootstrap, help: 'bootstrap resamples per interval' },
  permutations: { arg: '<n>', kind: 'int', default: d.permutations, help: 'permutations per p-value' },
  seed: { arg: '<n>', kind: 'int', default: d.seed, help: 'seed of the resampling' },
  review: { arg: '<file>', help: "reviewers' decisions, JSON lines (default OUT/review.jsonl)" },
  json: { kind: 'boolean', help: 'print the report as one JSON document' },
  failOnFlagged: { kind: 'boolean', help: 'exit 1 when a finding is flagged and not dismissed by a review (a gate for CI)' },
  ...STRICT_FLAG,
} as const satisfies FlagTable;

export type BiasFlags = FlagValues<typeof FLAGS>;

export function registerBias(program: Command, exit: (code: number) => void): void {
  const cmd = program.command('bias').description('semi-automated bias detection: association tests in the label space and group gaps on a data set, ranked for review');
  addFlags(cmd, FLAGS).action(async (raw: Record<string, unknown>) => {
    const f = readFlags(FLAGS, raw);
    const r = await biasCommand(f);
    printResult(f.json, r, (x) => formatBias(x, f.out));
    // With data, the samples are the inputs; without, the report is the association tests alone.
    exit(inputsOutcome(r.data ? r.n : 1, r.skipped, f.strict));
    const open = r.findings.filter((x) => x.flagged && x.review?.decision !== 'dismissed').length;
    if (f.failOnFlagged && open > 0) {
      process.stderr.write(`tinyemo: --fail-on-flagged: ${open} flagged finding${open === 1 ? '' : 's'} not dismissed\n`);
      exit(1);
    }
  });
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
    alpha: f.alpha,
    minGroup: f.minGroup,
    bootstrap: f.bootstrap,
    permutations: f.permutations,
    seed: f.seed,
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
