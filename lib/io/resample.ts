/**
 * Image resizing that reproduces PIL's `Image.resize(size, BICUBIC)` on 8-bit
 * RGB, bit for bit, because the released projectors were trained on features
 * of images PIL resized. The work is native (native/cpu/resample.cpp, about
 * ten times the JavaScript reference's speed); this module checks the image
 * and moves its bytes.
 */
import { TinyEmoError } from '../errors';
import { ResampleFilter, resampleSync } from '../ops/resample';
import { Tensor } from '../tensor';
import { RgbImage } from './image';

export type { ResampleFilter };

/** PIL's `img.resize((width, height), BICUBIC)` (or BILINEAR) for 8-bit RGB. */
export function resize(img: RgbImage, width: number, height: number, filter: ResampleFilter = 'bicubic'): RgbImage {
  // Sizes are checked by the resample op; the image's byte count only here, where the RgbImage is taken apart.
  if (img.data.length !== img.width * img.height * 3) {
    throw new TinyEmoError('SHAPE_MISMATCH', `an RGB image of ${img.width}×${img.height} needs ${img.width * img.height * 3} bytes, not ${img.data.length}`);
  }
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  const src = Tensor.fromArray('u8', img.data, [img.height, img.width, 3]);
  try {
    const dst = resampleSync(src, width, height, { filter });
    try {
      return { width, height, data: dst.toArray() as Uint8Array };
    } finally {
      dst.dispose();
    }
  } finally {
    src.dispose();
  }
}

/** The `width`×`height` window at (left, top); it must lie inside the image. */
export function crop(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  if (left < 0 || top < 0 || left + width > img.width || top + height > img.height || width <= 0 || height <= 0) {
    throw new TinyEmoError('INVALID_ARGUMENT', `crop ${width}×${height} at (${left}, ${top}) is outside a ${img.width}×${img.height} image`);
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; ++y) {
    const from = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, data: out };
}
