import { describe, expect, it } from 'vitest';
import type { EventRow } from '../../src/services/events/create-event.ts';
import { RecentEvents } from '../../src/services/events/recent-events.ts';

const row = (id: number) => ({ id, triggerRef: 't.x', payload: { id } }) as unknown as EventRow;

describe('RecentEvents', () => {
  it('gives a row once', () => {
    const r = new RecentEvents();
    r.remember([row(1), row(2)]);
    expect(r.take(1)?.id).toBe(1);
    expect(r.take(1)).toBeUndefined();
    expect(r.take(3)).toBeUndefined();
    expect(r.size).toBe(1);
  });

  it('keeps at most its bound, dropping the oldest rows first', () => {
    const r = new RecentEvents(3);
    r.remember([row(1), row(2)]);
    r.remember([row(3), row(4), row(5)]);
    expect(r.size).toBe(3);
    expect(r.take(1)).toBeUndefined();
    expect(r.take(2)).toBeUndefined();
    expect([r.take(3)?.id, r.take(4)?.id, r.take(5)?.id]).toEqual([3, 4, 5]);
  });
});
