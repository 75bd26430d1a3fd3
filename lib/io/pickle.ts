/**
 * A restricted pickle interpreter for PyTorch state dicts. It accepts what
 * torch.load(weights_only=True) accepts for a state dict and nothing else:
 * containers, numbers, strings, OrderedDict, typed storages (as persistent
 * ids), and the tensor/parameter rebuild functions, which it evaluates
 * itself. Any other global, or an opcode outside that set, is refused with
 * its name. It never executes anything, never recurses on input structure,
 * and bounds every count and length by the bytes actually present.
 */
import { FileDType } from './dtypes';

export class PickleError extends Error {}

export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PySet | PyGlobal | PyStorage | PyTensor;

export interface PyTuple {
  kind: 'tuple';
  items: PyValue[];
}
export interface PyDict {
  kind: 'dict';
  items: Array<[PyValue, PyValue]>;
  /** State set by BUILD on an OrderedDict (a state dict's `_metadata`). */
  attrs?: PyValue;
}
export interface PySet {
  kind: 'set';
  items: PyValue[];
}
export interface PyGlobal {
  kind: 'global';
  module: string;
  name: string;
}
export interface PyStorage {
  kind: 'storage';
  dtype: FileDType;
  key: string;
  /** Elements the pickle says the storage holds. */
  numel: number;
}
export interface PyTensor {
  kind: 'tensor';
  storage: PyStorage;
  offset: number;
  shape: number[];
  strides: number[];
}

/** torch's typed storage classes, by name. */
export const STORAGE_TYPES: Readonly<Record<string, FileDType>> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

// Globals that may appear, and what they are.
const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch.Size',
]);

function isAllowedGlobal(module: string, name: string): boolean {
  if (CALLABLES.has(`${module}.${name}`)) return true;
  return module === 'torch' && Object.prototype.hasOwnProperty.call(STORAGE_TYPES, name);
}

const LIMITS = { memo: 1 << 20, marks: 1 << 16, stack: 1 << 22, ops: 1 << 26, bigintBytes: 64 };

export interface Unpickled {
  value: PyValue;
  /** Offset just past the STOP opcode (legacy files hold several pickles in a row). */
  end: number;
}

/** Maps a persistent id (a tuple) to a storage, or throws. */
export type PersistentLoad = (pid: PyValue) => PyStorage;

// The pickle machine is one loop over opcodes sharing a stack, a memo and the stream position; a switch with a case per
// opcode reads like the protocol's table, and every opcode it does not know is refused in one place.
// eslint-disable-next-line max-lines-per-function
export function unpickle(data: Uint8Array, start: number, persistentLoad: PersistentLoad | undefined): Unpickled {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = start;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const fail = (msg: string): never => {
    throw new PickleError(`${msg} (at byte ${pos})`);
  };
  const need = (n: number) => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > data.byteLength) fail('the pickle ends early');
  };
  const u8 = () => {
    need(1);
    return data[pos++];
  };
  const u16 = () => {
    need(2);
    const v = dv.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('length too large');
    return Number(v);
  };
  const bytes = (n: number) => {
    need(n);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const text = (n: number) => {
    try {
      return utf8.decode(bytes(n));
    } catch {
      return fail('a string is not valid UTF-8');
    }
  };
  const push = (v: PyValue) => {
    if (stack.length >= LIMITS.stack) fail('stack too deep');
    stack.push(v);
  };
  const pop = (): PyValue => {
    const floor = marks.length ? marks[marks.length - 1] : 0;
    if (stack.length <= floor) fail('stack underflow');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    const floor = marks.length ? marks[marks.length - 1] : 0;
    if (stack.length <= floor) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    if (!marks.length) fail('no MARK');
    const m = marks.pop() as number;
    return stack.splice(m);
  };
  const memoPut = (i: number, v: PyValue) => {
    if (!memo.has(i) && memo.size >= LIMITS.memo) fail('memo too large');
    memo.set(i, v);
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    if (b.length > LIMITS.bigintBytes) fail('integer too large');
    let v = 0n;
    for (let i = b.length - 1; i >= 0; --i) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (let ops = 0; ; ++ops) {
    if (ops > LIMITS.ops) fail('too many operations');
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol above 5');
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail('STOP with an unbalanced stack');
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        if (marks.length >= LIMITS.marks) fail('too many MARKs');
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        push({ kind: 'dict', items: [] });
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        push({ kind: 'tuple', items: [] });
        break;
      case 0x8f: // EMPTY_SET
        push({ kind: 'set', items: [] });
        break;
      case 0x74: // TUPLE
        push({ kind: 'tuple', items: popMark() });
        break;
      case 0x85: // TUPLE1
        push({ kind: 'tuple', items: [pop()] });
        break;
      case 0x86: {
        const b = pop();
        const a = pop();
        push({ kind: 'tuple', items: [a, b] });
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        push({ kind: 'tuple', items: [a, b, c] });
        break;
      }
      case 0x91: // FROZENSET
        push({ kind: 'set', items: popMark() });
        break;
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        const d = top();
        if (!isDict(d)) fail('SETITEM on a non-dict');
        (d as PyDict).items.push([k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        if (kv.length % 2) fail('SETITEMS with an odd count');
        const d = top();
        if (!isDict(d)) fail('SETITEMS on a non-dict');
        for (let i = 0; i < kv.length; i += 2) (d as PyDict).items.push([kv[i], kv[i + 1]]);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail('APPEND on a non-list');
        (l as PyValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const vs = popMark();
        const l = top();
        if (!Array.isArray(l)) fail('APPENDS on a non-list');
        for (const v of vs) (l as PyValue[]).push(v);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const vs = popMark();
        const s = top();
        if (!isSet(s)) fail('ADDITEMS on a non-set');
        (s as PySet).items.push(...vs);
        break;
      }
      case 0x71: // BINPUT
        memoPut(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo key ${i} missing`);
        push(memo.get(i) as PyValue);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const line = () => {
          const nl = data.indexOf(0x0a, pos);
          if (nl < 0 || nl - pos > 256) fail('bad GLOBAL');
          return text(nl - pos + 1).slice(0, -1);
        };
        const module = line();
        const name = line();
        push(global(module, name, fail));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(global(module as string, name as string, fail));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!isGlobal(fn)) fail('REDUCE of something that is not an allowed global');
        if (!isTuple(args)) fail('REDUCE arguments are not a tuple');
        push(call(fn as PyGlobal, (args as PyTuple).items, fail));
        break;
      }
      case 0x81: {
        // NEWOBJ: only OrderedDict (some writers use cls.__new__)
        const args = pop();
        const cls = pop();
        if (!isGlobal(cls) || `${(cls as PyGlobal).module}.${(cls as PyGlobal).name}` !== 'collections.OrderedDict') {
          fail('NEWOBJ of something other than OrderedDict');
        }
        void args;
        push({ kind: 'dict', items: [] });
        break;
      }
      case 0x62: {
        // BUILD: state on an OrderedDict (its _metadata) or a tensor (ignored)
        const state = pop();
        const obj = top();
        if (isDict(obj)) (obj as PyDict).attrs = state;
        else if (!isTensor(obj)) fail('BUILD on an object that is not a dict or a tensor');
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!persistentLoad) fail('a persistent id where none is expected');
        push(persistentLoad!(pid));
        break;
      }
      case 0x4a: // BININT
        need(4);
        push(dv.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(long(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = u32();
        if (n > LIMITS.bigintBytes) fail('integer too large');
        push(long(bytes(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str): bytes as Latin-1
        push(Buffer.from(bytes(u8())).toString('latin1'));
        break;
      case 0x54: {
        // BINSTRING
        need(4);
        const n = dv.getInt32(pos, true);
        pos += 4;
        if (n < 0) fail('negative string length');
        push(Buffer.from(bytes(n)).toString('latin1'));
        break;
      }
      case 0x42: // BINBYTES
        push(new Uint8Array(bytes(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        push(new Uint8Array(bytes(u8())));
        break;
      case 0x8e: // BINBYTES8
        push(new Uint8Array(bytes(u64())));
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      default:
        fail(`opcode 0x${op.toString(16)} is not allowed in a weights file`);
    }
  }
}

function global(module: string, name: string, fail: (m: string) => never): PyGlobal {
  if (!isAllowedGlobal(module, name)) fail(`refused global ${module}.${name} (weights files may only use tensors and containers)`);
  return { kind: 'global', module, name };
}

function call(fn: PyGlobal, args: PyValue[], fail: (m: string) => never): PyValue {
  const full = `${fn.module}.${fn.name}`;
  switch (full) {
    case 'collections.OrderedDict': {
      const d: PyDict = { kind: 'dict', items: [] };
      if (args.length === 1 && Array.isArray(args[0])) {
        for (const pair of args[0]) {
          if (!isTuple(pair) || (pair as PyTuple).items.length !== 2) fail('OrderedDict items must be pairs');
          const [k, v] = (pair as PyTuple).items;
          d.items.push([k, v]);
        }
      } else if (args.length !== 0) {
        fail('unexpected OrderedDict arguments');
      }
      return d;
    }
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor': {
      const [storage, offset, size, stride] = args;
      if (!isStorage(storage)) fail('a tensor without a storage');
      const dims = intTuple(size, 'size', fail);
      const strides = intTuple(stride, 'stride', fail);
      if (dims.length !== strides.length || dims.length > 8) fail('size and stride disagree');
      if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail('bad storage offset');
      return { kind: 'tensor', storage: storage as PyStorage, offset: offset as number, shape: dims, strides };
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      if (!isTensor(args[0])) fail('a parameter without a tensor');
      return args[0];
    case 'torch.Size':
      return { kind: 'tuple', items: intTuple(args[0], 'size', fail) };
    default:
      // Storage classes are only type tags inside persistent ids.
      return fail(`${full} cannot be called`);
  }
}

function intTuple(v: PyValue | undefined, what: string, fail: (m: string) => never): number[] {
  if (!isTuple(v)) fail(`${what} is not a tuple`);
  const out = (v as PyTuple).items;
  if (!out.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) fail(`${what} holds a bad value`);
  return out as number[];
}

export function isDict(v: PyValue | undefined): v is PyDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && v.kind === 'dict';
}
export function isTuple(v: PyValue | undefined): v is PyTuple {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && v.kind === 'tuple';
}
export function isSet(v: PyValue | undefined): v is PySet {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && v.kind === 'set';
}
export function isGlobal(v: PyValue | undefined): v is PyGlobal {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && v.kind === 'global';
}
export function isStorage(v: PyValue | undefined): v is PyStorage {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && v.kind === 'storage';
}
export function isTensor(v: PyValue | undefined): v is PyTensor {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && v.kind === 'tensor';
}

/**
 * The tensors of a state dict (or any nesting of dicts and lists of
 * tensors), named by their path with "." between levels. Shared containers
 * are visited once, so cyclic pickles end.
 */
export function collectTensors(root: PyValue): Map<string, PyTensor> {
  const out = new Map<string, PyTensor>();
  const seen = new Set<object>();
  const work: Array<[string, PyValue]> = [['', root]];
  while (work.length) {
    const [prefix, v] = work.pop() as [string, PyValue];
    const name = (k: string) => (prefix ? `${prefix}.${k}` : k);
    if (isTensor(v)) {
      if (out.has(prefix)) throw new PickleError(`two tensors named "${prefix}"`);
      out.set(prefix, v);
      continue;
    }
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) continue;
    if (seen.has(v)) continue;
    seen.add(v);
    if (isDict(v)) {
      for (let i = v.items.length - 1; i >= 0; --i) {
        const [k, x] = v.items[i];
        if (typeof k === 'string' || typeof k === 'number') work.push([name(String(k)), x]);
      }
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; --i) work.push([name(String(i)), v[i]]);
    } else if (isTuple(v)) {
      for (let i = v.items.length - 1; i >= 0; --i) work.push([name(String(i)), v.items[i]]);
    }
  }
  return out;
}
