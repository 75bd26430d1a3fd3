/** Parsing flags: commander hands them over as strings. */
import { invalid } from '../errors';
import type { Device } from '../tensor';

/** The flag's number, undefined when absent; anything else is a clear usage error. */
export function optionalNumber(v: string | undefined, flag: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isSafeInteger(x))) throw invalid(`--${flag} takes ${integer ? 'an integer' : 'a number'}, not "${v}"`);
  return x;
}

/** --device: cpu, cuda or cuda:N (undefined when not given). */
export function deviceFlag(d: string | undefined): Device | undefined {
  if (d === undefined) return undefined;
  if (d === 'cpu' || d === 'cuda' || /^cuda:\d{1,4}$/.test(d)) return d as Device;
  throw invalid(`--device takes cpu, cuda or cuda:N, not "${d}"`);
}
