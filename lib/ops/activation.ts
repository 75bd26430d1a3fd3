/** Elementwise ops: activations, SwiGLU, softmax, add, scale. */
import { TinyEmoError, invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectShape, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

export type Activation = 'none' | 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'silu' | 'relu';

const CODE: Record<Activation, number> = { none: 0, gelu: 1, gelu_tanh: 2, quick_gelu: 3, silu: 4, relu: 5 };

export function activationCode(a: Activation | undefined): number {
  if (a === undefined) return 0;
  const c = CODE[a];
  if (c === undefined) throw invalid(`unknown activation '${String(a)}' (expected ${Object.keys(CODE).join(', ')})`);
  return c;
}

export interface OutOption {
  /** Where to write (allocated when absent). May be the input itself for in-place. */
  out?: Tensor<'f32'>;
}

function f32(t: unknown, name: string): Tensor<'f32'> {
  expectTensor(t, name);
  expectDType(t, name, ['f32']);
  return t;
}

function sameShapeOut(x: Tensor, out: Tensor<'f32'> | undefined): { y: Tensor<'f32'>; owned: Tensor[] } {
  const y = output(out, 'out', x.shape, 'f32', x) as Tensor<'f32'>;
  return { y, owned: out ? [] : [y] };
}

function planActivation(x: Tensor<'f32'>, act: Activation, opts: OutOption = {}): Planned<Tensor<'f32'>> {
  f32(x, 'x');
  const code = activationCode(act);
  const { y, owned } = sameShapeOut(x, opts.out);
  return { result: y, owned, invoke: (async) => binding().activation(x.handle, code, y.handle, async) };
}

function planSwiglu(gate: Tensor<'f32'>, up: Tensor<'f32'>, opts: OutOption = {}): Planned<Tensor<'f32'>> {
  f32(gate, 'gate');
  f32(up, 'up');
  expectShape(up, 'up', gate.shape);
  const { y, owned } = sameShapeOut(gate, opts.out);
  return { result: y, owned, invoke: (async) => binding().swiglu(gate.handle, up.handle, y.handle, async) };
}

export interface ActivationBackwardOptions {
  /** Where dL/dx goes: dy itself (in place) or a tensor apart from x (allocated when absent). */
  dx?: Tensor<'f32'>;
}

function planActivationBackward(x: Tensor<'f32'>, dy: Tensor<'f32'>, act: Activation, opts: ActivationBackwardOptions = {}): Planned<Tensor<'f32'>> {
  f32(x, 'x');
  f32(dy, 'dy');
  const code = activationCode(act);
  const { y: dx, owned } = sameShapeOut(dy, opts.dx);
  return { result: dx, owned, invoke: (async) => binding().activationBackward(x.handle, dy.handle, code, dx.handle, async) };
}

export interface SwigluGrads {
  dgate: Tensor<'f32'>;
  dup: Tensor<'f32'>;
}

function planSwigluBackward(gate: Tensor<'f32'>, up: Tensor<'f32'>, dy: Tensor<'f32'>, opts: Partial<SwigluGrads> = {}): Planned<SwigluGrads> {
  f32(gate, 'gate');
  f32(up, 'up');
  f32(dy, 'dy');
  const { y: dgate, owned } = sameShapeOut(gate, opts.dgate);
  const du = sameShapeOut(gate, opts.dup);
  owned.push(...du.owned);
  return {
    result: { dgate, dup: du.y },
    owned,
    invoke: (async) => binding().swigluBackward(gate.handle, up.handle, dy.handle, dgate.handle, du.y.handle, async),
  };
}

export interface SoftmaxOptions extends OutOption {
  /** Multiplies x before the softmax (attention's 1/sqrt(d)). Default 1. */
  scale?: number;
}

function planSoftmax(x: Tensor<'f32'>, opts: SoftmaxOptions = {}): Planned<Tensor<'f32'>> {
  f32(x, 'x');
  const scale = finiteNumber(opts.scale ?? 1, 'scale');
  const { y, owned } = sameShapeOut(x, opts.out);
  return { result: y, owned, invoke: (async) => binding().softmax(x.handle, scale, y.handle, async) };
}

export interface AddOptions extends OutOption {
  /** y = a + alpha * b. Default 1. */
  alpha?: number;
}

function planAdd(a: Tensor<'f32'>, b: Tensor<'f32'>, opts: AddOptions = {}): Planned<Tensor<'f32'>> {
  f32(a, 'a');
  f32(b, 'b');
  const tail = a.shape.slice(a.ndim - b.ndim);
  if (b.ndim > a.ndim || b.shape.some((n, i) => n !== tail[i])) {
    throw new TinyEmoError('SHAPE_MISMATCH', `b [${b.shape.join(', ')}] must match the trailing dims of a [${a.shape.join(', ')}]`);
  }
  const alpha = finiteNumber(opts.alpha ?? 1, 'alpha');
  const { y, owned } = sameShapeOut(a, opts.out);
  return { result: y, owned, invoke: (async) => binding().add(a.handle, b.handle, alpha, y.handle, async) };
}

function planScale(x: Tensor<'f32'>, alpha: number, opts: OutOption = {}): Planned<Tensor<'f32'>> {
  f32(x, 'x');
  const a = finiteNumber(alpha, 'alpha');
  const { y, owned } = sameShapeOut(x, opts.out);
  return { result: y, owned, invoke: (async) => binding().scale(x.handle, a, y.handle, async) };
}

const activationOp = defineOp(planActivation);
const swigluOp = defineOp(planSwiglu);
const activationBackwardOp = defineOp(planActivationBackward);
const swigluBackwardOp = defineOp(planSwigluBackward);
const softmaxOp = defineOp(planSoftmax);
const addOp = defineOp(planAdd);
const scaleOp = defineOp(planScale);

/** y = act(x) elementwise. */
export const activation = activationOp.async;
export const activationSync = activationOp.sync;
export const activationQueued = activationOp.queued;
/** y = silu(gate) * up (LLaMA's and OpenELM's gated MLP). */
export const swiglu = swigluOp.async;
export const swigluSync = swigluOp.sync;
export const swigluQueued = swigluOp.queued;
/** dL/dx = dy · act'(x), x the activation's input. */
export const activationBackward = activationBackwardOp.async;
export const activationBackwardSync = activationBackwardOp.sync;
/** SwiGLU's input gradients: dgate = dy · up · silu'(gate), dup = dy · silu(gate). */
export const swigluBackward = swigluBackwardOp.async;
export const swigluBackwardSync = swigluBackwardOp.sync;
/** Softmax over the last dimension. */
export const softmax = softmaxOp.async;
export const softmaxSync = softmaxOp.sync;
export const softmaxQueued = softmaxOp.queued;
/** y = a + alpha * b, b broadcast over a's leading dims (contiguous tensors). */
export const add = addOp.async;
export const addSync = addOp.sync;
export const addQueued = addOp.queued;
/** y = alpha * x (contiguous tensors). */
export const scale = scaleOp.async;
export const scaleSync = scaleOp.sync;
export const scaleQueued = scaleOp.queued;
