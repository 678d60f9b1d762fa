import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPack } from '../../src/packs/loader.ts';
import { YamlSource } from '../../src/packs/yaml-source.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/packs');
const tmpRoots: string[] = [];
afterAll(() => {
  for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true });
});

/** A pack in a temporary directory, from `{relative path: content}`. */
function packDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-pack-'));
  tmpRoots.push(dir);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}
const PACK_YAML = 'ref: demo\nversion: 1.0.0\n';

describe('YAML sources keep their lines', () => {
  const src = new YamlSource(
    'x.yaml',
    [
      'name: a',
      'parameters:',
      '  cmd:',
      '    type: strng',
      'tasks:',
      '  - name: one',
      '  - name: two',
      '    next: []',
    ].join('\n'),
  );
  it('maps a path to the line of its key or item', () => {
    expect(src.lineOf(['name'])).toBe(1);
    expect(src.lineOf(['parameters', 'cmd', 'type'])).toBe(4);
    expect(src.lineOf(['tasks', 1])).toBe(7);
    expect(src.lineOf(['tasks', 1, 'next'])).toBe(8);
  });
  it('falls back to the deepest node that exists', () => {
    expect(src.lineOf(['parameters', 'cmd', 'missing'])).toBe(3);
    expect(src.lineOf(['nothing', 'here'])).toBe(1);
  });
  it('reports syntax errors, duplicate keys and alias bombs with their line', () => {
    expect(new YamlSource('a.yaml', 'a: 1\nb: [1, 2\n').problems[0]).toMatchObject({
      file: 'a.yaml',
      line: 3,
    });
    expect(new YamlSource('b.yaml', 'a: 1\nb: 2\na: 3\n').problems).toEqual([
      { file: 'b.yaml', line: 3, path: '/', message: 'Map keys must be unique' },
    ]);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]'];
    bomb.push('c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]');
    const bombSrc = new YamlSource('c.yaml', bomb.join('\n'));
    expect(bombSrc.value).toBeUndefined();
    expect(bombSrc.problems[0]!.message).toMatch(/alias/i);
  });
  it('reads YAML 1.2: yes/no/on/off stay strings', () => {
    expect(new YamlSource('d.yaml', 'a: yes\non: [failed]\n').value).toEqual({ a: 'yes', on: ['failed'] });
  });
});

describe('loading a valid pack', () => {
  const r = loadPack(path.join(FIXTURES, 'basic'));

  it('reads every definition, with nothing to report', () => {
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([]);
    const p = r.pack!;
    expect(p.meta).toMatchObject({
      ref: 'fixture_basic',
      version: '1.2.0',
      email: 'tests@example.com',
      dependencies: ['core@>=1.0.0'],
      system: false,
    });
    expect(p.actions.map((a) => a.ref).sort()).toEqual([
      'fixture_basic.hello',
      'fixture_basic.ping',
      'fixture_basic.report',
    ]);
    expect(p.workflows.map((w) => w.ref)).toEqual(['fixture_basic.greet']);
    expect(p.triggers.map((t) => t.ref)).toEqual(['fixture_basic.deployed']);
    expect(p.sensors.map((s) => s.ref)).toEqual(['fixture_basic.watcher']);
    expect(p.rules.map((x) => x.ref).sort()).toEqual(['fixture_basic.on_deploy', 'fixture_basic.on_webhook']);
  });

  it('applies the config schema defaults to the config', () => {
    expect(r.pack!.meta.config).toEqual({ retries: 3, greeting: 'Hello' });
    expect(r.pack!.meta.confSchema).toMatchObject({ type: 'object', additionalProperties: false });
  });

  it('maps action fields, names from file names, and runner_type as runner', () => {
    const report = r.pack!.actions.find((a) => a.name === 'report')!;
    expect(report).toMatchObject({
      runner: 'python-script',
      entryPoint: 'lib/report.py',
      label: 'Report',
      retryPolicy: { count: 2, delay: 1, backoff: 'exponential', max_delay: 10, on: ['failed', 'timeout'] },
      concurrencyPolicy: { limit: 2, action: 'delay', group_by: ['title'] },
      meta: { output_format: 'json' },
      outSchema: { type: 'object', properties: { ok: { type: 'boolean' } } },
    });
    const ping = r.pack!.actions.find((a) => a.name === 'ping')!;
    expect(ping).toMatchObject({ enabled: false, entryPoint: '', runner: 'http-request' });
  });

  it('resolves short names in rules and sensors to refs of the pack, and infers a sensor runner', () => {
    const onDeploy = r.pack!.rules.find((x) => x.name === 'on_deploy')!;
    expect(onDeploy).toMatchObject({
      triggerRef: 'fixture_basic.deployed',
      actionRef: 'fixture_basic.hello',
      triggerParams: { environment: 'production' },
      criteria: { 'trigger.service': { type: 'equals', pattern: 'web' } },
    });
    expect(r.pack!.sensors[0]).toMatchObject({
      runner: 'python-script',
      triggerRefs: ['fixture_basic.deployed'],
      pollIntervalSeconds: 30,
    });
  });

  it('maps the workflow file through the workflow file format, versioned like its pack', () => {
    const w = r.pack!.workflows[0]!;
    expect(w.version).toBe('1.2.0');
    expect(w.definition.tasks.map((t) => t.name)).toEqual(['greet', 'report']);
    expect(w.definition.output_map).toEqual({ greeted: '{{ vars.greeted }}' });
  });

  it('leaves references to other packs for the store check', () => {
    expect(r.external.map((e) => [e.kind, e.ref, e.from])).toEqual([['trigger', 'core.webhook', 'rule']]);
  });
});

describe('loading an invalid pack reports every problem with file and line', () => {
  const r = loadPack(path.join(FIXTURES, 'broken'));
  const at = (file: string, line: number, pathStr: string, message: RegExp) =>
    expect(r.problems).toContainEqual({ file, line, path: pathStr, message: expect.stringMatching(message) });

  it('gives no pack', () => {
    expect(r.pack).toBeUndefined();
    expect(r.ref).toBe('fixture_broken');
  });
  it('pack.yaml', () => {
    at('pack.yaml', 2, '/name', /unknown field 'name' \(use 'ref'/);
    at('pack.yaml', 3, '/version', /'1.0' is not a semantic version/);
    at('pack.yaml', 6, '/dependencies/1', /'not-a-range' is not a semantic-version range/);
  });
  it('actions', () => {
    at(
      'actions/bad_runner.yaml',
      3,
      '/runner',
      /unknown runner 'local-shel-cmd' \(did you mean 'local-shell-cmd'\?\)/,
    );
    at('actions/bad_runner.yaml', 4, '/timeout', /timeout must be an integer/);
    at('actions/bad_runner.yaml', 7, '/parameters/count/type', /unknown type 'integr'/);
    at('actions/bad_runner.yaml', 11, '/parameters/label/requird', /did you mean 'required'/);
    at('actions/missing_script.yaml', 2, '/entry_point', /not found: the pack has no file actions\/nope.sh/);
    at('actions/escape.yaml', 2, '/entry_point', /must stay inside the pack/);
    expect(r.problems.find((p) => p.file === 'actions/syntax.yaml')?.line).toBeGreaterThanOrEqual(3);
  });
  it('workflows', () => {
    at('workflows/flow.yaml', 1, '/version', /quote it/);
    at('workflows/flow.yaml', 4, '/tasks/0/action', /'fixture_broken.nothing' does not exist in this pack/);
    at('workflows/flow.yaml', 6, '/tasks/0/next/0/do', /'nowhere' is not a task/);
    at('workflows/flow.yaml', 11, '/tasks/2/name', /more than one task named 'second'/);
    at('workflows/flow.yaml', 12, '/tasks/2/action', /'noop' is not an action ref/);
  });
  it('triggers, sensors and rules', () => {
    at('triggers/two.yaml', 1, '/', /trigger 'fixture_broken.dup' is already defined in triggers\/one.yaml/);
    at('sensors/s.yaml', 1, '/', /missing required field 'triggers'/);
    at('sensors/s.yaml', 2, '/entry_point', /no file sensors\/s.py/);
    at('rules/bad_rule.yaml', 6, '/criteria/trigger.x/type', /unknown operator 'equalz'/);
  });
  it('does not repeat the problem of a broken file in the files that use it', () => {
    expect(r.problems.filter((p) => p.file === 'rules/uses_syntax.yaml')).toEqual([]);
  });
  it('lists problems ordered by file and line, and counts them all', () => {
    expect(r.problems).toHaveLength(19);
    const keys = r.problems.map((p) => `${p.file}:${String(p.line).padStart(4, '0')}`);
    expect([...keys].sort((a, b) => a.localeCompare(b))).toEqual(keys);
  });
});

describe('pack checks', () => {
  it('needs a pack.yaml', () => {
    const r = loadPack(packDir({ 'pack.yml': PACK_YAML }));
    expect(r.problems).toEqual([
      { file: 'pack.yaml', path: '/', message: expect.stringMatching(/rename it to pack.yaml/) },
    ]);
  });

  it('refuses a system pack unless shipped, and a pack depending on itself', () => {
    const dir = packDir({ 'pack.yaml': `${PACK_YAML}system: true\ndependencies: [demo]\n` });
    expect(loadPack(dir).problems.map((p) => p.message)).toEqual([
      'only the packs shipped with Attune are system packs',
      'a pack cannot depend on itself',
    ]);
    expect(loadPack(dir, { allowSystem: true }).problems).toHaveLength(1);
  });

  it('validates the config against the config schema', () => {
    const dir = packDir({
      'pack.yaml': `${PACK_YAML}config_schema:\n  port:\n    type: integer\n    required: true\nconfig:\n  port: eighty\n`,
    });
    expect(loadPack(dir).problems).toEqual([
      {
        file: 'pack.yaml',
        line: 8,
        path: '/config/port',
        message: 'config /port must be integer (see config_schema)',
      },
    ]);
  });

  it('checks entity names and refs against the pack', () => {
    const dir = packDir({
      'pack.yaml': PACK_YAML,
      'actions/a.yaml': 'ref: other.a\nrunner: noop\n',
      'actions/b.yaml': 'name: b\nref: demo.c\nrunner: noop\n',
      'actions/bad name.yaml': 'runner: noop\n',
      'actions/w.yaml': 'runner: workflow\n',
      'workflows/b.yaml': 'tasks: [{name: t, action: core.noop}]\n',
    });
    expect(loadPack(dir).problems.map((p) => [p.file, p.line, p.message])).toEqual([
      ['actions/a.yaml', 1, "ref 'other.a' must start with the pack's ref ('demo.')"],
      ['actions/b.yaml', 2, "ref 'demo.c' does not match name 'b'"],
      ['actions/bad name.yaml', 1, expect.stringMatching(/'bad name' is not a valid name/)],
      ['actions/w.yaml', 1, expect.stringMatching(/workflows are defined in the pack's workflows\/ folder/)],
      ['workflows/b.yaml', 1, "action 'demo.b' is already defined in actions/b.yaml"],
    ]);
  });

  it("checks the parameters a rule gives to this pack's trigger types and actions", () => {
    const dir = packDir({
      'pack.yaml': PACK_YAML,
      'triggers/t.yaml': 'parameters:\n  env:\n    type: string\n    enum: [a, b]\n    required: true\n',
      'actions/act.yaml':
        'runner: echo\nparameters:\n  message:\n    type: string\n    required: true\n  n:\n    type: integer\n',
      'rules/r.yaml': [
        'trigger:',
        '  type: t',
        '  parameters:',
        '    env: c',
        'action:',
        '  ref: act',
        '  parameters:',
        '    mesage: "{{ trigger.x }}"',
        '    n: "{{ trigger.n }}"',
        '    m: 1',
      ].join('\n'),
      'rules/ok.yaml':
        'trigger: {type: t, parameters: {env: a}}\naction: {ref: act, parameters: {message: "{{ trigger.x }}", n: 4}}\n',
      'rules/typed.yaml':
        'trigger: {type: t, parameters: {env: a}}\naction: {ref: act, parameters: {message: hi, n: four}}\n',
    });
    expect(loadPack(dir).problems.map((p) => [p.file, p.line, p.path, p.message])).toEqual([
      [
        'rules/r.yaml',
        4,
        '/trigger/parameters/env',
        expect.stringMatching(/env: must be equal to one of the allowed values/),
      ],
      ['rules/r.yaml', 7, '/action/parameters', "action 'demo.act' needs parameter 'message'"],
      [
        'rules/r.yaml',
        8,
        '/action/parameters/mesage',
        "action 'demo.act' has no parameter 'mesage' (did you mean 'message'?)",
      ],
      ['rules/r.yaml', 10, '/action/parameters/m', "action 'demo.act' has no parameter 'm'"],
      ['rules/typed.yaml', 2, '/action/parameters/n', "parameter 'n' must be integer"],
    ]);
  });

  it('warns about an entry point a runner does not use, and needs a command for local-shell-cmd', () => {
    const dir = packDir({
      'pack.yaml': PACK_YAML,
      'actions/e.yaml': 'runner: echo\nentry_point: x.sh\nparameters: {message: {type: string}}\n',
      'actions/c.yaml': 'runner: local-shell-cmd\n',
      'actions/fixed.yaml': 'runner: local-shell-cmd\nentry_point: uptime\n',
    });
    const r = loadPack(dir);
    expect(r.warnings.map((p) => [p.file, p.line, p.message])).toEqual([
      ['actions/e.yaml', 2, "runner 'echo' does not use an entry_point; it is ignored"],
    ]);
    expect(r.problems.map((p) => [p.file, p.message])).toEqual([
      ['actions/c.yaml', expect.stringMatching(/entry_point, or the 'cmd' parameter/)],
    ]);
  });

  it('checks the parameters an action exports to the environment', () => {
    const dir = packDir({
      'pack.yaml': PACK_YAML,
      'actions/a.sh': 'cat\n',
      'actions/a.yaml': [
        'runner: local-shell-script',
        'entry_point: a.sh',
        'parameters:',
        '  user: {type: string}',
        '  password: {type: string, secret: true}',
        'meta:',
        '  env_parameters: [user, password, nope]',
      ].join('\n'),
      'actions/b.yaml':
        'runner: local-shell-script\nentry_point: a.sh\nmeta: {env_parameters: all-non-secret}\n',
      'actions/c.yaml': 'runner: local-shell-script\nentry_point: a.sh\nmeta: {env_parameters: everything}\n',
    });
    expect(loadPack(dir).problems.map((p) => [p.file, p.line, p.path, p.message])).toEqual([
      [
        'actions/a.yaml',
        7,
        '/meta/env_parameters/1',
        "'password' is secret: secrets never go into the environment",
      ],
      ['actions/a.yaml', 7, '/meta/env_parameters/2', "'nope' is not a parameter of this action"],
      [
        'actions/c.yaml',
        3,
        '/meta/env_parameters',
        "env_parameters must be a list of parameter names, or 'all-non-secret'",
      ],
    ]);
  });

  it('refuses runner and runner_type together, and an unknown field with a hint', () => {
    const dir = packDir({
      'pack.yaml': PACK_YAML,
      'actions/a.yaml': 'runner: noop\nrunner_type: noop\ndescripton: typo\n',
    });
    expect(loadPack(dir).problems.map((p) => [p.line, p.message])).toEqual([
      [2, "give either 'runner' or 'runner_type', not both"],
      [3, "unknown field 'descripton' (did you mean 'description'?)"],
    ]);
  });

  it('ignores files outside the definition folders and YAML files below them', () => {
    const dir = packDir({
      'pack.yaml': PACK_YAML,
      'README.md': '# demo',
      'actions/lib/data.yaml': 'not: [a definition',
      'tests/x.yaml': 'nonsense: [',
    });
    expect(loadPack(dir).problems).toEqual([]);
  });
});
