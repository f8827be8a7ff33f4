import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as TestClock from "effect/TestClock"
import { Coordinator } from "../src/Coordinator.ts"
import type { CoordinatorError } from "../src/Errors.ts"
import type { ScheduleInput } from "../src/Lifecycle.ts"
import { backends, coordinatorOn, T0 } from "./backends.ts"

const MIN = 60_000

/** Runs a scenario at T0 on a fresh coordinator. */
const scenario = <A, E>(store: (typeof backends)[number][1], body: Effect.Effect<A, E, Coordinator>) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(T0)
    return yield* body
  }).pipe(Effect.provide(coordinatorOn(store)))

/** The error an operation fails with (the test fails if it succeeds). */
const failure = <A>(effect: Effect.Effect<A, CoordinatorError, Coordinator>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result)
      ? Effect.succeed(result.left)
      : Effect.die(new Error("expected a failure, got a success"))
  )

const review = (overrides: Partial<ScheduleInput> = {}): ScheduleInput => ({
  kind: "review",
  at: "+5m",
  attendees: ["alice", "bob", "carol"],
  quorum: 2,
  ...overrides
})

for (const [backend, store] of backends) {
  describe(`Coordinator on ${backend}`, () => {
    describe("scheduling", () => {
      it.effect("fires at scheduledAt − tMinus, to the millisecond", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(
              review({ at: "2026-01-01T02:00:00.123+01:00", tMinus: "90s", quorum: 0 })
            )
            assert.strictEqual(e.scheduledAt?.toISOString(), "2026-01-01T01:00:00.123Z")
            assert.strictEqual(e.fireAt?.getTime(), T0 + 60 * MIN + 123 - 90_000)
            const got = yield* c.get(e.id)
            assert.deepStrictEqual(got, e)
          })
        )
      )

      it.effect("keeps kinds exactly as given, custom names included", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ kind: "custom:DeployGate" }))
            assert.strictEqual((yield* c.get(e.id)).kind, "custom:DeployGate")
            const bad = yield* failure(c.schedule(review({ kind: "Meeting" })))
            assert.strictEqual(bad._tag, "InvalidInput")
            assert.strictEqual((bad as any).field, "kind")
          })
        )
      )

      it.effect("defaults: quorum = every attendee, maxDeferrals 3, tMinus 0, payload null", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule({ kind: "meeting", at: "+1h", attendees: ["a", "b"] })
            assert.strictEqual(e.quorum, 2)
            assert.strictEqual(e.maxDeferrals, 3)
            assert.strictEqual(e.tMinusMs, 0)
            assert.strictEqual(e.payload, null)
            assert.strictEqual(e.status, "scheduled")
            assert.match(e.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
          })
        )
      )

      it.effect("scheduleMany is one transaction: one bad input writes nothing and names its index", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const error = yield* failure(c.scheduleMany([review(), review({ quorum: 9 }), review()]))
            assert.strictEqual(error._tag, "InvalidInput")
            assert.strictEqual((error as any).field, "[1].quorum")
            assert.strictEqual((yield* c.list()).length, 0)
            const ok = yield* c.scheduleMany([review(), review({ at: "+1m" })])
            assert.strictEqual((yield* c.list()).length, 2)
            assert.deepStrictEqual(
              (yield* c.list()).map((e) => e.id),
              [ok[1]!.id, ok[0]!.id]
            )
          })
        )
      )
    })

    describe("validation (SPEC 3): typed error naming the field, nothing written", () => {
      const cases: ReadonlyArray<readonly [string, ScheduleInput, string]> = [
        ["negative quorum", review({ quorum: -1 }), "quorum"],
        ["fractional quorum", review({ quorum: 1.5 }), "quorum"],
        ["quorum above attendees", review({ quorum: 4 }), "quorum"],
        ["duplicate agent", review({ attendees: ["alice", "alice"], quorum: 1 }), "attendees"],
        ["empty agent", review({ attendees: ["alice", " "], quorum: 1 }), "attendees"],
        ["payload over 64 KiB", review({ payload: { blob: "x".repeat(65 * 1024) } }), "payload"],
        ["payload not JSON (function)", review({ payload: { f: () => 1 } }), "payload"],
        ["payload not JSON (NaN)", review({ payload: [Number.NaN] }), "payload"],
        ["unparsable time", review({ at: "next tuesday" }), "at"],
        ["impossible date", review({ at: "2026-02-30T00:00:00Z" }), "at"],
        ["unparsable duration", review({ tMinus: "5 parsecs" }), "tMinus"],
        ["fire time in the past", review({ at: "2025-12-31T23:59:59Z" }), "at"],
        ["tMinus pushing fire time into the past", review({ at: "+1m", tMinus: "2m" }), "at"],
        ["deadline before fire time", review({ deadline: "+1m" }), "deadline"],
        ["negative maxDeferrals", review({ maxDeferrals: -1 }), "maxDeferrals"],
        [
          "file path leaving the directory",
          review({ onFire: [{ _tag: "file_write", path: "../x", content: "" }] }),
          "onFire[0]"
        ],
        [
          "absolute file path",
          review({ onMiss: [{ _tag: "file_write", path: "/etc/passwd", content: "" }] }),
          "onMiss[0]"
        ],
        [
          "raw shell string as command",
          review({ onFire: [{ _tag: "command", name: "rm -rf /", args: [] }] }),
          "onFire[0]"
        ],
        [
          "webhook that is not http",
          review({ onFire: [{ _tag: "webhook", url: "file:///etc/passwd" }] }),
          "onFire[0]"
        ],
        ["at and after together", review({ after: { eventId: "x" } }), "at"],
        ["after an unknown event", { kind: "deploy", after: { eventId: "nope" } }, "after"],
        ["after with a bad offset", { kind: "deploy", after: "some-id+soon" }, "after"],
        ["after naming no event", { kind: "deploy", after: " +5m" }, "after"]
      ]
      for (const [name, input, field] of cases) {
        it.effect(name, () =>
          scenario(
            store,
            Effect.gen(function* () {
              const c = yield* Coordinator
              const error = yield* failure(c.schedule(input))
              assert.strictEqual(error._tag, "InvalidInput")
              assert.strictEqual((error as any).field, field)
              assert.include(error.message, field)
              assert.strictEqual((yield* c.list()).length, 0)
            })
          )
        )
      }

      it.effect("a payload of exactly 64 KiB is accepted", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const payload = "x".repeat(64 * 1024 - 2) // plus two quotes = 65 536 bytes
            const e = yield* c.schedule(review({ payload }))
            assert.strictEqual((yield* c.get(e.id)).payload, payload)
          })
        )
      )

      it.effect("zero or negative deferral, unknown event, non-attendee", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review())
            const zero = yield* failure(c.defer(e.id, "alice", 0))
            assert.strictEqual(zero._tag, "InvalidInput")
            assert.strictEqual((zero as any).field, "duration")
            const negative = yield* failure(c.defer(e.id, "alice", -5))
            assert.strictEqual((negative as any).field, "duration")
            const unknown = yield* failure(c.confirm("no-such-event", "alice"))
            assert.strictEqual(unknown._tag, "EventNotFound")
            assert.include(unknown.message, "no-such-event")
            const stranger = yield* failure(c.confirm(e.id, "mallory"))
            assert.strictEqual(stranger._tag, "NotAnAttendee")
            assert.include(stranger.message, "mallory")
            assert.strictEqual((yield* c.history(e.id)).length, 1)
          })
        )
      )

      it.effect("any response on a terminal event names its status", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ quorum: 0 }))
            yield* TestClock.adjust(5 * MIN)
            yield* c.tick()
            for (const attempt of [
              c.confirm(e.id, "alice"),
              c.defer(e.id, "alice", "1m"),
              c.decline(e.id, "alice"),
              c.cancel(e.id),
              c.reschedule(e.id, "+1h")
            ]) {
              const error = yield* failure(attempt)
              assert.strictEqual(error._tag, "EventTerminal")
              assert.strictEqual((error as any).status, "fired")
              assert.include(error.message, "already fired")
            }
          })
        )
      )
    })

    describe("lifecycle (SPEC 4)", () => {
      it.effect("fires at fire time once quorum confirmed; tick is inclusive and idempotent", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review())
            yield* c.confirm(e.id, "alice")
            yield* c.confirm(e.id, "bob")
            yield* TestClock.adjust(5 * MIN - 1)
            assert.deepStrictEqual(yield* c.tick(), { fired: [], missed: [], deferred: [] })
            yield* TestClock.adjust(1)
            assert.deepStrictEqual(yield* c.tick(), { fired: [e.id], missed: [], deferred: [] })
            assert.deepStrictEqual(yield* c.tick(), { fired: [], missed: [], deferred: [] })
            const fired = yield* c.get(e.id)
            assert.strictEqual(fired.status, "fired")
            assert.strictEqual(fired.firedAt?.getTime(), T0 + 5 * MIN)
            assert.deepStrictEqual(
              (yield* c.history(e.id)).map((h) => h.type),
              ["scheduled", "confirmed", "confirmed", "fired"]
            )
          })
        )
      )

      it.effect("tick(now) takes the instant as an argument", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ quorum: 0 }))
            assert.deepStrictEqual((yield* c.tick(T0 + MIN)).fired, [])
            assert.deepStrictEqual((yield* c.tick(new Date(T0 + 5 * MIN))).fired, [e.id])
          })
        )
      )

      it.effect("quorum 0 always fires; a timer fires unconditionally", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ quorum: 0 }))
            const t = yield* c.scheduleTimer({ in: "5m", name: "tea" })
            assert.strictEqual(t.fireAt?.getTime(), T0 + 5 * MIN)
            const soon = yield* c.scheduleTimer({ in: 1_000 })
            assert.strictEqual(soon.fireAt?.getTime(), T0 + 1_000)
            assert.strictEqual(t.kind, "timer")
            assert.strictEqual(t.quorum, 0)
            assert.deepStrictEqual(t.attendees, [])
            yield* TestClock.adjust(5 * MIN)
            const result = yield* c.tick()
            assert.deepStrictEqual(result.fired, [soon.id, ...[e.id, t.id].sort()])
          })
        )
      )

      it.effect("quorum equal to attendees: one pending attendee misses it, and is marked missed", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ quorum: 3 }))
            yield* c.confirm(e.id, "alice")
            yield* c.confirm(e.id, "bob")
            yield* TestClock.adjust(5 * MIN)
            assert.deepStrictEqual((yield* c.tick()).missed, [e.id])
            const missed = yield* c.get(e.id)
            assert.strictEqual(missed.status, "missed")
            assert.strictEqual(missed.missedAt?.getTime(), T0 + 5 * MIN)
            assert.include(missed.reason ?? "", "quorum not met (2/3")
            assert.deepStrictEqual(
              missed.attendees.map((a) => a.status),
              ["confirmed", "confirmed", "missed"]
            )
          })
        )
      )

      it.effect("confirming twice is idempotent", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review())
            const once = yield* c.confirm(e.id, "alice")
            yield* TestClock.adjust(1_000)
            const twice = yield* c.confirm(e.id, "alice")
            assert.deepStrictEqual(twice, once)
            assert.strictEqual((yield* c.history(e.id)).filter((h) => h.type === "confirmed").length, 1)
          })
        )
      )

      it.effect("confirm overrides deferred and defer overrides confirmed; the latest response wins", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review())
            let got = yield* c.defer(e.id, "alice", "10m")
            assert.deepStrictEqual(got.attendees[0], {
              agent: "alice",
              status: "deferred",
              respondedAt: new Date(T0),
              deferMs: 10 * MIN
            })
            got = yield* c.confirm(e.id, "alice")
            assert.deepStrictEqual(got.attendees[0], {
              agent: "alice",
              status: "confirmed",
              respondedAt: new Date(T0)
            })
            got = yield* c.defer(e.id, "alice", 30_000)
            assert.strictEqual(got.attendees[0]?.status, "deferred")
            assert.strictEqual(got.attendees[0]?.deferMs, 30_000)
            assert.strictEqual(got.fireAt?.getTime(), T0 + 5 * MIN, "nothing moves at defer time")
          })
        )
      )

      it.effect("a decline that makes the quorum unreachable misses the event at the next tick", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review())
            yield* c.decline(e.id, "alice")
            assert.deepStrictEqual((yield* c.tick()).missed, [], "still reachable with bob and carol")
            yield* c.decline(e.id, "bob")
            yield* TestClock.adjust(1_000)
            const result = yield* c.tick()
            assert.deepStrictEqual(result.missed, [e.id])
            const missed = yield* c.get(e.id)
            assert.include(missed.reason ?? "", "unreachable")
            assert.strictEqual(missed.missedAt?.getTime(), T0 + 1_000, "missed long before its fire time")
          })
        )
      )

      it.effect("deferred attendees do not block a met quorum", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review())
            yield* c.confirm(e.id, "alice")
            yield* c.confirm(e.id, "bob")
            yield* c.defer(e.id, "carol", "1h")
            yield* TestClock.adjust(5 * MIN)
            assert.deepStrictEqual((yield* c.tick()).fired, [e.id])
          })
        )
      )

      it.effect("deferral cascade: fire time moves later by the largest deferral, deferred → pending", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review())
            yield* c.confirm(e.id, "alice")
            yield* c.defer(e.id, "bob", "2m")
            yield* c.defer(e.id, "carol", "3m")
            yield* TestClock.adjust(5 * MIN)
            assert.deepStrictEqual(yield* c.tick(), { fired: [], missed: [], deferred: [e.id] })
            const moved = yield* c.get(e.id)
            assert.strictEqual(moved.status, "scheduled")
            assert.strictEqual(moved.fireAt?.getTime(), T0 + 8 * MIN)
            assert.strictEqual(moved.scheduledAt?.getTime(), T0 + 8 * MIN)
            assert.strictEqual(moved.deferralsUsed, 1)
            assert.deepStrictEqual(
              moved.attendees.map((a) => a.status),
              ["confirmed", "pending", "pending"]
            )
            assert.deepStrictEqual(yield* c.tick(), { fired: [], missed: [], deferred: [] }, "reported once")
            yield* c.confirm(e.id, "bob")
            yield* TestClock.adjust(3 * MIN - 1)
            assert.deepStrictEqual((yield* c.tick()).fired, [])
            yield* TestClock.adjust(1)
            assert.deepStrictEqual((yield* c.tick()).fired, [e.id])
          })
        )
      )

      it.effect("the cascade stops at maxDeferrals", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ maxDeferrals: 2 }))
            for (let round = 0; round < 2; round++) {
              yield* c.defer(e.id, "bob", "1m")
              yield* TestClock.adjust(round === 0 ? 5 * MIN : MIN)
              assert.deepStrictEqual((yield* c.tick()).deferred, [e.id])
            }
            yield* c.defer(e.id, "bob", "1m")
            yield* TestClock.adjust(MIN)
            assert.deepStrictEqual(yield* c.tick(), { fired: [], missed: [e.id], deferred: [] })
          })
        )
      )

      it.effect("the cascade never passes the deadline", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ deadline: "+7m" }))
            yield* c.defer(e.id, "bob", "2m")
            yield* TestClock.adjust(5 * MIN)
            assert.deepStrictEqual((yield* c.tick()).deferred, [e.id], "exactly at the deadline is allowed")
            yield* c.defer(e.id, "bob", "1ms")
            yield* TestClock.adjust(2 * MIN)
            assert.deepStrictEqual((yield* c.tick()).missed, [e.id])
          })
        )
      )

      it.effect("tick reports each list in (fireAt, id) order", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const late = yield* c.schedule(review({ quorum: 0, at: "+3m" }))
            const early = yield* c.schedule(review({ quorum: 0, at: "+1m" }))
            const sameA = yield* c.schedule(review({ quorum: 0, at: "+2m" }))
            const sameB = yield* c.schedule(review({ quorum: 0, at: "+2m" }))
            yield* TestClock.adjust(10 * MIN)
            const same = [sameA.id, sameB.id].sort()
            assert.deepStrictEqual((yield* c.tick()).fired, [early.id, ...same, late.id])
          })
        )
      )

      it.effect("cancel by the organizer; a cancelled event accepts nothing more", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ organizer: "boss" }))
            const cancelled = yield* c.cancel(e.id, { reason: "scope changed" })
            assert.strictEqual(cancelled.status, "cancelled")
            assert.strictEqual(cancelled.reason, "scope changed")
            assert.strictEqual(cancelled.cancelledAt?.getTime(), T0)
            const again = yield* failure(c.cancel(e.id))
            assert.strictEqual((again as any).status, "cancelled")
            yield* TestClock.adjust(10 * MIN)
            assert.deepStrictEqual(yield* c.tick(), { fired: [], missed: [], deferred: [] })
            const last = (yield* c.history(e.id)).at(-1)!
            assert.strictEqual(last.type, "cancelled")
            assert.strictEqual(last.actor, "boss")
          })
        )
      )

      it.effect("reschedule moves the fire time and keeps responses", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const e = yield* c.schedule(review({ tMinus: "1m" }))
            yield* c.confirm(e.id, "alice")
            const moved = yield* c.reschedule(e.id, "+1h")
            assert.strictEqual(moved.fireAt?.getTime(), T0 + 59 * MIN)
            assert.strictEqual(moved.attendees[0]?.status, "confirmed")
            const past = yield* failure(c.reschedule(e.id, "2020-01-01T00:00:00Z"))
            assert.strictEqual((past as any).field, "at")
            yield* TestClock.adjust(5 * MIN)
            assert.deepStrictEqual((yield* c.tick()).missed, [])
          })
        )
      )

      it.effect("fired events are kept until cleanup removes them", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const done = yield* c.scheduleTimer({ at: "+1m" })
            const pending = yield* c.scheduleTimer({ at: "+1h" })
            yield* TestClock.adjust(MIN)
            yield* c.tick()
            yield* TestClock.adjust(MIN)
            assert.strictEqual((yield* c.get(done.id)).status, "fired")
            assert.strictEqual(yield* c.cleanup("5m"), 0, "ended one minute ago: kept")
            assert.strictEqual(yield* c.cleanup(), 1)
            assert.strictEqual((yield* failure(c.get(done.id)))._tag, "EventNotFound")
            assert.strictEqual((yield* c.get(pending.id)).status, "scheduled")
          })
        )
      )

      it.effect("list filters by status, kind, attendee and campaign", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const a = yield* c.schedule(review())
            const b = yield* c.schedule({ kind: "deploy", at: "+1m", attendees: ["zed"] })
            const t = yield* c.scheduleTimer({ at: "+2m" })
            const camp = yield* c.createCampaign("launch")
            yield* c.addToCampaign(camp.id, b.id)
            yield* c.cancel(a.id)
            const ids = (events: ReadonlyArray<{ id: string }>) => events.map((e) => e.id)
            assert.deepStrictEqual(ids(yield* c.list({ status: "scheduled" })), [b.id, t.id])
            assert.deepStrictEqual(ids(yield* c.list({ status: ["cancelled", "fired"] })), [a.id])
            assert.deepStrictEqual(ids(yield* c.list({ kind: "timer" })), [t.id])
            assert.deepStrictEqual(ids(yield* c.list({ attendee: "zed" })), [b.id])
            assert.deepStrictEqual(ids(yield* c.list({ campaignId: camp.id })), [b.id])
            assert.deepStrictEqual(ids(yield* c.list({ limit: 1 })), [b.id])
          })
        )
      )
    })

    describe("campaigns (SPEC 4.7)", () => {
      const threeInCampaign = Effect.gen(function* () {
        const c = yield* Coordinator
        const camp = yield* c.createCampaign("release-v2")
        const a = yield* c.addToCampaign(camp.id, { kind: "checkpoint", at: "+10m", quorum: 0 })
        const b = yield* c.addToCampaign(camp.id, { kind: "review", at: "+10m", quorum: 0 })
        const d = yield* c.addToCampaign(camp.id, { kind: "deploy", at: "+10m", quorum: 0 })
        return { c, camp, a, b, d }
      })

      it.effect("linear order, diamond order, ties broken by the order of adding", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const { c, camp, a, b, d } = yield* threeInCampaign
            assert.deepStrictEqual(yield* c.executionOrder(camp.id), [a.id, b.id, d.id])
            yield* c.link(camp.id, d.id, b.id)
            yield* c.link(camp.id, b.id, a.id)
            assert.deepStrictEqual(yield* c.executionOrder(camp.id), [d.id, b.id, a.id])

            const diamond = yield* c.createCampaign("diamond")
            const top = yield* c.addToCampaign(diamond.id, { kind: "checkpoint", at: "+1h", quorum: 0 })
            const right = yield* c.addToCampaign(diamond.id, { kind: "checkpoint", at: "+1h", quorum: 0 })
            const left = yield* c.addToCampaign(diamond.id, { kind: "checkpoint", at: "+1h", quorum: 0 })
            const bottom = yield* c.addToCampaign(diamond.id, { kind: "checkpoint", at: "+1h", quorum: 0 })
            yield* c.link(diamond.id, top.id, left.id)
            yield* c.link(diamond.id, top.id, right.id)
            yield* c.link(diamond.id, left.id, bottom.id)
            const linked = yield* c.link(diamond.id, right.id, bottom.id)
            assert.strictEqual(linked.dependencies.length, 4)
            assert.deepStrictEqual(yield* c.executionOrder(diamond.id), [
              top.id,
              right.id,
              left.id,
              bottom.id
            ])
            const stored = yield* c.getCampaign(diamond.id)
            assert.deepStrictEqual(stored.events, [top.id, right.id, left.id, bottom.id])
            assert.strictEqual((yield* c.listCampaigns()).length, 2)
          })
        )
      )

      it.effect("a link that would form a cycle is rejected, listing the cycle in order", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const { c, camp, a, b, d } = yield* threeInCampaign
            yield* c.link(camp.id, a.id, b.id)
            yield* c.link(camp.id, b.id, d.id)
            const error = yield* failure(c.link(camp.id, d.id, a.id))
            assert.strictEqual(error._tag, "CycleDetected")
            assert.deepStrictEqual((error as any).cycle, [d.id, a.id, b.id])
            assert.include(error.message, `${d.id} → ${a.id} → ${b.id} → ${d.id}`)
            const self = yield* failure(c.link(camp.id, a.id, a.id))
            assert.deepStrictEqual((self as any).cycle, [a.id])
            assert.strictEqual((yield* c.getCampaign(camp.id)).dependencies.length, 2, "nothing written")
          })
        )
      )

      it.effect("membership rules: unknown campaign, non-member link, one campaign per event", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const { c, camp, a } = yield* threeInCampaign
            assert.strictEqual((yield* failure(c.getCampaign("nope")))._tag, "CampaignNotFound")
            assert.strictEqual((yield* failure(c.addToCampaign("nope", a.id)))._tag, "CampaignNotFound")
            const loose = yield* c.schedule(review())
            const notMember = yield* failure(c.link(camp.id, a.id, loose.id))
            assert.strictEqual((notMember as any).reason, "not-a-member")
            const other = yield* c.createCampaign("other")
            const taken = yield* failure(c.addToCampaign(other.id, a.id))
            assert.strictEqual((taken as any).reason, "in-another-campaign")
            const again = yield* c.addToCampaign(camp.id, a.id)
            assert.strictEqual(again.campaignId, camp.id)
            assert.strictEqual((yield* c.getCampaign(camp.id)).events.length, 3, "adding twice is a no-op")
            assert.strictEqual((yield* failure(c.createCampaign("")))._tag, "InvalidInput")
          })
        )
      )

      it.effect("a dependent due before its predecessor waits, then fires in the same tick", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const camp = yield* c.createCampaign("gate")
            const deploy = yield* c.addToCampaign(camp.id, { kind: "deploy", at: "+1m", quorum: 0 })
            const approve = yield* c.addToCampaign(camp.id, {
              kind: "review",
              at: "+5m",
              attendees: ["lead"],
              quorum: 1
            })
            yield* c.link(camp.id, approve.id, deploy.id)
            yield* TestClock.adjust(MIN)
            assert.deepStrictEqual(yield* c.tick(), { fired: [], missed: [], deferred: [] }, "deploy waits")
            yield* c.confirm(approve.id, "lead")
            yield* TestClock.adjust(4 * MIN)
            assert.deepStrictEqual((yield* c.tick()).fired, [deploy.id, approve.id])
            const order = [(yield* c.get(approve.id)).firedAt, (yield* c.get(deploy.id)).firedAt]
            assert.deepStrictEqual(order[0], order[1])
          })
        )
      )

      it.effect("a missed or cancelled predecessor misses its dependents with reason upstream <id>", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const camp = yield* c.createCampaign("chain")
            const a = yield* c.addToCampaign(camp.id, {
              kind: "review",
              at: "+1m",
              attendees: ["x"],
              quorum: 1
            })
            const b = yield* c.addToCampaign(camp.id, { kind: "deploy", at: "+2m", quorum: 0 })
            const d = yield* c.addToCampaign(camp.id, { kind: "checkpoint", at: "+1h", quorum: 0 })
            yield* c.link(camp.id, a.id, b.id)
            yield* c.link(camp.id, b.id, d.id)
            yield* TestClock.adjust(MIN)
            const result = yield* c.tick()
            assert.deepStrictEqual(result.missed, [a.id, b.id, d.id], "the whole chain, in one tick")
            assert.strictEqual((yield* c.get(b.id)).reason, `upstream ${a.id}`)
            assert.strictEqual((yield* c.get(d.id)).reason, `upstream ${b.id}`)

            const camp2 = yield* c.createCampaign("cancelled")
            const p = yield* c.addToCampaign(camp2.id, { kind: "review", at: "+1h", quorum: 0 })
            const q = yield* c.addToCampaign(camp2.id, { kind: "deploy", at: "+2h", quorum: 0 })
            yield* c.link(camp2.id, p.id, q.id)
            yield* c.cancel(p.id)
            assert.deepStrictEqual((yield* c.tick()).missed, [q.id], "at the next tick, not at its fire time")
            assert.strictEqual((yield* c.get(q.id)).reason, `upstream ${p.id}`)
          })
        )
      )

      it.effect("relative start: after <id> + offset takes its fire time when the predecessor fires", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const build = yield* c.schedule({ kind: "checkpoint", at: "+10m", attendees: ["ci"], quorum: 1 })
            const deploy = yield* c.schedule({ kind: "deploy", after: { eventId: build.id, offset: "5m" } })
            const now0 = yield* c.schedule({ kind: "checkpoint", after: { eventId: build.id } })
            assert.strictEqual(deploy.fireAt, null)
            yield* c.confirm(build.id, "ci")
            yield* TestClock.adjust(12 * MIN)
            assert.deepStrictEqual(
              (yield* c.tick()).fired,
              [build.id, now0.id],
              "offset 0 fires in the same tick"
            )
            const released = yield* c.get(deploy.id)
            assert.strictEqual(released.fireAt?.getTime(), T0 + 17 * MIN, "5m after the actual firing")
            yield* TestClock.adjust(5 * MIN)
            assert.deepStrictEqual((yield* c.tick()).fired, [deploy.id])
            assert.deepStrictEqual(
              (yield* c.history(deploy.id)).map((h) => h.type),
              ["scheduled", "released", "fired"]
            )
            const late = yield* c.schedule({ kind: "deploy", after: `${build.id} + 1h` })
            assert.strictEqual(
              late.fireAt?.getTime(),
              T0 + 12 * MIN + 60 * MIN,
              "after a fired event: known at once"
            )
          })
        )
      )

      it.effect("relative start after a cancelled event is missed upstream", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const build = yield* c.schedule({ kind: "checkpoint", at: "+10m", quorum: 0 })
            const deploy = yield* c.schedule({ kind: "deploy", after: { eventId: build.id, offset: "5m" } })
            yield* c.cancel(build.id)
            assert.deepStrictEqual((yield* c.tick()).missed, [deploy.id])
            assert.strictEqual((yield* c.get(deploy.id)).reason, `upstream ${build.id}`)
            const error = yield* failure(c.schedule({ kind: "deploy", after: { eventId: build.id } }))
            assert.strictEqual(error._tag, "EventTerminal")
          })
        )
      )

      it.effect("cleanup keeps a terminal event while a scheduled event depends on it", () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const camp = yield* c.createCampaign("c")
            const a = yield* c.addToCampaign(camp.id, { kind: "review", at: "+1m", quorum: 0 })
            const b = yield* c.addToCampaign(camp.id, { kind: "deploy", at: "+1h", quorum: 0 })
            yield* c.link(camp.id, a.id, b.id)
            yield* TestClock.adjust(MIN)
            yield* c.tick()
            assert.strictEqual(yield* c.cleanup(), 0)
            yield* TestClock.adjust(60 * MIN)
            assert.deepStrictEqual((yield* c.tick()).fired, [b.id])
            assert.strictEqual(yield* c.cleanup(), 2)
            const left = yield* c.getCampaign(camp.id)
            assert.deepStrictEqual([left.events, left.dependencies], [[], []])
          })
        )
      )
    })
  })
}

describe("review findings: bounds, hidden cycles, malformed input", () => {
  const store = backends[1]![1]
  it.effect("a deferral past the largest instant misses the event instead of breaking every tick", () =>
    scenario(
      store,
      Effect.gen(function* () {
        const c = yield* Coordinator
        const poisoned = yield* c.schedule(review({ attendees: ["x"], quorum: 1, at: "+1m" }))
        const healthy = yield* c.schedule(review({ quorum: 0, at: "+1m" }))
        yield* c.defer(poisoned.id, "x", "14285000w")
        yield* TestClock.adjust(MIN)
        assert.deepStrictEqual(yield* c.tick(), { fired: [healthy.id], missed: [poisoned.id], deferred: [] })
      })
    )
  )

  it.effect("times beyond what a Date holds are rejected, naming the field", () =>
    scenario(
      store,
      Effect.gen(function* () {
        const c = yield* Coordinator
        for (const at of [9e15, "+14500000w"]) {
          const error = yield* failure(c.schedule(review({ at })))
          assert.strictEqual((error as any).field, "at")
        }
        const badIn = yield* failure(c.scheduleTimer({ in: -5 }))
        assert.strictEqual((badIn as any).field, "in")
        const badLimit = yield* failure(c.list({ limit: -1 }))
        assert.strictEqual((badLimit as any).field, "limit")
      })
    )
  )

  it.effect(
    "a link that closes a cycle through a relative start is rejected; links into ended events too",
    () =>
      scenario(
        store,
        Effect.gen(function* () {
          const c = yield* Coordinator
          const camp = yield* c.createCampaign("hidden")
          const b = yield* c.addToCampaign(camp.id, { kind: "timer", at: "+1m", quorum: 0 })
          const a = yield* c.addToCampaign(camp.id, { kind: "deploy", after: b.id })
          assert.deepStrictEqual(
            yield* c.executionOrder(camp.id),
            [b.id, a.id],
            "the relative start orders too"
          )
          const error = yield* failure(c.link(camp.id, a.id, b.id))
          assert.strictEqual(error._tag, "CycleDetected")
          assert.deepStrictEqual((error as any).cycle, [a.id, b.id])
          const x = yield* c.addToCampaign(camp.id, { kind: "timer", at: "+1h", quorum: 0 })
          yield* TestClock.adjust(MIN)
          yield* c.tick()
          const late = yield* failure(c.link(camp.id, x.id, b.id))
          assert.strictEqual(late._tag, "EventTerminal")
        })
      )
  )

  it.effect("malformed actions, sparse payloads and non-string reasons are InvalidInput, never defects", () =>
    scenario(
      store,
      Effect.gen(function* () {
        const c = yield* Coordinator
        const bad: ReadonlyArray<readonly [unknown, string]> = [
          [{ _tag: "shell", cmd: "rm -rf /" }, "onFire[0]"],
          [{ _tag: "file_write", path: 5, content: "" }, "onFire[0]"],
          [{ _tag: "command" }, "onFire[0]"],
          [{ _tag: "command", name: "ok", args: [{ a: 1 }] }, "onFire[0]"],
          [null, "onFire[0]"]
        ]
        for (const [action, field] of bad) {
          const error = yield* failure(c.schedule(review({ onFire: [action as any] })))
          assert.strictEqual(error._tag, "InvalidInput")
          assert.strictEqual((error as any).field, field)
        }
        // biome-ignore lint/suspicious/noSparseArray: the point of the test
        const sparse = yield* failure(c.schedule(review({ payload: [1, , 2] })))
        assert.strictEqual((sparse as any).field, "payload")
        const e = yield* c.schedule(review())
        const reason = yield* failure(c.cancel(e.id, { reason: 42 as any }))
        assert.strictEqual((reason as any).field, "reason")
        assert.strictEqual((yield* c.get(e.id)).status, "scheduled")
      })
    )
  )
})
