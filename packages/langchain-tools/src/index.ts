/**
 * t-minus as tools for AI agents: LangChain tools (`createTMinusTools`), the framework-neutral
 * tool set they are made of (`Tools`), and its strict JSON Schemas (`StrictJsonSchema`). The MCP
 * server is `@t-minus/langchain-tools/mcp`.
 *
 * @since 0.1.0
 */
export { createTMinusTools, type TMinusToolsOptions } from "./LangChain.ts"
export * as StrictJsonSchema from "./StrictJsonSchema.ts"
export * as Tools from "./Tools.ts"
