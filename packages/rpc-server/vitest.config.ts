import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "rpc-server",
    include: ["test/**/*.test.ts"],
    // Run on their own after the rest: vitest.replicas.config.ts (`pnpm test:replicas`).
    exclude: ["test/replicas.test.ts"],
    testTimeout: 60_000
  }
})
