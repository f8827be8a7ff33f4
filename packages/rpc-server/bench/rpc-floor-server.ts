/**
 * The framework floor of the RPC server benchmark: the t-minus contract (`TMinusRpcs`, with its
 * `Authentication` middleware) served by `@effect/rpc` over `@effect/platform-node` on both
 * protocols, exactly as t-minus-server mounts it (`POST /rpc` ndjson, `GET /ws` JSON), but every
 * `scheduleTimer` answers one canned event: no API key lookup, no coordinator, no database, no
 * runner, no access log, no spans (as the server without an OTLP exporter). What the framework
 * costs per call, encoding the same `Event` back.
 * Prints `{"url":"http://127.0.0.1:<port>"}` once it listens, as the real server does.
 */
import { createServer } from "node:http"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { TMinus } from "@t-minus/core"
import { Authentication, TMinusRpcs } from "@t-minus/core/rpc"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const engine = await TMinus.inMemory()
const canned = await engine.scheduleTimer({ in: "1h" })
await engine.close()

type Handlers = Parameters<typeof TMinusRpcs.toLayer>[0]
const unused = () => Effect.die("not served by the floor server")
// Every other operation dies: the bench calls only `scheduleTimer`.
const handlers = TMinusRpcs.toLayer(
  Object.fromEntries(
    [...TMinusRpcs.requests.keys()].map((tag) => [
      tag,
      tag === "scheduleTimer" ? () => Effect.succeed(canned) : unused
    ])
  ) as unknown as Handlers
) as Layer.Layer<Rpc.ToHandler<RpcGroup.Rpcs<typeof TMinusRpcs>>>
const authentication = Layer.succeed(
  Authentication,
  Authentication.of(() => Effect.succeed({ tenant: "bench", principal: "bench", role: "admin" as const }))
)

const routes = Layer.mergeAll(
  RpcServer.layerHttpRouter({ group: TMinusRpcs, path: "/rpc", protocol: "http", disableTracing: true }).pipe(
    Layer.provide(RpcSerialization.layerNdjson)
  ),
  RpcServer.layerHttpRouter({
    group: TMinusRpcs,
    path: "/ws",
    protocol: "websocket",
    disableTracing: true
  }).pipe(Layer.provide(RpcSerialization.layerJson))
)
const announce = Layer.effectDiscard(
  Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.sync(() => {
      const address = server.address as HttpServer.TcpAddress
      process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}` })}\n`)
    })
  )
)

NodeRuntime.runMain(
  Layer.launch(
    announce.pipe(
      Layer.provideMerge(
        HttpLayerRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
          Layer.provide([handlers, authentication]),
          // No spans, as t-minus-server without an exporter.
          Layer.locally(HttpMiddleware.currentTracerDisabledWhen, () => true)
        )
      ),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
    )
  ),
  { disablePrettyLogger: true }
)
