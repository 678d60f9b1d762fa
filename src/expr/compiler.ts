/**
 * From template source to a JavaScript render function: nunjucks parses, we check the AST
 * (unsupported tags, regex literals, blocked names, unknown filters and tests are refused before
 * anything runs), and a compiler derived from nunjucks' emits code that routes operators,
 * conditions and output through the sandbox runtime, with Jinja semantics:
 *
 * - `+` concatenates lists, `*` repeats strings and lists, `~` joins text, `-` `/` `//` `%` `**`
 *   want numbers (`%` on a string formats it), division by zero is an error;
 * - `==`/`!=` compare deeply (and a number equals its numeric string), comparisons chain
 *   (`1 < x < 5`);
 * - conditions use Python truthiness (`[]`, `{}` and `""` are false), `and`/`or` return operands;
 * - `True`, `False`, `None` are the constants.
 */
import { BLOCKED_NAMES } from './access.ts';
import { ExprError, syntaxError } from './errors.ts';
import { FILTERS, TESTS } from './filters.ts';
import {
  Compiler,
  type NjCompiler,
  type NjNode,
  type NjNodeClass,
  nodes,
  parser,
  transformer,
} from './nunjucks.ts';

type Frame = { lookup(name: string): unknown };

const UNSUPPORTED: Record<string, string> = {
  Extends: '{% extends %}',
  Block: '{% block %}',
  Super: 'super()',
  Include: '{% include %}',
  Import: '{% import %}',
  FromImport: '{% from … import %}',
  AsyncEach: '{% asyncEach %}',
  AsyncAll: '{% asyncAll %}',
  IfAsync: '{% ifAsync %}',
  FilterAsync: 'asynchronous filters',
  CallExtension: 'template extensions',
  CallExtensionAsync: 'template extensions',
};

const PY_CONSTANTS: Record<string, string> = { True: 'true', False: 'false', None: 'null' };

const pos = (n: NjNode): [number | undefined, number | undefined] => [
  typeof n.lineno === 'number' ? n.lineno + 1 : undefined,
  typeof n.colno === 'number' ? n.colno + 1 : undefined,
];

function refuse(kind: 'syntax' | 'forbidden' | 'unknown_filter', reason: string, n: NjNode): never {
  const [line, column] = pos(n);
  throw new ExprError(reason, '', { kind, line, column });
}

/** Check a parsed template before compiling it. */
function validate(node: NjNode, depth = 0): void {
  if (depth > 500) refuse('syntax', 'template nested too deeply', node);
  const t = node.typename;
  const unsupported = UNSUPPORTED[t];
  if (unsupported) refuse('syntax', `${unsupported} is not supported in expressions`, node);
  switch (t) {
    case 'Symbol':
      if (typeof node.value === 'string' && BLOCKED_NAMES.has(node.value))
        refuse('forbidden', `access to '${node.value}' is not allowed in templates`, node);
      break;
    case 'Literal':
      if (node.value instanceof RegExp)
        refuse(
          'syntax',
          'regular expression literals (r/…/) are not supported; use the regex_* filters',
          node,
        );
      break;
    case 'LookupVal': {
      const v = node.val as NjNode | undefined;
      if (v?.typename === 'Literal' && typeof v.value === 'string' && BLOCKED_NAMES.has(v.value))
        refuse('forbidden', `access to '${v.value}' is not allowed in templates`, v);
      break;
    }
    case 'Pair': {
      const k = node.key as NjNode | undefined;
      if (k && typeof k.value === 'string' && BLOCKED_NAMES.has(k.value))
        refuse('forbidden', `the key '${k.value}' is not allowed in templates`, k);
      break;
    }
    case 'Filter': {
      const name = (node.name as NjNode | undefined)?.value;
      if (typeof name !== 'string' || !Object.hasOwn(FILTERS, name))
        refuse('unknown_filter', `unknown filter '${String(name)}'`, node.name as NjNode);
      break;
    }
    case 'Is': {
      const right = node.right as NjNode;
      // `x is none` / `x is true` parse the test name as a literal; nunjucks looks it up by its text.
      const name =
        right.typename === 'FunCall'
          ? (right.name as NjNode).value
          : right.typename === 'Literal'
            ? String(right.value)
            : right.value;
      if (typeof name !== 'string' || !Object.hasOwn(TESTS, name))
        refuse('unknown_filter', `unknown test '${String(name)}'`, right);
      break;
    }
  }
  for (const field of node.fields) {
    const child = node[field];
    if (Array.isArray(child)) {
      for (const c of child) if (isNode(c)) validate(c, depth + 1);
    } else if (isNode(child)) validate(child, depth + 1);
  }
}

const isNode = (v: unknown): v is NjNode =>
  typeof v === 'object' && v !== null && typeof (v as NjNode).typename === 'string';

/** A condition evaluated with Python truthiness (a kind of `not`, so nunjucks accepts it as an expression). */
const Truthy = (nodes.Not as unknown as { extend(name: string): NjNodeClass }).extend('Truthy');

/** Wrap the conditions of `{% if %}` and inline ifs so they use Python truthiness. */
function wrapConditions(node: NjNode): void {
  if ((node.typename === 'If' || node.typename === 'InlineIf') && isNode(node.cond))
    node.cond = new Truthy(node.cond.lineno, node.cond.colno, node.cond);
  for (const field of node.fields) {
    const child = node[field];
    if (Array.isArray(child)) {
      for (const c of child) if (isNode(c)) wrapConditions(c);
    } else if (isNode(child)) wrapConditions(child);
  }
}

const BaseCompiler = Compiler as unknown as new (name: string, throwOnUndefined: boolean) => NjCompiler;

class SandboxCompiler extends BaseCompiler {
  private typedMode: boolean;
  constructor(typedMode: boolean) {
    super('template', false);
    this.typedMode = typedMode;
  }

  private call(fn: string, parts: Array<NjNode | string>, frame: Frame): void {
    this._emit(`runtime.${fn}(`);
    parts.forEach((p, i) => {
      if (i > 0) this._emit(', ');
      if (typeof p === 'string') this._emit(p);
      else this.compile(p, frame);
    });
    this._emit(')');
  }

  compileAdd(node: NjNode, frame: Frame): void {
    this.call('add', [node.left as NjNode, node.right as NjNode], frame);
  }
  compileMul(node: NjNode, frame: Frame): void {
    this.call('mul', [node.left as NjNode, node.right as NjNode], frame);
  }
  compileConcat(node: NjNode, frame: Frame): void {
    this.call('concat', [node.left as NjNode, node.right as NjNode], frame);
  }
  compileSub(node: NjNode, frame: Frame): void {
    this.call('arith', ['"-"', node.left as NjNode, node.right as NjNode], frame);
  }
  compileDiv(node: NjNode, frame: Frame): void {
    this.call('arith', ['"/"', node.left as NjNode, node.right as NjNode], frame);
  }
  compileFloorDiv(node: NjNode, frame: Frame): void {
    this.call('arith', ['"//"', node.left as NjNode, node.right as NjNode], frame);
  }
  compileMod(node: NjNode, frame: Frame): void {
    this.call('arith', ['"%"', node.left as NjNode, node.right as NjNode], frame);
  }
  compilePow(node: NjNode, frame: Frame): void {
    this.call('arith', ['"**"', node.left as NjNode, node.right as NjNode], frame);
  }

  compileTruthy(node: NjNode, frame: Frame): void {
    this.call('truthy', [node.target as NjNode], frame);
  }
  compileNot(node: NjNode, frame: Frame): void {
    this._emit('!');
    this.call('truthy', [node.target as NjNode], frame);
  }
  compileOr(node: NjNode, frame: Frame): void {
    this._emit('(function (t) { return runtime.truthy(t) ? t : (');
    this.compile(node.right as NjNode, frame);
    this._emit('); })(');
    this.compile(node.left as NjNode, frame);
    this._emit(')');
  }
  compileAnd(node: NjNode, frame: Frame): void {
    this._emit('(function (t) { return runtime.truthy(t) ? (');
    this.compile(node.right as NjNode, frame);
    this._emit(') : t; })(');
    this.compile(node.left as NjNode, frame);
    this._emit(')');
  }

  compileCompare(node: NjNode, frame: Frame): void {
    const ops = node.ops as NjNode[];
    if (ops.length === 1) {
      this.call(
        'compare',
        [JSON.stringify(ops[0]!.type), node.expr as NjNode, ops[0]!.expr as NjNode],
        frame,
      );
      return;
    }
    // A chain `a < b < c` means `a < b and b < c`, each operand evaluated once.
    this._emit('(function () { var l = ');
    this.compile(node.expr as NjNode, frame);
    this._emit(', r;');
    for (const op of ops) {
      this._emit(' r = ');
      this.compile(op.expr as NjNode, frame);
      this._emit(`; if (!runtime.compare(${JSON.stringify(op.type)}, l, r)) return false; l = r;`);
    }
    this._emit(' return true; })()');
  }

  compileSymbol(node: NjNode, frame: Frame): void {
    const name = node.value as string;
    const constant = PY_CONSTANTS[name];
    if (constant !== undefined && !frame.lookup(name)) {
      this._emit(constant);
      return;
    }
    (
      BaseCompiler.prototype as unknown as { compileSymbol: (n: NjNode, f: Frame) => void }
    ).compileSymbol.call(this, node, frame);
  }

  compileOutput(node: NjNode, frame: Frame): void {
    for (const child of node.children ?? []) {
      if (child.typename === 'TemplateData') {
        if (!child.value) continue;
        if (this.typedMode) continue;
        this._emit(`${this.buffer} += runtime.text(`);
        this.compileLiteral(child, frame);
        this._emitLine(');');
      } else if (this.typedMode) {
        // Only the top-level expression is typed; nested outputs (filter/call block bodies) are text.
        this.typedMode = false;
        this._emit('runtime.typed(');
        this.compile(child, frame);
        this._emitLine(');');
      } else {
        this._emit(`${this.buffer} += runtime.suppressValue(`);
        this.compile(child, frame);
        this._emitLine(');');
      }
    }
  }
}

/** A compiled template's render function, as nunjucks emits it. */
export type RootRender = (
  env: unknown,
  context: unknown,
  frame: unknown,
  runtime: unknown,
  cb: (err: unknown, res?: string) => void,
) => void;

export interface Compiled {
  /** `expression` when the template is exactly one `{{ … }}` (its value keeps its type). */
  kind: 'expression' | 'text';
  root: RootRender;
}

/**
 * nunjucks ends an expression at the first `}}`, even when it closes a nested dict literal
 * (`{{ {"a": {"b": 1}} }}`). Jinja balances brackets; we do the same by separating a `}` that closes
 * a bracket from a following `}` inside `{{ … }}` and `{% … %}`. Strings, comments and raw blocks
 * are left alone.
 */
export function separateClosingBraces(src: string): string {
  if (!src.includes('}}')) return src;
  let out = '';
  let i = 0;
  const n = src.length;
  while (i < n) {
    const open = src.indexOf('{', i);
    if (open < 0 || open === n - 1) {
      out += src.slice(i);
      break;
    }
    const kind = src[open + 1];
    if (kind === '#') {
      const close = src.indexOf('#}', open + 2);
      const end = close < 0 ? n : close + 2;
      out += src.slice(i, end);
      i = end;
      continue;
    }
    if (kind !== '{' && kind !== '%') {
      out += src.slice(i, open + 1);
      i = open + 1;
      continue;
    }
    out += src.slice(i, open + 2);
    i = open + 2;
    if (kind === '%') {
      const raw = /^-?\s*(raw|verbatim)\s*-?%\}/.exec(src.slice(i));
      if (raw) {
        const endRe = new RegExp(`\\{%-?\\s*end${raw[1]}\\s*-?%\\}`, 'g');
        endRe.lastIndex = i + raw[0].length;
        const m = endRe.exec(src);
        const end = m ? m.index + m[0].length : n;
        out += src.slice(i, end);
        i = end;
        continue;
      }
    }
    const endTok = kind === '{' ? '}}' : '%}';
    let depth = 0;
    let quote = '';
    while (i < n) {
      const c = src[i]!;
      if (quote) {
        out += c;
        i++;
        if (c === '\\' && i < n) out += src[i++];
        else if (c === quote) quote = '';
        continue;
      }
      if (depth === 0 && (src.startsWith(endTok, i) || (c === '-' && src.startsWith(endTok, i + 1)))) {
        const len = c === '-' ? 3 : 2;
        out += src.slice(i, i + len);
        i += len;
        break;
      }
      out += c;
      i++;
      if (c === '"' || c === "'") quote = c;
      else if (c === '(' || c === '[' || c === '{') depth++;
      else if ((c === ')' || c === ']' || c === '}') && depth > 0) {
        depth--;
        if (c === '}' && src[i] === '}') out += ' ';
      }
    }
  }
  return out;
}

/** Parse, check and compile template source. Throws ExprError. */
export function compileSource(source: string, mode: 'template' | 'expression'): Compiled {
  let ast: NjNode;
  try {
    ast = parser.parse(separateClosingBraces(source), [], { autoescape: false, throwOnUndefined: false });
  } catch (e) {
    throw fromNunjucks(e);
  }
  validate(ast);
  const expr = soleExpression(ast);
  if (mode === 'expression' && expr === null)
    throw syntaxError('expected a single expression, e.g. result.count > 3');
  let root = ast;
  if (expr !== null) {
    const RootNode = nodes.Root!;
    const OutputNode = nodes.Output!;
    root = new RootNode(0, 0, [new OutputNode(expr.lineno, expr.colno, [expr])]);
  }
  try {
    const transformed = transformer.transform(root, [], 'template');
    wrapConditions(transformed);
    const compiler = new SandboxCompiler(expr !== null);
    compiler.compile(transformed);
    const code = compiler.getCode();
    // The emitted code only references the arguments nunjucks passes to `root`.
    const props = new Function(code)() as { root: RootRender };
    return { kind: expr === null ? 'text' : 'expression', root: props.root };
  } catch (e) {
    throw fromNunjucks(e);
  }
}

/** The expression of a template that is exactly one `{{ … }}` (whitespace around allowed), else null. */
function soleExpression(ast: NjNode): NjNode | null {
  let found: NjNode | null = null;
  for (const top of ast.children ?? []) {
    if (top.typename !== 'Output') return null;
    for (const c of top.children ?? []) {
      if (c.typename === 'TemplateData') {
        if (typeof c.value === 'string' && c.value.trim() !== '') return null;
        continue;
      }
      if (found !== null) return null;
      found = c;
    }
  }
  return found;
}

function fromNunjucks(e: unknown): ExprError {
  if (e instanceof ExprError) return e;
  if (e instanceof RangeError) return syntaxError('template nested too deeply');
  const err = e as { message?: string; lineno?: number; colno?: number };
  let msg = String(err.message ?? e)
    .replace(/^\(unknown path\)\s*(\[Line \d+, Column \d+\])?\s*/, '')
    .replace(/^(Template render )?error:?\s*/i, '')
    .replace(/^(parse|compile)\w*: /, '')
    .trim();
  if (msg === 'expected variable end') msg = "expected '}}' to close the expression";
  else if (msg === 'expected block end in') msg = "expected '%}' to close the tag";
  else if (msg === 'unexpected end of file')
    msg = 'unexpected end of template (is a tag or {% end… %} missing?)';
  const line = typeof err.lineno === 'number' && err.lineno > 0 ? err.lineno : undefined;
  const column = line !== undefined && typeof err.colno === 'number' && err.colno > 0 ? err.colno : undefined;
  return syntaxError(`syntax error: ${msg}`, line, column);
}
