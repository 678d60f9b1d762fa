/** Small SQL fragments of the runtime. */
import { type SQL, sql } from 'drizzle-orm';

/** `now() + <seconds>`: deadlines are always computed and compared with the database clock. */
export const secondsFromNow = (seconds: number): SQL => sql`now() + make_interval(secs => ${seconds})`;

/** `now() - <seconds>`. */
export const secondsAgo = (seconds: number): SQL => sql`now() - make_interval(secs => ${seconds})`;
