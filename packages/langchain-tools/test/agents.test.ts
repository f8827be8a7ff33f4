/**
 * Real `createAgent` loops (langchain) driven by scripted models (LangChain's `fakeModel`) that
 * emit tool calls, each agent with its own tool set, on both backends.
 */
import { ToolMessage } from "@langchain/core/messages"
import { createAgent } from "langchain"
import { assert, it } from "vitest"
import { ATTENDEES, deployTeam, ORGANIZER, scripted } from "../examples/deploy-team.ts"
import { createTMinusTools } from "../src/index.ts"
import { eachBackend } from "./backends.ts"

const toolMessages = (messages: ReadonlyArray<unknown>) =>
  messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))

eachBackend("agent loops (%s)", (backend) => {
  it("three agents confirm, one defers first: the countdown extends and the deploy fires after the cascade", async () => {
    const { eventId, conversations } = await deployTeam({
      clientFor: (agent) => backend().clientFor(agent, { role: agent === ORGANIZER ? "organizer" : "agent" })
    })
    const client = await backend().clientFor("observer", { role: "viewer" })
    const event = await client.get(eventId)
    assert.strictEqual(event.status, "fired")
    assert.strictEqual(event.organizer, ORGANIZER)
    assert.deepStrictEqual(
      event.attendees.map((a) => [a.agent, a.status]),
      ATTENDEES.map((agent) => [agent, "confirmed"])
    )
    assert.strictEqual(event.deferralsUsed, 1)
    const history = (await client.history(eventId)).map((h) => `${h.type}:${h.actor}`)
    const at = (entry: string) => {
      const index = history.indexOf(entry)
      assert.isAtLeast(index, 0, `${entry} in ${history.join(", ")}`)
      return index
    }
    assert.isBelow(at("deferred:reviewer"), at("cascaded:t-minus"))
    assert.isBelow(at("cascaded:t-minus"), at("confirmed:reviewer"))
    assert.isBelow(at("confirmed:reviewer"), at("fired:t-minus"))
    const entries = await client.history(eventId)
    const scheduledFor = Date.parse(String(entries[0]!.detail.fireAt ?? ""))
    const cascade = entries.find((h) => h.type === "cascaded")!
    const fired = entries.find((h) => h.type === "fired")!
    if (!Number.isNaN(scheduledFor)) assert.isAtLeast(fired.at.getTime() - scheduledFor, 2_000)
    assert.isAtLeast(
      fired.at.getTime() - cascade.at.getTime(),
      1_900,
      "the countdown was extended by the deferral"
    )
    for (const agent of ATTENDEES) {
      const last = conversations[agent]!.at(-1)
      assert.strictEqual(last?.content, "The deploy fired.", agent)
    }
    const reviewerCalls = toolMessages(conversations.reviewer!).map((m) => m.name)
    assert.strictEqual(reviewerCalls[0], "defer")
    assert.include(reviewerCalls, "confirm_readiness")
  }, 30_000)

  it("impersonation fails and bad arguments come back as tool messages the model can act on", async () => {
    const lead = createTMinusTools({ agent: "lead", client: await backend().clientFor("lead") })
    const schedule = lead.find((t) => t.name === "schedule_event")!
    const scheduled = JSON.parse(
      String(await schedule.invoke({ kind: "review", at: "+1h", attendees: ["builder", "reviewer"] }))
    )
    const eventId: string = scheduled.event.id
    const script = [
      { call: "confirm_readiness", args: { eventId, agent: "reviewer" } },
      { call: "cancel_event", args: { eventId } },
      { call: "defer", args: { eventId, duration: "30" } },
      { call: "schedule_event", args: { kind: "deploy", at: "+1h", attendees: ["builder"], quorum: "one" } },
      { call: "reschedule_event", args: { eventId } }
    ]
    let step = 0
    const model = scripted((last) =>
      last === undefined || step < script.length ? script[step++]! : "giving up"
    )
    const agent = createAgent({
      model,
      tools: createTMinusTools({
        agent: "builder",
        client: await backend().clientFor("builder", { role: "agent" })
      })
    })
    const state = await agent.invoke({
      messages: [{ role: "user", content: `Make ${eventId} happen, whatever it takes.` }]
    })
    const results = toolMessages(state.messages)
    assert.deepStrictEqual(
      results.map((m) => [m.name, m.status]),
      script.map((s) => [s.call, "error"])
    )
    const [posing, cancelling, deferring, scheduling, rescheduling] = results.map((m) =>
      JSON.parse(String(m.content))
    )
    assert.strictEqual(posing.error.tag, "Impersonation")
    assert.match(posing.hint, /only act as builder/)
    assert.strictEqual(cancelling.error.tag, "Forbidden")
    assert.match(cancelling.error.message, /organized by lead/)
    assert.strictEqual(deferring.error.field, "duration")
    assert.match(deferring.error.message, /give a unit, as in "30s"/)
    assert.strictEqual(scheduling.error.field, "quorum")
    assert.match(scheduling.error.message, /quorum: Expected number/)
    assert.strictEqual(rescheduling.error.field, "at")
    assert.match(rescheduling.error.message, /at: is missing/)
    assert.strictEqual(state.messages.at(-1)?.content, "giving up")
    const event = await (await backend().clientFor("observer", { role: "viewer" })).get(eventId)
    assert.strictEqual(event.status, "scheduled")
    assert.deepStrictEqual(
      event.attendees.map((a) => a.status),
      ["pending", "pending"]
    )
  }, 30_000)

  it("a model that leaves optional fields out (not strict) still gets through LangChain's own check", async () => {
    const [confirm] = createTMinusTools({ agent: "solo", client: await backend().clientFor("solo") }).filter(
      (t) => t.name === "create_timer"
    )
    const result = await confirm!.invoke({
      type: "tool_call",
      id: "call_1",
      name: "create_timer",
      args: { in: "1h" }
    })
    assert.instanceOf(result, ToolMessage)
    assert.strictEqual((result as ToolMessage).status, "success")
    assert.strictEqual(JSON.parse(String((result as ToolMessage).content)).event.kind, "timer")
  })
})
