/** `tinyemo inspect FILE|FOLDER`: the tensors (name, dtype, shape) of any supported weight file or model folder. */
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { FILE_DTYPE_SIZE } from '../io/dtypes';
import { ModelFolder } from '../io/model_folder';
import { WeightFile, WeightInfo } from '../io/weights';
import { BUNDLE_FILE } from '../models/projector/bundle';
import { FlagTable, addFlags, printResult, readFlags } from './flags';

export interface InspectPart {
  /** The file's name in the folder. */
  file: string;
  format: string;
  tensors: WeightInfo[];
  parameters: number;
  bytes: number;
}

export interface InspectReport {
  path: string;
  format: string;
  metadata: Record<string, string>;
  tensors: WeightInfo[];
  parameters: number;
  bytes: number;
  /** A folder of separate weight files (a `tinyemo train` output): each file and its tensors. */
  parts?: InspectPart[];
}

const WEIGHT_FILE = /\.(safetensors|pt|pth|bin|npy)$/i;
const count = (t: WeightInfo) => t.shape.reduce((a, b) => a * b, 1);
const totals = (tensors: WeightInfo[]) => ({
  parameters: tensors.reduce((s, t) => s + count(t), 0),
  bytes: tensors.reduce((s, t) => s + count(t) * FILE_DTYPE_SIZE[t.dtype], 0),
});

export function inspectPath(p: string): InspectReport {
  if (!fs.existsSync(p)) throw new TinyEmoError('NOT_FOUND', `${p} does not exist`);
  if (!fs.statSync(p).isDirectory()) {
    const w = WeightFile.open(p);
    try {
      return { path: p, format: w.format, metadata: { ...w.metadata }, tensors: w.tensors, ...totals(w.tensors) };
    } finally {
      w.close();
    }
  }
  const m = ModelFolder.open(p, { requireConfig: false });
  let tensors: WeightInfo[];
  try {
    tensors = m.weightNames.map((n) => m.info(n));
  } finally {
    m.close();
  }
  if (tensors.length) return { path: p, format: 'model folder', metadata: {}, tensors, ...totals(tensors) };
  return folderOfFiles(p);
}

/** A folder without a model's weight files: every weight file in it, as its parts (tinyemo.json's bundle, ...). */
function folderOfFiles(p: string): InspectReport {
  const files = fs
    .readdirSync(p, { withFileTypes: true })
    .filter((e) => e.isFile() && WEIGHT_FILE.test(e.name))
    .map((e) => e.name)
    .sort();
  if (!files.length) throw new TinyEmoError('NOT_FOUND', `${p} holds no weights (no model weight files, no .safetensors, .pt, .bin or .npy file)`);
  const parts = files.map((file): InspectPart => {
    const w = WeightFile.open(path.join(p, file));
    try {
      return { file, format: w.format, tensors: w.tensors, ...totals(w.tensors) };
    } finally {
      w.close();
    }
  });
  const tensors = parts.flatMap((x) => x.tensors.map((t) => ({ ...t, name: `${x.file}:${t.name}` })));
  const bundle = fs.existsSync(path.join(p, BUNDLE_FILE));
  return { path: p, format: bundle ? `tinyemo model folder (${BUNDLE_FILE})` : 'folder of weight files', metadata: {}, tensors, ...totals(tensors), parts };
}

export function formatInspect(r: InspectReport): string {
  if (r.parts) {
    const head = `${r.path}: ${r.format}, ${r.parts.length} weight files, ${r.tensors.length} tensors, ${r.parameters.toLocaleString('en-US')} values, ${(r.bytes / 2 ** 20).toFixed(1)} MiB`;
    return [head, ...r.parts.map((x) => formatInspect({ path: x.file, format: x.format, metadata: {}, tensors: x.tensors, parameters: x.parameters, bytes: x.bytes }))].join(
      '\n\n',
    );
  }
  const rows = r.tensors.map((t) => [t.name === '' ? '(the file is one tensor)' : t.name, t.dtype, `[${t.shape.join(', ')}]`]);
  const w0 = Math.max(4, ...rows.map((x) => x[0].length));
  const w1 = Math.max(5, ...rows.map((x) => x[1].length));
  const lines = [
    `${r.path}: ${r.format}, ${r.tensors.length} tensors, ${r.parameters.toLocaleString('en-US')} values, ${(r.bytes / 2 ** 20).toFixed(1)} MiB`,
    ...Object.entries(r.metadata).map(([k, v]) => `  ${k} = ${v}`),
    `${'name'.padEnd(w0)}  ${'dtype'.padEnd(w1)}  shape`,
    ...rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`),
  ];
  return lines.join('\n');
}

const FLAGS = { json: { kind: 'boolean', help: 'print one JSON document' } } as const satisfies FlagTable;

export function registerInspect(program: Command): void {
  const cmd = program
    .command('inspect')
    .description('list the tensors (name, dtype, shape) of a weight file (safetensors, .pt/.bin, .npy) or model folder')
    .argument('<file>', 'a weight file or a model folder');
  addFlags(cmd, FLAGS).action((file: string, raw: Record<string, unknown>) => {
    printResult(readFlags(FLAGS, raw).json, inspectPath(file), formatInspect);
  });
}
