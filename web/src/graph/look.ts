/** How a task or execution status looks: a theme colour, a label, and whether it shows activity. */

export interface NodeLook {
  /** CSS custom property names of the theme (so both themes work). */
  color: string;
  label: string;
  /** Whether the node shows activity (pulsing outline). */
  active: boolean;
}

const LOOKS: Record<string, NodeLook> = {
  not_run: { color: 'var(--st-idle)', label: 'not run', active: false },
  waiting_join: { color: 'var(--st-wait)', label: 'waiting for branches', active: false },
  waiting: { color: 'var(--st-wait)', label: 'waiting', active: false },
  queued: { color: 'var(--st-wait)', label: 'queued', active: false },
  delayed: { color: 'var(--st-wait)', label: 'delayed', active: false },
  requested: { color: 'var(--st-wait)', label: 'requested', active: true },
  scheduled: { color: 'var(--st-wait)', label: 'scheduled', active: true },
  running: { color: 'var(--st-run)', label: 'running', active: true },
  asking: { color: 'var(--st-ask)', label: 'waiting for an answer', active: true },
  pending: { color: 'var(--st-ask)', label: 'pending', active: true },
  pausing: { color: 'var(--st-pause)', label: 'pausing', active: true },
  paused: { color: 'var(--st-pause)', label: 'paused', active: false },
  canceling: { color: 'var(--st-cancel)', label: 'canceling', active: true },
  succeeded: { color: 'var(--st-ok)', label: 'succeeded', active: false },
  failed: { color: 'var(--st-fail)', label: 'failed', active: false },
  timeout: { color: 'var(--st-fail)', label: 'timed out', active: false },
  abandoned: { color: 'var(--st-fail)', label: 'abandoned', active: false },
  canceled: { color: 'var(--st-cancel)', label: 'canceled', active: false },
};

/** How a node looks for a task status (unknown statuses look neutral, labelled as they are). */
export function nodeLook(status: string | undefined): NodeLook {
  return LOOKS[status ?? 'not_run'] ?? { color: 'var(--st-idle)', label: status ?? 'not run', active: false };
}
