import { defineConfig } from "vitest/config"

/**
 * The replica tests (issue 8): several real server processes on the local PostgreSQL, with
 * lateness bounds. They run after the rest (`pnpm test`), one file at a time, so that the other
 * suites' processes do not share the machine with them.
 */
export default defineConfig({
  test: {
    name: "replicas",
    include: ["packages/rpc-server/test/replicas.test.ts"],
    fileParallelism: false,
    testTimeout: 300_000
  }
})
