import type { Event } from "@t-minus/core"
import * as Client from "@t-minus/core/client"
import { TMinusClient } from "@t-minus/core/client"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import parsePrometheus from "parse-prometheus-text-format"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type Running, rejection, start } from "./harness.ts"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("t-minus-server on 127.0.0.1: health and metrics", () => {
  let server: Running
  beforeAll(async () => {
    server = await start()
  })
  afterAll(() => server.close())

  it("/healthz and /readyz answer; unknown paths are 404", async () => {
    const healthz = await fetch(`${server.url}/healthz`)
    assert.strictEqual(healthz.status, 200)
    assert.deepStrictEqual(await healthz.json(), { status: "ok" })
    const readyz = await fetch(`${server.url}/readyz`)
    assert.strictEqual(readyz.status, 200)
    assert.deepStrictEqual(await readyz.json(), { status: "ready" })
    assert.strictEqual((await fetch(`${server.url}/nope`)).status, 404)
  })

  it("/metrics is valid Prometheus text with lateness, transitions, actions and RPC latency", async () => {
    const key = await server.key("acme", "olga", "organizer")
    const client = await TMinusClient.connect({ url: server.url, apiKey: key })
    try {
      const timer = await client.scheduleTimer({ in: "300ms", onFire: [{ _tag: "log", message: "hi" }] })
      assert.strictEqual((await client.waitFor(timer.id, "10s")).outcome, "fired")
      await rejection(client.get("nope"))
      // The action is delivered just after the firing.
      for (let i = 0; i < 100 && (await client.listActions({ status: "delivered" })).length === 0; i++)
        await sleep(20)
    } finally {
      await client.close()
    }
    // Transitions are counted from the log within a quarter of a second.
    let res = await fetch(`${server.url}/metrics`)
    let text = await res.text()
    for (
      let i = 0;
      i < 50 && !text.includes('tminus_action_outcomes_total{action="log",outcome="delivered"} 1');
      i++
    ) {
      await sleep(50)
      res = await fetch(`${server.url}/metrics`)
      text = await res.text()
    }
    assert.strictEqual(res.status, 200)
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/)
    // The parser checks the syntax (it throws on a malformed line) and reads names and types; it
    // folds labelled histogram series together, so values are read from the sample lines.
    const families = parsePrometheus(text) as Array<{ name: string; type: string }>
    const typeOf = (name: string) => families.find((f) => f.name === name)?.type
    assert.strictEqual(typeOf("tminus_fire_lateness_seconds"), "HISTOGRAM")
    assert.strictEqual(typeOf("tminus_transitions_total"), "COUNTER")
    assert.strictEqual(typeOf("tminus_action_outcomes_total"), "COUNTER")
    assert.strictEqual(typeOf("tminus_rpc_duration_seconds"), "HISTOGRAM")
    assert.strictEqual(typeOf("tminus_quota_rejections_total"), "COUNTER")
    const sample = (name: string, labels = "") => {
      const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `))
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1))
    }
    assert.strictEqual(sample("tminus_fire_lateness_seconds_count"), 1)
    assert.strictEqual(sample("tminus_fire_lateness_seconds_bucket", '{le="+Inf"}'), 1)
    assert.strictEqual(sample("tminus_transitions_total", '{type="fired"}'), 1)
    assert.strictEqual(sample("tminus_transitions_total", '{type="scheduled"}'), 1)
    assert.strictEqual(sample("tminus_action_outcomes_total", '{action="log",outcome="delivered"}'), 1)
    assert.strictEqual(
      sample("tminus_rpc_duration_seconds_count", '{method="scheduleTimer",outcome="ok"}'),
      1
    )
    assert.strictEqual(
      sample("tminus_rpc_duration_seconds_count", '{method="get",outcome="EventNotFound"}'),
      1
    )
    assert.isAbove(sample("tminus_rpc_duration_seconds_sum", '{method="scheduleTimer",outcome="ok"}')!, 0)
  })
})

for (const protocol of ["websocket", "http"] as const) {
  describe(`t-minus-server over ${protocol}: identity, access, tenants and quotas`, () => {
    let server: Running
    const clients: Array<TMinusClient> = []
    const connect = async (apiKey?: string) => {
      const client = await TMinusClient.connect({ url: server.url, apiKey, protocol })
      clients.push(client)
      return client
    }
    beforeAll(async () => {
      server = await start({
        quotas: {
          default: { activeEvents: 1_000, requestsPerSecond: 1_000 },
          tenants: { tiny: { activeEvents: 2, requestsPerSecond: 5, burst: 5 } }
        }
      })
    })
    afterAll(async () => {
      for (const client of clients) await client.close()
      await server.close()
    })

    it("three agents with their own keys: the full lifecycle, watch in order, waitFor", async () => {
      const organizer = await connect(await server.key("acme", "olga", "organizer"))
      const [alice, bob, carol] = await Promise.all(
        ["alice", "bob", "carol"].map(async (agent) => connect(await server.key("acme", agent, "agent")))
      )
      const seen: Array<Event.Transition> = []
      const stop = organizer.watch((t) => seen.push(t))
      await sleep(200)
      const event = await organizer.schedule({
        kind: "deploy",
        at: "+2s",
        attendees: ["alice", "bob", "carol"],
        quorum: 2,
        maxDeferrals: 1
      })
      assert.strictEqual(event.organizer, "olga")
      assert.strictEqual(event.tenant, "acme")
      const waiting = alice!.waitFor(event.id, "20s")
      await alice!.confirm(event.id, "alice")
      await bob!.defer(event.id, "bob", "1s")
      await carol!.decline(event.id, "carol")
      await bob!.confirm(event.id, "bob")
      const waited = await waiting
      assert.strictEqual(waited.outcome, "fired")
      assert.deepStrictEqual(
        waited.event.attendees.map((a) => `${a.agent}:${a.status}`),
        ["alice:confirmed", "bob:confirmed", "carol:declined"]
      )
      for (let i = 0; i < 50 && !seen.some((t) => t.type === "fired"); i++) await sleep(20)
      stop()
      // Every transition of the event, in the order the history holds them.
      const history = await organizer.history(event.id)
      assert.deepStrictEqual(
        seen.filter((t) => t.eventId === event.id).map((t) => `${t.type}:${t.actor}`),
        history.map((h) => `${h.type}:${h.actor}`)
      )
      assert.deepStrictEqual(
        history.map((h) => h.type),
        ["scheduled", "confirmed", "deferred", "declined", "confirmed", "fired"]
      )
    })

    it("the Effect client (RemoteClient layer): calls, typed errors, a watch stream", async () => {
      const apiKey = await server.key("acme", "olga", "organizer")
      const program = Effect.gen(function* () {
        const client = yield* Client.RemoteClient
        const event = yield* client.schedule({ input: { kind: "review", at: "+1h", attendees: ["olga"] } })
        const watching = yield* Effect.fork(
          Stream.runCollect(Stream.take(client.watch({ eventId: event.id }), 2))
        )
        yield* Effect.sleep("200 millis")
        yield* client.confirm({ eventId: event.id, agent: "olga" })
        yield* client.cancel({ eventId: event.id, reason: "done" })
        const seen = Chunk.toReadonlyArray(yield* Fiber.join(watching)).map((t) => t.type)
        const missing = yield* Effect.flip(client.get({ eventId: "nope" }))
        return { seen, missing: missing._tag }
      })
      const result = await Effect.runPromise(
        program.pipe(Effect.provide(Client.layer({ url: server.url, apiKey, protocol })), Effect.scoped)
      )
      assert.deepStrictEqual(result, { seen: ["confirmed", "cancelled"], missing: "EventNotFound" })
    })

    it("impersonation and role rules are refused with Forbidden", async () => {
      const organizer = await connect(await server.key("acme", "olga", "organizer"))
      const other = await connect(await server.key("acme", "oscar", "organizer"))
      const alice = await connect(await server.key("acme", "alice", "agent"))
      const viewer = await connect(await server.key("acme", "vic", "viewer"))
      const admin = await connect(await server.key("acme", "root", "admin"))
      const event = await organizer.schedule({ kind: "review", at: "+1h", attendees: ["alice", "bob"] })
      const forbidden = async (promise: Promise<unknown>, operation: string) => {
        const error = await rejection(promise)
        assert.strictEqual(error._tag, "Forbidden", String(error))
        assert.strictEqual(error.operation, operation)
      }
      await forbidden(alice.confirm(event.id, "bob"), "confirm")
      await forbidden(alice.defer(event.id, "bob", "5m"), "defer")
      await forbidden(alice.cancel(event.id), "cancel")
      await forbidden(alice.schedule({ kind: "review", at: "+1h" }), "schedule")
      await forbidden(viewer.confirm(event.id, "vic"), "confirm")
      await forbidden(viewer.scheduleTimer({ in: "1m" }), "scheduleTimer")
      await forbidden(viewer.createCampaign("x"), "createCampaign")
      await forbidden(other.cancel(event.id), "cancel")
      await forbidden(other.reschedule(event.id, "+2h"), "reschedule")
      await forbidden(organizer.schedule({ kind: "review", at: "+1h", organizer: "oscar" }), "schedule")
      await forbidden(organizer.cancel(event.id, { actor: "root" }), "cancel")
      // Reads are open to every role; answering as oneself works; the admin may do anything.
      assert.strictEqual((await viewer.get(event.id)).id, event.id)
      assert.strictEqual((await alice.confirm(event.id, "alice")).attendees[0]?.status, "confirmed")
      assert.strictEqual((await admin.confirm(event.id, "bob")).attendees[1]?.status, "confirmed")
      const cancelled = await organizer.cancel(event.id, { reason: "done" })
      assert.strictEqual(cancelled.status, "cancelled")
      const history = await viewer.history(event.id)
      assert.strictEqual(history.at(-1)?.actor, "olga")
    })

    it("no key or an unknown key is Unauthenticated", async () => {
      for (const apiKey of [undefined, "tm_nope_nope"]) {
        const error = await rejection(TMinusClient.connect({ url: server.url, apiKey, protocol }))
        assert.strictEqual(error._tag, "Unauthenticated", String(error))
      }
    })

    it("another tenant's ids answer not found, and its lists are its own", async () => {
      const acme = await connect(await server.key("acme", "olga", "organizer"))
      const globex = await connect(await server.key("globex", "gary", "admin"))
      const mine = await acme.schedule({ kind: "review", at: "+1h", attendees: ["alice"] })
      const campaign = await acme.createCampaign("launch")
      for (const call of [
        globex.get(mine.id),
        globex.history(mine.id),
        globex.confirm(mine.id, "alice"),
        globex.cancel(mine.id),
        globex.waitFor(mine.id, "1s")
      ]) {
        assert.strictEqual((await rejection(call))._tag, "EventNotFound")
      }
      assert.strictEqual((await rejection(globex.getCampaign(campaign.id)))._tag, "CampaignNotFound")
      assert.strictEqual(
        (await rejection(globex.addToCampaign(campaign.id, { kind: "review", at: "+1h" })))._tag,
        "CampaignNotFound"
      )
      assert.deepStrictEqual(
        (await globex.list()).filter((e) => e.id === mine.id),
        []
      )
      assert.isFalse((await globex.listCampaigns()).some((c) => c.id === campaign.id))
      const theirs = await globex.scheduleTimer({ in: "1h" })
      assert.strictEqual((await rejection(acme.get(theirs.id)))._tag, "EventNotFound")
      assert.isTrue((await acme.list()).every((e) => e.tenant === "acme"))
    })

    it("quotas: requests per second and active events are exhausted, then recover", async () => {
      const tiny = await connect(await server.key("tiny", "tom", "organizer"))
      // connect() spent one request; the burst is five.
      await sleep(1_100)
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => tiny.listCampaigns()))
      const refused = results
        .filter((r) => r.status === "rejected")
        .map((r) => (r as PromiseRejectedResult).reason)
      assert.strictEqual(results.length - refused.length, 5)
      for (const error of refused) {
        assert.strictEqual(error._tag, "ResourceExhausted")
        assert.strictEqual(error.resource, "requests")
        assert.isAbove(error.retryAfterMs, 0)
        assert.isAtMost(error.retryAfterMs, 200)
      }
      await sleep(refused[0].retryAfterMs + 50)
      assert.deepStrictEqual(await tiny.listCampaigns(), [])

      await sleep(1_100)
      const a = await tiny.scheduleTimer({ in: "1h" })
      await tiny.scheduleTimer({ in: "2h" })
      const full = await rejection(tiny.scheduleTimer({ in: "3h" }))
      assert.strictEqual(full._tag, "ResourceExhausted")
      assert.strictEqual(full.resource, "activeEvents")
      assert.strictEqual(full.limit, 2)
      await tiny.cancel(a.id)
      assert.strictEqual((await tiny.scheduleTimer({ in: "3h" })).status, "scheduled")
    }, 20_000)
  })
}
