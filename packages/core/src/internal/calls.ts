/**
 * The Promise client's calls, speaking `@effect/rpc`'s protocols directly: a `Request` message
 * out, its `Exit` back, both encoded and decoded with the contract's own schemas
 * (`Rpc.exitSchema`). Over a WebSocket (JSON frames, a `Ping` every 10 s like `RpcClient`) or one
 * ndjson POST per call. Only calls that answer once go this way (`watch` streams go through
 * `RpcClient`); per call it costs a fraction of `RpcClient`'s fibers, which matters to a service
 * making thousands of calls a second on the same cores as its server.
 *
 * Failures to reach the server are `RpcClientError`s, as from `RpcClient`. A lost WebSocket fails
 * the calls in flight and the next call opens a new one.
 *
 * @internal
 */
import * as Rpc from "@effect/rpc/Rpc"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import type * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import { valueOrThrow } from "./exit.ts"

/** How often an open socket pings, as `RpcClient` does (the server closes silent sockets). */
const PING_MS = 10_000

interface Codec {
  readonly encodePayload: (payload: unknown) => unknown
  readonly decodeExit: (exit: unknown) => Exit.Exit<unknown, unknown>
}

interface Pending {
  readonly codec: Codec
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
}

/** The `{ _tag, requestId, exit }` and `{ _tag, defect }` frames a server sends back. */
interface Reply {
  readonly _tag?: unknown
  readonly requestId?: unknown
  readonly exit?: unknown
  readonly defect?: unknown
}

const lost = (message: string, cause?: unknown) =>
  new RpcClientError({ reason: "Protocol", message, ...(cause === undefined ? {} : { cause }) })

/** One call's request, as `RpcClient` encodes it. */
const request = (id: string, tag: string, payload: unknown, headers: Headers) =>
  JSON.stringify({ _tag: "Request", id, tag, payload, headers })

type Headers = ReadonlyArray<readonly [string, string]>

/** How a Promise client calls: `call` resolves with the success or rejects with the error. */
export interface Calls {
  readonly call: (tag: string, payload: unknown) => Promise<any>
  readonly close: () => void
}

/** Each procedure's payload encoder and exit decoder, made at its first call. */
const codecs = <R extends Rpc.Any>(group: RpcGroup.RpcGroup<R>) => {
  const codecs = new Map<string, Codec>()
  const codecOf = (tag: string): Codec => {
    let codec = codecs.get(tag)
    if (codec === undefined) {
      const rpc = group.requests.get(tag) as Rpc.AnyWithProps | undefined
      if (rpc === undefined) throw new Error(`unknown procedure ${tag}`)
      const encode = Schema.encodeUnknownSync(rpc.payloadSchema as Schema.Schema<unknown, unknown>)
      const decode = Schema.decodeUnknownSync(
        Rpc.exitSchema(rpc as unknown as Rpc.Any) as unknown as Schema.Schema<
          Exit.Exit<unknown, unknown>,
          unknown
        >
      )
      codec = { encodePayload: encode, decodeExit: decode }
      codecs.set(tag, codec)
    }
    return codec
  }
  /** The codec and the encoded payload; throws what encoding finds wrong. */
  return (tag: string, payload: unknown) => {
    const codec = codecOf(tag)
    return [codec, codec.encodePayload(payload)] as const
  }
}

/**
 * Calls of `group` over one ndjson POST each to `url` (the server's `/rpc`).
 *
 * @internal
 */
export const http = <R extends Rpc.Any>(
  group: RpcGroup.RpcGroup<R>,
  url: string,
  headers: Headers
): Calls => {
  const encode = codecs(group)
  const inFlight = new Set<AbortController>()
  let closed = false
  let nextId = 0
  return {
    call: async (tag, payload) => {
      if (closed) throw lost("the client is closed")
      const [codec, encoded] = encode(tag, payload)
      const id = String(++nextId)
      const abort = new AbortController()
      inFlight.add(abort)
      let text: string
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/ndjson" },
          body: `${request(id, tag, encoded, headers)}\n`,
          signal: abort.signal
        })
        text = await response.text()
        if (!response.ok) throw lost(`${url} answered ${response.status}: ${text.slice(0, 200)}`)
      } catch (cause) {
        if (cause instanceof RpcClientError) throw cause
        throw closed ? lost("the client is closed") : lost(`cannot reach ${url}`, cause)
      } finally {
        inFlight.delete(abort)
      }
      for (const line of text.split("\n")) {
        if (line === "") continue
        let reply: Reply
        try {
          reply = JSON.parse(line) as Reply
        } catch (cause) {
          throw lost("Error decoding message", cause)
        }
        if (reply._tag === "Exit" && String(reply.requestId) === id) {
          return valueOrThrow(codec.decodeExit(reply.exit))
        }
        if (reply._tag === "Defect") throw reply.defect
      }
      throw lost(`${url} ended its answer without an Exit`)
    },
    close: () => {
      closed = true
      for (const abort of inFlight) abort.abort()
    }
  }
}

/** One WebSocket and the calls sent on it. */
interface Connection {
  readonly ws: WebSocket
  readonly pending: Map<string, Pending>
  readonly opened: Promise<Connection>
  pinger: ReturnType<typeof setInterval> | undefined
  /** Whether the last ping has been answered. */
  ponged: boolean
}

/**
 * Calls of `group` over a WebSocket to `url`. Each socket has its own calls: when it fails, only
 * the calls sent on it fail. A socket whose ping goes unanswered for a whole interval is closed.
 *
 * @internal
 */
export const socket = <R extends Rpc.Any>(
  group: RpcGroup.RpcGroup<R>,
  url: string,
  headers: Headers
): Calls => {
  const encode = codecs(group)
  let current: Connection | null = null
  let nextId = 0
  let closed = false

  const drop = (connection: Connection, error: RpcClientError) => {
    if (current === connection) current = null
    clearInterval(connection.pinger)
    const calls = [...connection.pending.values()]
    connection.pending.clear()
    for (const call of calls) call.reject(error)
  }

  const onMessage = (connection: Connection) => (event: MessageEvent) => {
    let replies: Array<Reply>
    try {
      const parsed = JSON.parse(typeof event.data === "string" ? event.data : String(event.data)) as unknown
      replies = (Array.isArray(parsed) ? parsed : [parsed]) as Array<Reply>
    } catch (cause) {
      drop(connection, lost("Error decoding message", cause))
      connection.ws.close()
      return
    }
    for (const reply of replies) {
      if (reply._tag === "Exit") {
        const id = String(reply.requestId)
        const call = connection.pending.get(id)
        if (call === undefined) continue
        connection.pending.delete(id)
        try {
          call.resolve(valueOrThrow(call.codec.decodeExit(reply.exit)))
        } catch (error) {
          call.reject(error)
        }
      } else if (reply._tag === "Pong") {
        connection.ponged = true
      } else if (reply._tag === "Defect") {
        const calls = [...connection.pending.values()]
        connection.pending.clear()
        for (const call of calls) call.reject(reply.defect)
      }
    }
  }

  const connect = (): Promise<Connection> => {
    if (current !== null) return current.opened
    const ws = new WebSocket(url)
    let resolveOpened!: (connection: Connection) => void
    let rejectOpened!: (error: RpcClientError) => void
    const opened = new Promise<Connection>((resolve, reject) => {
      resolveOpened = resolve
      rejectOpened = reject
    })
    const connection: Connection = { ws, pending: new Map(), opened, pinger: undefined, ponged: true }
    current = connection
    ws.addEventListener("open", () => {
      if (closed) {
        ws.close()
        rejectOpened(lost("the client is closed"))
        return
      }
      connection.pinger = setInterval(() => {
        if (!connection.ponged) {
          drop(connection, lost(`no answer to a ping from ${url}`))
          ws.close()
          return
        }
        connection.ponged = false
        ws.send('{"_tag":"Ping"}')
      }, PING_MS)
      // A timer that keeps no process alive (Node, Bun; Deno has no `unref` here).
      ;(connection.pinger as { unref?: () => void }).unref?.()
      resolveOpened(connection)
    })
    ws.addEventListener("message", onMessage(connection))
    const failed = (error: RpcClientError) => {
      rejectOpened(error) // no effect once it opened
      drop(connection, error)
    }
    ws.addEventListener("error", () => failed(lost(`cannot reach ${url}`)))
    ws.addEventListener("close", (event) =>
      failed(lost(`connection to ${url} closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`))
    )
    return opened
  }

  return {
    call: (tag, payload) => {
      if (closed) return Promise.reject(lost("the client is closed"))
      let codec: Codec
      let encoded: unknown
      try {
        ;[codec, encoded] = encode(tag, payload)
      } catch (error) {
        return Promise.reject(error)
      }
      const id = String(++nextId)
      const frame = request(id, tag, encoded, headers)
      return connect().then(
        (connection) =>
          new Promise((resolve, reject) => {
            if (connection.ws.readyState !== WebSocket.OPEN) {
              reject(lost(`connection to ${url} closed`))
              return
            }
            connection.pending.set(id, { codec, resolve, reject })
            connection.ws.send(frame)
          })
      )
    },
    close: () => {
      closed = true
      const connection = current
      if (connection === null) return
      drop(connection, lost("the client is closed"))
      connection.ws.close()
    }
  }
}
