/**
 * Group commit for events that arrive one at a time (`POST /api/v1/events` with a single event):
 * requests that arrive together are stored by one transaction — one trigger read, one insert of the
 * events and their `event.created` messages, one commit — instead of one transaction each. Under a
 * steady stream of single events this is most of what each request costs the platform.
 *
 * Each caller still gets its own outcome: its stored row, or its own error. Every event is checked
 * on its own (`eventProblems`) and only the good ones are stored, so a bad event never takes its
 * neighbours down; should the transaction itself fail, the batch is tried again event by event. A
 * caller's promise resolves only once its event has committed: the `201` still means "stored".
 */

import { AppError } from '../../domain/errors.ts';
import type { Store } from '../../store/database.ts';
import { Batcher } from '../runtime/batcher.ts';
import { type EventRow, eventProblems, insertEvents, type NewEvent } from './create-event.ts';

export interface EventIntakeOptions {
  /** Called after each commit that stored events, with their rows (the caller kicks its outbox relay). */
  committed?: (rows: EventRow[]) => void;
  /** Most events per transaction. Default 500. */
  maxBatchSize?: number;
}

export class EventIntake {
  readonly #batcher: Batcher<NewEvent, EventRow | AppError>;

  constructor(store: Store, opts: EventIntakeOptions = {}) {
    this.#batcher = new Batcher(
      async (items) => {
        const out = await store.transaction(async (tx) => {
          const problems = await eventProblems(tx, items);
          const rows = await insertEvents(
            tx,
            items.filter((_, i) => problems[i] === null),
          );
          let next = 0;
          return problems.map((p) => p ?? rows[next++]!);
        });
        const stored = out.filter((r): r is EventRow => !(r instanceof AppError));
        if (stored.length) opts.committed?.(stored);
        return out;
      },
      {
        maxBatchSize: opts.maxBatchSize ?? 500,
        // PGlite has one connection: a second transaction would only queue behind the first.
        concurrency: store.kind === 'pglite' ? 1 : 4,
      },
    );
  }

  /** Stores one event (with the events that arrive with it); resolves with its row once committed. */
  async add(event: NewEvent): Promise<EventRow> {
    const r = await this.#batcher.add(event);
    if (r instanceof AppError) throw r;
    return r;
  }

  /** Stores what is waiting, then refuses new events. */
  close(): Promise<void> {
    return this.#batcher.close();
  }
}
