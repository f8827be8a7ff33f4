import * as RpcTest from "@effect/rpc/RpcTest"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Client from "../src/Client.ts"
import * as EventStore from "../src/EventStore.ts"
import { TMinusRpcs } from "../src/Rpc.ts"
import * as RpcHandlers from "../src/RpcHandlers.ts"
import * as Runner from "../src/Runner.ts"
import * as Sqlite from "../src/sqlite.ts"
import { T0 } from "./backends.ts"

const MIN = 60_000
const settle = Effect.repeatN(Effect.yieldNow(), 50)

/** The handlers, trusting every call as an admin, and the client side of authentication. */
const server = Layer.mergeAll(
  RpcHandlers.layer,
  RpcHandlers.layerTrusted({ tenant: "default", principal: "organizer", role: "admin" }),
  Client.layerAuthentication(undefined)
).pipe(
  Layer.provideMerge(Runner.layer({ externalPollMs: Number.POSITIVE_INFINITY })),
  Layer.provideMerge(Runner.layerCoordinator()),
  Layer.provideMerge(EventStore.layerMemory),
  Layer.provide(Sqlite.layerPlatform)
)

describe("RPC contract", () => {
  it.effect("every operation answers through the contract; watch streams and waitFor resolves", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0)
      const client = yield* RpcTest.makeClient(TMinusRpcs)
      const watching = yield* Effect.fork(Stream.runCollect(Stream.take(client.watch({ agent: "bob" }), 3)))
      yield* settle
      const e = yield* client.schedule({
        input: { kind: "review", at: "+1m", attendees: ["alice", "bob"], quorum: 2 }
      })
      yield* client.confirm({ eventId: e.id, agent: "alice" })
      yield* client.confirm({ eventId: e.id, agent: "bob" })
      const waiting = yield* Effect.fork(client.waitFor({ eventId: e.id }))
      yield* settle
      yield* TestClock.adjust(MIN)
      yield* settle
      const waited = yield* Fiber.join(waiting)
      assert.strictEqual(waited.outcome, "fired")
      assert.strictEqual(waited.event.firedAt?.getTime(), T0 + MIN)
      const seen = Chunk.toReadonlyArray(yield* Fiber.join(watching)).map((t) => `${t.type}:${t.actor}`)
      assert.deepStrictEqual(seen, ["scheduled:organizer", "confirmed:alice", "confirmed:bob"])
      const history = yield* client.history({ eventId: e.id })
      assert.deepStrictEqual(
        history.map((h) => h.type),
        ["scheduled", "confirmed", "confirmed", "fired"]
      )
      const campaign = yield* client.createCampaign({ name: "release" })
      const a = yield* client.addToCampaign({
        campaignId: campaign.id,
        event: { kind: "checkpoint", at: "+1h" }
      })
      const b = yield* client.addToCampaign({ campaignId: campaign.id, event: { kind: "deploy", at: "+2h" } })
      yield* client.link({ campaignId: campaign.id, from: a.id, to: b.id })
      assert.deepStrictEqual(yield* client.executionOrder({ campaignId: campaign.id }), [a.id, b.id])
      const timeout = yield* Effect.fork(client.waitFor({ eventId: a.id, timeout: "5m" }))
      yield* settle
      yield* TestClock.adjust(5 * MIN)
      const timedOut = yield* Fiber.join(timeout)
      assert.strictEqual(timedOut.outcome, "timeout")
      assert.strictEqual(timedOut.event.status, "scheduled")
    }).pipe(Effect.provide(server), Effect.scoped)
  )

  it.effect("errors arrive typed, naming the field or the id", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0)
      const client = yield* RpcTest.makeClient(TMinusRpcs)
      const missing = yield* Effect.flip(client.get({ eventId: "nope" }))
      assert.strictEqual(missing._tag, "EventNotFound")
      const bad = yield* Effect.flip(client.schedule({ input: { kind: "review", at: "whenever" } }))
      assert.strictEqual(bad._tag, "InvalidInput")
      assert.strictEqual(bad._tag === "InvalidInput" ? bad.field : "", "at")
      const tooMany = yield* Effect.flip(client.list({ limit: 10_001 }))
      assert.strictEqual(tooMany._tag === "InvalidInput" ? tooMany.field : tooMany._tag, "limit")
      yield* client.scheduleMany({
        inputs: Array.from({ length: 1_001 }, () => ({ kind: "timer", at: "+1h" }))
      })
      assert.strictEqual((yield* client.list({})).length, 1_000)
      assert.strictEqual((yield* client.list({ limit: 1_001 })).length, 1_001)
      const badWait = yield* Effect.flip(client.waitFor({ eventId: "nope", timeout: "soon" }))
      assert.strictEqual(badWait._tag === "InvalidInput" ? badWait.field : badWait._tag, "timeout")
    }).pipe(Effect.provide(server), Effect.scoped)
  )

  it("payloads and results survive JSON through their schemas; wrong shapes are refused", () => {
    for (const rpc of TMinusRpcs.requests.values()) {
      assert.isTrue(Schema.isSchema(rpc.payloadSchema), rpc._tag)
    }
    const schedule = TMinusRpcs.requests.get("schedule")!
    const input = {
      input: {
        kind: "deploy",
        at: "+10m",
        attendees: ["a"],
        onFire: [{ _tag: "webhook", url: "https://example.test/h" }],
        recurrence: { cron: "0 9 * * *", tz: "Europe/Berlin" }
      }
    }
    const encode = Schema.encodeUnknownSync(schedule.payloadSchema as Schema.Schema<any, any>)
    const decode = Schema.decodeUnknownEither(schedule.payloadSchema as Schema.Schema<any, any>)
    const wire = JSON.parse(JSON.stringify(encode(input)))
    assert.deepStrictEqual(Either.getOrThrow(decode(wire)), input)
    assert.isTrue(Either.isLeft(decode({ input: { kind: 42 } })))
    assert.isTrue(Either.isLeft(decode({ input: { kind: "deploy", attendees: "a" } })))
  })
})
