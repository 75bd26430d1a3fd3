/**
 * `tinyemo serve --model DIR [--mllm DIR] ...`: the models loaded once behind
 * an HTTP service (lib/serve): /v1/classify, /v1/reason, the OpenAI-compatible
 * /v1/chat/completions, probes, metrics and a demo page. SIGTERM or SIGINT
 * stops accepting, lets requests in flight finish within --shutdown-s, and
 * exits 0.
 */
import { Command } from 'commander';
import { isIP } from 'net';

import { invalid } from '../errors';
import { REASON_TEMPLATES, ReasonTemplate } from '../models/llm/reasoner';
import { SERVE_DEFAULTS, ServeOptions } from '../serve/options';
import { FlagTable, FlagValues, PRECISION_FLAG, addFlags, readFlags } from './flags';
import { nextStopSignal } from './signals';

const D = SERVE_DEFAULTS;
const FLAGS = {
  model: { arg: '<dir>', required: true, help: 'a model folder from `tinyemo train` (the projector, its labels and tower)' },
  mllm: { arg: '<dir>', help: 'a TinyLLaVA-format model: enables /v1/reason and /v1/chat/completions' },
  tokenizer: { arg: '<dir>', help: "the reasoning model's tokenizer when it ships none (OpenELM-based: TinyLlama's)" },
  template: { arg: '<name>', help: `the TinyLLaVA conversation style: ${REASON_TEMPLATES.join(' | ')} (default: from the LLM)` },
  vision: { arg: '<dir>', help: "the projector's vision tower, when the model folder does not name it" },
  host: { arg: '<addr>', default: D.host, help: 'the address to listen on (a non-loopback address wants --api-key)' },
  port: { arg: '<n>', kind: 'int', default: D.port, help: 'the port (0: any free one)' },
  apiKey: { arg: '<key>', help: 'require "Authorization: Bearer KEY" on /v1/* and /metrics (default: TINYEMO_API_KEY)' },
  maxConcurrency: { arg: '<n>', kind: 'int', default: D.maxConcurrency, help: 'computations at once (a batch of classifications is one)' },
  maxQueue: { arg: '<n>', kind: 'int', default: D.maxQueue, help: 'requests waiting for compute; past it, 429 with Retry-After' },
  maxBatch: { arg: '<n>', kind: 'int', default: D.maxBatch, help: 'images per tower forward pass, across requests' },
  batchWaitMs: { arg: '<ms>', kind: 'number', default: D.batchWaitMs, help: 'how long an image waits for others to fill its batch' },
  maxBodyMb: { arg: '<mb>', kind: 'number', default: D.maxBodyBytes / 2 ** 20, help: 'largest request body' },
  maxPixels: { arg: '<n>', kind: 'int', default: D.maxPixels, help: 'largest decoded image (width × height)' },
  maxImages: { arg: '<n>', kind: 'int', default: D.maxImages, help: 'images per classify request' },
  maxTokens: { arg: '<n>', kind: 'int', default: D.maxTokens, help: 'largest max_tokens a request may ask for' },
  timeoutS: { arg: '<s>', kind: 'number', default: D.timeoutS, help: 'per-request time limit (504 past it)' },
  shutdownS: { arg: '<s>', kind: 'number', default: 10, help: 'on SIGTERM, how long requests in flight may take to finish' },
  device: { arg: '<device>', kind: 'device', help: 'where the models run: cpu (default), cuda or cuda:N' },
  ...PRECISION_FLAG,
} as const satisfies FlagTable;

export type ServeFlags = FlagValues<typeof FLAGS>;

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description('an HTTP service over the models: classify, reason, an OpenAI-compatible chat endpoint, metrics and a demo page');
  addFlags(cmd, FLAGS).action(async (raw: Record<string, unknown>) => {
    await serveCommand(readFlags(FLAGS, raw));
  });
}

const positive = (v: number, flag: string) => {
  if (!(v > 0)) throw invalid(`${flag} takes a positive number, not ${v}`);
  return v;
};

/** The server's options from the flags, each checked. */
export function serveOptions(f: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServeOptions {
  if (!(f.port >= 0 && f.port <= 65535)) throw invalid(`--port takes 0 to 65535, not ${f.port}`);
  if (f.batchWaitMs < 0) throw invalid(`--batch-wait-ms takes a number ≥ 0, not ${f.batchWaitMs}`);
  const apiKey = f.apiKey ?? (env.TINYEMO_API_KEY || undefined);
  if (apiKey !== undefined && !/^[\x21-\x7e]{8,512}$/.test(apiKey)) throw invalid('the API key must be 8 to 512 printable characters without spaces');
  return {
    host: f.host,
    port: f.port,
    apiKey,
    maxConcurrency: positive(f.maxConcurrency, '--max-concurrency'),
    maxQueue: positive(f.maxQueue, '--max-queue'),
    maxBatch: positive(f.maxBatch, '--max-batch'),
    batchWaitMs: f.batchWaitMs,
    maxBodyBytes: Math.floor(positive(f.maxBodyMb, '--max-body-mb') * 2 ** 20),
    maxPixels: positive(f.maxPixels, '--max-pixels'),
    maxImages: positive(f.maxImages, '--max-images'),
    maxTokens: positive(f.maxTokens, '--max-tokens'),
    timeoutS: positive(f.timeoutS, '--timeout-s'),
    headersTimeoutMs: D.headersTimeoutMs,
    requestTimeoutMs: D.requestTimeoutMs,
    onLog: (m) => process.stderr.write(`tinyemo serve: ${m}\n`),
  };
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/** Loads, listens, and returns once a signal has stopped the server. */
export async function serveCommand(f: ServeFlags): Promise<void> {
  const opts = serveOptions(f);
  if (f.template !== undefined && !(REASON_TEMPLATES as readonly string[]).includes(f.template))
    throw invalid(`--template takes ${REASON_TEMPLATES.join(', ')}, not "${f.template}"`);
  const say = (m: string) => process.stderr.write(`tinyemo serve: ${m}\n`);
  if (!isLoopback(opts.host) && opts.apiKey === undefined) say(`warning: listening on ${opts.host} with no API key: anyone who reaches it can use it (--api-key)`);
  // The HTTP stack and its dependencies load only for this command (every other command starts faster).
  const { ServeModels } = await import('../serve/models');
  const { startServer } = await import('../serve/server');
  const models = ServeModels.load({
    model: f.model,
    mllm: f.mllm,
    tokenizer: f.tokenizer,
    template: f.template as ReasonTemplate | undefined,
    vision: f.vision,
    device: f.device,
    precision: f.precision,
    onNote: say,
  });
  try {
    const server = await startServer(models, opts);
    const routes = ['classify', ...(models.reasoner ? ['reason', 'chat/completions'] : [])].map((r) => `/v1/${r}`);
    say(`listening on ${server.url} (${routes.join(', ')}; API key ${opts.apiKey ? 'required' : 'off'})`);
    const signal = await nextStopSignal();
    say(`${signal}: no new requests; finishing those in flight (up to ${f.shutdownS} s)`);
    await server.close(f.shutdownS * 1000);
    say('stopped');
  } finally {
    models.dispose();
  }
}
