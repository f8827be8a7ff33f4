/**
 * `POST /rpc`: the `@effect/rpc` ndjson protocol served on `node:http` directly, as an
 * `RpcServer.Protocol`. The RPC server behind it (middleware, handlers, schemas) is the same one
 * the WebSocket route has; only the HTTP layer around it is ours: one call costs about a third of
 * what it does through `@effect/platform`'s server and `RpcServer.makeProtocolWithHttpApp`
 * (a fiber, scope, request object, mailbox and response stream per request; docs/benchmarks.md).
 *
 * What it does, as that pair did: each request is a client of the RPC server; its messages are
 * written with the request's headers ahead of each message's own; the answers are the body
 * (ndjson); a client that goes away has its calls interrupted. And what the server's guards did:
 * 415 for a body that is not ndjson/JSON, 413 past the limit (with or without `Content-Length`;
 * nothing runs), 400 for a message the RPC layer cannot take, 503 while draining.
 *
 * Answers are written once: a unary call's response is one write with its length. A streaming
 * call (`watch`) has its chunks written as they come, within the event-loop turn.
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"
import * as Headers from "@effect/platform/Headers"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import {
  constEof,
  type FromClientEncoded,
  type FromServerEncoded,
  ResponseDefectEncoded
} from "@effect/rpc/RpcMessage"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Effect from "effect/Effect"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"

/** What the route needs from the server around it. */
export interface RouteOptions {
  /** Largest body, in bytes. */
  readonly limit: number
  /** Whether the server refuses new calls (503). */
  readonly draining: () => boolean
  /** The first problem of a decoded message, or `null` (`Server.ts`'s check of the wire shapes). */
  readonly messageProblem: (message: unknown) => string | null
  /** Hands a response to the stall watch (cut off when its client takes nothing for a while). */
  readonly watchStall: (response: Http.ServerResponse) => void
  /** Whether spans are made: RPC spans then join the trace of the request's `traceparent`. */
  readonly tracing: boolean
}

/** The route and the protocol it feeds. */
export interface Route {
  readonly protocol: RpcServer.Protocol["Type"]
  /** Answers one `POST /rpc` request. */
  readonly handle: (request: Http.IncomingMessage, response: Http.ServerResponse) => void
}

const NDJSON_TYPES = new Set(["application/ndjson", "application/x-ndjson", "application/json"])
const CONTENT_TYPE = RpcSerialization.ndjson.contentType

/** Whether a request is for this route. */
export const matches = (request: Http.IncomingMessage): boolean => {
  if (request.method !== "POST") return false
  const url = request.url ?? ""
  return url === "/rpc" || url.startsWith("/rpc?")
}

const refuse = (
  response: Http.ServerResponse,
  status: number,
  error: string,
  message: string,
  close = false
) => {
  const body = JSON.stringify({ error, message })
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...(close ? { connection: "close" } : {})
  })
  response.end(body)
}

/** One request in flight: its answer so far and what ends it. */
interface Client {
  readonly response: Http.ServerResponse
  /** Encoded answers not yet written. */
  pending: string
  flushing: boolean
  ended: boolean
}

/**
 * The route and its protocol; the protocol lives as long as the current scope.
 *
 * @since 0.1.0
 */
export const make = (options: RouteOptions): Effect.Effect<Route> =>
  Effect.gen(function* () {
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const disconnects = yield* Mailbox.make<number>()
    const encoder = RpcSerialization.ndjson.unsafeMake()
    const clients = new Map<number, Client>()
    const clientIds = new Set<number>()
    let nextClientId = 0
    let writeRequest!: (clientId: number, message: FromClientEncoded) => Effect.Effect<void>

    const flush = (client: Client) => {
      client.flushing = false
      if (client.ended || client.pending === "") return
      if (!client.response.headersSent) client.response.writeHead(200, { "content-type": CONTENT_TYPE })
      client.response.write(client.pending)
      client.pending = ""
    }

    const end = (id: number) => {
      const client = clients.get(id)
      if (client === undefined || client.ended) return
      client.ended = true
      clients.delete(id)
      clientIds.delete(id)
      const { response, pending } = client
      if (response.headersSent) response.end(pending)
      else {
        response.writeHead(200, {
          "content-type": CONTENT_TYPE,
          "content-length": Buffer.byteLength(pending)
        })
        response.end(pending)
      }
    }

    const send = (id: number, message: FromServerEncoded) => {
      const client = clients.get(id)
      if (client === undefined || client.ended) return
      client.pending += encoder.encode(message) as string
      if (!client.flushing) {
        client.flushing = true
        setImmediate(flush, client)
      }
    }

    /**
     * Runs the messages of one body through the RPC server. As `@effect/rpc`'s ndjson reader has
     * it: a line is a message once its newline came (a last line without one is left), and a line
     * that is not JSON spoils the body (one `Defect`, nothing runs). A line that is JSON but not a
     * message the RPC layer can take refuses the body first (400, naming the line).
     */
    const dispatch = (id: number, client: Client, request: Http.IncomingMessage, body: string) => {
      const lines = body.split("\n")
      const messages: Array<FromClientEncoded> = []
      let notJson: unknown
      for (let i = 0; i < lines.length; i++) {
        const complete = i < lines.length - 1
        // The usual last "line" is the empty rest after the final newline (a parse that throws
        // costs more than the whole call's own parsing).
        if (!complete && lines[i] === "") continue
        let message: unknown
        try {
          message = JSON.parse(lines[i]!)
        } catch (cause) {
          if (complete && notJson === undefined) notJson = cause
          continue
        }
        const problem = options.messageProblem(message)
        if (problem !== null) return refuseClient(id, client, `line ${i + 1}: ${problem}`)
        if (complete) messages.push(message as FromClientEncoded)
      }
      if (notJson !== undefined) {
        send(id, ResponseDefectEncoded(notJson))
        messages.length = 0
      }
      const headers = Object.entries(request.headers) as Array<[string, string]>
      for (const message of messages) {
        if (message._tag === "Request") {
          ;(message as { headers: ReadonlyArray<[string, string]> }).headers = headers.concat(message.headers)
        }
      }
      const written = Effect.zipRight(
        Effect.forEach(messages, (message) => writeRequest(id, message), { discard: true }),
        writeRequest(id, constEof)
      )
      const parent = options.tracing
        ? HttpTraceContext.fromHeaders(Headers.fromInput(request.headers))
        : Option.none()
      runFork(Option.isSome(parent) ? Effect.withParentSpan(written, parent.value) : written)
    }

    const refuseClient = (id: number, client: Client, problem: string) => {
      client.ended = true
      clients.delete(id)
      clientIds.delete(id)
      refuse(client.response, 400, "BadRequest", problem)
    }

    const handle = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      if (options.draining()) {
        return refuse(response, 503, "ServerUnavailable", "the server is shutting down", true)
      }
      const given = request.headers["content-type"]
      const type = (given ?? "").split(";")[0]!.trim().toLowerCase()
      if (!NDJSON_TYPES.has(type)) {
        // The body is not read: the connection closes rather than take it.
        return refuse(
          response,
          415,
          "UnsupportedMediaType",
          `POST /rpc takes application/ndjson, got ${JSON.stringify(given ?? "nothing")}`,
          true
        )
      }
      const tooLarge = `bodies are limited to ${options.limit} bytes`
      const length = Number(request.headers["content-length"])
      // Refused before it is read: the connection closes rather than take the rest.
      if (Number.isFinite(length) && length > options.limit) {
        return refuse(response, 413, "PayloadTooLarge", tooLarge, true)
      }
      const chunks: Array<Buffer> = []
      let size = 0
      let refused = false
      request.on("data", (chunk: Buffer) => {
        if (refused) return
        size += chunk.length
        if (size > options.limit) {
          refused = true
          chunks.length = 0
          refuse(response, 413, "PayloadTooLarge", tooLarge, true)
          return
        }
        chunks.push(chunk)
      })
      request.on("end", () => {
        if (refused || response.destroyed) return
        const id = nextClientId++
        const client: Client = { response, pending: "", flushing: false, ended: false }
        // Every answer, streamed or not: a client that does not take it is cut off.
        options.watchStall(response)
        clients.set(id, client)
        clientIds.add(id)
        response.on("close", () => {
          if (client.ended) return
          // The client went away before its answer: its calls are interrupted.
          client.ended = true
          clients.delete(id)
          clientIds.delete(id)
          disconnects.unsafeOffer(id)
        })
        dispatch(
          id,
          client,
          request,
          chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")
        )
      })
      request.on("error", () => response.destroy())
    }

    const protocol = yield* RpcServer.Protocol.make((write) => {
      writeRequest = write
      return Effect.succeed({
        disconnects,
        send: (id, message) => Effect.sync(() => send(id, message)),
        end: (id) => Effect.sync(() => end(id)),
        clientIds: Effect.sync(() => clientIds),
        initialMessage: Effect.succeedNone,
        supportsAck: false,
        supportsTransferables: false,
        supportsSpanPropagation: false
      })
    })
    return { protocol, handle }
  })
