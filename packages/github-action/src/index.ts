/**
 * The entry point GitHub Actions runs (bundled into `dist/index.js`).
 */
import { run } from "./main.ts"

await run()
// Done: a call given up on (no answer) must not keep the process, and the step, alive.
process.exit()
