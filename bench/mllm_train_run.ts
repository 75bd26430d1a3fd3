/**
 * npm run bench:mllm [-- --steps N] [--reps N] [--json]
 *
 * One training step of an OpenELM-270M-shaped TinyLLaVA (16 layers, width 1280, 12→20 query heads, FFN
 * 768→5120, 32,000 tokens) with an mlp2x_gelu connector over 1024-wide patch features: 512 positions (BOS, 256
 * image tokens, 255 text tokens), the loss on the last 128, connector and LLM full (274 M parameters), f32, then
 * AdamW: natively, against bench/torch_mllm_train.py (PyTorch autograd, the same network), alternating runs with
 * the same threads, each baseline configuration with OpenBLAS's core detected or named (never inherited). The
 * image features are given (the tower is frozen in training and its features are computed once per image).
 * Medians of the per-step times (the first step of each run is a warm-up), tokens/s and peak memory.
 * --lora R: the LLM frozen, LoRA (rank R, alpha 2R, dropout 0.05) on every linear layer of the LLM instead.
 */
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';

import { Tensor, backendInfo } from '../lib';
import { ModelFolder } from '../lib/io/model_folder';
import { decoderConfig } from '../lib/models/llm/decoder_config';
import { DecoderTrainer } from '../lib/models/llm/decoder_train';
import { loadTrainWeights } from '../lib/models/llm/decoder_train_weights';
import { TrainableTinyLlava } from '../lib/models/llm/tinyllava_train';
import { initConnector } from '../lib/models/llm/tinyllava_train_io';
import { attachLora } from '../lib/models/llm/lora';
import { WeightLoader } from '../lib/models/weight_loader';
import { adamwStepSync } from '../lib/ops/optim';
import { openelmFolder, releaseOpenelmFolder } from './decode_case';
import { summarize } from './stats';
import { PYTHON, baselineEnv, fairConfigs, torchConfigs } from './torch';

const log = (s: string) => process.stderr.write(`${s}\n`);
const T = 512;
const TRAINED = 128;

interface Options {
  steps: number;
  reps: number;
  json: boolean;
  /** LoRA rank (0: the LLM trains full). */
  lora: number;
}

function parseArgs(argv: string[]): Options {
  const o = { steps: 3, reps: 2, json: false, lora: 0 };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--steps') o.steps = Number(argv[++i]);
    else if (argv[i] === '--lora') o.lora = Number(argv[++i]);
    else if (argv[i] === '--reps') o.reps = Number(argv[++i]);
    else if (argv[i] === '--json') o.json = true;
    else throw new Error(`unknown argument ${argv[i]} (use --steps N, --reps N, --lora R, --json)`);
  }
  return o;
}

/** The native side: the model loaded once, then `steps` steps timed. */
function nativeSteps(dir: string, steps: number, lora: number): number[] {
  const folder = ModelFolder.open(dir);
  const loader = new WeightLoader(folder, 'f32');
  const cfg = decoderConfig(folder.config, dir);
  const weights = loadTrainWeights(folder, cfg, loader);
  folder.close();
  const conn = initConnector(2, 1024, cfg.hidden, 0, 'cpu');
  const model = new TrainableTinyLlava(new DecoderTrainer(cfg, weights), conn);
  const pairs = lora ? attachLora(weights, { r: lora, alpha: 2 * lora, dropout: 0.05, targets: ['qkv_proj', 'out_proj', 'proj_1', 'proj_2'], seed: 0 }) : [];
  const params = lora ? [...conn.flatMap((l) => [l.w, l.b!]), ...pairs.flatMap((p) => [p.a, p.b])] : model.params();
  for (const p of params) p.grad = Tensor.zeros(p.value.shape, 'f32');
  const m = params.map((p) => Tensor.zeros(p.value.shape, 'f32'));
  const v = params.map((p) => Tensor.zeros(p.value.shape, 'f32'));
  const features = Tensor.from(
    Float32Array.from({ length: 256 * 1024 }, (_, i) => Math.sin(i) * 0.5),
    [256, 1024],
  );
  const ids = Int32Array.from({ length: T - 255 }, (_, i) => (i === 0 ? 1 : i === 1 ? -200 : 100 + i));
  const labels = Int32Array.from(ids, (id, i) => (i >= ids.length - TRAINED ? id : -100));
  const seconds: number[] = [];
  try {
    for (let s = 0; s < steps; ++s) {
      const t0 = process.hrtime.bigint();
      model.decoder.maskSeed = s + 1;
      model.accumulate({ ids, labels, features }, 1 / TRAINED);
      adamwStepSync(
        { params: params.map((p) => p.value), grads: params.map((p) => p.grad!), expAvg: m, expAvgSq: v },
        { lr: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: s + 1 },
      );
      seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  } finally {
    for (const t of [...m, ...v, features, ...params.map((p) => p.grad!)]) t.dispose();
    for (const l of conn) [l.w.value, l.b!.value].forEach((t) => t.dispose());
    for (const p of pairs) [p.a.value, p.b.value].forEach((t) => t.dispose());
    loader.disposeAll();
  }
  return seconds;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const info = backendInfo();
  const threads = info.threads;
  const configs = fairConfigs(info);
  const dir = openelmFolder('f32');
  log(`${os.cpus()[0]?.model ?? 'unknown CPU'}, ${threads} threads (${info.isa}); ${o.reps} alternating runs of ${o.steps} steps`);
  const ours: number[] = [];
  const theirs = new Map<string, number[]>(configs.map((c) => [c.name, []]));
  let torchRss = 0;
  try {
    await runs(o, dir, configs, ours, theirs, (r) => (torchRss = Math.max(torchRss, r)));
  } finally {
    releaseOpenelmFolder();
  }
  report(o, info, ours, theirs, torchRss);
}

async function runs(o: Options, dir: string, configs: ReturnType<typeof torchConfigs>, ours: number[], theirs: Map<string, number[]>, onRss: (gib: number) => void): Promise<void> {
  for (let rep = 0; rep < o.reps; ++rep) {
    const s = nativeSteps(dir, o.steps, o.lora);
    ours.push(...s.slice(1));
    log(`  tinyemo  ${s.map((x) => x.toFixed(2)).join(' ')} s`);
    for (const c of configs) {
      const p = spawnSync(PYTHON, [path.join(__dirname, '..', '..', 'bench', 'torch_mllm_train.py'), String(o.steps)], {
        env: { ...baselineEnv(c), ...(o.lora ? { LORA_R: String(o.lora), LORA_ALPHA: String(2 * o.lora) } : {}) },
        encoding: 'utf8',
      });
      if (p.status !== 0) throw new Error(`torch_mllm_train.py failed: ${p.stderr.slice(-2000)}`);
      const j = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as { seconds: number[]; max_rss_gib: number };
      theirs.get(c.name)!.push(...j.seconds.slice(1));
      onRss(j.max_rss_gib);
      log(`  ${c.name.padEnd(34)} ${j.seconds.map((x) => x.toFixed(2)).join(' ')} s`);
      await new Promise((res) => setTimeout(res, 300));
    }
  }
}

function report(o: Options, info: ReturnType<typeof backendInfo>, ours: number[], theirs: Map<string, number[]>, torchRss: number): void {
  const threads = info.threads;
  const med = (a: number[]) => summarize(a).median;
  const [bestName, best] = [...theirs].sort((a, b) => med(a[1]) - med(b[1]))[0];
  const rss = process.resourceUsage().maxRSS / 2 ** 20;
  const result = {
    date: new Date().toISOString().slice(0, 10),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    threads,
    isa: info.isa,
    lora_rank: o.lora,
    tinyemo: { step_s: summarize(ours), tokens_per_s: T / med(ours), peak_rss_gib: rss },
    torch: { config: bestName, step_s: summarize(best), tokens_per_s: T / med(best), peak_rss_gib: torchRss },
    ratio: med(best) / med(ours),
  };
  log(
    `median step: tinyemo ${med(ours).toFixed(2)} s (${(T / med(ours)).toFixed(0)} tokens/s, peak ${rss.toFixed(1)} GiB), PyTorch ${med(best).toFixed(2)} s (${bestName}, peak ${torchRss.toFixed(1)} GiB): ${result.ratio.toFixed(2)}x`,
  );
  if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
