/**
 * Events this process has just stored, handed to the rules engine of the same process so that it
 * need not read them back: the `event.created` message carries only the event's id, and reading the
 * event was one statement of each rules-engine pass.
 *
 * A row is taken once (`take` removes it): a redelivered message, or a pass tried again after a
 * failure, finds nothing here and reads the event — and the enforcements already made for it — from
 * the database, as a rules engine in another process always does. Bounded: the oldest rows go first
 * (a process that stores events but runs no rules engine gives none of them away).
 */
import type { EventRow } from './create-event.ts';

export class RecentEvents {
  readonly #rows = new Map<number, EventRow>();
  readonly #max: number;

  constructor(max = 10_000) {
    this.#max = max;
  }

  /** Remembers rows that have just committed. */
  remember(rows: readonly EventRow[]): void {
    for (const r of rows) this.#rows.set(r.id, r);
    if (this.#rows.size <= this.#max) return;
    for (const id of this.#rows.keys()) {
      this.#rows.delete(id);
      if (this.#rows.size <= this.#max) break;
    }
  }

  /** The row of event `id` if this process stored it and nobody took it yet; forgets it. */
  take(id: number): EventRow | undefined {
    const r = this.#rows.get(id);
    if (r) this.#rows.delete(id);
    return r;
  }

  get size(): number {
    return this.#rows.size;
  }
}
