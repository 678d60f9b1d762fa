/** `npm start`: the whole platform in one process (see serve.ts). */
import { runServer } from './serve.ts';

await runServer();
