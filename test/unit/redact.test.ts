import { describe, expect, it } from 'vitest';
import { REDACTED, SecretRedactor } from '../../src/services/worker/redact.ts';

describe('secret redaction of worker output and results', () => {
  const r = new SecretRedactor(['hunter2-token', 'pw', 12345678, null]);

  it('replaces secret values in text and in nested results', () => {
    expect(r.text('token=hunter2-token; again hunter2-token')).toBe(`token=${REDACTED}; again ${REDACTED}`);
    expect(r.value({ out: ['x hunter2-token', 12345678], n: '12345678', ok: true })).toEqual({
      out: [`x ${REDACTED}`, 12345678],
      n: REDACTED,
      ok: true,
    });
  });

  it('leaves values too short to be meaningful alone', () => {
    expect(r.text('pw is not redacted')).toBe('pw is not redacted');
  });

  it('catches a secret split across output chunks, whatever the split', () => {
    const text = 'start hunter2-token middle hunter2-token end';
    for (let a = 1; a < text.length - 1; a++) {
      for (const b of [a + 1, a + 3, a + 7]) {
        if (b >= text.length) continue;
        let out = '';
        const s = r.stream((x) => {
          out += x;
        });
        s.write(text.slice(0, a));
        s.write(text.slice(a, b));
        s.write(text.slice(b));
        s.end();
        expect(out, `split at ${a}/${b}`).toBe(`start ${REDACTED} middle ${REDACTED} end`);
      }
    }
  });

  it('passes output straight through when there is no secret', () => {
    const none = new SecretRedactor([]);
    const got: string[] = [];
    const s = none.stream((x) => got.push(x));
    s.write('a');
    s.write('b');
    s.end();
    expect(got).toEqual(['a', 'b']);
  });
});
