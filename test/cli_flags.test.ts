/** The CLI's flag tables: each flag written once, defaults from the library's constants, typed values back. */
import { Command } from 'commander';

import { FlagTable, addFlags, readFlags } from '../lib/cli/flags';
import { registerTrain } from '../lib/cli/train';
import { TRAIN_DEFAULTS } from '../lib/train/trainer';

const TABLE = {
  batchSize: { arg: '<n>', kind: 'int', default: 8, help: 'images per pass' },
  lr: { arg: '<x>', kind: 'number', help: 'rate' },
  include: { arg: '<glob>', kind: 'list', help: 'globs' },
  device: { arg: '<d>', kind: 'device', help: 'where' },
  out: { arg: '<dir>', required: true, help: 'output' },
  json: { kind: 'boolean', help: 'JSON' },
} as const satisfies FlagTable;

function parse(args: string[]): Record<string, unknown> {
  const cmd = addFlags(new Command('x').exitOverride(), TABLE);
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
}

test('values come back typed, with the defaults applied and camelCase keys as --kebab-case flags', () => {
  const f = readFlags(TABLE, parse(['--out', 'o', '--lr', '1e-3', '--include', 'a', 'b', '--device', 'cuda:1']));
  expect(f).toEqual({ batchSize: 8, lr: 1e-3, include: ['a', 'b'], device: 'cuda:1', out: 'o', json: false });
  expect(readFlags(TABLE, parse(['--out', 'o', '--batch-size', '3'])).batchSize).toBe(3);
});

test('a bad value is a usage error that names the flag', () => {
  expect(() => readFlags(TABLE, parse(['--out', 'o', '--batch-size', '2.5']))).toThrow('--batch-size takes an integer, not "2.5"');
  expect(() => readFlags(TABLE, parse(['--out', 'o', '--lr', 'fast']))).toThrow('--lr takes a number, not "fast"');
  expect(() => readFlags(TABLE, parse(['--out', 'o', '--device', 'gpu']))).toThrow('--device takes cpu, cuda or cuda:N, not "gpu"');
});

test("the help states the library's defaults", () => {
  const program = new Command();
  registerTrain(program, () => undefined);
  const help = program.commands.find((c) => c.name() === 'train')!.helpInformation();
  expect(help.replace(/\s+/g, ' ')).toContain(`epochs (default ${TRAIN_DEFAULTS.epochs})`);
  expect(help.replace(/\s+/g, ' ')).toContain(`peak learning rate (default ${TRAIN_DEFAULTS.lr})`);
});
