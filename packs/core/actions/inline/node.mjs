// core.node: runs the JavaScript module of the `script` parameter (see run.mjs).
import { runInline } from './run.mjs';

await runInline('node');
