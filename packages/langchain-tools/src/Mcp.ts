/**
 * The t-minus tools over the Model Context Protocol, for Claude Desktop, Cursor and every other
 * MCP client: `t-minus mcp` serves them on stdio, `t-minus-server` on `/mcp` (streamable HTTP).
 *
 * @since 0.1.0
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Readable, Writable } from "node:stream"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import * as Tools from "./Tools.ts"

/** @since 0.1.0 */
export type McpOptions = Tools.ToolsOptions

const INSTRUCTIONS =
  "t-minus coordinates countdowns between agents. An organizer schedules an event; attendees confirm " +
  "readiness (confirm_readiness), defer for more time or decline; it fires at its time only when its quorum " +
  "has confirmed. Use get_event or wait_for_event to follow one. You act as one agent only."

/**
 * The longest `wait_for_event` waits over MCP unless `maxWaitMs` says otherwise: MCP clients give
 * up on a request after 60 s by default, and an answer they no longer wait for is lost.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_WAIT_MS = 50_000

/**
 * An MCP server (not yet connected) offering the tools that act as `options.agent`. A failed call
 * answers `isError: true` with the error and a hint as JSON text; a call the client cancels ends
 * its wait.
 *
 * @since 0.1.0
 */
export const makeServer = (options: McpOptions): Server => {
  const tools = Tools.make({ ...options, maxWaitMs: options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS })
  const byName = new Map(tools.map((t) => [t.name, t]))
  const server = new Server(
    { name: "t-minus", version: "0.1.0" },
    { capabilities: { tools: {} }, instructions: `${INSTRUCTIONS} (You are ${options.agent}.)` }
  )
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: tools.map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: t.inputSchema as { type: "object"; [key: string]: unknown }
    }))
  }))
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const found = byName.get(request.params.name)
    const result =
      found === undefined
        ? Tools.unknownTool(request.params.name, tools)
        : await found.call(request.params.arguments ?? {}, { signal: extra.signal })
    return { content: [{ type: "text" as const, text: result.text }], isError: !result.ok }
  })
  return server
}

/**
 * Serves the tools over stdio (default this process's stdin and stdout) until stdin ends (the
 * calls already received are answered first), the client closes, or `until` resolves.
 *
 * @since 0.1.0
 */
export const serveStdio = async (
  options: McpOptions,
  io: {
    readonly stdin?: Readable | undefined
    readonly stdout?: Writable | undefined
    readonly until?: Promise<void> | undefined
  } = {}
): Promise<void> => {
  const stdin = io.stdin ?? process.stdin
  const server = makeServer(options)
  const transport = new StdioServerTransport(stdin, io.stdout ?? process.stdout)
  const closed = new Promise<void>((resolve) => {
    server.onclose = () => resolve()
  })
  const close = () => void server.close()
  void io.until?.then(close)
  await server.connect(transport)
  // Requests read and not yet answered: at the end of stdin (a piped script, say) they are
  // answered before the server closes.
  let unanswered = 0
  let ended = false
  const handle = transport.onmessage
  transport.onmessage = (message) => {
    if ("method" in message && "id" in message) unanswered++
    handle?.(message)
  }
  const send = transport.send.bind(transport)
  transport.send = async (message) => {
    await send(message)
    if (("result" in message || "error" in message) && "id" in message) {
      unanswered--
      if (ended && unanswered === 0) close()
    }
  }
  const drain = () => {
    ended = true
    if (unanswered === 0) close()
  }
  stdin.once("end", drain)
  await closed
  stdin.off("end", drain)
}

/**
 * Answers one streamable-HTTP MCP request, statelessly (no session: every POST carries its own
 * JSON-RPC messages). GET and DELETE, which only sessions use, answer 405.
 *
 * @since 0.1.0
 */
export const handleHttp = async (
  options: McpOptions,
  request: IncomingMessage,
  response: ServerResponse,
  body: unknown
): Promise<void> => {
  if (request.method !== "POST") {
    response.writeHead(405, { allow: "POST", "content-type": "application/json" })
    response.end(
      JSON.stringify({
        jsonrpc: "2.0",
        error: { code: -32000, message: "this MCP endpoint is stateless: POST JSON-RPC messages to it" },
        id: null
      })
    )
    return
  }
  const server = makeServer(options)
  const transport = new StreamableHTTPServerTransport({})
  response.on("close", () => {
    void transport.close()
    void server.close()
  })
  await server.connect(transport)
  await transport.handleRequest(request, response, body)
}
