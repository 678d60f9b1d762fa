/**
 * What the definition commands (actions, workflows, rules, triggers, sensors) share: the common list
 * filters and columns.
 */
import type { Command } from 'commander';
import type { Definition } from '../../services/api/resource-types.ts';
import { withLimit } from '../command.ts';
import type { Ctx } from '../context.ts';
import { UsageError } from '../errors.ts';
import type { Column } from '../output.ts';

export interface DefinitionFilters {
  pack?: string;
  tags?: string;
  search?: string;
  enabled?: boolean;
  disabled?: boolean;
  limit?: string;
}

/** Adds `--pack`, `--tags`, `--search`, `--enabled`, `--disabled` and `--limit` to a list command. */
export function withDefinitionFilters(cmd: Command, what: string): Command {
  return withLimit(
    cmd
      .option('-p, --pack <ref>', `only the ${what} of this pack`)
      .option('--tags <tags>', 'comma-separated; any of them')
      .option('--search <text>', 'in ref, label and description')
      .option('--enabled', `only enabled ${what}`)
      .option('--disabled', `only disabled ${what}`),
    what,
  );
}

export function definitionQuery(o: DefinitionFilters) {
  if (o.enabled && o.disabled) throw new UsageError('--enabled and --disabled cannot be used together');
  return {
    pack: o.pack,
    tags: o.tags,
    search: o.search,
    enabled: o.enabled ? true : o.disabled ? false : undefined,
  };
}

/** `ref` as it goes into a path. */
export const refPath = (base: string, ref: string) => `${base}/${encodeURIComponent(ref)}`;

export const enabledColumn = <T extends Definition>(ctx: Ctx): Column<T> => ({
  header: 'ENABLED',
  value: (d) => (d.enabled ? 'yes' : 'no'),
  color: (t) => (t === 'no' ? ctx.out.c.magenta(t) : t),
});
