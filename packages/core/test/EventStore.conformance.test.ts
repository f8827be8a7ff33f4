import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type { Event } from "../src/Event.ts"
import { EventStore } from "../src/EventStore.ts"
import { backends } from "./backends.ts"

const T = Date.parse("2026-03-01T10:00:00Z")

let counter = 0
const event = (overrides: Partial<Event> = {}): Event => {
  counter += 1
  const fireAt = new Date(T + counter * 1_000)
  return {
    id: `e-${String(counter).padStart(6, "0")}`,
    tenant: "default",
    kind: "review",
    name: "a name with ünïcødé ✓",
    organizer: "org",
    attendees: [
      { agent: "alice", status: "confirmed", respondedAt: new Date(T - 1) },
      { agent: "bob", status: "deferred", respondedAt: new Date(T - 2), deferMs: 120_000 },
      { agent: "carol", status: "pending", respondedAt: null }
    ],
    quorum: 2,
    scheduledAt: new Date(fireAt.getTime() + 5_000),
    tMinusMs: 5_000,
    fireAt,
    dueAt: fireAt,
    status: "scheduled",
    payload: { nested: [1, 2.5, "three", null, true, { deep: "x" }] },
    actions: {
      onFire: [
        { _tag: "webhook", url: "https://example.test/hook", secret: "s" },
        { _tag: "command", name: "notify", args: ["${id}"] }
      ],
      onMiss: [{ _tag: "file_write", path: "out/missed.txt", content: "${name}" }, { _tag: "log" }]
    },
    maxDeferrals: 3,
    deferralsUsed: 1,
    deadline: new Date(T + 86_400_000),
    after: null,
    campaignId: null,
    misfire: "fire",
    recurrence: null,
    createdAt: new Date(T - 10_000),
    updatedAt: new Date(T - 5_000),
    firedAt: null,
    missedAt: null,
    cancelledAt: null,
    reason: null,
    version: 3,
    ...overrides
  }
}

for (const [backend, store] of backends) {
  describe(`EventStore conformance: ${backend}`, () => {
    const test = (name: string, body: Effect.Effect<void, unknown, EventStore>) =>
      it.effect(name, () => Effect.provide(body, store()))

    test(
      "an event round-trips exactly, to the millisecond",
      Effect.gen(function* () {
        const s = yield* EventStore
        const e = event({ fireAt: new Date(T + 123), dueAt: new Date(T + 123), payload: "plain string" })
        const relative = event({
          after: { eventId: e.id, offsetMs: 300_000 },
          fireAt: null,
          dueAt: null,
          scheduledAt: null,
          name: null,
          deadline: null
        })
        yield* s.transaction(s.insertEvents([e, relative]))
        assert.deepStrictEqual(Option.getOrThrow(yield* s.getEvent(e.id)), e)
        assert.deepStrictEqual(Option.getOrThrow(yield* s.getEvent(relative.id)), relative)
        assert.isTrue(Option.isNone(yield* s.getEvent("missing")))
        for (const payload of [null, 0, -1.25, true, [], {}, "✓"]) {
          const p = event({ payload })
          yield* s.transaction(s.insertEvents([p]))
          assert.deepStrictEqual(Option.getOrThrow(yield* s.getEvent(p.id)).payload, payload)
        }
      })
    )

    test(
      "updates replace the stored event",
      Effect.gen(function* () {
        const s = yield* EventStore
        const e = event()
        yield* s.transaction(s.insertEvents([e]))
        const fired: Event = {
          ...e,
          status: "fired",
          firedAt: new Date(T + 5),
          dueAt: null,
          version: 4,
          reason: "ok"
        }
        yield* s.transaction(s.updateEvents([fired]))
        assert.deepStrictEqual(Option.getOrThrow(yield* s.getEvent(e.id)), fired)
      })
    )

    test(
      "a failed transaction leaves nothing behind",
      Effect.gen(function* () {
        const s = yield* EventStore
        const kept = event()
        yield* s.transaction(s.insertEvents([kept]))
        const lost = event()
        const result = yield* Effect.either(
          s.transaction(
            Effect.gen(function* () {
              yield* s.insertEvents([lost])
              yield* s.updateEvents([{ ...kept, status: "cancelled", dueAt: null }])
              yield* s.appendHistory([
                { eventId: kept.id, at: new Date(T), type: "cancelled", actor: "x", detail: {} }
              ])
              yield* s.insertCampaign({
                id: "c-lost",
                name: "lost",
                events: [],
                tenant: "default",
                dependencies: [],
                createdAt: new Date(T)
              })
              return yield* Effect.fail("boom" as const)
            })
          )
        )
        assert.deepStrictEqual(result._tag, "Left")
        assert.isTrue(Option.isNone(yield* s.getEvent(lost.id)))
        assert.deepStrictEqual(Option.getOrThrow(yield* s.getEvent(kept.id)), kept)
        assert.deepStrictEqual(yield* s.history(kept.id), [])
        assert.isTrue(Option.isNone(yield* s.getCampaign("c-lost")))
      })
    )

    test(
      "transactions serialize read-modify-write: concurrent increments are not lost",
      Effect.gen(function* () {
        const s = yield* EventStore
        const e = event({ version: 0 })
        yield* s.transaction(s.insertEvents([e]))
        const increment = s.transaction(
          Effect.gen(function* () {
            const current = Option.getOrThrow(yield* s.getEvent(e.id))
            yield* Effect.yieldNow()
            yield* s.updateEvents([{ ...current, version: current.version + 1 }])
          })
        )
        yield* Effect.all(
          Array.from({ length: 25 }, () => increment),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(Option.getOrThrow(yield* s.getEvent(e.id)).version, 25)
      })
    )

    test(
      "a read outside a transaction never sees writes that may still be undone",
      Effect.gen(function* () {
        const s = yield* EventStore
        const e = event()
        const gate = yield* Deferred.make<void>()
        const written = yield* Deferred.make<void>()
        const writer = yield* Effect.fork(
          Effect.either(
            s.transaction(
              Effect.gen(function* () {
                yield* s.insertEvents([e])
                yield* Deferred.succeed(written, undefined)
                yield* Deferred.await(gate)
                return yield* Effect.fail("abort" as const)
              })
            )
          )
        )
        yield* Deferred.await(written)
        const reading = yield* Deferred.make<void>()
        const reader = yield* Effect.fork(
          Effect.zipRight(Deferred.succeed(reading, undefined), s.getEvent(e.id))
        )
        yield* Deferred.await(reading)
        for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(writer)
        assert.isTrue(Option.isNone(yield* Fiber.join(reader)))
      })
    )

    test(
      "list orders by (fireAt, id), events without fire time last, and filters",
      Effect.gen(function* () {
        const s = yield* EventStore
        const late = event({ id: "b-late", fireAt: new Date(T + 9_000) })
        const tieB = event({ id: "b-tie", fireAt: new Date(T + 1_000) })
        const tieA = event({
          id: "a-tie",
          fireAt: new Date(T + 1_000),
          kind: "deploy",
          status: "fired",
          dueAt: null
        })
        const none = event({ id: "a-none", fireAt: null, dueAt: null, campaignId: "c1", attendees: [] })
        yield* s.transaction(s.insertEvents([late, none, tieB, tieA]))
        const ids = (list: ReadonlyArray<Event>) => list.map((e) => e.id)
        assert.deepStrictEqual(ids(yield* s.listEvents({})), ["a-tie", "b-tie", "b-late", "a-none"])
        assert.deepStrictEqual(ids(yield* s.listEvents({ status: "fired" })), ["a-tie"])
        assert.deepStrictEqual(ids(yield* s.listEvents({ status: [] })), [])
        assert.deepStrictEqual(ids(yield* s.listEvents({ kind: "deploy" })), ["a-tie"])
        assert.deepStrictEqual(ids(yield* s.listEvents({ campaignId: "c1" })), ["a-none"])
        assert.deepStrictEqual(ids(yield* s.listEvents({ attendee: "bob", limit: 2 })), ["a-tie", "b-tie"])
        assert.deepStrictEqual(ids(yield* s.listEvents({ attendee: "nobody" })), [])
      })
    )

    test(
      "due events: only dueAt ≤ now, earliest first, bounded; nextDueAt is the earliest",
      Effect.gen(function* () {
        const s = yield* EventStore
        assert.isTrue(Option.isNone(yield* s.nextDueAt))
        const a = event({ id: "due-a", dueAt: new Date(T + 2) })
        const b = event({ id: "due-b", dueAt: new Date(T + 1) })
        const c = event({ id: "due-c", dueAt: new Date(T + 3) })
        const waiting = event({ id: "due-w", dueAt: null })
        yield* s.transaction(s.insertEvents([a, b, c, waiting]))
        assert.deepStrictEqual(
          (yield* s.dueEvents(T + 2, 10)).map((e) => e.id),
          ["due-b", "due-a"]
        )
        assert.deepStrictEqual(
          (yield* s.dueEvents(T + 3, 1)).map((e) => e.id),
          ["due-b"]
        )
        assert.deepStrictEqual(yield* s.dueEvents(T, 10), [])
        assert.deepStrictEqual(Option.getOrThrow(yield* s.nextDueAt), T + 1)
      })
    )

    test(
      "predecessors and dependents through campaign links and relative starts",
      Effect.gen(function* () {
        const s = yield* EventStore
        const p = event({ id: "p", campaignId: "c" })
        const q = event({ id: "q", campaignId: "c" })
        const r = event({ id: "r", after: { eventId: "p", offsetMs: 0 }, fireAt: null, dueAt: null })
        const gone = event({
          id: "gone",
          after: { eventId: "p", offsetMs: 0 },
          status: "cancelled",
          dueAt: null
        })
        yield* s.transaction(
          Effect.gen(function* () {
            yield* s.insertEvents([p, q, r, gone])
            yield* s.insertCampaign({
              id: "c",
              name: "c",
              events: [],
              tenant: "default",
              dependencies: [],
              createdAt: new Date(T)
            })
            yield* s.addCampaignEvent("c", "p")
            yield* s.addCampaignEvent("c", "q")
            yield* s.addCampaignLink("c", "p", "q")
          })
        )
        const preds = yield* s.predecessors(["q", "r", "p"])
        assert.sameDeepMembers(
          preds.map(([id, pred]) => [id, pred.id, pred.status]),
          [
            ["q", "p", "scheduled"],
            ["r", "p", "scheduled"]
          ]
        )
        const deps = yield* s.dependents(["p"])
        assert.sameDeepMembers(
          deps.map((d) => [d.predecessorId, d.event.id]),
          [
            ["p", "q"],
            ["p", "r"]
          ],
          "only scheduled dependents"
        )
      })
    )

    test(
      "history is append-only, oldest first, exact",
      Effect.gen(function* () {
        const s = yield* EventStore
        const entries = [
          {
            eventId: "h1",
            at: new Date(T + 1),
            type: "scheduled" as const,
            actor: "org",
            detail: { quorum: 2 }
          },
          { eventId: "h2", at: new Date(T + 2), type: "scheduled" as const, actor: "org", detail: {} },
          {
            eventId: "h1",
            at: new Date(T + 3),
            type: "confirmed" as const,
            actor: "alice",
            detail: { n: [1, "x"] }
          }
        ]
        yield* s.transaction(s.appendHistory(entries))
        yield* s.transaction(
          s.appendHistory([
            { eventId: "h1", at: new Date(T + 3), type: "fired", actor: "t-minus", detail: {} }
          ])
        )
        assert.deepStrictEqual(
          (yield* s.history("h1")).map((h) => [h.type, h.at.getTime(), h.actor, h.detail]),
          [
            ["scheduled", T + 1, "org", { quorum: 2 }],
            ["confirmed", T + 3, "alice", { n: [1, "x"] }],
            ["fired", T + 3, "t-minus", {}]
          ]
        )
      })
    )

    test(
      "campaigns keep their events and links in the order they were added",
      Effect.gen(function* () {
        const s = yield* EventStore
        yield* s.transaction(
          Effect.gen(function* () {
            yield* s.insertCampaign({
              id: "k2",
              name: "second",
              events: [],
              tenant: "default",
              dependencies: [],
              createdAt: new Date(T + 1)
            })
            yield* s.insertCampaign({
              id: "k1",
              name: "first",
              events: [],
              tenant: "default",
              dependencies: [],
              createdAt: new Date(T)
            })
            for (const id of ["z", "a", "m"]) yield* s.addCampaignEvent("k1", id)
            yield* s.addCampaignLink("k1", "z", "m")
            yield* s.addCampaignLink("k1", "a", "m")
          })
        )
        assert.deepStrictEqual(Option.getOrThrow(yield* s.getCampaign("k1")), {
          id: "k1",
          name: "first",
          events: ["z", "a", "m"],
          tenant: "default",
          dependencies: [
            ["z", "m"],
            ["a", "m"]
          ],
          createdAt: new Date(T)
        })
        assert.deepStrictEqual(
          (yield* s.listCampaigns()).map((c) => c.id),
          ["k1", "k2"]
        )
      })
    )

    test(
      "deleting terminal events removes their history and membership, and keeps pinned ones",
      Effect.gen(function* () {
        const s = yield* EventStore
        const old = event({ id: "old", status: "fired", firedAt: new Date(T), dueAt: null, campaignId: "c" })
        const pinned = event({ id: "pinned", status: "missed", missedAt: new Date(T), dueAt: null })
        const dependent = event({
          id: "dep",
          after: { eventId: "pinned", offsetMs: 0 },
          fireAt: null,
          dueAt: null
        })
        const recent = event({
          id: "recent",
          status: "cancelled",
          cancelledAt: new Date(T + 10_000),
          dueAt: null
        })
        const live = event({ id: "live" })
        yield* s.transaction(
          Effect.gen(function* () {
            yield* s.insertEvents([old, pinned, dependent, recent, live])
            yield* s.insertCampaign({
              id: "c",
              name: "c",
              events: [],
              tenant: "default",
              dependencies: [],
              createdAt: new Date(T)
            })
            yield* s.addCampaignEvent("c", "old")
            yield* s.addCampaignEvent("c", "live")
            yield* s.addCampaignLink("c", "old", "live")
            yield* s.appendHistory([
              { eventId: "old", at: new Date(T), type: "fired", actor: "x", detail: {} }
            ])
          })
        )
        // "old" is pinned by "live" through the link until "live" ends.
        assert.deepStrictEqual(yield* s.transaction(s.deleteTerminalBefore(T + 1)), [])
        yield* s.transaction(
          s.updateEvents([{ ...live, status: "fired", firedAt: new Date(T), dueAt: null }])
        )
        assert.sameMembers([...(yield* s.transaction(s.deleteTerminalBefore(T + 1)))], ["old", "live"])
        assert.isTrue(Option.isNone(yield* s.getEvent("old")))
        assert.deepStrictEqual(yield* s.history("old"), [])
        assert.deepStrictEqual(Option.getOrThrow(yield* s.getCampaign("c")).events, [])
        assert.deepStrictEqual(Option.getOrThrow(yield* s.getCampaign("c")).dependencies, [])
        assert.isTrue(Option.isSome(yield* s.getEvent("pinned")))
        assert.isTrue(Option.isSome(yield* s.getEvent("recent")))
      })
    )

    test(
      "leases: held until they expire unrenewed, then taken over with a new fencing token",
      Effect.gen(function* () {
        const s = yield* EventStore
        const a = yield* s.acquireLease("tick", "a", T, 1_000)
        assert.deepStrictEqual(a, { name: "tick", owner: "a", token: 1, expiresAt: T + 1_000 })
        // Another owner gets the lease as it stands, unchanged, while it is live.
        assert.deepStrictEqual(yield* s.acquireLease("tick", "b", T + 999, 1_000), a)
        // A renewal keeps the token and moves the expiry; another lease name is separate.
        const renewed = yield* s.acquireLease("tick", "a", T + 500, 1_000)
        assert.deepStrictEqual(renewed, { ...a, expiresAt: T + 1_500 })
        assert.strictEqual((yield* s.acquireLease("other", "b", T, 1_000)).owner, "b")
        assert.isTrue(yield* s.holdsLease(renewed, T + 1_499))
        assert.isFalse(yield* s.holdsLease(renewed, T + 1_500))
        // Expired unrenewed: "b" takes it over with the next token; "a"'s token is fenced out.
        const b = yield* s.acquireLease("tick", "b", T + 1_500, 1_000)
        assert.deepStrictEqual(b, { name: "tick", owner: "b", token: 2, expiresAt: T + 2_500 })
        assert.isFalse(yield* s.holdsLease(renewed, T + 1_600))
        assert.isTrue(yield* s.holdsLease(b, T + 1_600))
        // "a" coming back gets "b"'s lease; after "b"'s expires "a" holds it with token 3.
        assert.strictEqual((yield* s.acquireLease("tick", "a", T + 2_000, 1_000)).owner, "b")
        assert.deepStrictEqual(yield* s.acquireLease("tick", "a", T + 2_500, 1_000), {
          name: "tick",
          owner: "a",
          token: 3,
          expiresAt: T + 3_500
        })
        // A lease in a rolled-back transaction was never taken.
        yield* Effect.exit(
          s.transaction(Effect.zipRight(s.acquireLease("undone", "a", T, 1_000), Effect.fail("rollback")))
        )
        assert.strictEqual((yield* s.acquireLease("undone", "b", T, 1_000)).owner, "b")
      })
    )
  })
}
