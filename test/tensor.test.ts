import { Tensor, TinyEmoError, hostBytesInUse } from '../lib';
import { binding } from '../lib/native';

describe('Tensor', () => {
  test('from / data / toArray / shape and strides', () => {
    const t = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.strides).toEqual([3, 1]);
    expect(t.size).toBe(6);
    expect(t.dtype).toBe('f32');
    expect(Array.from(t.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const copy = t.toArray();
    copy[0] = 99;
    expect(t.data[0]).toBe(1); // toArray copies
    t.data[1] = 42; // data is live
    expect(t.toArray()[1]).toBe(42);
  });

  test('views share memory: narrow, select, transpose, reshape; strided toArray', () => {
    const t = Tensor.from(
      Float32Array.from({ length: 24 }, (_, i) => i),
      [2, 3, 4],
    );
    const n = t.narrow(2, 1, 2);
    expect(n.shape).toEqual([2, 3, 2]);
    expect(n.isContiguous).toBe(false);
    expect(Array.from(n.toArray())).toEqual([1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22]);
    expect(Array.from(t.select(1, 2).toArray())).toEqual([8, 9, 10, 11, 20, 21, 22, 23]);
    const tr = t.select(0, 0).transpose(0, 1);
    expect(tr.shape).toEqual([4, 3]);
    expect(Array.from(tr.toArray())).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    const r = t.reshape([4, -1]);
    expect(r.shape).toEqual([4, 6]);
    r.data[0] = -1;
    expect(t.data[0]).toBe(-1);
    expect(() => n.reshape([12])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => t.narrow(2, 3, 2)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test("a tensor's geometry is the addon's: views and new tensors are not read back, so check they agree", () => {
    const agree = (x: Tensor) => {
      expect(x.shape).toEqual(x.handle.shape);
      expect(x.strides).toEqual(x.handle.strides);
      expect(x.dtype).toBe(Tensor.fromHandle(x.handle).dtype);
      expect(Object.isFrozen(x.shape) && Object.isFrozen(x.strides)).toBe(true);
    };
    const t = Tensor.empty([3, 1, 5, 7], 'f16');
    agree(t);
    const chain = [t.narrow(2, 1, 3), t.select(1, 0), t.transpose(0, 3), t.reshape([15, -1]), t.narrow(0, 2, 1).select(0, 0).transpose(1, 2)];
    chain.forEach(agree);
    expect(chain[0].handle.offset).toBe(7);
    expect(chain[4].handle.offset).toBe(2 * 35);
    // A view of a view writes where the addon says it does.
    const u = Tensor.zeros([4, 6]);
    const v = u.narrow(0, 1, 2).narrow(1, 3, 2);
    agree(v);
    binding().copy(Tensor.from([1, 2, 3, 4], [2, 2]).handle, v.handle, false);
    expect(Array.from(u.toArray()).filter((x) => x !== 0)).toEqual([1, 2, 3, 4]);
    expect(Array.from(u.toArray()).indexOf(1)).toBe(9);
  });

  test('every dtype round-trips through its storage array', () => {
    expect(Array.from(Tensor.fromArray('i32', Int32Array.from([1, -2]), [2]).data)).toEqual([1, -2]);
    expect(Array.from(Tensor.fromArray('i64', BigInt64Array.from([1n, -(2n ** 60n)]), [2]).data)).toEqual([1n, -(2n ** 60n)]);
    expect(Array.from(Tensor.fromArray('f16', Uint16Array.from([0x3c00]), [1]).toFloat32Array())).toEqual([1]);
    expect(Array.from(Tensor.fromArray('bf16', Uint16Array.from([0x3f80]), [1]).toFloat32Array())).toEqual([1]);
  });

  test('bad construction is a typed error', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(TinyEmoError);
        return (e as TinyEmoError).code;
      }
      return 'no error';
    };
    expect(code(() => Tensor.from([1, 2, 3], [2, 2]))).toBe('SHAPE_MISMATCH');
    expect(code(() => Tensor.fromArray('f32', new Int32Array(4) as never, [4]))).toBe('DTYPE_MISMATCH');
    expect(code(() => Tensor.zeros([2, -1]))).toBe('INVALID_ARGUMENT');
    expect(code(() => Tensor.zeros([1.5]))).toBe('INVALID_ARGUMENT');
    expect(code(() => Tensor.zeros([1, 1, 1, 1, 1, 1, 1, 1, 1]))).toBe('INVALID_ARGUMENT');
    expect(code(() => Tensor.zeros([2 ** 40, 2 ** 20]))).toBe('OUT_OF_MEMORY');
    expect(code(() => Tensor.zeros([2], 'f64' as never))).toBe('DTYPE_MISMATCH');
  });

  test('a detached source buffer is refused, not read', () => {
    const a = new Float32Array(8);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    expect(() => Tensor.from(a, [8])).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  });

  test('a transferred data view is remade; memory stays valid', () => {
    const t = Tensor.from([1, 2, 3]);
    const v = t.data;
    structuredClone(v.buffer, { transfer: [v.buffer as ArrayBuffer] });
    expect(Array.from(t.data)).toEqual([1, 2, 3]);
  });

  test('dispose frees memory (idempotent); views and pending ops keep it alive', async () => {
    const before = hostBytesInUse();
    const t = Tensor.zeros([1024, 256]);
    expect(hostBytesInUse() - before).toBe(1024 * 256 * 4);
    const view = t.narrow(0, 0, 1);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(() => t.data).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    expect(view.toArray()[0]).toBe(0); // the view still holds the storage
    expect(hostBytesInUse() - before).toBe(1024 * 256 * 4);
    view.dispose();
    expect(hostBytesInUse()).toBe(before);
  });

  test('the native handle refuses look-alike objects', async () => {
    const { binding } = await import('../lib/native');
    const fake = Object.create(binding().NativeTensor.prototype) as object;
    const b = Tensor.zeros([2, 2]);
    expect(() => binding().gemm(fake as never, b.handle, null, b.handle, false, false, 1, 0, 0, false)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => binding().gemm(b.handle, b.handle, null, b.handle, false, false, 1, 0, 0, 'yes' as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const t = Tensor.zeros([4]);
    expect(() => t.handle.asStrided([5], [1], 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => t.handle.asStrided([2], [3], 1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => t.handle.asStrided([2], [2 ** 52], 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

test('a tensor is refused before anything is allocated when its init is not zeros, empty or a buffer (every device)', () => {
  const N = binding().NativeTensor as unknown as new (...args: unknown[]) => unknown;
  const before = hostBytesInUse();
  expect(() => new N(0, [4], 'ones')).toThrow(/init must be 'zeros', 'empty'/);
  expect(() => new N(0, [4], 'ones', -1)).toThrow(/init must be 'zeros', 'empty'/);
  expect(() => new N(0, [4], 'zeros', 'gpu')).toThrow(/device must be -1/);
  expect(hostBytesInUse()).toBe(before);
});
