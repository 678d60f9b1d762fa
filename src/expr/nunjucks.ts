/**
 * Typed access to the parts of nunjucks 3.2.4 the engine builds on: the lexer/parser (for the
 * AST), the transformer and compiler (to emit JavaScript from an AST we have checked), and the
 * stock runtime (which our sandboxed runtime replaces piece by piece). These are internals of a
 * frozen release; the engine's tests pin their behaviour.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A node of the nunjucks AST. `fields` lists the names of its child properties. */
export interface NjNode {
  readonly typename: string;
  readonly fields: readonly string[];
  lineno: number;
  colno: number;
  value?: unknown;
  children?: NjNode[];
  [field: string]: unknown;
}

export type NjNodeClass = new (lineno: number, colno: number, ...fields: unknown[]) => NjNode;

export interface NjFrame {
  variables: Record<string, unknown>;
  parent: NjFrame | undefined;
  topLevel: boolean;
  set(name: string, value: unknown, resolveUp?: boolean): void;
  lookup(name: string): unknown;
  push(isolateWrites?: boolean): NjFrame;
}
export type NjFrameClass = new (parent?: NjFrame, isolateWrites?: boolean) => NjFrame;

export type NjFn = (...args: unknown[]) => unknown;

export interface NjRuntime {
  Frame: NjFrameClass;
  SafeString: new (value: string) => { val: string; length: number; toString(): string };
  makeMacro(argNames: string[], kwargNames: string[], fn: NjFn): NjFn;
  [name: string]: unknown;
}

export interface NjCompiler {
  codebuf: string[];
  compile(node: NjNode, frame?: unknown): void;
  getCode(): string;
  fail(message: string, lineno?: number, colno?: number): never;
  _emit(code: string): void;
  _emitLine(code: string): void;
  _compileExpression(node: NjNode, frame: unknown): void;
  compileLiteral(node: NjNode, frame?: unknown): void;
  buffer: string;
}
export type NjCompilerClass = new (name: string, throwOnUndefined: boolean) => NjCompiler;

interface NunjucksModule {
  installJinjaCompat(): () => void;
  runtime: NjRuntime;
}

const nunjucks = require('nunjucks') as NunjucksModule;
export const parser = require('nunjucks/src/parser.js') as {
  parse(src: string, extensions: unknown[], opts: Record<string, unknown>): NjNode;
};
export const transformer = require('nunjucks/src/transformer.js') as {
  transform(ast: NjNode, asyncFilters: string[], name?: string): NjNode;
};
export const { Compiler } = require('nunjucks/src/compiler.js') as { Compiler: NjCompilerClass };
export const nodes = require('nunjucks/src/nodes.js') as Record<string, NjNodeClass>;
export const baseRuntime: NjRuntime = nunjucks.runtime;
export const SafeString = baseRuntime.SafeString;

// Slice syntax (`x[1:3]`, `x[::-1]`) and its parser/compiler support come from nunjucks' Jinja
// compatibility layer. Installing it also swaps two functions of the shared stock runtime, which we
// put back: our templates run on a runtime of their own.
{
  const { memberLookup, contextOrFrameLookup } = baseRuntime;
  nunjucks.installJinjaCompat();
  baseRuntime.memberLookup = memberLookup;
  baseRuntime.contextOrFrameLookup = contextOrFrameLookup;
}
