/**
 * Group commit: single schedules that arrive together are committed in one transaction, each
 * with its own answer, on every backend.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { Coordinator, unsafeSubmitSchedule, withTenant } from "../src/Coordinator.ts"
import { type CoordinatorError, InvalidInput } from "../src/Errors.ts"
import type { Event } from "../src/Event.ts"
import { EventStore, type EventStoreShape } from "../src/EventStore.ts"
import { TMinus } from "../src/TMinus.ts"
import { backends, scenarioOn, T0 } from "./backends.ts"

const scenario = scenarioOn

/** Lets every fiber that can run go as far as it can. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

for (const [backend, store] of backends) {
  describe(`group commit on ${backend}`, () => {
    it.effect("concurrent schedules commit together; each gets its own event or its own error", () =>
      scenario(
        store,
        Effect.gen(function* () {
          const c = yield* Coordinator
          const s = yield* EventStore
          const before = yield* s.localChanges
          const results = yield* Effect.all(
            Array.from({ length: 200 }, (_, i) =>
              Effect.either(
                i % 10 === 9
                  ? c.schedule({ kind: "review", at: "+5m", attendees: ["a"], quorum: 2 })
                  : c.schedule({ kind: "review", at: `+${i + 1}m`, attendees: ["a", "b"], quorum: 1 })
              )
            ),
            { concurrency: "unbounded" }
          )
          const commits = (yield* s.localChanges) - before
          const stored = yield* c.list({ status: "scheduled" })
          const ok = results.filter(Either.isRight).map((r) => r.right)
          assert.strictEqual(ok.length, 180)
          for (const [i, r] of results.entries()) {
            if (i % 10 === 9) {
              assert.isTrue(Either.isLeft(r))
              if (Either.isLeft(r)) assert.strictEqual(r.left._tag, "InvalidInput")
            } else {
              assert.isTrue(Either.isRight(r))
              if (Either.isRight(r)) assert.strictEqual(r.right.fireAt?.getTime(), T0 + (i + 1) * 60_000)
            }
          }
          assert.deepStrictEqual(new Set(stored.map((e) => e.id)), new Set(ok.map((e) => e.id)))
          for (const e of ok) {
            const history = yield* c.history(e.id)
            assert.deepStrictEqual(
              history.map((h) => [h.type, h.at.getTime()]),
              [["scheduled", T0]]
            )
          }
          // One transaction per group, not per event.
          assert.isAbove(commits, 0)
          assert.isBelow(commits, 10)
        })
      )
    )

    it.effect(
      "unsafeSubmitSchedule queues schedules from outside Effect, each answered with its own outcome",
      () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const s = yield* EventStore
            const submit = unsafeSubmitSchedule(c)!
            const now = yield* Clock.currentTimeMillis
            const before = yield* s.localChanges
            const outcomes: Array<Exit.Exit<Event, CoordinatorError>> = []
            // A refusal is answered at once, and nothing is queued.
            const bad = { kind: "review", at: "+5m", attendees: ["a"], quorum: 2 } as const
            assert.isTrue(submit(bad, now, (exit) => outcomes.push(exit)))
            assert.strictEqual(outcomes.length, 1)
            const refusal = Exit.isFailure(outcomes[0]!) ? Cause.failureOption(outcomes[0].cause) : undefined
            assert.strictEqual(refusal?._tag === "Some" && refusal.value._tag, "InvalidInput")
            // A relative start reads its predecessor: it is left to `schedule`.
            assert.isFalse(submit({ kind: "timer", after: "x+1m" }, now, () => assert.fail("not queued")))
            // The rest wait for the group commit, which one leader makes for all of them.
            const all = yield* Deferred.make<void>()
            for (let i = 0; i < 20; i++) {
              const queued = submit({ kind: "timer", at: `+${i + 1}m` }, now, (exit) => {
                outcomes.push(exit)
                if (outcomes.length === 21) Deferred.unsafeDone(all, Exit.void)
              })
              assert.isTrue(queued)
            }
            assert.strictEqual(outcomes.length, 1)
            yield* Deferred.await(all)
            const events = outcomes
              .slice(1)
              .map((exit) => (Exit.isSuccess(exit) ? exit.value : assert.fail("refused")))
            assert.deepStrictEqual(
              events.map((e) => e.fireAt?.getTime()),
              Array.from({ length: 20 }, (_, i) => T0 + (i + 1) * 60_000)
            )
            const stored = yield* c.list({ status: "scheduled" })
            assert.deepStrictEqual(new Set(stored.map((e) => e.id)), new Set(events.map((e) => e.id)))
            assert.strictEqual((yield* s.localChanges) - before, 1)
          })
        )
    )

    it("TMinus.schedule from plain async code: concurrent calls commit together, each with its own event or typed error", async () => {
      let seen: EventStoreShape | undefined
      const tm = await TMinus.fromLayer(
        Layer.tap(store(), (context) => Effect.sync(() => (seen = Context.get(context, EventStore)))),
        { now: () => T0 }
      )
      const commits = () => Effect.runSync(seen!.localChanges)
      const first = await tm.schedule({ kind: "timer", at: "+1m" })
      const before = commits()
      const calls = Array.from({ length: 100 }, (_, i) =>
        i % 10 === 9
          ? tm.schedule({ kind: "review", at: "+5m", attendees: ["a"], quorum: 2 })
          : i % 10 === 8
            ? tm.schedule({ kind: "timer", after: `${first.id}+${i}m` })
            : tm.schedule({ kind: "review", at: `+${i + 1}m`, attendees: ["a", "b"], quorum: 1 })
      )
      const results = await Promise.allSettled(calls)
      const grouped = commits() - before
      const ok: Array<Event> = []
      for (const [i, r] of results.entries()) {
        if (i % 10 === 9) {
          assert.strictEqual(r.status, "rejected")
          if (r.status === "rejected") {
            assert.instanceOf(r.reason, InvalidInput)
            assert.strictEqual((r.reason as InvalidInput).field, "quorum")
          }
          continue
        }
        assert.strictEqual(r.status, "fulfilled")
        if (r.status !== "fulfilled") continue
        ok.push(r.value)
        if (i % 10 === 8) assert.deepStrictEqual(r.value.after, { eventId: first.id, offsetMs: i * 60_000 })
        else assert.strictEqual(r.value.fireAt?.getTime(), T0 + (i + 1) * 60_000)
      }
      assert.strictEqual(ok.length, 90)
      const stored = await tm.list({ status: "scheduled" })
      assert.deepStrictEqual(new Set(stored.map((e) => e.id)), new Set([first.id, ...ok.map((e) => e.id)]))
      for (const e of ok) {
        const history = await tm.history(e.id)
        assert.deepStrictEqual(
          history.map((h) => [h.type, h.at.getTime()]),
          [["scheduled", T0]]
        )
      }
      // The 80 plain schedules in a group or two; each relative start in a transaction of its own.
      assert.isAtLeast(grouped, 11)
      assert.isAtMost(grouped, 14)
      await tm.close()
      // A closed engine refuses (it does not queue the call for a commit that never comes).
      const late = tm.schedule({ kind: "timer", at: "+1m" })
      assert.strictEqual(
        await late.then(
          () => "stored",
          () => "refused"
        ),
        "refused"
      )
    })

    it.effect("concurrent responses commit together; a refused one leaves the others alone", () =>
      scenario(
        store,
        Effect.gen(function* () {
          const c = yield* Coordinator
          const s = yield* EventStore
          const events = yield* c.scheduleMany(
            Array.from({ length: 60 }, (_, i) => ({
              kind: "review",
              at: `+${i + 1}m`,
              attendees: ["a", "b"],
              quorum: 2
            }))
          )
          const acme = yield* withTenant({ tenant: "acme" })(c.scheduleTimer({ in: "1h" }))
          const before = yield* s.localChanges
          // Each event: "a" confirms and "b" defers; every sixth call asks for an agent that
          // is not invited, and one call from another tenant names an event it cannot see.
          const calls = events.flatMap((e, i) => [
            c.confirm(e.id, i % 6 === 5 ? "mallory" : "a"),
            c.defer(e.id, "b", "5m")
          ])
          const results = yield* Effect.all(
            [...calls, withTenant({ tenant: "acme" })(c.confirm(events[0]!.id, "a"))].map(Effect.either),
            { concurrency: "unbounded" }
          )
          const commits = (yield* s.localChanges) - before
          for (const [i, e] of events.entries()) {
            const [confirm, defer] = [results[2 * i]!, results[2 * i + 1]!]
            assert.isTrue(Either.isRight(defer))
            const stored = yield* c.get(e.id)
            const a = stored.attendees.find((x) => x.agent === "a")!
            const b = stored.attendees.find((x) => x.agent === "b")!
            if (i % 6 === 5) {
              assert.isTrue(Either.isLeft(confirm))
              if (Either.isLeft(confirm)) assert.strictEqual(confirm.left._tag, "NotAnAttendee")
              assert.strictEqual(a.status, "pending")
            } else {
              assert.isTrue(Either.isRight(confirm))
              assert.strictEqual(a.status, "confirmed")
            }
            assert.strictEqual(b.status, "deferred")
            // Both answers of an event went into one version each, in order: none was lost.
            assert.strictEqual(stored.version, e.version + (i % 6 === 5 ? 1 : 2))
          }
          const foreign = results[results.length - 1]!
          assert.isTrue(Either.isLeft(foreign))
          if (Either.isLeft(foreign)) assert.strictEqual(foreign.left._tag, "EventNotFound")
          assert.strictEqual((yield* c.get(acme.id)).status, "scheduled")
          // Far fewer transactions than calls.
          assert.isAbove(commits, 0)
          assert.isBelow(commits, 20)
        })
      )
    )

    it.effect("quotas are counted per tenant within a group", () =>
      scenario(
        store,
        Effect.gen(function* () {
          const c = yield* Coordinator
          const acme = withTenant({ tenant: "acme", maxActiveEvents: 2 })
          const globex = withTenant({ tenant: "globex", maxActiveEvents: 5 })
          const initech = withTenant({ tenant: "initech" })
          const calls = Array.from({ length: 30 }, (_, i) => {
            const scoped = i % 3 === 0 ? acme : i % 3 === 1 ? globex : initech
            return Effect.either(scoped(c.scheduleTimer({ in: `${i + 1}m` })))
          })
          const results = yield* Effect.all(calls, { concurrency: "unbounded" })
          const admitted = (tenant: number) =>
            results.filter((r, i) => i % 3 === tenant && Either.isRight(r)).length
          assert.deepStrictEqual([admitted(0), admitted(1), admitted(2)], [2, 5, 10])
          const refusal = results.find((r, i) => i % 3 === 0 && Either.isLeft(r))
          assert.isTrue(refusal !== undefined && Either.isLeft(refusal))
          if (refusal !== undefined && Either.isLeft(refusal) && refusal.left._tag === "ResourceExhausted") {
            // acme's earliest admitted timer ends in a minute.
            assert.strictEqual(refusal.left.retryAfterMs, 60_000)
          } else assert.fail("expected ResourceExhausted")
          const counts = yield* Effect.all(
            ["acme", "globex", "initech"].map((tenant) =>
              withTenant({ tenant })(Effect.map(c.list({ status: "scheduled" }), (l) => l.length))
            )
          )
          assert.deepStrictEqual(counts, [2, 5, 10])
        })
      )
    )

    it.effect("a caller interrupted while waiting writes nothing; the others are committed", () =>
      scenario(
        store,
        Effect.gen(function* () {
          const c = yield* Coordinator
          const s = yield* EventStore
          const gate = yield* Deferred.make<void>()
          // Someone else's transaction holds the store, so the first schedule waits inside its
          // group's transaction and the next ones wait behind it.
          const holder = yield* Effect.fork(s.transaction(Deferred.await(gate)))
          yield* settle
          const first = yield* Effect.fork(c.scheduleTimer({ in: "1m" }))
          yield* settle
          const next = yield* Effect.forEach([2, 3, 4, 5], (m) =>
            Effect.fork(c.scheduleTimer({ in: `${m}m` }))
          )
          yield* settle
          yield* Fiber.interrupt(next[0]!)
          yield* Fiber.interrupt(next[2]!)
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(holder)
          const done = yield* Effect.all([Fiber.join(first), Fiber.join(next[1]!), Fiber.join(next[3]!)])
          const stored = yield* c.list({ status: "scheduled" })
          assert.deepStrictEqual(
            stored.map((e) => e.id),
            done.map((e) => e.id)
          )
          assert.deepStrictEqual(
            stored.map((e) => e.fireAt?.getTime()),
            [1, 3, 5].map((m) => T0 + m * 60_000)
          )
        })
      )
    )

    it.effect("inside a caller's own transaction a schedule commits, or rolls back, with it", () =>
      scenario(
        store,
        Effect.gen(function* () {
          const c = yield* Coordinator
          const s = yield* EventStore
          const failed = yield* Effect.either(
            s.transaction(Effect.zipRight(c.scheduleTimer({ in: "1m" }), Effect.fail("changed my mind")))
          )
          assert.isTrue(Either.isLeft(failed))
          assert.strictEqual((yield* c.list({})).length, 0)
          const kept = yield* s.transaction(c.scheduleTimer({ in: "2m" }))
          assert.deepStrictEqual(
            (yield* c.list({})).map((e) => e.id),
            [kept.id]
          )
        })
      )
    )
  })
}
