import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "langchain-tools",
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000
  }
})
