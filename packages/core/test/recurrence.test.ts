import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as TestClock from "effect/TestClock"
import { Coordinator } from "../src/Coordinator.ts"
import type { EventStore } from "../src/EventStore.ts"
import * as Lifecycle from "../src/Lifecycle.ts"
import { backends, coordinatorOn, T0 } from "./backends.ts"

const SEC = 1_000
const MIN = 60 * SEC
const HOUR = 60 * MIN
const DAY = 24 * HOUR

const iso = (ms: number) => new Date(ms).toISOString()

/** Ticks at `at` with a one-minute misfire grace, the clock moved there first (responses read it). */
const tickAt = (at: number) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(at)
    const c = yield* Coordinator
    return yield* c.tick(at, { misfireGraceMs: MIN })
  })

/** Every event of a series, in fire-time order, as `<fireAt offset from T0 in minutes>:<status>`. */
const seriesOf = (seriesId: string) =>
  Effect.gen(function* () {
    const c = yield* Coordinator
    const all = yield* c.list({})
    return all
      .filter((e) => e.recurrence?.seriesId === seriesId)
      .map((e) => `${(e.fireAt!.getTime() - T0) / MIN}:${e.status}`)
  })

const scheduledOf = (seriesId: string) =>
  Effect.gen(function* () {
    const c = yield* Coordinator
    const all = yield* c.list({ status: "scheduled" })
    return all.filter((e) => e.recurrence?.seriesId === seriesId)
  })

for (const [backend, store] of backends) {
  describe(`recurrence on ${backend}`, () => {
    const scenario = <A, E>(body: Effect.Effect<A, E, Coordinator | EventStore>) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(T0)
        return yield* body
      }).pipe(Effect.provide(coordinatorOn(store)))

    it.effect("the next occurrence's deadline keeps the series' spacing after deferrals", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const first = yield* c.schedule({
            kind: "meeting",
            attendees: ["alice", "bob"],
            quorum: 2,
            deadline: "2026-01-01T10:00:00Z",
            recurrence: { cron: "0 9 * * *" }
          })
          assert.strictEqual(first.fireAt?.toISOString(), "2026-01-01T09:00:00.000Z")
          yield* c.confirm(first.id, "alice")
          yield* c.defer(first.id, "bob", "30m")
          yield* tickAt(T0 + 9 * HOUR)
          yield* c.confirm(first.id, "bob")
          yield* tickAt(T0 + 9 * HOUR + 30 * MIN)
          assert.strictEqual((yield* c.get(first.id)).status, "fired")
          const [next] = yield* scheduledOf(first.id)
          assert.strictEqual(next?.fireAt?.toISOString(), "2026-01-02T09:00:00.000Z")
          // One hour after the slot, as the first occurrence had, not 30 min (10:00 − the moved 09:30).
          assert.strictEqual(next?.deadline?.toISOString(), "2026-01-02T10:00:00.000Z")
        })
      )
    )

    it.effect("misfire miss does not count the wait for a campaign predecessor as lateness", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const campaign = yield* c.createCampaign("release")
          const review = yield* c.addToCampaign(campaign.id, {
            kind: "review",
            at: "+9h",
            attendees: ["alice"],
            quorum: 1
          })
          const deploy = yield* c.addToCampaign(campaign.id, {
            kind: "deploy",
            at: "+9h5m",
            misfire: "miss",
            attendees: [],
            quorum: 0
          })
          yield* c.link(campaign.id, review.id, deploy.id)
          yield* c.defer(review.id, "alice", "1h")
          yield* tickAt(T0 + 9 * HOUR) // the review moves to 10:00
          yield* tickAt(T0 + 9 * HOUR + 5 * MIN) // the deploy is due and waits for it
          assert.strictEqual((yield* c.get(deploy.id)).status, "scheduled")
          yield* c.confirm(review.id, "alice")
          const result = yield* tickAt(T0 + 10 * HOUR)
          assert.deepStrictEqual(result.fired, [deploy.id, review.id])
          const fired = yield* c.get(deploy.id)
          assert.strictEqual(fired.status, "fired")
          assert.strictEqual(fired.firedAt?.getTime(), T0 + 10 * HOUR)
        })
      )
    )

    it.effect("misfire miss still misses a dependent whose predecessor fired long before a late tick", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const campaign = yield* c.createCampaign("release")
          const build = yield* c.addToCampaign(campaign.id, { kind: "checkpoint", at: "+1h", attendees: [] })
          const deploy = yield* c.addToCampaign(campaign.id, {
            kind: "deploy",
            at: "+2h",
            misfire: "miss",
            attendees: []
          })
          yield* c.link(campaign.id, build.id, deploy.id)
          yield* tickAt(T0 + HOUR)
          assert.strictEqual((yield* c.get(build.id)).status, "fired")
          // Down from 01:00 to 05:00: the deploy was ready at 02:00, so it is 3 h late.
          yield* tickAt(T0 + 5 * HOUR)
          const missed = yield* c.get(deploy.id)
          assert.strictEqual(missed.status, "missed")
          assert.match(missed.reason ?? "", /misfired: 3h late/)
        })
      )
    )

    it.effect("misfire miss honours a deferral asked for before a late tick", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const e = yield* c.schedule({
            kind: "review",
            at: "+9h",
            attendees: ["alice", "bob"],
            quorum: 2,
            misfire: "miss"
          })
          yield* c.confirm(e.id, "alice")
          yield* c.defer(e.id, "bob", "10m")
          // Two minutes late: the deferral still moves the countdown instead of a misfire.
          const late = yield* tickAt(T0 + 9 * HOUR + 2 * MIN)
          assert.deepStrictEqual(late, { fired: [], missed: [], deferred: [e.id] })
          assert.strictEqual((yield* c.get(e.id)).fireAt?.getTime(), T0 + 9 * HOUR + 10 * MIN)
          yield* c.confirm(e.id, "bob")
          const result = yield* tickAt(T0 + 9 * HOUR + 10 * MIN)
          assert.deepStrictEqual(result.fired, [e.id])
        })
      )
    )

    it.effect("a deferral past later slots creates no catch-up occurrence", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const first = yield* c.schedule({
            kind: "checkpoint",
            attendees: ["alice"],
            quorum: 1,
            maxDeferrals: 1,
            recurrence: { cron: "0 * * * *", catchUp: "all" }
          })
          assert.strictEqual(first.fireAt?.getTime(), T0)
          yield* c.defer(first.id, "alice", "90m")
          yield* tickAt(T0)
          yield* c.confirm(first.id, "alice")
          yield* tickAt(T0 + 90 * MIN)
          // The 01:00 slot passed while the occurrence was legitimately deferred: not missed.
          assert.deepStrictEqual(yield* seriesOf(first.id), ["90:fired", "120:scheduled"])
        })
      )
    )

    it.effect("a reschedule past later slots creates no catch-up occurrence", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const first = yield* c.scheduleTimer({ name: "hourly", recurrence: { cron: "0 * * * *" } })
          yield* c.reschedule(first.id, "+150m")
          yield* tickAt(T0 + 150 * MIN)
          assert.deepStrictEqual(yield* seriesOf(first.id), ["150:fired", "180:scheduled"])
        })
      )
    )

    it.effect("slots that pass during downtime after a deferral are still caught up", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const first = yield* c.scheduleTimer({
            name: "hourly",
            recurrence: { cron: "0 * * * *", catchUp: "all" }
          })
          yield* c.reschedule(first.id, "+30m")
          // Nothing runs from 00:30 to 03:10: the 01:00, 02:00 and 03:00 slots were missed.
          yield* tickAt(T0 + 3 * HOUR + 10 * MIN)
          assert.deepStrictEqual(yield* seriesOf(first.id), [
            "30:fired",
            "60:fired",
            "120:fired",
            "180:fired",
            "240:scheduled"
          ])
        })
      )
    )

    it.effect("catch-up occurrences are exempt from misfire miss", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const first = yield* c.scheduleTimer({
            name: "hourly",
            misfire: "miss",
            recurrence: { cron: "0 * * * *", catchUp: "all" }
          })
          yield* tickAt(T0 + 3 * HOUR + 30 * MIN)
          // The occurrence that existed misfires; the catch-ups exist because they are late.
          assert.deepStrictEqual(yield* seriesOf(first.id), [
            "0:missed",
            "60:fired",
            "120:fired",
            "180:fired",
            "240:scheduled"
          ])
        })
      )
    )

    it.effect("a catch-up occurrence left unprocessed is late from its creation", () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const first = yield* c.scheduleTimer({
            name: "hourly",
            misfire: "miss",
            recurrence: { cron: "0 * * * *", catchUp: "once" }
          })
          // Cancelled at 02:30 with no runner: the 02:00 catch-up is created then, and waits a day.
          yield* TestClock.setTime(T0 + 2 * HOUR + 30 * MIN)
          yield* c.cancel(first.id)
          const [catchUp] = yield* scheduledOf(first.id)
          assert.strictEqual(catchUp?.fireAt?.getTime(), T0 + 2 * HOUR)
          yield* tickAt(T0 + DAY + 2 * HOUR + 30 * MIN)
          const missed = yield* c.get(catchUp!.id)
          assert.strictEqual(missed.status, "missed")
          assert.match(missed.reason ?? "", /misfired: 1d late/)
        })
      )
    )

    it.effect(`catchUp all runs at most the latest ${Lifecycle.MAX_CATCH_UP_OCCURRENCES} missed slots`, () =>
      scenario(
        Effect.gen(function* () {
          const c = yield* Coordinator
          const first = yield* c.scheduleTimer({
            name: "every second",
            recurrence: { cron: "* * * * * *", catchUp: "all" }
          })
          // Down for an hour: 3 600 slots missed after the first one.
          const result = yield* tickAt(T0 + HOUR + 500)
          const cap = Lifecycle.MAX_CATCH_UP_OCCURRENCES
          assert.strictEqual(result.fired.length, 1 + cap)
          const series = (yield* c.list({})).filter((e) => e.recurrence?.seriesId === first.id)
          const fired = series.filter((e) => e.status === "fired").map((e) => e.fireAt!.getTime())
          assert.strictEqual(fired[0], T0)
          assert.strictEqual(fired[1], T0 + HOUR - (cap - 1) * SEC)
          assert.strictEqual(fired.at(-1), T0 + HOUR)
          const scheduled = series.filter((e) => e.status === "scheduled")
          assert.deepStrictEqual(
            scheduled.map((e) => e.fireAt!.getTime()),
            [T0 + HOUR + SEC]
          )
          const firstCatchUp = series.find((e) => e.fireAt!.getTime() === fired[1])!
          const entry = (yield* c.history(firstCatchUp.id)).find((h) => h.type === "scheduled")
          assert.deepStrictEqual(entry?.detail.catchUpSkipped, {
            count: 3_600 - cap,
            from: iso(T0 + SEC),
            until: iso(T0 + HOUR - cap * SEC)
          })
        })
      )
    )
  })
}

describe("recurrence rules", () => {
  it("a catch-up after a year down is capped without walking the whole backlog", () => {
    const event = Either.getOrThrow(
      Lifecycle.buildEvent(
        { kind: "timer", attendees: [], recurrence: { cron: "* * * * * *", catchUp: "all" } },
        "01900000-0000-7000-8000-000000000000",
        T0
      )
    )
    const now = T0 + 365 * DAY
    const started = performance.now()
    // A per-second schedule: 31.5 million missed slots.
    const next = Lifecycle.nextOccurrence(event, "01900000-0000-7000-8000-000000000001", now)
    assert.isBelow(performance.now() - started, 2_000)
    const firstKept = now - Lifecycle.MAX_CATCH_UP_OCCURRENCES * SEC
    assert.strictEqual(next?.event.fireAt?.getTime(), firstKept)
    assert.strictEqual(Lifecycle.nextOccurrenceAt(event, now), firstKept)
    assert.deepStrictEqual(next?.history[0]?.detail.catchUpSkipped, {
      from: iso(T0 + SEC),
      until: iso(firstKept - SEC),
      countAtLeast: 10_000
    })
  })
})
