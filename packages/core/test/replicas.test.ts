import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as TestServices from "effect/TestServices"
import pg from "pg"
import { Coordinator } from "../src/Coordinator.ts"
import { EventStore } from "../src/EventStore.ts"
import * as Runner from "../src/Runner.ts"
import { backends, coordinatorOn, freshSchema, PG_URL, postgresStore, postgresUp, T0 } from "./backends.ts"

const SEC = 1_000

/** Lets the runners' fibers (and a networked store's statements) take their turn. */
const settle = Effect.repeatN(
  Effect.zipRight(Effect.repeatN(Effect.yieldNow(), 50), TestServices.provideLive(Effect.sleep("4 millis"))),
  4
)
const advance = (ms: number) => Effect.zipRight(TestClock.adjust(ms), settle)
/**
 * Moves the clock a second at a time, so a holder renews its lease on the way as it would on a
 * real clock. One jump past a lease's expiry would let every replica race for it at once.
 */
const advanceSteadily = (ms: number) => Effect.repeatN(advance(SEC), ms / SEC - 1)

/** `read` once it passes `check`, waiting (on the real clock, the test clock standing) up to 5 s. */
const eventually = <A, E, R>(read: Effect.Effect<A, E, R>, check: (a: A) => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 300; i++) {
      const a = yield* read
      if (check(a)) return a
      yield* settle
    }
    return yield* Effect.dieMessage("condition not reached within 5 s")
  })
const status = (id: string) => Effect.flatMap(Coordinator, (c) => c.get(id))

/** Starts a replica's runner in a scope of its own, which the test closes to stop it. */
const replica = (id: string, leaseMs: number) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const runner = yield* Scope.extend(
      Runner.make({ externalPollMs: Number.POSITIVE_INFINITY, replica: { id, leaseMs } }),
      scope
    )
    yield* settle
    return { runner, stop: Scope.close(scope, Exit.void) }
  })

const firedBy = (eventId: string) =>
  Effect.gen(function* () {
    const c = yield* Coordinator
    return (yield* c.history(eventId)).filter((h) => h.type === "fired").map((h) => h.detail.replica)
  })

for (const [backend, store] of backends) {
  describe(`Runner replicas on ${backend}`, () => {
    const scenario = <A, E>(body: Effect.Effect<A, E, Coordinator | EventStore | Runner.Platform>) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(T0)
        return yield* body
      }).pipe(Effect.provide(Layer.merge(coordinatorOn(store), FetchHttpClient.layer)))

    it.effect("only the lease holder ticks; when it stops, another takes over", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const a = yield* replica("a", 3 * SEC)
          yield* eventually(a.runner.ticking, (t) => t)
          const b = yield* replica("b", 3 * SEC)
          assert.isFalse(yield* b.runner.ticking)
          const first = yield* c.scheduleTimer({ in: "10s" })
          yield* advanceSteadily(10 * SEC)
          const fired = yield* eventually(status(first.id), (e) => e.status === "fired")
          assert.strictEqual(fired.firedAt?.getTime(), T0 + 10 * SEC)
          assert.deepStrictEqual(yield* firedBy(first.id), ["a"])
          // "a" stops (and gives its lease up): "b" asks again within a third of the lease.
          yield* a.stop
          const second = yield* c.scheduleTimer({ in: "5s" })
          yield* advance(SEC)
          yield* eventually(b.runner.ticking, (t) => t)
          yield* advanceSteadily(4 * SEC)
          const secondFired = yield* eventually(status(second.id), (e) => e.status === "fired")
          assert.strictEqual(secondFired.firedAt?.getTime(), T0 + 15 * SEC)
          assert.deepStrictEqual(yield* firedBy(second.id), ["b"])
          yield* b.stop
        })
      )
    )

    it.effect("a holder that dies without giving its lease up is taken over once it expires", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const s = yield* EventStore
          // "dead" took the lease and then never renewed it.
          yield* s.acquireLease(Runner.TICK_LEASE, "dead", T0, 3 * SEC)
          const b = yield* replica("b", 3 * SEC)
          yield* advance(SEC) // "b" asked and learnt when it expires
          assert.isFalse(yield* b.runner.ticking)
          const timer = yield* c.scheduleTimer({ in: "1s" })
          yield* advance(SEC)
          assert.strictEqual((yield* c.get(timer.id)).status, "scheduled")
          yield* advance(SEC) // T0 + 3 s: the lease expires, "b" takes it and fires what is due
          const fired = yield* eventually(status(timer.id), (e) => e.status === "fired")
          assert.isAtMost(fired.firedAt!.getTime() - (T0 + 2 * SEC), 1 * SEC)
          assert.deepStrictEqual(yield* firedBy(timer.id), ["b"])
          yield* b.stop
        })
      )
    )

    it.effect("a replica whose lease was taken over fires nothing", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const s = yield* EventStore
          const a = yield* replica("a", 3 * SEC)
          yield* eventually(a.runner.ticking, (t) => t)
          // As another replica would after "a" froze past its lease: taken over, token advanced.
          const taken = yield* s.acquireLease(Runner.TICK_LEASE, "other", T0 + 60 * SEC, 60 * SEC)
          assert.strictEqual(taken.token, 2)
          const timer = yield* c.scheduleTimer({ in: "1s" })
          yield* advance(2 * SEC)
          yield* eventually(a.runner.ticking, (t) => !t)
          yield* settle
          assert.strictEqual((yield* c.get(timer.id)).status, "scheduled")
          assert.deepStrictEqual(yield* firedBy(timer.id), [])
          yield* a.stop
          // Stopping did not disturb the other holder's lease.
          assert.deepStrictEqual(yield* s.acquireLease(Runner.TICK_LEASE, "probe", T0 + 3 * SEC, SEC), taken)
        })
      )
    )
  })
}

describe.runIf(postgresUp)("Postgres: several processes on one database", () => {
  it.live("connections the server ends (a restart, a failover) are replaced; the process goes on", () =>
    Effect.gen(function* () {
      const schema = freshSchema()
      yield* Effect.gen(function* () {
        const c = yield* Coordinator
        const before = yield* c.scheduleTimer({ in: "1h" })
        // Ends every connection of this store, idle ones included, as a server restart would.
        yield* Effect.promise(async () => {
          const admin = new pg.Client({ connectionString: PG_URL })
          await admin.connect()
          const ended = await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            [`t-minus/${schema}`]
          )
          await admin.end()
          assert.isAbove(ended.rowCount ?? 0, 0)
        })
        yield* TestServices.provideLive(Effect.sleep("300 millis"))
        // The next calls get fresh connections (a call caught mid-flight may fail, typed).
        yield* Effect.retry(c.get(before.id), { times: 3 })
        const after = yield* c.scheduleTimer({ in: "1h" })
        assert.strictEqual((yield* c.get(after.id)).status, "scheduled")
      }).pipe(Effect.provide(coordinatorOn(() => postgresStore(schema))))
    })
  )

  it.live("commits through one store re-arm another store's runner and reach its watch at once", () =>
    Effect.gen(function* () {
      const schema = freshSchema()
      // Two stores on one schema, as two server processes would have: no polling, only NOTIFY.
      const first = Layer.merge(
        coordinatorOn(() => postgresStore(schema)),
        FetchHttpClient.layer
      )
      const second = coordinatorOn(() => postgresStore(schema))
      const elsewhere = yield* Layer.build(second)
      yield* Effect.gen(function* () {
        const runner = yield* Runner.make({ externalPollMs: Number.POSITIVE_INFINITY })
        const seen: Array<string> = []
        yield* runner.listen((t) => seen.push(`${t.type} ${t.eventId}`))
        const schedule = Effect.provide(
          Effect.flatMap(Coordinator, (c) => c.scheduleTimer({ in: "300ms", name: "from elsewhere" })),
          elsewhere
        )
        const timer = yield* schedule
        const fired = yield* eventually(status(timer.id), (e) => e.status === "fired")
        assert.isNotNull(fired.firedAt)
        yield* eventually(
          Effect.sync(() => seen),
          (s) => s.includes(`scheduled ${timer.id}`) && s.includes(`fired ${timer.id}`)
        )
      }).pipe(Effect.provide(first))
    }).pipe(Effect.scoped)
  )
})
