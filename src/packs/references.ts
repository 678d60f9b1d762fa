/**
 * The checks of a loaded pack that need the store: its dependencies must be installed (in a version
 * that satisfies the range), and what it uses from other packs — trigger types and actions named by
 * rules, sensors and workflow tasks — must exist, with parameters that fit them.
 */
import { and, inArray, ne } from 'drizzle-orm';
import semver from 'semver';
import type { Problem } from '../domain/errors.ts';
import type { Db } from '../store/database.ts';
import { actions, packs, triggers } from '../store/schema.ts';
import { suggest } from '../workflow/file-format.ts';
import { type LoadResult, paramProblems, sortProblems } from './loader.ts';

/** Packs every pack may use without listing them in `dependencies`. */
const IMPLICIT = new Set(['core']);

export async function checkAgainstStore(
  db: Db,
  loaded: LoadResult,
): Promise<{ problems: Problem[]; warnings: Problem[] }> {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const packRef = loaded.ref;
  if (!packRef) return { problems, warnings };

  const packRefs = new Set<string>([...loaded.dependencies.keys()]);
  const usedPacks = new Set<string>();
  for (const e of loaded.external) usedPacks.add(e.ref.slice(0, e.ref.indexOf('.')));
  for (const p of usedPacks) packRefs.add(p);
  const wantActions = loaded.external.some((e) => e.kind === 'action');
  const wantTriggers = loaded.external.some((e) => e.kind === 'trigger');
  const used = [...usedPacks].filter((p) => p !== packRef);

  const [packRows, actionRows, triggerRows] = await Promise.all([
    packRefs.size
      ? db
          .select({ ref: packs.ref, version: packs.version })
          .from(packs)
          .where(inArray(packs.ref, [...packRefs]))
      : [],
    wantActions && used.length
      ? db
          .select({ ref: actions.ref, schema: actions.paramSchema })
          .from(actions)
          .where(and(inArray(actions.packRef, used), ne(actions.packRef, packRef)))
      : [],
    wantTriggers && used.length
      ? db
          .select({ ref: triggers.ref, schema: triggers.paramSchema })
          .from(triggers)
          .where(and(inArray(triggers.packRef, used), ne(triggers.packRef, packRef)))
      : [],
  ]);
  const installed = new Map(packRows.map((p) => [p.ref, p.version]));
  const actionSchemas = new Map(actionRows.map((a) => [a.ref, a.schema]));
  const triggerSchemas = new Map(triggerRows.map((t) => [t.ref, t.schema]));

  for (const [dep, { range, source, path }] of loaded.dependencies) {
    const version = installed.get(dep);
    if (version === undefined)
      problems.push(
        source.problem(path, `depends on pack '${dep}', which is not installed; install it first`),
      );
    else if (!semver.satisfies(version, range, { includePrerelease: true }))
      problems.push(
        source.problem(path, `depends on '${dep}@${range}', but version ${version} of '${dep}' is installed`),
      );
  }

  const warnedUndeclared = new Set<string>();
  for (const e of loaded.external) {
    const otherPack = e.ref.slice(0, e.ref.indexOf('.'));
    const schemas = e.kind === 'action' ? actionSchemas : triggerSchemas;
    const what = e.kind === 'action' ? 'action' : 'trigger type';
    if (!schemas.has(e.ref)) {
      if (!installed.has(otherPack)) {
        const msg = `${what} '${e.ref}' is not available: pack '${otherPack}' is not installed`;
        // a workflow may name actions of a pack installed later; it fails at run time until then
        if (e.from === 'task') warnings.push(e.source.problem(e.path, msg, 'warning'));
        else problems.push(e.source.problem(e.path, msg));
      } else {
        const hint = suggest(
          e.ref,
          [...schemas.keys()].filter((r) => r.startsWith(`${otherPack}.`)),
        );
        problems.push(
          e.source.problem(
            e.path,
            `${what} '${e.ref}' does not exist in pack '${otherPack}'${hint ? ` (did you mean '${hint}'?)` : ''}`,
          ),
        );
      }
      continue;
    }
    if (!IMPLICIT.has(otherPack) && !loaded.dependencies.has(otherPack) && !warnedUndeclared.has(otherPack)) {
      warnedUndeclared.add(otherPack);
      warnings.push(
        e.source.problem(
          e.path,
          `uses pack '${otherPack}' without listing it in pack.yaml dependencies`,
          'warning',
        ),
      );
    }
    const schema = schemas.get(e.ref);
    if (e.params && schema)
      for (const p of paramProblems(e.kind, e.ref, schema, e.params.value, e.kind === 'action'))
        problems.push(e.source.problem([...e.params.path, ...p.path], p.message));
  }
  return { problems: sortProblems(problems), warnings: sortProblems(warnings) };
}
