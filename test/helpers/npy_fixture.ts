/** Reading a fixture .npy (written by the PyTorch scripts) into a plain array, through tinyemo's own reader. */
import { WeightFile } from '../../lib/io/weights';

export function readNpyFixture(file: string): { shape: number[]; data: Float32Array | Int32Array } {
  const w = WeightFile.open(file);
  try {
    const info = w.tensors[0];
    const t = info.dtype === 'I32' ? w.load(info.name) : w.load(info.name, { dtype: 'f32' });
    const r = { shape: [...t.shape], data: t.toArray() as Float32Array | Int32Array };
    t.dispose();
    return r;
  } finally {
    w.close();
  }
}
