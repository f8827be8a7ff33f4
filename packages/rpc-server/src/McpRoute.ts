/**
 * `/mcp`: the t-minus tools over the Model Context Protocol's streamable HTTP transport
 * (stateless: each POST carries its JSON-RPC messages), for MCP clients that reach a server.
 *
 * The tools act as the API key's principal (with `--no-auth`, as the agent named by the
 * `x-t-minus-agent` header or the `agent` query parameter). They call this server's own RPC
 * over loopback HTTP with the request's key, so an MCP call passes the same authentication,
 * roles, quotas, metrics and access log as any other client's call. The loopback client lives as
 * long as the request: a client that goes away ends its calls (a `wait_for_event`, say).
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"
import { TMinusClient } from "@t-minus/core/client"
import * as Mcp from "@t-minus/langchain-tools/mcp"
import * as Keys from "./Keys.ts"

/** @since 0.1.0 */
export interface Options {
  /** Who a key belongs to (its principal), or `null` for an unknown or revoked key. */
  readonly principalOf: (key: string) => Promise<string | null>
  /** `false`: trust every request (a server started with `--no-auth`). */
  readonly auth: boolean
  /** This server's own address, for the loopback client. */
  readonly url: () => string
  readonly limit: number
  readonly draining: () => boolean
}

/** @since 0.1.0 */
export interface Route {
  readonly handle: (request: Http.IncomingMessage, response: Http.ServerResponse) => void
}

/** Whether a request is for this route. @since 0.1.0 */
export const matches = (request: Http.IncomingMessage): boolean => {
  const url = request.url ?? ""
  return url === "/mcp" || url.startsWith("/mcp?")
}

const refuse = (response: Http.ServerResponse, status: number, code: number, message: string) => {
  response.writeHead(status, {
    "content-type": "application/json",
    ...(status === 401 ? { "www-authenticate": 'Bearer realm="t-minus"' } : {}),
    // A body left unread (too large): the connection closes rather than take the rest.
    ...(status === 413 ? { connection: "close" } : {})
  })
  response.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }))
}

/** The body as JSON, or why not (`null` for an empty body). */
const readJson = (request: Http.IncomingMessage, limit: number) =>
  new Promise<{ readonly value: unknown } | { readonly problem: string; readonly status: number }>(
    (resolve) => {
      const tooLarge = { problem: `bodies are limited to ${limit} bytes`, status: 413 }
      if (Number(request.headers["content-length"]) > limit) return resolve(tooLarge)
      const chunks: Array<Buffer> = []
      let size = 0
      request.on("data", (chunk: Buffer) => {
        if (size > limit) return
        size += chunk.length
        if (size > limit) resolve(tooLarge)
        else chunks.push(chunk)
      })
      request.on("error", () => resolve({ problem: "the request failed", status: 400 }))
      request.on("end", () => {
        if (size > limit) return
        const text = Buffer.concat(chunks).toString("utf8")
        if (text.trim() === "") return resolve({ value: null })
        try {
          resolve({ value: JSON.parse(text) })
        } catch (error) {
          resolve({ problem: `the body is not JSON: ${(error as Error).message}`, status: 400 })
        }
      })
    }
  )

/**
 * The `/mcp` route.
 *
 * @since 0.1.0
 */
export const make = (options: Options): Route => {
  const serve = async (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    if (options.draining()) return refuse(response, 503, -32000, "the server is shutting down")
    const url = new URL(request.url ?? "/mcp", "http://localhost")
    let agent: string
    let key: string | undefined
    if (options.auth) {
      key = Keys.keyOf(request.headers)
      if (key === undefined || key === "") {
        return refuse(response, 401, -32001, "no API key: send `authorization: Bearer <key>`")
      }
      const principal = await options.principalOf(key)
      if (principal === null) return refuse(response, 401, -32001, "unknown or revoked API key")
      agent = principal
    } else {
      const named = request.headers["x-t-minus-agent"] ?? url.searchParams.get("agent") ?? undefined
      if (typeof named !== "string" || named.trim() === "") {
        return refuse(
          response,
          400,
          -32602,
          "without API keys, name the agent the tools act as: the x-t-minus-agent header or ?agent="
        )
      }
      agent = named.trim()
    }
    const body = request.method === "POST" ? await readJson(request, options.limit) : { value: undefined }
    if ("problem" in body) return refuse(response, body.status, -32700, body.problem)
    const client = TMinusClient.make({
      url: options.url(),
      protocol: "http",
      ...(key === undefined ? {} : { apiKey: key })
    })
    response.once("close", () => void client.close())
    await Mcp.handleHttp({ agent, client }, request, response, body.value)
  }

  return {
    handle: (request, response) => {
      serve(request, response).catch((error: unknown) => {
        if (!response.headersSent) refuse(response, 500, -32603, `t-minus: ${String(error)}`)
        else response.destroy()
      })
    }
  }
}
