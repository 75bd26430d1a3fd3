/** Arguments cross the binding read by name in order: a call with more or fewer than the binding reads is refused, never misread. */
import { Tensor } from '../lib';
import { binding } from '../lib/native';

test('a call whose argument count disagrees with the binding is an INTERNAL error naming the disagreement', () => {
  const src = Tensor.from([1, 2, 3], [3]);
  const dst = Tensor.zeros([3], 'f32');
  const b = binding() as unknown as Record<string, (...args: unknown[]) => unknown>;
  expect(() => b.copy(src.handle, dst.handle, src.handle, false)).toThrow(/3 arguments sent, 2 read/);
  expect(() => b.copy(src.handle, false)).toThrow(/argument dst was not sent/);
  b.copy(src.handle, dst.handle, false);
  expect(Array.from(dst.toArray())).toEqual([1, 2, 3]);
  src.dispose();
  dst.dispose();
});

test('structured arguments are read by name: a missing field is named', () => {
  const x = Tensor.zeros([2, 3], 'f32');
  const y = Tensor.zeros([2, 4], 'f32');
  const b = binding() as unknown as Record<string, (...args: unknown[]) => unknown>;
  expect(() => b.projectionForward(x.handle, { w1: x.handle }, y.handle, false)).toThrow(/weights\.b1 must be a tensor/);
  x.dispose();
  y.dispose();
});
