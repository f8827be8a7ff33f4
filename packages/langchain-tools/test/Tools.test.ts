import { TMinus } from "@t-minus/core"
import { assert, describe, it } from "vitest"
import * as Tools from "../src/Tools.ts"
import { call, eachBackend, failure, ok, remote } from "./backends.ts"

eachBackend("the tools (%s)", (backend) => {
  it("schedule, respond, follow, reschedule, cancel and wait, answering JSON a model can read", async () => {
    const lead = await backend().toolsFor("lead")
    const builder = await backend().toolsFor("builder", { role: "agent" })
    const tester = await backend().toolsFor("tester", { role: "agent" })
    const scheduled = ok(
      await call(lead, "schedule_event", {
        kind: "deploy",
        at: "+1h",
        name: "ship v2",
        attendees: ["builder", "tester"],
        quorum: null,
        payloadJson: '{"version":"2.0.0"}'
      })
    ).event
    assert.strictEqual(scheduled.organizer, "lead")
    assert.strictEqual(scheduled.quorum, 2)
    assert.strictEqual(scheduled.progress, 0)
    assert.deepStrictEqual(scheduled.pending, ["builder", "tester"])
    assert.match(scheduled.remaining, /^in (59m|1h)/)
    const id = scheduled.id as string

    const confirmed = ok(await call(builder, "confirm_readiness", { eventId: id })).event
    assert.deepStrictEqual(confirmed.confirmedBy, ["builder"])
    assert.strictEqual(confirmed.yourResponse, "confirmed")
    assert.strictEqual(confirmed.progress, 0.5)
    ok(await call(tester, "defer", { eventId: id, duration: "90s" }))
    const seen = ok(await call(tester, "get_event", { eventId: id })).event
    assert.deepStrictEqual(seen.deferred, [{ agent: "tester", by: "1m30s" }])
    assert.deepStrictEqual(seen.pending, [])
    assert.strictEqual(seen.yourResponse, "deferred")

    const listed = ok(await call(tester, "list_events", { attendingOnly: true }))
    assert.deepStrictEqual(
      listed.events.map((e: { id: string }) => e.id),
      [id]
    )
    assert.strictEqual(ok(await call(lead, "list_events", { attendingOnly: true })).count, 0)

    const moved = ok(await call(lead, "reschedule_event", { eventId: id, at: "+2h" })).event
    assert.isAbove(Date.parse(moved.fireAt), Date.parse(scheduled.fireAt) + 50 * 60_000)
    assert.deepStrictEqual(moved.confirmedBy, ["builder"], "responses are kept")

    const cancelled = ok(await call(lead, "cancel_event", { eventId: id, reason: "release postponed" })).event
    assert.strictEqual(cancelled.status, "cancelled")
    assert.strictEqual(cancelled.reason, "release postponed")
    assert.strictEqual(cancelled.remaining, null)
    const waited = ok(await call(builder, "wait_for_event", { eventId: id, timeout: null }))
    assert.strictEqual(waited.outcome, "cancelled")
  })

  it("timers fire by themselves; wait_for_event sees it, or times out with the event as it stands", async () => {
    const lead = await backend().toolsFor("timekeeper")
    const timer = ok(
      await call(lead, "create_timer", { in: "300ms", name: "tea", message: "tea is ready" })
    ).event
    assert.strictEqual(timer.kind, "timer")
    assert.strictEqual(timer.progress, 1)
    const fired = ok(await call(lead, "wait_for_event", { eventId: timer.id, timeout: "10s" }))
    assert.strictEqual(fired.outcome, "fired")
    assert.strictEqual(fired.event.status, "fired")
    assert.isString(fired.event.endedAt)

    const later = ok(await call(lead, "create_timer", { at: "+1h" })).event
    const waited = ok(await call(lead, "wait_for_event", { eventId: later.id, timeout: "200ms" }))
    assert.strictEqual(waited.outcome, "timeout")
    assert.strictEqual(waited.event.status, "scheduled")
    assert.match(waited.next, /call wait_for_event again/)
  })

  it("builds campaigns: create, schedule into, add, link, order", async () => {
    const lead = await backend().toolsFor("planner")
    const campaign = ok(await call(lead, "create_campaign", { name: "release" })).campaign
    const build = ok(
      await call(lead, "schedule_event", {
        kind: "checkpoint",
        at: "+1h",
        name: "build",
        attendees: ["builder"],
        campaignId: campaign.id
      })
    ).event
    assert.strictEqual(build.campaignId, campaign.id)
    const deploy = ok(
      await call(lead, "schedule_event", { kind: "deploy", at: "+30m", name: "deploy", attendees: ["ops"] })
    ).event
    assert.strictEqual(
      ok(await call(lead, "add_to_campaign", { campaignId: campaign.id, eventId: deploy.id })).event
        .campaignId,
      campaign.id
    )
    const linked = ok(
      await call(lead, "link_campaign_events", { campaignId: campaign.id, from: build.id, to: deploy.id })
    )
    assert.deepStrictEqual(
      linked.order.map((e: { name: string; position: number; after: Array<string> }) => [
        e.position,
        e.name,
        e.after
      ]),
      [
        [1, "build", []],
        [2, "deploy", [build.id]]
      ]
    )
    const order = ok(await call(lead, "campaign_order", { campaignId: campaign.id }))
    assert.deepStrictEqual(order, linked)
    const cycle = failure(
      await call(lead, "link_campaign_events", { campaignId: campaign.id, from: deploy.id, to: build.id })
    )
    assert.strictEqual(cycle.error.tag, "CycleDetected")
    assert.match(cycle.hint, /other way round/)
  })

  it("acts only as its own agent: no agent field, no responses for others, no cancelling others' events", async () => {
    const lead = await backend().toolsFor("owner")
    const intruder = await backend().toolsFor("intruder")
    const event = ok(
      await call(lead, "schedule_event", { kind: "review", at: "+1h", attendees: ["alice", "bob"] })
    ).event

    const posing = failure(await call(intruder, "confirm_readiness", { eventId: event.id, agent: "alice" }))
    assert.strictEqual(posing.error.tag, "Impersonation")
    assert.strictEqual(posing.error.field, "agent")
    assert.match(posing.hint, /only act as intruder/)
    assert.strictEqual(
      failure(
        await call(intruder, "schedule_event", {
          kind: "review",
          at: "+1h",
          attendees: [],
          organizer: "owner"
        })
      ).error.tag,
      "Impersonation"
    )

    const outsider = failure(await call(intruder, "confirm_readiness", { eventId: event.id }))
    assert.strictEqual(outsider.error.tag, "NotAnAttendee")
    assert.match(outsider.hint, /not an attendee/)

    for (const [tool, args] of [
      ["cancel_event", { eventId: event.id }],
      ["reschedule_event", { eventId: event.id, at: "+3h" }]
    ] as const) {
      const refused = failure(await call(intruder, tool, args))
      assert.strictEqual(refused.error.tag, "Forbidden", tool)
      assert.match(refused.error.message, /organized by owner/)
    }
    const after = ok(await call(lead, "get_event", { eventId: event.id })).event
    assert.strictEqual(after.status, "scheduled")
    assert.strictEqual(after.fireAt, event.fireAt)
    assert.deepStrictEqual(after.confirmedBy, [])
  })

  it("campaigns cannot be used to act on another organizer's event", async () => {
    const bob = await backend().toolsFor("bob")
    const mallory = await backend().toolsFor("mallory")
    const campaign = ok(await call(bob, "create_campaign", { name: "bob's" })).campaign
    const bobs = ok(
      await call(bob, "schedule_event", {
        kind: "deploy",
        at: "+1h",
        attendees: ["ops"],
        campaignId: campaign.id
      })
    ).event
    const loose = ok(
      await call(bob, "schedule_event", { kind: "review", at: "+1h", attendees: ["ops"] })
    ).event
    // Mallory's own event in Bob's campaign, cancelled: linking it before Bob's would miss his.
    const hers = ok(
      await call(mallory, "schedule_event", {
        kind: "checkpoint",
        at: "+1h",
        attendees: ["m"],
        campaignId: campaign.id
      })
    ).event
    ok(await call(mallory, "cancel_event", { eventId: hers.id }))
    const linking = failure(
      await call(mallory, "link_campaign_events", { campaignId: campaign.id, from: hers.id, to: bobs.id })
    )
    assert.strictEqual(linking.error.tag, "Forbidden")
    assert.match(linking.error.message, /organized by bob/)
    const adding = failure(
      await call(mallory, "add_to_campaign", { campaignId: campaign.id, eventId: loose.id })
    )
    assert.strictEqual(adding.error.tag, "Forbidden")
    assert.strictEqual(ok(await call(bob, "get_event", { eventId: bobs.id })).event.status, "scheduled")
    assert.strictEqual(ok(await call(bob, "get_event", { eventId: loose.id })).event.campaignId, null)
  })

  it("bad arguments come back as results that name the field and say what to do", async () => {
    const lead = await backend().toolsFor("careful")
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ["schedule_event", { kind: "deploy", at: "+1h", attendees: ["a"], quorum: 1.5 }, "quorum", /integer/],
      ["schedule_event", { kind: "party", at: "+1h", attendees: [] }, "kind", /custom:<name>/],
      ["schedule_event", { kind: "deploy", at: "+1h", attendees: ["a"], quorum: 3 }, "quorum", /quorum/],
      ["schedule_event", { kind: "deploy", at: "whenever", attendees: ["a"] }, "at", /at/],
      [
        "schedule_event",
        { kind: "deploy", at: "+1h", attendees: ["a"], payloadJson: "{" },
        "payloadJson",
        /JSON/
      ],
      ["schedule_event", { kind: "deploy", at: "+1h", attendees: ["a", "a"] }, "attendees", /listed twice/],
      ["schedule_event", { at: "+1h", attendees: [] }, "kind", /missing/],
      ["create_timer", { in: "soon" }, "in", /in/],
      ["defer", { eventId: "x", duration: "30" }, "duration", /give a unit/],
      ["list_events", { limit: 0 }, "limit", /between|1/],
      ["get_event", { id: "x" }, "eventId", /missing|eventId/],
      ["wait_for_event", { eventId: "x", timeout: "0s" }, "timeout", /more than 0/]
    ]
    for (const [tool, args, field, message] of cases) {
      const result = await call(lead, tool, args)
      const { error, hint } = failure(result)
      assert.strictEqual(error.tag, "InvalidInput", `${tool} ${JSON.stringify(args)}: ${result.text}`)
      assert.strictEqual(error.field, field, `${tool} ${JSON.stringify(args)}: ${result.text}`)
      assert.match(error.message, message, `${tool} ${JSON.stringify(args)}`)
      assert.match(hint, /\S/)
      assert.doesNotThrow(() => JSON.parse(result.text))
    }
    const missing = failure(
      await call(lead, "get_event", { eventId: "0190c0de-0000-7000-8000-000000000000" })
    )
    assert.strictEqual(missing.error.tag, "EventNotFound")
    assert.match(missing.hint, /list_events/)
  })

  it("an ended event says how it ended", async () => {
    const lead = await backend().toolsFor("closer")
    const event = ok(
      await call(lead, "schedule_event", { kind: "meeting", at: "+1h", attendees: ["closer"] })
    ).event
    ok(await call(lead, "cancel_event", { eventId: event.id, reason: null }))
    const ended = failure(await call(lead, "confirm_readiness", { eventId: event.id }))
    assert.strictEqual(ended.error.tag, "EventTerminal")
    assert.match(ended.hint, /already cancelled/)
  })
})

describe("the tools on their own", () => {
  it("a wait ends when its caller gives up, and never lasts longer than maxWaitMs", async () => {
    const engine = await TMinus.inMemory({ runner: true })
    try {
      const tools = Tools.make({ agent: "w", client: engine, maxWaitMs: 150 })
      const timer = ok(await call(tools, "create_timer", { in: "1h" })).event
      const capped = ok(await call(tools, "wait_for_event", { eventId: timer.id, timeout: "10m" }))
      assert.strictEqual(capped.outcome, "timeout")
      assert.strictEqual(capped.waitedUpToMs, 150)
      const wait = tools.find((t) => t.name === "wait_for_event")!
      assert.match(wait.description, /at most 150ms/)
      const long = Tools.make({ agent: "w", client: engine }).find((t) => t.name === "wait_for_event")!
      const controller = new AbortController()
      const started = performance.now()
      const pending = long.call({ eventId: timer.id, timeout: "5m" }, { signal: controller.signal })
      setTimeout(() => controller.abort(), 50)
      const cancelled = failure(await pending)
      assert.strictEqual(cancelled.error.tag, "Cancelled")
      assert.isBelow(performance.now() - started, 5_000)
    } finally {
      await engine.close()
    }
  })
})

describe("the tools against a server (remote only)", () => {
  it("a key for another agent cannot be used to act as this one, and an unreachable server is a result", async () => {
    const backend = await remote()
    try {
      const lead = await backend.toolsFor("lead")
      const event = ok(
        await call(lead, "schedule_event", { kind: "deploy", at: "+1h", attendees: ["builder"] })
      ).event
      // A tool set told it is "builder" but holding tester's agent key: the server refuses.
      const borrowed = await backend.toolsFor("builder", { role: "agent", keyAgent: "tester" })
      const refused = failure(await call(borrowed, "confirm_readiness", { eventId: event.id }))
      assert.strictEqual(refused.error.tag, "Forbidden")
      assert.match(refused.error.message, /tester can only answer as itself/)
      // The server checks too: an organizer cannot link another organizer's event to wait on its own.
      const mallory = await backend.clientFor("mallory")
      const campaign = await mallory.createCampaign("m")
      const hers = await mallory.addToCampaign(campaign.id, { kind: "review", at: "+1h", attendees: ["x"] })
      const owned = await (await backend.clientFor("lead")).addToCampaign(campaign.id, {
        kind: "deploy",
        at: "+1h",
        attendees: ["x"]
      })
      const linked = await mallory.link(campaign.id, hers.id, owned.id).catch((error: unknown) => error)
      assert.strictEqual((linked as { _tag?: string })._tag, "Forbidden")
      await backend.server!.close()
      const gone = failure(await call(lead, "get_event", { eventId: event.id }))
      assert.strictEqual(gone.error.tag, "RpcClientError")
      assert.match(gone.hint, /could not be reached/)
    } finally {
      await backend.close().catch(() => undefined)
    }
  })
})
