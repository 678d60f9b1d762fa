/**
 * A YAML file of a pack, parsed with its source positions kept so that every problem found in it —
 * by the parser or by later validation of the value — can name its line.
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { Problem } from '../domain/errors.ts';
import { type FormatProblem, type PathSegment, pointer } from '../workflow/file-format.ts';

/** Largest YAML definition file read, in bytes. */
export const MAX_YAML_BYTES = 1024 * 1024;

export class YamlSource {
  readonly file: string;
  /** The parsed value (undefined when the file could not be parsed). */
  readonly value: unknown;
  /** Problems of the text itself (syntax, duplicate keys, too many aliases). */
  readonly problems: Problem[] = [];
  readonly #doc: ReturnType<typeof parseDocument> | undefined;
  readonly #lines: LineCounter;

  constructor(file: string, text: string) {
    this.file = file;
    this.#lines = new LineCounter();
    if (text.length > MAX_YAML_BYTES) {
      this.problems.push({
        file,
        line: 1,
        path: '/',
        message: `file is larger than ${MAX_YAML_BYTES} bytes`,
      });
      this.#doc = undefined;
      this.value = undefined;
      return;
    }
    const doc = parseDocument(text, {
      keepSourceTokens: true,
      lineCounter: this.#lines,
      prettyErrors: false,
      uniqueKeys: true,
      version: '1.2',
    });
    this.#doc = doc;
    for (const e of [...doc.errors, ...doc.warnings]) {
      const offset = e.pos[0];
      this.problems.push({
        file,
        line: this.#lines.linePos(offset).line,
        path: '/',
        message: cleanYamlMessage(e.message),
      });
    }
    let value: unknown;
    if (!doc.errors.length) {
      try {
        value = doc.toJS({ maxAliasCount: 100 });
      } catch (e) {
        this.problems.push({ file, line: 1, path: '/', message: (e as Error).message });
      }
    }
    this.value = value;
  }

  /** The line of the node at `path` (or of its deepest existing ancestor); 1-based. */
  lineOf(path: readonly PathSegment[]): number {
    const contents = this.#doc?.contents as Node | null | undefined;
    let line = this.#line(contents) ?? 1;
    let node: unknown = contents;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => {
          const k = isScalar(p.key) ? p.key.value : p.key;
          return String(k) === String(seg);
        });
        if (!pair) break;
        line = this.#line(pair.key as Node) ?? line;
        node = pair.value;
      } else if (isSeq(node)) {
        const item = node.items[Number(seg)];
        if (item === undefined) break;
        line = this.#line(item as Node) ?? line;
        node = item;
      } else break;
    }
    return line;
  }

  #line(node: Node | null | undefined): number | undefined {
    const start = node?.range?.[0];
    return start === undefined ? undefined : this.#lines.linePos(start).line;
  }

  /** A problem at `path` of this file. */
  problem(path: readonly PathSegment[], message: string, severity?: 'warning'): Problem {
    const p: Problem = { file: this.file, line: this.lineOf(path), path: pointer(path), message };
    if (severity) p.severity = severity;
    return p;
  }

  /** Problems of a pure checker (paths relative to `at` in this file). */
  fromFormat(list: readonly FormatProblem[], at: readonly PathSegment[] = []): Problem[] {
    return list.map((p) => this.problem([...at, ...p.path], p.message));
  }
}

/** The yaml library's messages end with a code frame and position; keep the sentence. */
function cleanYamlMessage(m: string): string {
  return m.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
