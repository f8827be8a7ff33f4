import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as TestClock from "effect/TestClock"
import { Coordinator, withTenant } from "../src/Coordinator.ts"
import type { CoordinatorError } from "../src/Errors.ts"
import { EventStore } from "../src/EventStore.ts"
import { backends, scenarioOn } from "./backends.ts"

const acme = withTenant({ tenant: "acme" })
const globex = withTenant({ tenant: "globex" })

const scenario = scenarioOn

const failure = <A>(effect: Effect.Effect<A, CoordinatorError, Coordinator>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result)
      ? Effect.succeed(result.left)
      : Effect.die(new Error("expected a failure, got a success"))
  )

for (const [backend, store] of backends) {
  describe(`tenancy on ${backend}`, () => {
    it.effect("a tick for one tenant reports only its events; its cleanup removes only its events", () =>
      scenario(
        store,
        Effect.gen(function* () {
          const c = yield* Coordinator
          const mine = yield* acme(c.scheduleTimer({ in: "1m" }))
          const theirs = yield* globex(c.scheduleTimer({ in: "1m" }))
          yield* TestClock.adjust("2 minutes")
          // Both are due: the tick fires both (as the runner would), and tells acme of its own.
          const report = yield* acme(c.tick())
          assert.deepStrictEqual(report, { fired: [mine.id], missed: [], deferred: [] })
          assert.strictEqual((yield* globex(c.get(theirs.id))).status, "fired")
          yield* TestClock.adjust("1 hour")
          assert.strictEqual(yield* acme(c.cleanup("1m")), 1)
          assert.strictEqual((yield* failure(acme(c.get(mine.id))))._tag, "EventNotFound")
          assert.strictEqual((yield* globex(c.get(theirs.id))).status, "fired")
          assert.strictEqual(yield* c.cleanup("1m"), 1)
        })
      )
    )

    it.effect(
      "another tenant's events, campaigns and actions answer not found; lists hold only one's own",
      () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const mine = yield* acme(
              c.schedule({ kind: "review", at: "+5m", attendees: ["a"], onFire: [{ _tag: "log" }] })
            )
            assert.strictEqual(mine.tenant, "acme")
            const theirs = yield* globex(c.scheduleTimer({ in: "1m" }))
            const campaign = yield* acme(c.createCampaign("launch"))
            assert.strictEqual(campaign.tenant, "acme")

            for (const op of [
              c.get(mine.id),
              c.confirm(mine.id, "a"),
              c.defer(mine.id, "a", "1m"),
              c.decline(mine.id, "a"),
              c.cancel(mine.id),
              c.reschedule(mine.id, "+9m"),
              c.history(mine.id)
            ] as Array<Effect.Effect<unknown, CoordinatorError>>) {
              const error = yield* failure(globex(op))
              assert.strictEqual(error._tag, "EventNotFound")
            }
            for (const op of [
              c.getCampaign(campaign.id),
              c.executionOrder(campaign.id),
              c.addToCampaign(campaign.id, theirs.id),
              c.addToCampaign(campaign.id, { kind: "review", at: "+5m" }),
              c.link(campaign.id, mine.id, theirs.id)
            ] as Array<Effect.Effect<unknown, CoordinatorError>>) {
              const error = yield* failure(globex(op))
              assert.strictEqual(error._tag, "CampaignNotFound")
            }
            // Naming another tenant's event inside one's own request: not found, nothing written.
            const foreign = yield* failure(acme(c.addToCampaign(campaign.id, theirs.id)))
            assert.strictEqual(foreign._tag, "EventNotFound")
            const after = yield* failure(
              acme(c.schedule({ kind: "review", after: theirs.id, attendees: ["a"] }))
            )
            assert.strictEqual(after._tag, "InvalidInput")
            assert.deepStrictEqual(
              (yield* globex(c.list())).map((e) => e.id),
              [theirs.id]
            )
            assert.deepStrictEqual(
              (yield* acme(c.list())).map((e) => e.id),
              [mine.id]
            )
            assert.deepStrictEqual(yield* globex(c.listCampaigns()), [])
            // Unscoped (embedded) use sees every tenant.
            assert.strictEqual((yield* c.list()).length, 2)

            // Actions: visible to their event's tenant only.
            yield* acme(c.confirm(mine.id, "a"))
            yield* TestClock.adjust("6 minutes")
            yield* c.tick()
            const [queued] = yield* acme(c.listActions())
            assert.strictEqual(queued?.eventId, mine.id)
            assert.deepStrictEqual(yield* globex(c.listActions()), [])
            const retry = yield* failure(globex(c.retryAction(queued!.key)))
            assert.strictEqual(retry._tag, "ActionNotFound")
          })
        )
    )

    it.effect(
      "the active-events quota is exact, rejects with retryAfterMs, writes nothing and recovers",
      () =>
        scenario(
          store,
          Effect.gen(function* () {
            const c = yield* Coordinator
            const limited = withTenant({ tenant: "acme", maxActiveEvents: 3 })
            // Twelve concurrent requests against a quota of three: exactly three get in.
            const results = yield* Effect.all(
              Array.from({ length: 12 }, () => Effect.either(limited(c.scheduleTimer({ in: "10m" })))),
              { concurrency: "unbounded" }
            )
            const admitted = results.filter(Either.isRight)
            assert.strictEqual(admitted.length, 3)
            for (const r of results.filter(Either.isLeft)) {
              assert.strictEqual(r.left._tag, "ResourceExhausted")
              if (r.left._tag === "ResourceExhausted") {
                assert.strictEqual(r.left.resource, "activeEvents")
                assert.strictEqual(r.left.limit, 3)
                // The earliest event ends in 10 minutes: that is when trying again can work.
                assert.strictEqual(r.left.retryAfterMs, 10 * 60_000)
              }
            }
            // A batch that would pass the quota is refused whole.
            yield* c.cancel(admitted[0]!.right.id)
            const batch = yield* failure(
              limited(
                c.scheduleMany([
                  { kind: "timer", at: "+1m" },
                  { kind: "timer", at: "+2m" }
                ])
              )
            )
            assert.strictEqual(batch._tag, "ResourceExhausted")
            assert.strictEqual((yield* c.list({ status: "scheduled" })).length, 2)
            // Another tenant has its own count; ended events free their slot.
            yield* withTenant({ tenant: "globex", maxActiveEvents: 3 })(c.scheduleTimer({ in: "1m" }))
            yield* limited(c.scheduleTimer({ in: "1m" }))
            yield* TestClock.adjust("11 minutes")
            yield* c.tick()
            assert.strictEqual((yield* limited(c.scheduleMany([{ kind: "timer", at: "+1m" }]))).length, 1)
            // The quota's count (kept by triggers on SQLite) agrees with counting, after inserts,
            // cancels, firings and a rollback.
            const store = yield* EventStore
            for (const tenant of ["acme", "globex"]) {
              assert.strictEqual(
                yield* store.countActive(tenant),
                yield* store.countEvents({ tenant, status: "scheduled" }),
                tenant
              )
            }
            assert.strictEqual(yield* store.countActive("acme"), 1)
          })
        )
    )
  })
}
