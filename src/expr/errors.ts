/**
 * The one error type of the expression engine. Every failure — bad syntax, an unknown filter, a
 * refused attribute, a limit hit, an error raised while evaluating — surfaces as an ExprError that
 * names the template, and where possible the line and column, so callers can report it verbatim.
 */

/** What went wrong, for callers that map errors to codes. */
export type ExprErrorKind =
  /** The template does not parse (or uses a construct the engine does not support). */
  | 'syntax'
  /** A filter or test that does not exist. */
  | 'unknown_filter'
  /** Access the sandbox refuses: `constructor`, `__proto__`, attributes of functions … */
  | 'forbidden'
  /** A bound on work or size was hit: loop iterations, output size, range length, regex subject. */
  | 'limit'
  /** Anything raised while evaluating: a bad argument to a filter, calling a non-function … */
  | 'runtime';

export interface ExprErrorOptions {
  kind?: ExprErrorKind;
  line?: number;
  column?: number;
  cause?: unknown;
}

export class ExprError extends Error {
  /** The template (or bare expression) that failed. */
  template: string;
  readonly kind: ExprErrorKind;
  /** 1-based position in the template, when known. */
  line?: number;
  column?: number;
  /** Where the template sits inside a rendered document (`cmd`, `items[2].name`), when known. */
  path?: string;
  /** The message without template, position or path. */
  readonly reason: string;

  constructor(reason: string, template = '', options: ExprErrorOptions = {}) {
    super(reason, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ExprError';
    this.reason = reason;
    this.template = template;
    this.kind = options.kind ?? 'runtime';
    if (options.line !== undefined) this.line = options.line;
    if (options.column !== undefined) this.column = options.column;
    this.message = this.describe();
  }

  /** Attach the template and position if they are not known yet (errors raised deep in the runtime). */
  locate(template: string, line?: number, column?: number): this {
    if (!this.template) this.template = template;
    if (this.line === undefined && line !== undefined && line > 0) {
      this.line = line;
      if (column !== undefined && column > 0) this.column = column;
    }
    this.message = this.describe();
    return this;
  }

  /** Attach the location inside a rendered document (outermost call wins the prefix). */
  at(path: string): this {
    this.path = this.path ? `${path}${this.path.startsWith('[') ? '' : '.'}${this.path}` : path;
    this.message = this.describe();
    return this;
  }

  private describe(): string {
    let msg = this.reason;
    if (this.line !== undefined)
      msg += ` (line ${this.line}${this.column !== undefined ? `, column ${this.column}` : ''})`;
    if (this.path) msg = `${this.path}: ${msg}`;
    if (this.template) msg += ` in template ${quoteTemplate(this.template)}`;
    return msg;
  }
}

function quoteTemplate(t: string): string {
  const shown = t.length > 120 ? `${t.slice(0, 117)}…` : t;
  return JSON.stringify(shown);
}

export const syntaxError = (reason: string, line?: number, column?: number) =>
  new ExprError(reason, '', { kind: 'syntax', line, column });
export const forbidden = (reason: string) => new ExprError(reason, '', { kind: 'forbidden' });
export const limitError = (reason: string) => new ExprError(reason, '', { kind: 'limit' });
export const runtimeError = (reason: string, cause?: unknown) =>
  new ExprError(reason, '', { kind: 'runtime', cause });
