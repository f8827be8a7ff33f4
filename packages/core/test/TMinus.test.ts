import { assert, describe, it } from "@effect/vitest"
import {
  CycleDetected,
  EventNotFound,
  EventTerminal,
  InvalidInput,
  NotAnAttendee,
  TMinus
} from "../src/index.ts"

const T = Date.parse("2026-07-01T08:00:00Z")

describe("TMinus (Promise facade)", () => {
  it("accepts Dates, epoch ms and SPEC 6 strings for times, ms or strings for durations", async () => {
    let now = T
    const tm = await TMinus.inMemory({ now: () => now })
    const byDate = await tm.schedule({
      kind: "meeting",
      at: new Date(T + 60_000),
      attendees: ["a"],
      quorum: 1
    })
    const byEpoch = await tm.schedule({
      kind: "meeting",
      at: T + 60_000,
      attendees: ["a"],
      quorum: 1,
      tMinus: 30_000
    })
    const byString = await tm.schedule({
      kind: "meeting",
      at: "2026-07-01T10:01:00+02:00",
      attendees: ["a"],
      quorum: 1,
      tMinus: "PT30S"
    })
    assert.strictEqual(byDate.fireAt?.getTime(), T + 60_000)
    assert.strictEqual(byEpoch.fireAt?.getTime(), T + 30_000)
    assert.strictEqual(byString.fireAt?.getTime(), T + 30_000)
    const deferred = await tm.defer(byDate.id, "a", 90_000)
    assert.strictEqual(deferred.attendees[0]?.deferMs, 90_000)
    now += 60_000
    assert.deepStrictEqual(await tm.tick(), {
      fired: [],
      missed: [byEpoch.id, byString.id],
      deferred: [byDate.id]
    })
    await tm.close()
  })

  it("throws the typed errors of every kind", async () => {
    const tm = await TMinus.inMemory({ now: () => T })
    const e = await tm.schedule({ kind: "review", at: "+1m", attendees: ["a"], quorum: 0 })
    await tm.tick(T + 60_000)
    assert.instanceOf(await tm.get("nope").catch((x) => x), EventNotFound)
    assert.instanceOf(await tm.confirm(e.id, "zz").catch((x) => x), EventTerminal)
    const f = await tm.schedule({ kind: "review", at: "+1m", attendees: ["a"] })
    assert.instanceOf(await tm.confirm(f.id, "zz").catch((x) => x), NotAnAttendee)
    const c = await tm.createCampaign("c")
    await tm.addToCampaign(c.id, f.id)
    assert.instanceOf(await tm.link(c.id, f.id, f.id).catch((x) => x), CycleDetected)
    // Single schedules take a path of their own (no fiber per call): refusals are the same errors.
    const quorum = await tm
      .schedule({ kind: "review", at: "+1m", attendees: ["a"], quorum: 2 })
      .catch((x) => x)
    assert.instanceOf(quorum, InvalidInput)
    assert.strictEqual(quorum.field, "quorum")
    const delay = await tm.scheduleTimer({ in: "soon" }).catch((x) => x)
    assert.instanceOf(delay, InvalidInput)
    assert.strictEqual(delay.field, "in")
    // Even input that is not an object at all is a rejected Promise, never a synchronous throw.
    const none = tm.scheduleTimer(undefined as never)
    assert.instanceOf(none, Promise)
    assert.strictEqual(
      await none.then(
        () => "stored",
        () => "refused"
      ),
      "refused"
    )
    await tm.close()
  })

  it("offers every operation of the engine", async () => {
    const tm = await TMinus.inMemory()
    for (const method of [
      "schedule",
      "scheduleMany",
      "scheduleTimer",
      "confirm",
      "defer",
      "decline",
      "cancel",
      "reschedule",
      "get",
      "list",
      "history",
      "tick",
      "cleanup",
      "createCampaign",
      "addToCampaign",
      "link",
      "executionOrder",
      "getCampaign",
      "listCampaigns",
      "close"
    ]) {
      assert.isFunction((tm as any)[method], method)
    }
    const timer = await tm.scheduleTimer({ at: "+1h" })
    assert.deepStrictEqual(
      (await tm.list()).map((x) => x.id),
      [timer.id]
    )
    assert.deepStrictEqual(await tm.listCampaigns(), [])
    await tm.close()
  })

  it("waits for an event with its runner: fired, timeout as it stands, and a clear error without one", async () => {
    const tm = await TMinus.inMemory({ runner: true })
    try {
      const soon = await tm.scheduleTimer({ in: "150ms", name: "soon" })
      const later = await tm.scheduleTimer({ in: "1h" })
      const fired = await tm.waitFor(soon.id, "10s")
      assert.strictEqual(fired.outcome, "fired")
      assert.strictEqual(fired.event.status, "fired")
      const waited = await tm.waitFor(later.id, 50)
      assert.strictEqual(waited.outcome, "timeout")
      assert.strictEqual(waited.event.status, "scheduled")
      const error = await tm.waitFor("nope", 50).catch((e: unknown) => e)
      assert.instanceOf(error, EventNotFound)
    } finally {
      await tm.close()
    }
    const closing = await TMinus.inMemory({ runner: true })
    const pending = await closing.scheduleTimer({ in: "1h" })
    const started = performance.now()
    const waiting = closing.waitFor(pending.id, "10m").catch((e: unknown) => e)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await closing.close()
    assert.match(String(await waiting), /Interrupt/, "ended by close, not left hanging")
    assert.isBelow(performance.now() - started, 5_000)
    const still = await TMinus.inMemory()
    const timer = await still.scheduleTimer({ in: "1h" })
    const error = await still.waitFor(timer.id, 10).catch((e: unknown) => e)
    assert.match(String(error), /runner: true/)
    await still.close()
  })
})
