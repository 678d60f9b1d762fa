/**
 * Logs, the other half of observability: the readable form of a JSON log line, and a guard over
 * the runtime's log calls — ids go by one name everywhere (`execution_id`, `workflow_execution_id`,
 * `event_id`, `worker_id`), so that one query finds every line about a thing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prettyLine } from '../../src/logging.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return sourceFiles(p);
    return d.name.endsWith('.ts') ? [p] : [];
  });
}

describe('log lines', () => {
  it('render readably on a terminal, ids included', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2030, 0, 1, 12, 0, 1, 250),
      pid: 1,
      hostname: 'h',
      component: 'worker',
      msg: 'stopping execution',
      execution_id: 42,
      workflow_execution_id: 7,
      event_id: 9,
      reason: 'cancel',
    });
    expect(prettyLine(line, false)).toBe(
      '12:00:01.250 WARN  [worker] stopping execution execution_id=42 workflow_execution_id=7 event_id=9 reason=cancel',
    );
    expect(prettyLine(line, true)).toContain('\x1b[33mWARN \x1b[0m');
    expect(prettyLine('not json', false)).toBe('not json');
  });

  it('put errors on their own lines with the stack', () => {
    const line = JSON.stringify({
      level: 50,
      time: 0,
      msg: 'boom',
      err: { message: 'bad', stack: 'Error: bad\n    at x' },
    });
    expect(prettyLine(line, false)).toBe('00:00:00.000 ERROR boom\n    Error: bad\n    at x');
  });

  it('of the runtime name ids in snake_case, the same way everywhere', () => {
    const call = /\b(?:log|#log|logger)\.(?:trace|debug|info|warn|error|fatal)\(\s*\{([\s\S]*?)\}\s*,/g;
    // a key (`name:` or shorthand `name,`), not a value (`execution_id: this.executionId`)
    const camel =
      /(?:^|[{,])\s*(executionId|executionIds|workflowId|workflowExecutionId|eventId|workerId|retryId|runKey|ids)\s*(?::|,|$)/;
    const offenders: string[] = [];
    let calls = 0;
    for (const dir of ['src/services', 'src/bus']) {
      for (const file of sourceFiles(path.join(ROOT, dir))) {
        const text = fs.readFileSync(file, 'utf8');
        for (const m of text.matchAll(call)) {
          calls++;
          const fields = m[1]!;
          const bad = camel.exec(fields);
          if (bad) {
            const lineNo = text.slice(0, m.index).split('\n').length;
            offenders.push(`${path.relative(ROOT, file)}:${lineNo} ${bad[1]}`);
          }
        }
      }
    }
    expect(calls).toBeGreaterThan(40);
    expect(offenders).toEqual([]);
  });
});
