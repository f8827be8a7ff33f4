/**
 * The entry point GitHub Actions runs (bundled into `dist/index.js`).
 */
import { run } from "./main.ts"

await run()
