/** PIL's Image.resize on 8-bit RGB images (native: native/cpu/resample.cpp), bit-identical to PIL. */
import { invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectNdim, expectTensor, output } from './check';
import { Planned, defineOp } from './run';

export type ResampleFilter = 'bicubic' | 'bilinear';

const FILTER_CODE: Record<ResampleFilter, number> = { bicubic: 0, bilinear: 1 };

export interface ResampleOptions {
  /** Default 'bicubic' (PIL's BICUBIC); 'bilinear' is PIL's BILINEAR. Both antialias when shrinking. */
  filter?: ResampleFilter;
  out?: Tensor<'u8'>;
}

function plan(src: Tensor<'u8'>, width: number, height: number, opts: ResampleOptions = {}): Planned<Tensor<'u8'>> {
  expectTensor(src, 'src');
  expectDType(src, 'src', ['u8']);
  expectNdim(src, 'src', 3);
  if (src.shape[2] !== 3) throw invalid(`src must be [H, W, 3] RGB, not [${src.shape.join(', ')}]`);
  if (!(Number.isSafeInteger(width) && width > 0 && Number.isSafeInteger(height) && height > 0)) {
    throw invalid(`resize to ${width}×${height}: sizes must be positive integers`);
  }
  const filter = opts.filter ?? 'bicubic';
  if (!(filter in FILTER_CODE)) throw invalid(`filter must be bicubic or bilinear, not "${String(filter)}"`);
  const dst = output(opts.out, 'out', [height, width, 3], 'u8', src) as Tensor<'u8'>;
  return {
    result: dst,
    owned: opts.out ? [] : [dst],
    invoke: (async) => binding().resample(src.handle, FILTER_CODE[filter], dst.handle, async),
  };
}

const resampleOp = defineOp(plan);

/** Resizes an RGB image [H, W, 3] u8 to width × height. */
export const resample = resampleOp.async;
export const resampleSync = resampleOp.sync;
