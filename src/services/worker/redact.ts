/**
 * Secrets stay secret (DESIGN §4.7): the values of an execution's secret parameters are replaced by
 * `********` in everything the worker stores or broadcasts — live output, the result and the error
 * message — whatever the action does with them (`echo $TOKEN`, a script printing its input).
 *
 * Output arrives in chunks, so a secret may be split across two of them: each stream holds back
 * the last few characters (one less than the longest secret) until more output or the end shows
 * whether they begin a secret.
 */
export const REDACTED = '********';

/** Values shorter than this are not redacted: they would blank out ordinary text. */
const MIN_SECRET_LENGTH = 3;

export class SecretRedactor {
  readonly #secrets: string[];
  readonly #holdBack: number;

  constructor(values: unknown[]) {
    const strings = new Set<string>();
    for (const v of values) {
      if (typeof v === 'string') strings.add(v);
      else if (typeof v === 'number' || typeof v === 'boolean') strings.add(String(v));
      else if (v !== null && v !== undefined) strings.add(JSON.stringify(v));
    }
    // Longest first, so a secret that contains another is replaced whole.
    this.#secrets = [...strings]
      .filter((s) => s.length >= MIN_SECRET_LENGTH)
      .sort((a, b) => b.length - a.length);
    this.#holdBack = Math.max(0, ...this.#secrets.map((s) => s.length - 1));
  }

  get active(): boolean {
    return this.#secrets.length > 0;
  }

  text(s: string): string {
    let out = s;
    for (const secret of this.#secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }

  /** A copy of `v` with every string redacted (keys included). */
  value(v: unknown): unknown {
    if (!this.active) return v;
    if (typeof v === 'string') return this.text(v);
    if (Array.isArray(v)) return v.map((x) => this.value(x));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[this.text(k)] = this.value(x);
      return out;
    }
    return v;
  }

  /** A redacting filter for one output stream. */
  stream(emit: (s: string) => void): { write(chunk: string): void; end(): void } {
    if (!this.active) return { write: emit, end() {} };
    let held = '';
    return {
      write: (chunk) => {
        const all = held + chunk;
        // Text before `cut` is released. A secret that has not fully arrived starts after `cut`
        // (it is shorter than the hold-back); one that has arrived but crosses `cut` moves it.
        let cut = Math.max(0, all.length - this.#holdBack);
        for (let moved = true; moved; ) {
          moved = false;
          for (const secret of this.#secrets) {
            for (let i = all.indexOf(secret); i !== -1 && i < cut; i = all.indexOf(secret, i + 1)) {
              if (i + secret.length > cut) {
                cut = i + secret.length;
                moved = true;
              }
            }
          }
        }
        held = all.slice(cut);
        if (cut > 0) emit(this.text(all.slice(0, cut)));
      },
      end: () => {
        if (held) emit(this.text(held));
        held = '';
      },
    };
  }
}
