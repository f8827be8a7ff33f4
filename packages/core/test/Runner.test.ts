import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as TestServices from "effect/TestServices"
import { Coordinator, layer as coordinatorLayer } from "../src/Coordinator.ts"
import type { Event, Transition } from "../src/Event.ts"
import { type EventStore, EventStore as EventStoreTag } from "../src/EventStore.ts"
import * as Runner from "../src/Runner.ts"
import { backends, coordinatorOn, T0 } from "./backends.ts"

const SEC = 1_000
const MIN = 60 * SEC
const HOUR = 60 * MIN
const DAY = 24 * HOUR

const platform = Layer.merge(NodeContext.layer, FetchHttpClient.layer)

/**
 * Lets the runner's fibers take their turn without moving the clock: on a store over the network
 * (Postgres) their statements take real time, so it also waits a few real milliseconds.
 */
let networked = false
const settle = Effect.suspend(() =>
  Effect.repeatN(
    Effect.zipRight(
      Effect.repeatN(Effect.yieldNow(), 50),
      TestServices.provideLive(Effect.sleep(networked ? "12 millis" : "4 millis"))
    ),
    networked ? 10 : 4
  )
)

/** Moves the test clock in steps, letting the runner work at each instant it wakes up at. */
const advance = (ms: number) => Effect.zipRight(TestClock.adjust(ms), settle)

const startRunner = (options: Runner.RunnerOptions = {}) =>
  Effect.tap(Runner.make({ externalPollMs: Number.POSITIVE_INFINITY, ...options }), () => settle)

const firedAt = (e: Event) => e.firedAt?.toISOString() ?? null

for (const [backend, store] of backends) {
  describe(`Runner on ${backend}`, () => {
    // Over the network each of the runner's statements takes real time: wait longer for them.
    beforeAll(() => {
      networked = backend === "postgres"
    })
    afterAll(() => {
      networked = false
    })
    const scenario = <A, E>(
      body: Effect.Effect<A, E, Coordinator | EventStore | Runner.Platform | Scope.Scope>
    ) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(T0)
        return yield* body
      }).pipe(Effect.provide(Layer.merge(coordinatorOn(store), platform)), Effect.scoped)

    it.effect("a read of the next due instant that takes time does not make the wake-up late", () =>
      Effect.gen(function* () {
        // Every read of the next due instant takes 40 ms of the (test) clock, as a round trip does.
        const slow = Layer.effect(
          EventStoreTag,
          Effect.map(EventStoreTag, (s) => ({
            ...s,
            nextDueAt: Effect.zipLeft(s.nextDueAt, TestClock.adjust(40))
          }))
        ).pipe(Layer.provide(store()))
        yield* TestClock.setTime(T0)
        yield* Effect.gen(function* () {
          const c = yield* Coordinator
          yield* startRunner()
          const timer = yield* c.scheduleTimer({ in: "10s" })
          yield* settle
          // The runner read the next due instant (the clock moved on meanwhile) and sleeps until it.
          const due = timer.fireAt!.getTime()
          yield* advance(due - (yield* Clock.currentTimeMillis))
          const fired = yield* c.get(timer.id)
          assert.strictEqual(fired.status, "fired")
          assert.strictEqual(fired.firedAt?.getTime(), due)
        }).pipe(
          Effect.provide(
            Layer.merge(
              coordinatorOn(() => slow),
              platform
            )
          ),
          Effect.scoped
        )
      })
    )

    it.effect("fires a timer at its exact instant", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          yield* startRunner()
          const timer = yield* c.scheduleTimer({ in: "10s", name: "ping" })
          yield* advance(10 * SEC - 1)
          assert.strictEqual((yield* c.get(timer.id)).status, "scheduled")
          yield* advance(1)
          const fired = yield* c.get(timer.id)
          assert.strictEqual(fired.status, "fired")
          assert.strictEqual(fired.firedAt?.getTime(), T0 + 10 * SEC)
          const entry = (yield* c.history(timer.id)).find((h) => h.type === "fired")
          assert.strictEqual(entry?.detail.lateByMs, 0)
        })
      )
    )

    it.effect("re-arms at once when an earlier event is scheduled", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          yield* startRunner()
          const later = yield* c.scheduleTimer({ in: "1h" })
          yield* advance(SEC) // the runner now sleeps until the hour
          const sooner = yield* c.scheduleTimer({ in: "1m" })
          yield* advance(MIN)
          assert.strictEqual(firedAt(yield* c.get(sooner.id)), new Date(T0 + SEC + MIN).toISOString())
          assert.strictEqual((yield* c.get(later.id)).status, "scheduled")
          // Rescheduling earlier and cancelling re-arm the same way.
          const moved = yield* c.reschedule(later.id, "+2m")
          yield* advance(2 * MIN)
          assert.strictEqual(firedAt(yield* c.get(moved.id)), moved.fireAt?.toISOString())
        })
      )
    )

    it.effect("reads its next instants again only after commits that can move them", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(T0)
        const reads = { due: 0, action: 0 }
        // The real store, its two reads counted.
        const counted = Layer.effect(
          EventStoreTag,
          Effect.map(EventStoreTag, (s) => ({
            ...s,
            nextDueAt: Effect.tap(s.nextDueAt, () => void reads.due++),
            nextActionAt: Effect.tap(s.nextActionAt, () => void reads.action++)
          }))
        ).pipe(Layer.provide(store()))
        yield* Effect.gen(function* () {
          const c = yield* Coordinator
          yield* startRunner()
          const hour = yield* c.scheduleTimer({ in: "1h" })
          yield* settle
          reads.due = 0
          reads.action = 0
          // Later instants, no actions: nothing the loops wait for can have moved.
          for (let i = 2; i <= 21; i++) {
            yield* c.scheduleTimer({ in: `${i}h` })
            yield* settle
          }
          assert.deepStrictEqual(reads, { due: 0, action: 0 })
          // An earlier instant is read, and fires on time.
          const soon = yield* c.scheduleTimer({ in: "1m" })
          yield* settle
          assert.isAbove(reads.due, 0)
          assert.strictEqual(reads.action, 0)
          yield* advance(MIN)
          assert.strictEqual(firedAt(yield* c.get(soon.id)), new Date(T0 + MIN).toISOString())
          // New actions are read too: an event with one fires, its action is delivered.
          const logged = yield* c.schedule({
            kind: "checkpoint",
            at: "+1m",
            attendees: [],
            onFire: [{ _tag: "log" }]
          })
          yield* advance(MIN)
          assert.strictEqual((yield* c.listActions({ eventId: logged.id }))[0]?.status, "delivered")
          yield* advance(HOUR - 2 * MIN)
          assert.strictEqual(firedAt(yield* c.get(hour.id)), new Date(T0 + HOUR).toISOString())
        }).pipe(
          Effect.provide(Layer.merge(Layer.provideMerge(coordinatorLayer, counted), platform)),
          Effect.scoped
        )
      })
    )

    it.effect("waits longer than 2^31−1 ms in chunks and fires years ahead on time", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          // No clock check: the only chunking left is the runtime's timer limit.
          yield* startRunner({ clockCheckMs: Number.POSITIVE_INFINITY })
          const at = T0 + 3 * 365 * DAY + 123
          const timer = yield* c.scheduleTimer({ at })
          for (const sleep of yield* TestClock.sleeps()) {
            assert.isAtMost(sleep.valueOf() - T0, Runner.MAX_SLEEP_MS)
          }
          yield* advance(Runner.MAX_SLEEP_MS)
          assert.strictEqual((yield* c.get(timer.id)).status, "scheduled")
          yield* advance(at - T0 - Runner.MAX_SLEEP_MS - 1)
          assert.strictEqual((yield* c.get(timer.id)).status, "scheduled")
          yield* advance(1)
          assert.strictEqual((yield* c.get(timer.id)).firedAt?.getTime(), at)
        })
      )
    )

    it.effect("reads the wall clock again at least every minute while it waits", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          yield* startRunner()
          const timer = yield* c.scheduleTimer({ in: "1h" })
          yield* settle
          const sleeps = Chunk.toReadonlyArray(yield* TestClock.sleeps()).map((d) => d.valueOf() - T0)
          assert.deepStrictEqual(sleeps, [Runner.CLOCK_CHECK_MS])
          yield* advance(HOUR - 1)
          assert.strictEqual((yield* c.get(timer.id)).status, "scheduled")
          yield* advance(1)
          assert.strictEqual((yield* c.get(timer.id)).firedAt?.getTime(), T0 + HOUR)
        })
      )
    )

    it.effect("re-arms after a deferral cascade and fires at the moved instant", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          yield* startRunner()
          const e = yield* c.schedule({ kind: "review", at: "+10m", attendees: ["alice", "bob"], quorum: 2 })
          yield* c.confirm(e.id, "alice")
          yield* c.defer(e.id, "bob", "5m")
          yield* advance(10 * MIN)
          const moved = yield* c.get(e.id)
          assert.strictEqual(moved.status, "scheduled")
          assert.strictEqual(moved.fireAt?.getTime(), T0 + 15 * MIN)
          yield* c.confirm(e.id, "bob")
          yield* advance(5 * MIN - 1)
          assert.strictEqual((yield* c.get(e.id)).status, "scheduled")
          yield* advance(1)
          assert.strictEqual((yield* c.get(e.id)).firedAt?.getTime(), T0 + 15 * MIN)
        })
      )
    )

    it.effect("misses at once when a decline makes the quorum unreachable", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          yield* startRunner()
          const e = yield* c.schedule({ kind: "deploy", at: "+1h", attendees: ["a", "b"], quorum: 2 })
          yield* advance(MIN)
          yield* c.decline(e.id, "b")
          yield* settle
          const missed = yield* c.get(e.id)
          assert.strictEqual(missed.status, "missed")
          assert.strictEqual(missed.missedAt?.getTime(), T0 + MIN)
        })
      )
    )

    it.effect("on start processes what came due while it was down, in fire-time order", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const b = yield* c.scheduleTimer({ in: "2m", name: "b" })
          const a = yield* c.scheduleTimer({ in: "1m", name: "a" })
          const strict = yield* c.scheduleTimer({ in: "3m", name: "strict", misfire: "miss" })
          const lenient = yield* c.scheduleTimer({ in: "9m30s", name: "lenient", misfire: "miss" })
          yield* TestClock.adjust(10 * MIN) // no runner: nothing happens
          assert.strictEqual((yield* c.get(a.id)).status, "scheduled")
          yield* startRunner({ misfireGraceMs: MIN })
          const [ea, eb, es, el] = yield* Effect.all([
            c.get(a.id),
            c.get(b.id),
            c.get(strict.id),
            c.get(lenient.id)
          ])
          assert.strictEqual(ea.status, "fired")
          assert.strictEqual(eb.status, "fired")
          assert.strictEqual(el.status, "fired")
          assert.strictEqual(es.status, "missed")
          assert.match(es.reason ?? "", /misfired/)
          const late = (yield* c.history(a.id)).find((h) => h.type === "fired")?.detail.lateByMs
          assert.strictEqual(late, 9 * MIN)
          assert.isTrue(ea.updatedAt.getTime() === T0 + 10 * MIN)
          const order = (yield* c.list({ status: "fired" })).map((e) => e.name)
          assert.deepStrictEqual(order, ["a", "b", "lenient"])
        })
      )
    )

    it.effect("watch streams every transition in commit order, filtered", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const runner = yield* startRunner()
          const all = yield* Effect.fork(Stream.runCollect(Stream.take(runner.watch(), 4)))
          const bobs = yield* Effect.fork(Stream.runCollect(Stream.take(runner.watch({ agent: "bob" }), 3)))
          yield* settle
          const e = yield* c.schedule({ kind: "review", at: "+1m", attendees: ["alice", "bob"], quorum: 1 })
          const other = yield* c.schedule({ kind: "review", at: "+1m", attendees: ["carol"], quorum: 1 })
          yield* c.confirm(e.id, "alice")
          yield* advance(MIN)
          const types = Chunk.toReadonlyArray(yield* Fiber.join(all)).map(
            (t) => `${t.eventId === e.id ? "e" : "o"}:${t.type}`
          )
          assert.deepStrictEqual(types, ["e:scheduled", "o:scheduled", "e:confirmed", "e:fired"])
          const forBob = Chunk.toReadonlyArray(yield* Fiber.join(bobs))
          assert.deepStrictEqual(
            forBob.map((t) => t.type),
            ["scheduled", "confirmed", "fired"]
          )
          assert.isTrue(forBob.every((t) => t.eventId === e.id))
          assert.isTrue(forBob.every((t, i) => i === 0 || t.seq > forBob[i - 1]!.seq))
          assert.notStrictEqual(other.id, e.id)
        })
      )
    )

    it.effect("listen calls back with the same transitions, filtered, until stopped", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const runner = yield* startRunner()
          const seen: Array<string> = []
          const stop = yield* runner.listen((t) => seen.push(`${t.type}:${t.actor}`), { agent: "bob" })
          const e = yield* c.schedule({ kind: "review", at: "+1m", attendees: ["alice", "bob"], quorum: 1 })
          yield* c.schedule({ kind: "review", at: "+1m", attendees: ["carol"], quorum: 1 })
          yield* c.confirm(e.id, "bob")
          yield* advance(MIN)
          assert.deepStrictEqual(seen, ["scheduled:organizer", "confirmed:bob", "fired:t-minus"])
          stop()
          yield* c.scheduleTimer({ in: "1m", name: "after" })
          yield* c.schedule({ kind: "review", at: "+1m", attendees: ["bob"], quorum: 1 })
          yield* advance(MIN)
          assert.strictEqual(seen.length, 3)
        })
      )
    )

    it.effect(
      "listeners hear this process's commits as they commit: each transition once, as the log holds it",
      () =>
        scenario(
          Effect.gen(function* () {
            const c = yield* Coordinator
            const store = yield* EventStoreTag
            const runner = yield* startRunner()
            const heard: Array<Transition> = []
            yield* runner.listen((t) => heard.push(t))
            yield* settle
            // The SQL stores hand a commit's transitions over as it commits (the memory store leaves
            // them to the tail): heard before the call that committed returns.
            const direct = backend !== "memory"
            const e = yield* c.schedule({ kind: "review", at: "+1m", attendees: ["alice", "bob"], quorum: 1 })
            if (direct)
              assert.deepStrictEqual(
                heard.map((t) => `${t.type}:${t.eventId === e.id}`),
                ["scheduled:true"]
              )
            yield* c.confirm(e.id, "alice")
            if (direct) assert.strictEqual(heard.length, 2)
            // A group commit of concurrent calls.
            const [timer] = yield* Effect.all(
              [
                c.scheduleTimer({ in: "30s", name: "t" }),
                c.confirm(e.id, "bob"),
                c.scheduleTimer({ in: "2m" })
              ],
              { concurrency: "unbounded" }
            )
            if (direct) assert.strictEqual(heard.length, 5)
            // An event that joins a campaign in the transaction that schedules it: its transitions
            // carry the campaign, as the log has them (a listener filtered on it hears both).
            const campaign = yield* c.createCampaign("k")
            const inCampaign: Array<string> = []
            yield* runner.listen((t) => inCampaign.push(t.type), { campaignId: campaign.id })
            yield* c.addToCampaign(campaign.id, { kind: "timer", at: "+5m", attendees: [], quorum: 0 })
            if (direct) assert.deepStrictEqual(inCampaign, ["scheduled", "campaign_added"])
            // A commit that cannot describe what it appended is left to the tail; the next commit,
            // made before the tail has read, must not overtake it.
            const retried = (n: number) => ({
              eventId: timer.id,
              at: new Date(T0),
              type: "action_retried" as const,
              actor: "test",
              detail: { n }
            })
            yield* store.transaction(store.appendHistory([retried(1)]))
            yield* store.transaction(
              Effect.zipRight(store.updateEvents([timer]), store.appendHistory([retried(2)]))
            )
            // An append outside a transaction is heard too (through the log).
            yield* store.appendHistory([retried(3)])
            yield* settle
            assert.deepStrictEqual(heard[heard.length - 1]?.detail, { n: 3 })
            yield* advance(MIN)
            // Two ticks fire (at 30 s and at 1 m); over the network they take their time.
            let log = yield* store.historySince(0, 1_000)
            for (let i = 0; i < 50 && log.filter((t) => t.type === "fired").length < 2; i++) {
              yield* settle
              log = yield* store.historySince(0, 1_000)
            }
            assert.deepStrictEqual(
              log.map((t) => t.type),
              [
                "scheduled",
                "confirmed",
                // The group commits its schedules, then its responses.
                "scheduled",
                "scheduled",
                "confirmed",
                "scheduled",
                "campaign_added",
                "action_retried",
                "action_retried",
                "action_retried",
                "fired",
                "fired"
              ]
            )
            assert.deepStrictEqual(heard, [...log])
            // (The memory store's log keeps the campaign an entry's event had when it was written.)
            if (direct) assert.deepStrictEqual(inCampaign, ["scheduled", "campaign_added"])
          })
        )
    )

    it.live("a listener that accepts latency is fed once per window; an eager one ends the window", () =>
      Effect.gen(function* () {
        const reads = { n: 0 }
        const counted = Layer.effect(
          EventStoreTag,
          Effect.map(EventStoreTag, (s) => ({
            ...s,
            historySince: (seq: number, limit: number) =>
              Effect.tap(s.historySince(seq, limit), () => void reads.n++)
          }))
        ).pipe(Layer.provide(store()))
        yield* Effect.gen(function* () {
          const c = yield* Coordinator
          const runner = yield* startRunner()
          const lazy: Array<string> = []
          // The burst below must fit in one window, also when each schedule is a network call.
          const windowMs = networked ? 2_000 : 400
          yield* runner.listen((t) => lazy.push(t.eventId), {}, { latencyMs: windowMs })
          reads.n = 0
          const ids: Array<string> = []
          for (let i = 0; i < 20; i++) {
            ids.push((yield* c.scheduleTimer({ in: "1h" })).id)
            yield* Effect.sleep("10 millis")
          }
          // One read opens the window; the other commits of the burst wait for its end.
          assert.isAtMost(reads.n, 2)
          yield* Effect.sleep(windowMs + 200)
          assert.deepStrictEqual(lazy, ids)
          // A window is open again; a listener that wants transitions at once ends it.
          yield* c.scheduleTimer({ in: "1h" })
          yield* Effect.sleep("50 millis")
          const eager: Array<string> = []
          yield* runner.listen((t) => eager.push(t.eventId))
          const next = yield* c.scheduleTimer({ in: "1h" })
          yield* Effect.sleep("100 millis")
          assert.include(eager, next.id)
        }).pipe(
          Effect.provide(Layer.merge(Layer.provideMerge(coordinatorLayer, counted), platform)),
          Effect.scoped
        )
      })
    )

    it.effect("every watch stream ends when the runner stops", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const scope = yield* Scope.make()
          const runner = yield* Effect.provideService(startRunner(), Scope.Scope, scope)
          const watching = yield* Effect.fork(Stream.runCollect(runner.watch()))
          yield* settle
          yield* c.scheduleTimer({ in: "1m" })
          yield* settle
          yield* Scope.close(scope, Exit.void)
          const seen = yield* TestServices.provideLive(Effect.timeout(Fiber.join(watching), "5 seconds"))
          assert.deepStrictEqual(
            Chunk.toReadonlyArray(seen).map((t) => t.type),
            ["scheduled"]
          )
        })
      )
    )
  })
}

describe("Runner: recurrence across daylight-saving changes", () => {
  const scenario = <A, E>(
    start: number,
    body: Effect.Effect<A, E, Coordinator | EventStore | Runner.Platform | Scope.Scope>
  ) =>
    Effect.gen(function* () {
      yield* TestClock.setTime(start)
      return yield* body
    }).pipe(Effect.provide(Layer.merge(coordinatorOn(backends[1]![1]), platform)), Effect.scoped)

  /** The fire instants of a series after running the runner over `days`. */
  const runSeries = (cron: string, tz: string, days: number) =>
    Effect.gen(function* () {
      const c = yield* Coordinator
      yield* startRunner()
      const first = yield* c.scheduleTimer({ name: "daily", recurrence: { cron, tz } })
      for (let i = 0; i < days * 24; i++) yield* advance(HOUR)
      const fired = (yield* c.list({ status: "fired" })).filter((e) => e.recurrence?.seriesId === first.id)
      for (const e of fired) assert.strictEqual(e.firedAt?.getTime(), e.fireAt?.getTime())
      return fired.map((e) => e.firedAt!.toISOString())
    })

  it.effect("02:30 daily in New York runs once on the day 02:00–03:00 is skipped", () =>
    scenario(
      Date.parse("2026-03-06T12:00:00Z"),
      Effect.map(runSeries("30 2 * * *", "America/New_York", 4), (fired) =>
        assert.deepStrictEqual(fired, [
          "2026-03-07T07:30:00.000Z",
          "2026-03-08T07:30:00.000Z",
          "2026-03-09T06:30:00.000Z",
          "2026-03-10T06:30:00.000Z"
        ])
      )
    )
  )

  it.effect("02:30 daily in Berlin runs once when 02:00–03:00 is skipped", () =>
    scenario(
      Date.parse("2026-03-27T12:00:00Z"),
      Effect.map(runSeries("30 2 * * *", "Europe/Berlin", 3), (fired) =>
        assert.deepStrictEqual(fired, [
          "2026-03-28T01:30:00.000Z",
          "2026-03-29T01:30:00.000Z",
          "2026-03-30T00:30:00.000Z"
        ])
      )
    )
  )

  it.effect("01:30 daily in New York runs once on the day 01:00–02:00 repeats", () =>
    scenario(
      Date.parse("2026-10-31T00:00:00Z"),
      Effect.map(runSeries("30 1 * * *", "America/New_York", 3), (fired) =>
        assert.deepStrictEqual(fired, [
          "2026-10-31T05:30:00.000Z",
          "2026-11-01T05:30:00.000Z",
          "2026-11-02T06:30:00.000Z"
        ])
      )
    )
  )

  it.effect("02:30 daily in Berlin runs once on the day 02:00–03:00 repeats", () =>
    scenario(
      Date.parse("2026-10-24T00:00:00Z"),
      Effect.map(runSeries("30 2 * * *", "Europe/Berlin", 3), (fired) =>
        assert.deepStrictEqual(fired, [
          "2026-10-24T00:30:00.000Z",
          "2026-10-25T00:30:00.000Z",
          "2026-10-26T01:30:00.000Z"
        ])
      )
    )
  )

  it.effect("each occurrence is a new event of the series with fresh responses", () =>
    scenario(
      T0,
      Effect.gen(function* () {
        const c = yield* Coordinator
        yield* startRunner()
        const first = yield* c.schedule({
          kind: "meeting",
          attendees: ["alice", "bob"],
          quorum: 1,
          recurrence: { cron: "0 9 * * *", tz: "UTC" }
        })
        assert.strictEqual(first.fireAt?.toISOString(), "2026-01-01T09:00:00.000Z")
        yield* c.confirm(first.id, "alice")
        yield* advance(9 * HOUR)
        assert.strictEqual((yield* c.get(first.id)).status, "fired")
        const next = (yield* c.list({ status: "scheduled" }))[0]!
        assert.strictEqual(next.recurrence?.seriesId, first.id)
        assert.strictEqual(next.fireAt?.toISOString(), "2026-01-02T09:00:00.000Z")
        assert.deepStrictEqual(
          next.attendees.map((a) => a.status),
          ["pending", "pending"]
        )
        // Nobody confirms: the second occurrence is missed, and the series goes on.
        yield* advance(DAY)
        assert.strictEqual((yield* c.get(next.id)).status, "missed")
        const third = (yield* c.list({ status: "scheduled" }))[0]!
        assert.strictEqual(third.fireAt?.toISOString(), "2026-01-03T09:00:00.000Z")
        // Cancelling an occurrence schedules the next; endSeries stops it.
        yield* c.cancel(third.id)
        const fourth = (yield* c.list({ status: "scheduled" }))[0]!
        assert.strictEqual(fourth.fireAt?.toISOString(), "2026-01-04T09:00:00.000Z")
        yield* c.cancel(fourth.id, { endSeries: true })
        assert.strictEqual((yield* c.list({ status: "scheduled" })).length, 0)
      })
    )
  )
})

describe("Runner: catch-up after downtime", () => {
  /** An hourly series whose runner was down for 5 h 30 min: the fire instants it then produces. */
  const afterDowntime = (catchUp: "skip" | "once" | "all") =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0)
      const c = yield* Coordinator
      const first = yield* c.scheduleTimer({ name: "hourly", recurrence: { cron: "0 * * * *", catchUp } })
      assert.strictEqual(first.fireAt?.getTime(), T0)
      yield* TestClock.adjust(5 * HOUR + 30 * MIN)
      yield* startRunner()
      yield* advance(MIN)
      const series = (yield* c.list({})).filter((e) => e.recurrence?.seriesId === first.id)
      return {
        fired: series.filter((e) => e.status === "fired").map((e) => (e.fireAt!.getTime() - T0) / HOUR),
        scheduled: series
          .filter((e) => e.status === "scheduled")
          .map((e) => (e.fireAt!.getTime() - T0) / HOUR)
      }
    }).pipe(Effect.provide(Layer.merge(coordinatorOn(backends[1]![1]), platform)), Effect.scoped)

  it.effect("skip: the overdue occurrence fires, the missed slots are skipped", () =>
    Effect.map(afterDowntime("skip"), (r) => assert.deepStrictEqual(r, { fired: [0], scheduled: [6] }))
  )
  it.effect("once: one catch-up occurrence for the latest missed slot", () =>
    Effect.map(afterDowntime("once"), (r) => assert.deepStrictEqual(r, { fired: [0, 5], scheduled: [6] }))
  )
  it.effect("all: every missed slot runs, in order", () =>
    Effect.map(afterDowntime("all"), (r) =>
      assert.deepStrictEqual(r, { fired: [0, 1, 2, 3, 4, 5], scheduled: [6] })
    )
  )
})
