/**
 * The runtime compiled templates call into. It starts from nunjucks' stock runtime and replaces
 * every entry point through which a template touches values: variable lookup, attribute access,
 * calls, output, operators, frames (assignments and loop variables) and macros. Each replacement
 * enforces the sandbox (see access.ts) and the work limits (see limits.ts).
 */
import { BLOCKED_NAMES, blockedName, getMember, getSlice, splitArgs } from './access.ts';
import { ExprError, limitError, runtimeError } from './errors.ts';
import { FILTERS, type Filter, membership, pyFormat, TESTS, type Test } from './filters.ts';
import {
  burn,
  capString,
  chargeOutput,
  checkLength,
  checkListLength,
  checkValueSize,
  LIMITS,
  state,
} from './limits.ts';
import { baseRuntime, type NjFn, type NjFrame, type NjRuntime } from './nunjucks.ts';
import { isDict, looseEquals, str, toText, typeName, unwrap } from './values.ts';

// ---------------------------------------------------------------------------------------------
// Globals: functions every template can call. Plain closures, nothing reachable behind them.

function range(...raw: unknown[]): number[] {
  const { pos } = splitArgs(raw);
  const ints = pos.map((v) => {
    const n = typeof v === 'boolean' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n))
      throw runtimeError('range() arguments must be integers');
    return n;
  });
  if (ints.length === 0 || ints.length > 3) throw runtimeError('range() takes 1 to 3 arguments');
  const [start, stop, step] = ints.length === 1 ? [0, ints[0]!, 1] : [ints[0]!, ints[1]!, ints[2] ?? 1];
  if (step === 0) throw runtimeError('range() step must not be zero');
  const length = Math.max(0, Math.ceil((stop - start) / step));
  if (length > LIMITS.rangeLength)
    throw limitError(
      `range() of ${length.toLocaleString('en-US')} items exceeds the limit of ` +
        `${LIMITS.rangeLength.toLocaleString('en-US')}`,
    );
  burn(1 + length);
  const out = new Array<number>(length);
  for (let i = 0; i < length; i++) out[i] = start + i * step;
  return out;
}

function cycler(...items: unknown[]) {
  let index = -1;
  const c = {
    current: null as unknown,
    next(): unknown {
      index = (index + 1) % Math.max(items.length, 1);
      c.current = items[index] ?? null;
      return c.current;
    },
    reset(): void {
      index = -1;
      c.current = null;
    },
  };
  return c;
}

function joiner(sep: unknown = ', ') {
  let first = true;
  return () => {
    if (first) {
      first = false;
      return '';
    }
    return str(sep);
  };
}

/** `dict(a=1, b=2)` — Jinja's dict constructor. */
function dict(...raw: unknown[]): Record<string, unknown> {
  const { pos, kw } = splitArgs(raw);
  if (pos.length > 0) throw runtimeError('dict() takes keyword arguments only, e.g. dict(a=1)');
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(kw)) out[k] = kw[k];
  return out;
}

export const GLOBALS: Readonly<Record<string, unknown>> = Object.assign(Object.create(null), {
  range,
  cycler,
  joiner,
  dict,
});

// ---------------------------------------------------------------------------------------------
// Environment and context objects handed to compiled templates.

export const env = {
  opts: { autoescape: false, throwOnUndefined: false },
  getFilter(name: string): Filter {
    const f = Object.hasOwn(FILTERS, name) ? FILTERS[name] : undefined;
    if (!f) throw new ExprError(`unknown filter '${name}'`, '', { kind: 'unknown_filter' });
    return f;
  },
  getTest(name: string): Test {
    const t = Object.hasOwn(TESTS, name) ? TESTS[name] : undefined;
    if (!t) throw new ExprError(`unknown test '${name}'`, '', { kind: 'unknown_filter' });
    return t;
  },
  getTemplate(): never {
    throw new ExprError('templates cannot load other templates', '', { kind: 'syntax' });
  },
  getExtension(): never {
    throw new ExprError('template extensions are not supported', '', { kind: 'syntax' });
  },
};

/**
 * The nunjucks "context": the caller's variables (read through own properties only, never
 * copied), the template's top-level assignments, then the globals.
 */
export class SandboxContext {
  readonly env = env;
  private readonly vars: Record<string, unknown> = Object.create(null);
  constructor(readonly ctx: Readonly<Record<string, unknown>>) {}

  lookup(name: string): unknown {
    const v = this.vars[name];
    if (v !== undefined) return v;
    if (Object.hasOwn(this.ctx, name)) return this.ctx[name];
    if (Object.hasOwn(GLOBALS, name)) return GLOBALS[name];
    return undefined;
  }
  setVariable(name: string, value: unknown): void {
    this.vars[name] = value;
  }
  getVariables(): Record<string, unknown> {
    return { ...this.vars };
  }
  addExport(): void {}
  getExported(): Record<string, unknown> {
    return {};
  }
  addBlock(): never {
    throw new ExprError('blocks are not supported in expressions', '', { kind: 'syntax' });
  }
  getBlock(): never {
    return this.addBlock();
  }
  getSuper(): never {
    return this.addBlock();
  }
}

const BaseFrame = baseRuntime.Frame;

/** `loop.index` → ['loop', 'index'], split once (the compiler emits a handful of such names). */
const DOTTED = new Map<string, [string, string]>();

/** Frames count assignments (loop steps assign loop variables) and check what gets bound. */
export class SandboxFrame extends BaseFrame {
  override set(name: string, value: unknown, resolveUp?: boolean): void {
    const s = state();
    if (--s.fuel < 0) burn(0);
    if (typeof value === 'object' ? value !== null : typeof value === 'string' && value.length > 65536)
      checkValueSize(value);
    if (resolveUp) {
      super.set(name, value, resolveUp);
      return;
    }
    // Fast path for the names the compiler emits: `x`, and `loop.index`-style (one dot).
    const dot = name.indexOf('.');
    if (dot < 0) {
      this.variables[name] = value;
      return;
    }
    if (name.indexOf('.', dot + 1) >= 0) {
      super.set(name, value, resolveUp);
      return;
    }
    let parts = DOTTED.get(name);
    if (parts === undefined) {
      parts = [name.slice(0, dot), name.slice(dot + 1)];
      DOTTED.set(name, parts);
    }
    let obj = this.variables[parts[0]] as Record<string, unknown> | undefined;
    if (typeof obj !== 'object' || obj === null) {
      obj = {};
      this.variables[parts[0]] = obj;
    }
    obj[parts[1]] = value;
  }
  override push(isolateWrites?: boolean): NjFrame {
    return new SandboxFrame(this, isolateWrites);
  }
}

// ---------------------------------------------------------------------------------------------
// Operators with Jinja semantics (compiled templates call these instead of JS operators).

const isNum = (v: unknown): v is number | boolean => typeof v === 'number' || typeof v === 'boolean';

function add(a: unknown, b: unknown): unknown {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  a = unwrap(a);
  b = unwrap(b);
  if (typeof a === 'string' && typeof b === 'string') {
    checkLength(a.length + b.length);
    return a + b;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    checkListLength(a.length + b.length);
    burn(1 + a.length + b.length);
    return [...a, ...b];
  }
  if (isNum(a) && isNum(b)) return Number(a) + Number(b);
  if ((typeof a === 'string' && isNum(b)) || (isNum(a) && typeof b === 'string')) {
    const r = toText(a) + toText(b);
    return capString(r);
  }
  throw runtimeError(`cannot add ${typeName(a)} and ${typeName(b)}`);
}

function repeatTimes(n: unknown): number | undefined {
  if (typeof n === 'boolean') return Number(n);
  return typeof n === 'number' && Number.isInteger(n) ? Math.max(n, 0) : undefined;
}

function mul(a: unknown, b: unknown): unknown {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  a = unwrap(a);
  b = unwrap(b);
  if (isNum(a) && isNum(b)) return Number(a) * Number(b);
  const [seq, n] = typeof a === 'string' || Array.isArray(a) ? [a, repeatTimes(b)] : [b, repeatTimes(a)];
  if (n !== undefined && typeof seq === 'string') {
    checkLength(seq.length * n);
    return seq.repeat(n);
  }
  if (n !== undefined && Array.isArray(seq)) {
    checkListLength(seq.length * n);
    burn(1 + seq.length * n);
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(...seq);
    return out;
  }
  throw runtimeError(`cannot multiply ${typeName(a)} and ${typeName(b)}`);
}

function numbers(op: string, a: unknown, b: unknown): [number, number] {
  a = unwrap(a);
  b = unwrap(b);
  if (!isNum(a) || !isNum(b))
    throw runtimeError(`unsupported operand types for ${op}: ${typeName(a)} and ${typeName(b)}`);
  return [Number(a), Number(b)];
}

function arith(op: string, a: unknown, b: unknown): unknown {
  if (op === '%' && typeof unwrap(a) === 'string') return pyFormat(str(a), unwrap(b));
  const [x, y] = numbers(op, a, b);
  switch (op) {
    case '-':
      return x - y;
    case '/':
      if (y === 0) throw runtimeError('division by zero');
      return x / y;
    case '//':
      if (y === 0) throw runtimeError('division by zero');
      return Math.floor(x / y);
    case '%':
      if (y === 0) throw runtimeError('modulo by zero');
      return ((x % y) + y) % y;
    case '**':
      return x ** y;
  }
  throw runtimeError(`unknown operator ${op}`);
}

function concat(a: unknown, b: unknown): string {
  const x = toText(a);
  const y = toText(b);
  checkLength(x.length + y.length);
  return x + y;
}

function compare(op: string, a: unknown, b: unknown): boolean {
  switch (op) {
    case '==':
      return looseEquals(a, b);
    case '!=':
      return !looseEquals(a, b);
    case '===':
      return a === b;
    case '!==':
      return a !== b;
  }
  const x = unwrap(a) as number;
  const y = unwrap(b) as number;
  switch (op) {
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
  }
  throw runtimeError(`unknown comparison ${op}`);
}

function truthy(v: unknown): boolean {
  if (!v) return false;
  if (v === true || typeof v === 'number' || typeof v === 'string' || typeof v === 'function') return true;
  if (Array.isArray(v)) return v.length > 0;
  if (isDict(v)) {
    for (const k in v) if (Object.hasOwn(v, k)) return true;
    return false;
  }
  return Boolean(toText(v));
}

// ---------------------------------------------------------------------------------------------
// The runtime object.

function memberLookup(obj: unknown, key: unknown, ...slice: unknown[]): unknown {
  if (slice.length === 2) return getSlice(obj, key, slice[0], slice[1]);
  return getMember(obj, key);
}

function contextOrFrameLookup(context: SandboxContext, frame: NjFrame, name: string): unknown {
  const v = frame.lookup(name);
  return v !== undefined ? v : context.lookup(name);
}

function callWrap(fn: unknown, name: string, context: unknown, args: unknown[]): unknown {
  burn(1);
  if (typeof fn !== 'function')
    throw runtimeError(
      fn === undefined || fn === null
        ? `'${name}' is undefined and cannot be called`
        : `'${name}' is a ${typeName(fn)}, not a function`,
    );
  return (fn as NjFn).apply(context, args);
}

function suppressValue(value: unknown): string {
  const s = typeof value === 'string' ? value : toText(value);
  chargeOutput(s.length);
  return s;
}

function text(literal: string): string {
  chargeOutput(literal.length);
  return literal;
}

function typed(value: unknown): string {
  state().typed = value;
  return '';
}

const MACRO_CALL_COST = 40;

function makeMacro(argNames: string[], kwargNames: string[], fn: NjFn): NjFn {
  const guarded = function (this: unknown, ...args: unknown[]) {
    const s = state();
    if (s.macroDepth >= LIMITS.macroDepth)
      throw limitError(`macro calls nested more than ${LIMITS.macroDepth} deep (runaway recursion?)`);
    // A macro call costs a frame, argument binding and an output buffer: charge it accordingly.
    burn(MACRO_CALL_COST);
    s.macroDepth++;
    try {
      return fn.apply(this, args);
    } finally {
      s.macroDepth--;
    }
  };
  return baseRuntime.makeMacro(argNames, kwargNames, guarded);
}

/**
 * Turn whatever a render raised into an ExprError. Positions are not attached: nunjucks only
 * tracks them at call sites, so they would often point at the wrong place.
 */
function handleError(error: unknown): ExprError {
  if (error instanceof ExprError) return error;
  if (error instanceof RangeError && /call stack/i.test(error.message))
    return limitError('template recursion too deep');
  if (error instanceof RangeError && /string length|array length/i.test(error.message))
    return limitError('value too large');
  const msg = error instanceof Error ? error.message : String(error);
  return new ExprError(msg, '', { kind: 'runtime', cause: error });
}

function fromIterator(v: unknown): unknown {
  if (typeof v === 'string' || v instanceof baseRuntime.SafeString) return [...str(v)];
  if (isDict(v) && !(v instanceof Map) && !(v instanceof Set)) return v;
  return baseRuntime.fromIterator === undefined ? v : (baseRuntime.fromIterator as NjFn)(v);
}

function blockedKey(name: string): never {
  throw blockedName(name);
}

export const sandboxRuntime: NjRuntime = Object.assign(Object.create(null), baseRuntime, {
  Frame: SandboxFrame,
  memberLookup,
  contextOrFrameLookup,
  callWrap,
  suppressValue,
  ensureDefined: (v: unknown) => v,
  makeMacro,
  handleError,
  inOperator: (key: unknown, container: unknown) => membership(container, key),
  fromIterator,
  asyncEach: undefined,
  asyncAll: undefined,
  // Additions used by the sandbox compiler.
  text,
  typed,
  add,
  mul,
  arith,
  concat,
  compare,
  truthy,
  blockedKey,
  BLOCKED_NAMES,
});
