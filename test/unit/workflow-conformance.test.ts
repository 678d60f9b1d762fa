/**
 * The conformance suite: every YAML file in workflow-conformance/ is a rehearsal spec (a workflow,
 * mocked results per task and call, and the expected task sequence, status and output). Each case
 * runs through the pure engine with the state serialised to JSON between steps and every
 * completion, answer and timer delivered twice (the duplicate must be ignored).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rehearse } from '../../src/workflow/rehearse.ts';
import { parseRehearsalSpec } from '../../src/workflow/rehearse-spec.ts';

const dir = new URL('./workflow-conformance/', import.meta.url);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
let scenarios = 0;

for (const file of files) {
  const parsed = parseRehearsalSpec(readFileSync(new URL(file, dir), 'utf8'));
  describe(file, () => {
    if (!parsed.ok) {
      it('is a valid spec', () => expect(parsed.problems).toEqual([]));
      return;
    }
    const { spec } = parsed;
    for (const c of spec.cases) {
      scenarios++;
      it(c.name, () => {
        const report = rehearse(spec.definition, {
          ...c.options,
          ...(spec.workflows ? { workflows: spec.workflows } : {}),
          round_trip: true,
          check_duplicates: true,
        });
        expect(report.problems.filter((p) => p.severity === 'error')).toEqual([]);
        expect(report.mismatches).toEqual([]);
        expect(report.passed).toBe(true);
      });
    }
  });
}

describe('the conformance suite', () => {
  it('has at least 50 scenarios', () => {
    expect(scenarios).toBeGreaterThanOrEqual(50);
  });
});
