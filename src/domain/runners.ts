/**
 * The runners an action can name. Their runtime lives in the worker (services/worker/runners);
 * this table is what the API and the pack loader validate against.
 */
export const RUNNERS = {
  noop: 'Does nothing and succeeds',
  echo: 'Returns its `message` parameter',
  sleep: 'Waits `seconds` seconds',
  'local-shell-cmd': 'Runs a shell command (`cmd`) on the worker',
  'local-shell-script': "Runs a script from the pack's actions folder with sh/bash",
  'python-script': "Runs a Python script from the pack's actions folder",
  'node-script': "Runs a Node.js script from the pack's actions folder",
  'http-request': 'Makes an HTTP request',
  workflow: 'Runs a workflow (a graph of tasks)',
  inquiry: 'Asks a human and waits for a schema-valid answer',
} as const;

export type RunnerRef = keyof typeof RUNNERS;
export const RUNNER_REFS = Object.keys(RUNNERS) as RunnerRef[];
export const isRunner = (s: string): s is RunnerRef => Object.hasOwn(RUNNERS, s);
