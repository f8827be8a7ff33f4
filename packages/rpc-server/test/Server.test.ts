import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { assert, describe, it } from "@effect/vitest"
import { TMinusRpcs } from "@t-minus/core/rpc"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Server from "../src/Server.ts"

/** A server on a free port of 127.0.0.1 over a fresh SQLite file, and its base URL. */
const startServer = Effect.gen(function* () {
  const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-server-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
  const ctx = yield* Layer.build(Server.layer({ port: 0, db: NodePath.join(dir, "server.db") }))
  const server = ctx.unsafeMap.get(HttpServer.HttpServer.key) as HttpServer.HttpServer
  const address = server.address as HttpServer.TcpAddress
  return `127.0.0.1:${address.port}`
})

/** A client over `protocol`, both living as long as the caller's scope (a socket must outlive `make`). */
const clientOver = <E>(protocol: Layer.Layer<RpcClient.Protocol, E>) =>
  Effect.flatMap(Layer.build(protocol), (ctx) => Effect.provide(RpcClient.make(TMinusRpcs), ctx))

const httpClient = (base: string) =>
  clientOver(
    RpcClient.layerProtocolHttp({ url: `http://${base}/rpc` }).pipe(
      Layer.provide(FetchHttpClient.layer),
      Layer.provide(RpcSerialization.layerNdjson)
    )
  )

const wsClient = (base: string) =>
  clientOver(
    RpcClient.layerProtocolSocket().pipe(
      Layer.provide(NodeSocket.layerWebSocket(`ws://${base}/ws`)),
      Layer.provide(RpcSerialization.layerJson)
    )
  )

describe("t-minus-server on 127.0.0.1", () => {
  it.live("/healthz and /readyz answer; unknown paths are 404", () =>
    Effect.gen(function* () {
      const base = yield* startServer
      const get = (path: string) =>
        Effect.promise(async () => {
          const res = await fetch(`http://${base}${path}`)
          return { status: res.status, body: await res.text() }
        })
      const healthz = yield* get("/healthz")
      assert.strictEqual(healthz.status, 200)
      assert.deepStrictEqual(JSON.parse(healthz.body), { status: "ok" })
      const readyz = yield* get("/readyz")
      assert.strictEqual(readyz.status, 200)
      assert.deepStrictEqual(JSON.parse(readyz.body), { status: "ready" })
      assert.strictEqual((yield* get("/nope")).status, 404)
    }).pipe(Effect.scoped)
  )

  for (const [protocol, connect] of [
    ["HTTP (ndjson)", httpClient],
    ["WebSocket", wsClient]
  ] as const) {
    it.live(
      `${protocol}: schedule, confirm, watch and waitFor against a real server`,
      () =>
        Effect.gen(function* () {
          const base = yield* startServer
          const client = yield* connect(base)
          const e = yield* client.schedule({
            input: { kind: "review", at: Date.now() + 1_500, attendees: ["alice", "bob"], quorum: 2 }
          })
          const watching = yield* Effect.fork(
            Stream.runCollect(Stream.take(client.watch({ eventId: e.id }), 3))
          )
          yield* Effect.sleep(200)
          yield* client.confirm({ eventId: e.id, agent: "alice" })
          yield* client.confirm({ eventId: e.id, agent: "bob" })
          const waited = yield* client.waitFor({ eventId: e.id, timeout: "10s" })
          assert.strictEqual(waited.outcome, "fired")
          assert.isAtLeast(waited.event.firedAt!.getTime(), waited.event.fireAt!.getTime())
          const seen = Chunk.toReadonlyArray(yield* Fiber.join(watching)).map((t) => `${t.type}:${t.actor}`)
          assert.deepStrictEqual(seen, ["confirmed:alice", "confirmed:bob", "fired:t-minus"])
          const missing = yield* Effect.flip(client.get({ eventId: "nope" }))
          assert.strictEqual(missing._tag, "EventNotFound")
          const bad = yield* Effect.flip(client.defer({ eventId: e.id, agent: "bob", duration: "forever" }))
          assert.strictEqual(bad._tag, "InvalidInput")
        }).pipe(Effect.scoped),
      30_000
    )
  }
})
