/**
 * The t-minus server: the RPC contract of `@t-minus/core/rpc` served over HTTP (streaming
 * ndjson, `POST /rpc`) and WebSocket (`/ws`) on one port, with the runner and action delivery in
 * the same process, on the embedded SQLite store.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { EventStore, type StorageError } from "@t-minus/core"
import { TMinusRpcs } from "@t-minus/core/rpc"
import * as RpcHandlers from "@t-minus/core/rpc-handlers"
import * as Sqlite from "@t-minus/core/sqlite"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * Where the server listens and keeps its data.
 *
 * @since 0.1.0
 */
export interface ServerOptions {
  /** Default 7420; 0 picks a free port. */
  readonly port?: number | undefined
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** The SQLite file; default `./t-minus.db`. */
  readonly db?: string | undefined
}

/** The default port. @since 0.1.0 */
export const DEFAULT_PORT = 7420

/** Both protocols' routes, served by the handlers over the runner's coordinator. */
const routes = Layer.mergeAll(
  RpcServer.layerHttpRouter({ group: TMinusRpcs, path: "/rpc", protocol: "http" }).pipe(
    Layer.provide(RpcSerialization.layerNdjson)
  ),
  RpcServer.layerHttpRouter({ group: TMinusRpcs, path: "/ws", protocol: "websocket" }).pipe(
    Layer.provide(RpcSerialization.layerJson)
  )
)

/**
 * `GET /healthz`: the process serves (200). `GET /readyz`: the store answers a read (200), or
 * 503 with the reason, so a load balancer stops sending work to a server whose database is gone.
 */
const health = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    yield* router.add("GET", "/healthz", HttpServerResponse.unsafeJson({ status: "ok" }))
    yield* router.add(
      "GET",
      "/readyz",
      Effect.match(store.nextDueAt, {
        onFailure: (error) =>
          HttpServerResponse.unsafeJson({ status: "unavailable", reason: error.message }, { status: 503 }),
        onSuccess: () => HttpServerResponse.unsafeJson({ status: "ready" })
      })
    )
  })
)

/**
 * The server, listening while the layer is alive. It also provides the `HttpServer` (its address).
 *
 * @since 0.1.0
 */
export const layer = (
  options: ServerOptions = {}
): Layer.Layer<HttpServer.HttpServer, ServeError | StorageError> =>
  HttpLayerRouter.serve(Layer.merge(routes, health), { disableListenLog: true, disableLogger: true }).pipe(
    Layer.provide(RpcHandlers.layer),
    Layer.provide(Sqlite.layerRunner({ filename: options.db ?? Sqlite.DEFAULT_FILENAME })),
    Layer.provideMerge(
      NodeHttpServer.layer(createServer, {
        port: options.port ?? DEFAULT_PORT,
        host: options.host ?? "127.0.0.1"
      })
    )
  )
