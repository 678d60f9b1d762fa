/**
 * Questions asked on the terminal (prompts go to stderr, answers come from stdin): a line of text,
 * or a secret typed without echo. Only used when both stdin and stderr are terminals.
 */
import readline from 'node:readline';
import { CliError, EXIT_INTERRUPTED } from './errors.ts';

export const interactive = (): boolean => !!process.stdin.isTTY && !!process.stderr.isTTY;

/** Asks for one line of text. */
export async function askLine(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      rl.on('SIGINT', () => reject(new CliError('interrupted', EXIT_INTERRUPTED)));
      rl.on('close', () => reject(new CliError('no answer (end of input)', EXIT_INTERRUPTED)));
      rl.question(question, resolve);
    });
  } finally {
    rl.removeAllListeners('close');
    rl.close();
  }
}

/** Asks for a secret; nothing typed is echoed. */
export function askSecret(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise<string>((resolve, reject) => {
    let value = '';
    const wasRaw = stdin.isRaw;
    // Echo goes off before the prompt shows, so a secret typed ahead of it is never echoed either.
    stdin.setRawMode(true);
    process.stderr.write(question);
    stdin.resume();
    stdin.setEncoding('utf8');
    const finish = (err?: CliError) => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new CliError('interrupted', EXIT_INTERRUPTED));
        if (ch === '\u0004') {
          if (!value) return finish(new CliError('no answer (end of input)', EXIT_INTERRUPTED));
          return finish();
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch === '\u0015') value = '';
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Asks a yes/no question; `def` is the answer to a bare Enter. */
export async function confirm(question: string, def = false): Promise<boolean> {
  for (;;) {
    const a = (await askLine(`${question} ${def ? '[Y/n]' : '[y/N]'} `)).trim().toLowerCase();
    if (!a) return def;
    if (['y', 'yes'].includes(a)) return true;
    if (['n', 'no'].includes(a)) return false;
  }
}
