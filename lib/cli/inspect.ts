/** `tinyemo inspect FILE|FOLDER`: the tensors (name, dtype, shape) of any supported weight file or model folder. */
import { Command } from 'commander';
import * as fs from 'fs';

import { FILE_DTYPE_SIZE } from '../io/dtypes';
import { ModelFolder } from '../io/model_folder';
import { WeightFile, WeightInfo } from '../io/weights';
import { FlagTable, addFlags, printResult, readFlags } from './flags';

export interface InspectReport {
  path: string;
  format: string;
  metadata: Record<string, string>;
  tensors: WeightInfo[];
  parameters: number;
  bytes: number;
}

export function inspectPath(p: string): InspectReport {
  let tensors: WeightInfo[];
  let format: string;
  let metadata: Record<string, string> = {};
  if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
    const m = ModelFolder.open(p, { requireConfig: false });
    try {
      tensors = m.weightNames.map((n) => m.info(n));
      format = 'model folder';
    } finally {
      m.close();
    }
  } else {
    const w = WeightFile.open(p);
    try {
      tensors = w.tensors;
      format = w.format;
      metadata = { ...w.metadata };
    } finally {
      w.close();
    }
  }
  const count = (t: WeightInfo) => t.shape.reduce((a, b) => a * b, 1);
  return {
    path: p,
    format,
    metadata,
    tensors,
    parameters: tensors.reduce((s, t) => s + count(t), 0),
    bytes: tensors.reduce((s, t) => s + count(t) * FILE_DTYPE_SIZE[t.dtype], 0),
  };
}

export function formatInspect(r: InspectReport): string {
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
