/** Parsing numeric flags: commander hands them over as strings. */
import { invalid } from '../errors';

/** The flag's number, undefined when absent; anything else is a clear usage error. */
export function optionalNumber(v: string | undefined, flag: string, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isSafeInteger(x))) throw invalid(`--${flag} takes ${integer ? 'an integer' : 'a number'}, not "${v}"`);
  return x;
}
