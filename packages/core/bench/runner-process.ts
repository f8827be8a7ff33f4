/**
 * Section 3 of the bench in a process of its own (started by `index.ts` with the V8 flags under
 * test): progress on stderr, the figures as one line of JSON on stdout.
 */
import { runRunnerBench } from "./runner.ts"

const figures = await runRunnerBench((line) => console.error(line))
console.log(JSON.stringify(figures))
