/**
 * `GET /ws`: the `@effect/rpc` socket protocol (one JSON message per frame, acks for streams)
 * served on the `ws` package directly, as an `RpcServer.Protocol`. The RPC server behind it is
 * the same one the HTTP route has; only the socket layer is ours, at a fraction of the cost per
 * frame of `@effect/platform`'s `Socket` and `RpcServer.makeProtocolWithHttpAppWebsocket` (an
 * Effect socket, a fiber set and a write effect per message; docs/benchmarks.md).
 *
 * What it does, as that pair did: each socket is a client of the RPC server; requests carry the
 * upgrade request's headers ahead of their own; a socket that closes has its calls interrupted.
 * And what the server's guards did: a frame over the limit closes the socket (1009), a socket
 * silent for `idleMs` is closed (1001; clients ping every 10 s), a frame the RPC layer cannot take
 * is answered with a `Defect` naming the problem and dropped (the socket goes on), an upgrade while
 * draining gets a 503, and answers to a socket that has gone are dropped. New: a socket that does
 * not take its answers (more than 16 times the frame limit unsent, not shrinking for `stallMs`) is
 * cut off, and shutdown sends every socket a close frame (1001) before it drops them.
 *
 * @since 0.1.0
 */
import type * as Http from "node:http"
import type { Duplex } from "node:stream"
import { type FromClientEncoded, type FromServerEncoded, ResponseDefectEncoded } from "@effect/rpc/RpcMessage"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Effect from "effect/Effect"
import * as Mailbox from "effect/Mailbox"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { type RawData, type WebSocket, WebSocketServer } from "ws"

/** What the route needs from the server around it. */
export interface RouteOptions {
  /** Largest frame, in bytes. */
  readonly limit: number
  /** A socket that sends nothing this long is closed. */
  readonly idleMs: number
  /**
   * A socket holding more than 16 frames' worth of unsent answers, not shrinking for this long,
   * is cut off (its client does not read).
   */
  readonly stallMs: number
  /** Whether the server refuses new sockets (503). */
  readonly draining: () => boolean
  /** The first problem of a decoded message, or `null` (`Server.ts`'s check of the wire shapes). */
  readonly messageProblem: (message: unknown) => string | null
}

/** The route and the protocol it feeds. */
export interface Route {
  readonly protocol: RpcServer.Protocol["Type"]
  /** Takes one upgrade request for `/ws`. */
  readonly upgrade: (request: Http.IncomingMessage, socket: Duplex, head: Buffer) => void
}

/** Whether an upgrade request is for this route. */
export const matches = (request: Http.IncomingMessage): boolean => {
  if (request.method !== "GET") return false
  const url = request.url ?? ""
  return url === "/ws" || url.startsWith("/ws?")
}

/**
 * Frames up to this many times the limit are read and refused with the limit in the close reason;
 * larger ones are cut off by `ws` while they arrive (1009 without a reason).
 */
const READ_BEYOND_LIMIT = 4

/**
 * A socket holding more than this many frames' worth (times the limit) of answers it has not
 * taken, without taking any of it for `stallMs`, is cut off: a `watch` is held back by acks long
 * before, so only a client that sends calls and does not read gets there. (One large answer to a
 * client that reads passes: what counts is that the backlog does not shrink.)
 */
const UNSENT_FRAMES = 16

/** How long shutdown waits for clients to answer the close frame before it drops their sockets. */
const CLOSE_GRACE_MS = 500

/** One open socket. */
interface Client {
  readonly ws: WebSocket
  readonly headers: ReadonlyArray<[string, string]>
  /** When it last sent a frame (`Date.now()`). */
  last: number
  /** Since when its unsent backlog has been over the limit without shrinking, and how big it was. */
  stuck: { readonly since: number; readonly amount: number } | undefined
}

const byteLength = (data: RawData): number =>
  Array.isArray(data)
    ? data.reduce((sum, part) => sum + part.byteLength, 0)
    : (data as Buffer | ArrayBuffer).byteLength

const text = (data: RawData): string =>
  Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data as Buffer).toString("utf8")

/**
 * The route and its protocol; the protocol, its idle watch and its sockets live as long as the
 * current scope (closing it closes every socket with 1001).
 *
 * @since 0.1.0
 */
export const make = (options: RouteOptions): Effect.Effect<Route, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const disconnects = yield* Mailbox.make<number>()
    const clients = new Map<number, Client>()
    const clientIds = new Set<number>()
    let nextClientId = 0
    let writeRequest!: (clientId: number, message: FromClientEncoded) => Effect.Effect<void>
    const maxUnsent = options.limit * UNSENT_FRAMES
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.limit * READ_BEYOND_LIMIT,
      perMessageDeflate: false
    })

    const send = (id: number, message: FromServerEncoded) => {
      const client = clients.get(id)
      if (client === undefined || client.ws.readyState !== client.ws.OPEN) return
      let encoded: string
      try {
        encoded = JSON.stringify(message)
      } catch (cause) {
        encoded = JSON.stringify(ResponseDefectEncoded(cause))
      }
      client.ws.send(encoded)
    }

    const onFrame = (id: number, client: Client, data: RawData) => {
      if (client.ws.readyState !== client.ws.OPEN) return
      client.last = Date.now()
      if (byteLength(data) > options.limit) {
        client.ws.close(1009, `frames are limited to ${options.limit} bytes`)
        return
      }
      let message: unknown
      try {
        message = JSON.parse(text(data))
      } catch (cause) {
        return send(id, ResponseDefectEncoded(cause))
      }
      const problem = options.messageProblem(message)
      if (problem !== null) return send(id, ResponseDefectEncoded(problem))
      const decoded = message as FromClientEncoded
      if (decoded._tag === "Request") {
        ;(decoded as { headers: ReadonlyArray<[string, string]> }).headers = client.headers.concat(
          decoded.headers
        )
      }
      runFork(writeRequest(id, decoded))
    }

    const onSocket = (ws: WebSocket, request: Http.IncomingMessage) => {
      const id = nextClientId++
      const client: Client = {
        ws,
        headers: Object.entries(request.headers) as Array<[string, string]>,
        last: Date.now(),
        stuck: undefined
      }
      clients.set(id, client)
      clientIds.add(id)
      ws.on("message", (data) => onFrame(id, client, data))
      ws.on("error", () => undefined)
      ws.on("close", () => {
        clients.delete(id)
        clientIds.delete(id)
        disconnects.unsafeOffer(id)
      })
    }

    const upgrade = (request: Http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (options.draining()) {
        const body = JSON.stringify({ error: "ServerUnavailable", message: "the server is shutting down" })
        // After an upgrade request Node has taken its own error listener off the socket: a client
        // that resets it now must not become an uncaught exception.
        socket.on("error", () => socket.destroy())
        socket.end(
          `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
        )
        return
      }
      wss.handleUpgrade(request, socket, head, (ws) => onSocket(ws, request))
    }

    // One timer for every socket's silence and backlog, not one per socket.
    const watch = setInterval(
      () => {
        const now = Date.now()
        for (const client of clients.values()) {
          if (now - client.last > options.idleMs) {
            client.ws.close(1001, `idle: nothing received for ${options.idleMs} ms`)
          }
          const unsent = client.ws.bufferedAmount
          if (unsent <= maxUnsent) client.stuck = undefined
          else if (client.stuck === undefined || unsent < client.stuck.amount) {
            client.stuck = { since: now, amount: unsent }
          } else if (now - client.stuck.since > options.stallMs) {
            // It does not read: its answers would pile up here.
            client.ws.terminate()
          }
        }
      },
      Math.max(10, Math.min(1_000, Math.min(options.idleMs, options.stallMs) / 4))
    )
    watch.unref()
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        clearInterval(watch)
        // A close frame first (1001, "going away"), as a server that shuts down should; then the
        // sockets whose clients do not answer it in time are dropped.
        const open = [...clients.values()].map((client) => client.ws)
        const closed = Promise.all(
          open.map(
            (ws) =>
              new Promise<void>((done) =>
                ws.readyState === ws.CLOSED ? done() : ws.once("close", () => done())
              )
          )
        )
        for (const ws of open) ws.close(1001, "the server is shutting down")
        let timer: ReturnType<typeof setTimeout> | undefined
        await Promise.race([closed, new Promise<void>((done) => (timer = setTimeout(done, CLOSE_GRACE_MS)))])
        clearTimeout(timer)
        for (const ws of open) ws.terminate()
        wss.close()
      })
    )

    const protocol = yield* RpcServer.Protocol.make((write) => {
      writeRequest = write
      return Effect.succeed({
        disconnects,
        send: (id, message) => Effect.sync(() => send(id, message)),
        end: () => Effect.void,
        clientIds: Effect.sync(() => clientIds),
        initialMessage: Effect.succeedNone,
        supportsAck: true,
        supportsTransferables: false,
        supportsSpanPropagation: true
      })
    })
    return { protocol, upgrade }
  })
