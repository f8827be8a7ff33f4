/**
 * The t-minus server: the RPC contract of `@t-minus/core/rpc` served over HTTP (streaming
 * ndjson, `POST /rpc`) and WebSocket (`/ws`) on one port, with the runner and action delivery in
 * the same process, on the embedded SQLite store. Around the handlers:
 *
 * - `Authentication`: the API key (`authorization: Bearer <key>`) → tenant, principal, role;
 *   then the tenant's request rate (a token bucket). The handlers check the roles (SPEC 8).
 * - `Observe`: a request id per call, one JSON log line per call, the RPC latency histogram,
 *   the count of calls in flight that shutdown waits for.
 * - The transports are ours (`HttpRoute.ts` on `node:http`, `WebSocketRoute.ts` on `ws`), each an
 *   `RpcServer.Protocol` in front of `@effect/rpc`'s server; the platform's router serves the rest.
 * - Hostile input: the HTTP route takes only ndjson/JSON bodies up to `bodyLimitBytes` (415, 413);
 *   a WebSocket frame over the limit closes the socket (1009); a socket silent for
 *   `idleTimeoutMs` is closed (clients ping every 10 s); a message the RPC layer cannot take is
 *   refused (HTTP 400 naming the line; a `Defect` for that WebSocket frame alone); a `watch` whose
 *   client does not keep up ends with `WatchLagged`.
 * - `GET /healthz`, `GET /readyz` (503 when the store does not answer or while draining),
 *   `GET /metrics` (Prometheus text).
 * - Shutdown: new requests get `ServerUnavailable` (HTTP 503), calls in flight finish (up to
 *   `shutdownTimeoutMs`), then the runner stops, the store closes and the port is released.
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import * as Http from "node:http"
import { hostname } from "node:os"
import type { Duplex } from "node:stream"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as RpcMiddleware from "@effect/rpc/RpcMiddleware"
import * as RpcServer from "@effect/rpc/RpcServer"
import {
  type Access,
  EventStore,
  ResourceExhausted,
  Runner,
  ServerUnavailable,
  type StorageError,
  Unauthenticated,
  WatchLagged
} from "@t-minus/core"
import * as Postgres from "@t-minus/core/postgres"
import { Authentication, TMinusRpcs } from "@t-minus/core/rpc"
import * as RpcHandlers from "@t-minus/core/rpc-handlers"
import * as Sqlite from "@t-minus/core/sqlite"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as HttpRoute from "./HttpRoute.ts"
import * as Keys from "./Keys.ts"
import * as McpRoute from "./McpRoute.ts"
import * as Prometheus from "./Prometheus.ts"
import { type Quotas, quotaOf, RateLimiter } from "./Quotas.ts"
import * as WebSocketRoute from "./WebSocketRoute.ts"

/**
 * Everything the server can be told; the bin fills it from flags, environment and config file.
 *
 * @since 0.1.0
 */
export interface ServerOptions {
  /** Default 7420; 0 picks a free port. */
  readonly port?: number | undefined
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** The SQLite file (events, history, API keys); default `./t-minus.db`. */
  readonly db?: string | undefined
  /**
   * PostgreSQL instead of the SQLite file (`DATABASE_URL`): events, history and API keys live in
   * this database, which several replicas may share (docs/deployment.md).
   */
  readonly databaseUrl?: string | undefined
  /** On Postgres, the schema of the tables (created if missing); default `public`. */
  readonly databaseSchema?: string | undefined
  /**
   * On Postgres, this replica: its id (in the tick lease and history; default `<hostname>:<pid>`)
   * and how long its tick lease lasts unrenewed (default 10 s).
   */
  readonly replica?: Runner.ReplicaOptions | undefined
  /** Default `true`. `false` trusts every request as an admin of tenant `default`: local use only. */
  readonly auth?: boolean | undefined
  /** Largest HTTP body or WebSocket frame, in bytes; default 1 MiB. */
  readonly bodyLimitBytes?: number | undefined
  /** A WebSocket that sends nothing (not even a ping) this long is closed; default 30 000 ms. */
  readonly idleTimeoutMs?: number | undefined
  /**
   * An HTTP answer whose client takes nothing for this long is ended, and a WebSocket whose backlog
   * of unsent answers (over 16 frames' worth) does not shrink for this long is dropped; default
   * 30 000 ms.
   */
  readonly stallTimeoutMs?: number | undefined
  /** How long shutdown waits for calls in flight; default 10 000 ms. */
  readonly shutdownTimeoutMs?: number | undefined
  /** Per-tenant quotas; default `Quotas.DEFAULT_QUOTA` for every tenant. */
  readonly quotas?: Quotas | undefined
  /** What the runner may do (command allow-list, file directory, retry schedule, …). */
  readonly runner?: Runner.RunnerOptions | undefined
  /** JSON log lines to stdout at this level and above; default `info`. */
  readonly logLevel?: "debug" | "info" | "warning" | "error" | "none" | undefined
  /** Export traces over OTLP/HTTP to this endpoint (as `OTEL_EXPORTER_OTLP_ENDPOINT`). */
  readonly otlp?:
    | { readonly endpoint: string; readonly protocol?: "http/protobuf" | "http/json" | undefined }
    | undefined
}

/** The default port. @since 0.1.0 */
export const DEFAULT_PORT = 7420
/** @since 0.1.0 */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024
/** @since 0.1.0 */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000
/** @since 0.1.0 */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000

/** Calls that wait on the world rather than work: shutdown ends them instead of waiting. */
const LONG_POLLS = new Set(["watch", "waitFor"])

/**
 * A server-side middleware around every call: request id, log line, latency, calls in flight.
 *
 * @since 0.1.0
 */
export class Observe extends RpcMiddleware.Tag<Observe>()("Observe", {
  wrap: true,
  // Only a `watch` fails here, with the error its contract already declares.
  failure: WatchLagged
}) {}

/** The contract with the server's own middleware (it runs outside `Authentication`). */
const ServerRpcs = TMinusRpcs.middleware(Observe)

/** What `Observe` knows of the current call, completed by `Authentication`. */
interface CallInfo {
  readonly requestId: string
  tenant: string | null
  principal: string | null
}
const currentCall = FiberRef.unsafeMake<CallInfo | null>(null)

/** The server's shared state: draining, calls in flight, metrics. */
interface State {
  draining: boolean
  inFlight: number
  readonly metrics: ReturnType<typeof makeMetrics>
}

const makeMetrics = () => {
  const registry = new Prometheus.Registry()
  return {
    registry,
    lateness: registry.histogram(
      "tminus_fire_lateness_seconds",
      "How late events fired after their fire time (or after they became ready), in seconds.",
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
    ),
    transitions: registry.counter("tminus_transitions_total", "Transitions committed, by type."),
    actions: registry.counter(
      "tminus_action_outcomes_total",
      "Action attempts and hand retries, by outcome and action."
    ),
    rpc: registry.histogram(
      "tminus_rpc_duration_seconds",
      "RPC calls by method and outcome (ok or the error's tag), with their duration in seconds.",
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    ),
    rejected: registry.counter(
      "tminus_quota_rejections_total",
      "Requests refused by a quota, by tenant and resource."
    )
  }
}

const ACTION_OUTCOMES: Record<string, string> = {
  action_delivered: "delivered",
  action_failed: "failed",
  action_dead: "dead",
  action_retried: "retried"
}

/** How late the metrics may count a transition. */
const METRICS_LATENCY_MS = 250

/** Feeds the metrics from the runner's log of transitions (any process's, on this database). */
const recordTransitions = (state: State) =>
  Effect.gen(function* () {
    const runner = yield* Runner.Runner
    const { metrics } = state
    const stop = yield* runner.listen(
      (t) => {
        metrics.transitions.inc({ type: t.type })
        if (t.type === "fired") {
          const late = Number(t.detail.lateByMs ?? 0)
          metrics.lateness.observe(Number.isFinite(late) ? late / 1000 : 0)
        }
        const outcome = ACTION_OUTCOMES[t.type]
        if (outcome !== undefined)
          metrics.actions.inc({ outcome, action: String(t.detail.action ?? "unknown") })
      },
      {},
      // A scrape comes every few seconds: reading the log every quarter second is plenty.
      { latencyMs: METRICS_LATENCY_MS }
    )
    yield* Effect.addFinalizer(() => Effect.sync(stop))
  })

const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value as { readonly _tag?: unknown }
    return typeof error?._tag === "string" ? error._tag : "error"
  }
  return Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect"
}

/** A caller's request id is used when it is short and plain; anything else gets a fresh one. */
const REQUEST_ID = /^[\w.:-]{1,128}$/

/** Request ids made here: a random prefix per process and a counter (cheaper than a UUID each). */
const ID_PREFIX = randomUUID().slice(0, 8)
let requestCount = 0

/**
 * One access-log line per call, in the shape of `Logger.json`'s lines (the logger costs several
 * times more per line, which shows at thousands of calls a second). Lines are written to stdout
 * together once per event-loop turn (a write to a pipe is a system call each), and at exit.
 */
let accessLines = ""
const flushAccessLines = () => {
  if (accessLines === "") return
  const lines = accessLines
  accessLines = ""
  process.stdout.write(lines)
}
let exitFlush = false
const accessLine = (annotations: Record<string, unknown>) => {
  if (accessLines === "") {
    setImmediate(flushAccessLines)
    if (!exitFlush) {
      exitFlush = true
      process.once("exit", flushAccessLines)
    }
  }
  accessLines += `${JSON.stringify({ message: "rpc", logLevel: "INFO", timestamp: new Date().toISOString(), annotations })}\n`
}

const layerObserve = (state: State, logCalls: boolean) =>
  Layer.succeed(
    Observe,
    Observe.of(({ clientId, headers, next, rpc }) =>
      Effect.suspend(() => {
        const method = rpc._tag
        const given = headers["x-request-id"]
        const requestId =
          given !== undefined && REQUEST_ID.test(given)
            ? given
            : `${ID_PREFIX}-${(++requestCount).toString(36)}`
        const call: CallInfo = { requestId, tenant: null, principal: null }
        const tracked = !LONG_POLLS.has(method)
        const started = performance.now()
        if (tracked) state.inFlight++
        // A lagging watcher is ended at once, not when its transport next pulls (after an ack).
        const lagged = method === "watch" ? Deferred.unsafeMake<never, WatchLagged>(FiberId.none) : undefined
        const handled =
          lagged === undefined
            ? next
            : Effect.raceFirst(
                Effect.locally(next, RpcHandlers.currentWatchLagged, lagged),
                Deferred.await(lagged)
              )
        return handled.pipe(
          Effect.locally(currentCall, call),
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (tracked) state.inFlight--
              const ms = performance.now() - started
              const outcome = outcomeOf(exit)
              state.metrics.rpc.observe(ms / 1000, { method, outcome })
              if (logCalls) {
                accessLine({
                  requestId,
                  method,
                  outcome,
                  durationMs: Math.round(ms * 1000) / 1000,
                  tenant: call.tenant,
                  principal: call.principal,
                  clientId
                })
              }
            })
          )
        )
      })
    )
  )

const layerAuthentication = (state: State, options: ServerOptions) =>
  Layer.effect(
    Authentication,
    Effect.gen(function* () {
      const keys = yield* Keys.KeyStore
      const quotas = options.quotas ?? {}
      const limiter = new RateLimiter(quotas)
      const trusted = options.auth === false
      const admit = (caller: { tenant: string; principal: string; role: Access.Role }) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.withFiberRuntime<Access.Caller, ResourceExhausted>((fiber) => {
            const quota = quotaOf(quotas, caller.tenant)
            const wait = limiter.take(caller.tenant, now)
            if (wait > 0) {
              state.metrics.rejected.inc({ tenant: caller.tenant, resource: "requests" })
              return Effect.fail(
                new ResourceExhausted({
                  resource: "requests",
                  limit: quota.requestsPerSecond ?? 0,
                  retryAfterMs: wait
                })
              )
            }
            const call = fiber.getFiberRef(currentCall)
            if (call !== null) {
              call.tenant = caller.tenant
              call.principal = caller.principal
            }
            return Effect.succeed({
              tenant: caller.tenant,
              principal: caller.principal,
              role: caller.role,
              maxActiveEvents: quota.activeEvents
            })
          })
        )
      const TRUSTED = { tenant: "default", principal: "admin", role: "admin" } as const
      // Plain compositions rather than a generator: this runs before every call.
      return Authentication.of(({ headers }) => {
        if (state.draining)
          return Effect.fail(new ServerUnavailable({ reason: "the server is shutting down" }))
        if (trusted) return admit(TRUSTED)
        const key = Keys.keyOf(headers)
        if (key === undefined || key === "") {
          return Effect.fail(
            new Unauthenticated({
              reason:
                "no API key: send `authorization: Bearer <key>` (make one with `t-minus-server keys create`)"
            })
          )
        }
        return Effect.flatMap(
          Effect.mapError(keys.resolve(key), (error) => new ServerUnavailable({ reason: error.message })),
          (found): Effect.Effect<Access.Caller, Unauthenticated | ResourceExhausted> =>
            Option.isNone(found)
              ? Effect.fail(new Unauthenticated({ reason: "unknown or revoked API key" }))
              : admit(found.value)
        )
      })
    })
  )

const json = (status: number, body: Record<string, unknown>) =>
  HttpServerResponse.unsafeJson(body, { status, headers: status === 503 ? { connection: "close" } : {} })

const DIGITS = /^\d{1,40}$/

/**
 * What is wrong with one decoded message of the wire protocol, or `null`. The RPC layer trusts
 * these shapes (a header that is not a string pair, or an id that is not a number, throws inside
 * it), so they are checked first.
 */
const messageProblem = (message: unknown): string | null => {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return "not a message object"
  const m = message as Record<string, unknown>
  switch (m._tag) {
    case "Request": {
      if (typeof m.id !== "string" || !DIGITS.test(m.id)) return "Request.id: a string of digits"
      if (typeof m.tag !== "string") return "Request.tag: a string"
      if (
        !Array.isArray(m.headers) ||
        !m.headers.every(
          (h) => Array.isArray(h) && h.length === 2 && typeof h[0] === "string" && typeof h[1] === "string"
        )
      ) {
        return "Request.headers: an array of [name, value] string pairs"
      }
      return null
    }
    case "Ack":
    case "Interrupt":
      return typeof m.requestId === "string" && DIGITS.test(m.requestId)
        ? null
        : `${m._tag}.requestId: a string of digits`
    case "Ping":
    case "Pong":
    case "Eof":
      return null
    default:
      return `_tag: one of Request, Ack, Interrupt, Ping, Eof; got ${JSON.stringify(m._tag ?? null)?.slice(0, 64)}`
  }
}

/**
 * Ends responses whose client has not taken a byte for `stallMs` while they had some to take: one
 * timer for all open responses (not one per request), stopped with the scope.
 */
const makeStallWatch = (stallMs: number) =>
  Effect.gen(function* () {
    // response → since when it has had bytes waiting that its client does not take, and how many
    const open = new Map<Http.ServerResponse, { readonly since: number; readonly waiting: number } | null>()
    const timer = setInterval(
      () => {
        const now = Date.now()
        for (const [response, stuck] of open) {
          // Bytes not yet taken by the kernel: a streamed answer past its high-water mark, or an
          // ended one not yet flushed.
          const waiting = response.socket?.writableLength ?? 0
          const blocked = response.writableNeedDrain || (response.writableEnded && !response.writableFinished)
          if (!blocked || waiting === 0) open.set(response, null)
          else if (stuck === null || waiting < stuck.waiting) open.set(response, { since: now, waiting })
          else if (now - stuck.since > stallMs) response.destroy()
        }
      },
      Math.max(10, Math.min(1_000, stallMs / 4))
    )
    timer.unref()
    yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
    return (response: Http.ServerResponse) => {
      open.set(response, null)
      response.once("close", () => open.delete(response))
    }
  })

/**
 * The `node:http` server: `POST /rpc`, the upgrades of `GET /ws` and `/mcp` go to our routes
 * (`HttpRoute.ts`, `WebSocketRoute.ts`, `McpRoute.ts`) once they are installed, every other request to
 * `@effect/platform`'s handler.
 */
class NodeServer extends Http.Server {
  rpc: ((request: Http.IncomingMessage, response: Http.ServerResponse) => void) | undefined
  mcp: ((request: Http.IncomingMessage, response: Http.ServerResponse) => void) | undefined
  ws: ((request: Http.IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined
  constructor() {
    super()
    // Node emits "upgrade" only while someone listens: this listener makes `/ws` never depend on
    // the platform's, and drops upgrades that nobody else takes (before it serves, or after).
    this.on("upgrade", (_request: Http.IncomingMessage, socket: Duplex) => {
      if (this.listenerCount("upgrade") === 1) socket.destroy()
    })
  }
  override emit(event: string | symbol, ...args: Array<any>): boolean {
    if (event === "request" && this.rpc !== undefined && HttpRoute.matches(args[0])) {
      this.rpc(args[0], args[1])
      return true
    }
    if (event === "request" && this.mcp !== undefined && McpRoute.matches(args[0])) {
      this.mcp(args[0], args[1])
      return true
    }
    if (event === "upgrade" && this.ws !== undefined && WebSocketRoute.matches(args[0])) {
      this.ws(args[0], args[1], args[2])
      return true
    }
    return super.emit(event as string, ...args)
  }
  /** Hands `key`'s requests to `handler` for the life of the current scope. */
  install<K extends "rpc" | "ws" | "mcp">(
    key: K,
    handler: NonNullable<this[K]>
  ): Effect.Effect<void, never, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.sync(() => {
        this[key] = handler
      }),
      () =>
        Effect.sync(() => {
          this[key] = undefined as this[K]
        })
    )
  }
}

/** Both protocols' routes, guarded, and the RPC server over them. */
const rpcRoutes = (state: State, options: ServerOptions, node: NodeServer) => {
  const limit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES
  const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
  const stallMs = options.stallTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
  const http = Layer.scoped(
    RpcServer.Protocol,
    Effect.gen(function* () {
      const route = yield* HttpRoute.make({
        limit,
        draining: () => state.draining,
        messageProblem,
        watchStall: yield* makeStallWatch(stallMs),
        tracing: options.otlp !== undefined
      })
      yield* node.install("rpc", route.handle)
      return route.protocol
    })
  )
  const websocket = Layer.scoped(
    RpcServer.Protocol,
    Effect.gen(function* () {
      const route = yield* WebSocketRoute.make({
        limit,
        idleMs,
        stallMs,
        draining: () => state.draining,
        messageProblem
      })
      yield* node.install("ws", route.upgrade)
      return route.protocol
    })
  )
  // Spans only when they go somewhere: without an exporter a span per call is pure cost.
  const serve = <R>(protocol: Layer.Layer<RpcServer.Protocol, never, R>) =>
    RpcServer.layer(ServerRpcs, { spanPrefix: "t-minus", disableTracing: options.otlp === undefined }).pipe(
      Layer.provide(protocol)
    )
  return Layer.mergeAll(serve(http), serve(websocket))
}

/** A listening address as the host of a URL this process can reach (any-address → loopback). */
const urlHost = (host: string): string =>
  host === "0.0.0.0" || host === ""
    ? "127.0.0.1"
    : host === "::"
      ? "[::1]"
      : host.includes(":")
        ? `[${host}]`
        : host

/** A URL of this server that the process itself can reach. */
const loopbackUrl = (node: NodeServer): string => {
  const address = node.address()
  if (address === null || typeof address === "string") throw new Error("the server is not listening on TCP")
  return `http://${urlHost(address.address)}:${address.port}`
}

/** `/mcp`: the agent tools over MCP, calling this server's RPC as the request's key. */
const mcpRoute = (state: State, options: ServerOptions, node: NodeServer) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const keys = yield* Keys.KeyStore
      const run = Runtime.runPromise(yield* Effect.runtime<never>())
      const route = McpRoute.make({
        auth: options.auth !== false,
        principalOf: (key) =>
          run(
            Effect.map(keys.resolve(key), Option.match({ onNone: () => null, onSome: (k) => k.principal }))
          ),
        url: () => loopbackUrl(node),
        limit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
        draining: () => state.draining
      })
      yield* node.install("mcp", route.handle)
    })
  )

/** `/healthz`, `/readyz`, `/metrics`. */
const operationsRoutes = (state: State) =>
  HttpLayerRouter.use((router) =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      yield* router.add("GET", "/healthz", HttpServerResponse.unsafeJson({ status: "ok" }))
      yield* router.add(
        "GET",
        "/readyz",
        Effect.suspend(() =>
          state.draining
            ? Effect.succeed(
                json(503, { status: "unavailable", reason: "draining: the server is shutting down" })
              )
            : Effect.match(store.nextDueAt, {
                onFailure: (error) => json(503, { status: "unavailable", reason: error.message }),
                onSuccess: () => HttpServerResponse.unsafeJson({ status: "ready" })
              })
        )
      )
      yield* router.add(
        "GET",
        "/metrics",
        Effect.sync(() =>
          HttpServerResponse.text(state.metrics.registry.render(), { contentType: Prometheus.CONTENT_TYPE })
        )
      )
    })
  )

/** How long no call may be in flight before the drain counts the server as quiet. */
const QUIET_MS = 50

/**
 * Shutdown, before anything closes: stop accepting connections, refuse new calls
 * (`ServerUnavailable`, HTTP 503), wait (bounded) until no call has been in flight for a moment
 * (calls still queued in the event loop get their answer too), then drop what is left (idle
 * keep-alive connections, `watch` streams, `waitFor` calls), so closing does not wait on them.
 */
const drain = (state: State, timeoutMs: number, node: NodeServer) =>
  Effect.gen(function* () {
    state.draining = true
    node.close()
    yield* Effect.logInfo("draining").pipe(Effect.annotateLogs({ inFlight: state.inFlight }))
    let quietSince = performance.now()
    const quiet = Effect.suspend(() => {
      const now = performance.now()
      if (state.inFlight > 0) quietSince = now
      return now - quietSince >= QUIET_MS
        ? Effect.succeed(true)
        : Effect.as(Effect.sleep(Duration.millis(5)), false)
    })
    const drained = yield* quiet.pipe(
      Effect.repeat({ until: (done) => done }),
      Effect.timeoutOption(Duration.millis(timeoutMs))
    )
    yield* Effect.logInfo("drained").pipe(
      Effect.annotateLogs({ inFlight: state.inFlight, timedOut: Option.isNone(drained) })
    )
    node.closeAllConnections()
  })

const LEVELS = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
} as const

/**
 * JSON log lines on stdout at `level` and above (default `info`).
 *
 * @since 0.1.0
 */
export const layerLogger = (level: ServerOptions["logLevel"] = "info") =>
  Layer.mergeAll(Logger.json, Logger.minimumLogLevel(LEVELS[level]))

/** The API keys, the store, the coordinator and the runner: on Postgres, or on the SQLite file. */
const storage = (options: ServerOptions) => {
  const url = options.databaseUrl
  if (url === undefined) {
    const db = options.db ?? Sqlite.DEFAULT_FILENAME
    return Layer.merge(Keys.layerSqlite(db), Sqlite.layerRunner({ filename: db, runner: options.runner }))
  }
  const schema = options.databaseSchema
  const replica = { id: `${hostname()}:${process.pid}`, ...options.replica }
  return Layer.merge(
    Keys.layerPostgres(url, { schema }),
    Postgres.layerRunner({
      url,
      schema,
      // A frozen replica holds the write lock (which every replica waits for) at most one lease.
      idleInTransactionTimeoutMs: replica.leaseMs ?? Runner.DEFAULT_LEASE_MS,
      runner: { ...options.runner, replica }
    })
  )
}

/** The key store of the server's database, open in the current scope. */
const keyStore = (options: ServerOptions) =>
  options.databaseUrl === undefined
    ? Keys.makeSqlite(options.db ?? Sqlite.DEFAULT_FILENAME)
    : Keys.makePostgres(options.databaseUrl, { schema: options.databaseSchema })

/**
 * Starts the server in the current scope and returns its `HttpServer` (its address). Closing the
 * scope shuts it down gracefully: the drain runs first, before any part of the server closes.
 *
 * @since 0.1.0
 */
export const make = (
  options: ServerOptions = {}
): Effect.Effect<HttpServer.HttpServer, ServeError | StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const state: State = { draining: false, inFlight: 0, metrics: makeMetrics() }
    const node = new NodeServer()
    const app = HttpLayerRouter.serve(
      Layer.mergeAll(
        rpcRoutes(state, options, node),
        operationsRoutes(state),
        mcpRoute(state, options, node)
      ),
      {
        disableListenLog: true,
        disableLogger: true
      }
    ).pipe(
      // No span per HTTP request either without an exporter (the platform makes one by default).
      options.otlp === undefined
        ? Layer.locally(HttpMiddleware.currentTracerDisabledWhen, () => true)
        : identity,
      Layer.provide([
        layerObserve(state, ["debug", "info", undefined].includes(options.logLevel)),
        layerAuthentication(state, options),
        RpcHandlers.layer
      ]),
      Layer.provideMerge(Layer.scopedDiscard(recordTransitions(state))),
      Layer.provide(storage(options)),
      Layer.provideMerge(
        NodeHttpServer.layer(() => node, {
          port: options.port ?? DEFAULT_PORT,
          host: options.host ?? "127.0.0.1"
        })
      )
    )
    const context = yield* Layer.build(app)
    // Added after the layers, so it runs before any of their finalizers.
    yield* Effect.addFinalizer(() =>
      drain(state, options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS, node)
    )
    return Context.get(context, HttpServer.HttpServer)
  })

/**
 * The server as a layer, with its JSON logger and (when configured) its OTLP tracer.
 *
 * @since 0.1.0
 */
export const layer = (
  options: ServerOptions = {}
): Layer.Layer<HttpServer.HttpServer, ServeError | StorageError> => {
  const logging = layerLogger(options.logLevel)
  const tracing =
    options.otlp === undefined
      ? Layer.empty
      : OtlpTracer.layer({
          url: new URL(
            "v1/traces",
            options.otlp.endpoint.endsWith("/") ? options.otlp.endpoint : `${options.otlp.endpoint}/`
          ).toString(),
          resource: { serviceName: "t-minus-server", serviceVersion: "0.1.0" }
        }).pipe(
          Layer.provide(
            options.otlp.protocol === "http/json"
              ? OtlpSerialization.layerJson
              : OtlpSerialization.layerProtobuf
          ),
          Layer.provide(FetchHttpClient.layer)
        )
  return Layer.scoped(HttpServer.HttpServer, make(options)).pipe(Layer.provide(Layer.merge(logging, tracing)))
}

/**
 * A server started from Promise code: its URL, a way to make API keys on its database, and
 * `close` (graceful, as on SIGTERM).
 *
 * @since 0.1.0
 */
export interface Started {
  /** `http://<host>:<port>` */
  readonly url: string
  /** Makes an API key on the server's database; returns the key. */
  readonly createKey: (tenant: string, principal: string, role: Access.Role) => Promise<string>
  readonly close: () => Promise<void>
}

/**
 * Starts a server in this process (port 0 picks a free one), for programs that embed one and for
 * tests. `createKey` writes to the server's database (`databaseUrl`, else the file `db`; with
 * `:memory:` there is none to share).
 *
 * @since 0.1.0
 */
export const start = async (options: ServerOptions = {}): Promise<Started> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const context = await Effect.runPromise(Layer.buildWithScope(layer(options), scope))
    const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
    const keys = await Effect.runPromise(Scope.extend(keyStore(options), scope))
    return {
      url: `http://${urlHost(address.hostname)}:${address.port}`,
      createKey: (tenant, principal, role) =>
        Effect.runPromise(Effect.map(keys.create({ tenant, principal, role }), (created) => created.key)),
      close: () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  } catch (error) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  }
}
