/**
 * Several `t-minus-server` processes on one PostgreSQL database (issue 8): a replica killed with
 * SIGKILL mid-run, and one frozen (SIGSTOP) past its lease and then resumed. Real processes, the
 * local PostgreSQL, a webhook receiver on 127.0.0.1.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { TMinusClient } from "@t-minus/core/client"
import pg from "pg"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { PG_URL, postgresAnswers } from "../../core/test/postgres.ts"
import { run, serve } from "./harness.ts"

const postgresUp = await postgresAnswers("the replica tests are")

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every 250 ms until it is true, failing after `ms`. */
const until = async (what: string, ms: number, check: () => Promise<boolean>) => {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(250)
  }
}

/** A webhook receiver: which events it heard of, and how many deliveries in all. */
const receiver = async () => {
  const heard = new Map<string, number>()
  let deliveries = 0
  const server = Http.createServer((req, res) => {
    let body = ""
    req.on("data", (c) => {
      body += c
    })
    req.on("end", () => {
      const id = JSON.parse(body).event.id as string
      heard.set(id, (heard.get(id) ?? 0) + 1)
      deliveries += 1
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    heard,
    deliveries: () => deliveries,
    close: () => new Promise((resolve) => server.close(resolve))
  }
}

describe.runIf(postgresUp)("replicas on one PostgreSQL", () => {
  const schema = `tm_replicas_${process.pid}`
  const db = new pg.Client({ connectionString: PG_URL })
  const sql = async <A = any>(text: string, params: Array<unknown> = []) =>
    (await db.query(text, params)).rows as Array<A>

  beforeAll(async () => {
    await db.connect()
  })
  afterAll(async () => {
    await db.end()
  })

  /** An API key of tenant `t` made with the bin (`keys create`) in `where`. */
  const makeKey = async (where: string, principal: string, role: string) => {
    const made = await run([
      "keys",
      "create",
      "--tenant",
      "t",
      "--principal",
      principal,
      "--role",
      role,
      "--json",
      "--database-url",
      PG_URL,
      "--database-schema",
      where
    ])
    assert.strictEqual(made.code, 0, made.err)
    return JSON.parse(made.out) as { key: string; id: string }
  }

  /** A fresh schema, an admin key made with the bin, and `n` replicas (ids r1…rn). */
  const cluster = async (name: string, n: number, leaseMs: number) => {
    const where = `${schema}_${name}`
    await sql(`DROP SCHEMA IF EXISTS ${where} CASCADE`)
    const database = ["--database-url", PG_URL, "--database-schema", where]
    const { key } = await makeKey(where, "boss", "admin")
    // Started together: they set the database up one at a time.
    const replicas = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        serve([
          ...database,
          "--replica-id",
          `r${i + 1}`,
          "--lease-ms",
          String(leaseMs),
          "--log-level",
          "warning"
        ])
      )
    )
    const clients = await Promise.all(
      replicas.map((r) => TMinusClient.connect({ url: r.url, apiKey: key, protocol: "http" }))
    )
    /** The id of the replica that holds the tick lease (its owner is `<id>#<nonce>`). */
    const holder = async () =>
      (await sql<{ owner: string }>(`SELECT owner FROM ${where}.leases WHERE name = 'tick'`))[0]?.owner.split(
        "#"
      )[0]
    return {
      where,
      replicas,
      clients,
      holder,
      close: async () => {
        await Promise.all(clients.map((c) => c.close()))
        for (const r of replicas) r.child.kill("SIGKILL")
        await Promise.all(replicas.map((r) => r.exited))
        await sql(`DROP SCHEMA IF EXISTS ${where} CASCADE`)
      }
    }
  }

  /** Ended events of the schema: how late each ended, by whom, and how often it ended. */
  const endings = (where: string) =>
    sql<{ event_id: string; type: string; due: string; late: string; replica: string | null; n: string }>(
      `SELECT h.event_id, MIN(h.type) AS type, MIN(e.fire_at) AS due, MIN(h.at - e.fire_at) AS late,
              MIN(h.detail::json->>'replica') AS replica, COUNT(*) AS n
         FROM ${where}.history h JOIN ${where}.events e ON e.id = h.event_id
        WHERE h.type IN ('fired', 'missed') GROUP BY h.event_id`
    )

  it("3 replicas, 10,000 events over 60 s, the lease holder killed mid-run: every event ends once, on time, its action delivered", async () => {
    const EVENTS = 10_000
    const SPREAD_MS = 60_000
    const LEASE_MS = 3_000
    const hooks = await receiver()
    const c = await cluster("kill", 3, LEASE_MS)
    try {
      const start = Date.now() + 20_000
      const fireAt = (i: number) => start + Math.floor((i * SPREAD_MS) / EVENTS)
      const alive = c.clients.map(() => true)
      /** A random live replica's client. */
      const pick = () => {
        const live = c.clients.filter((_, i) => alive[i])
        return live[Math.floor(Math.random() * live.length)]!
      }
      const ids: Array<string> = []
      // Scheduled in batches of 100 through random replicas.
      for (let i = 0; i < EVENTS; i += 100) {
        const batch = Array.from({ length: 100 }, (_, j) => ({
          kind: "checkpoint",
          name: `job ${i + j}`,
          at: fireAt(i + j),
          attendees: ["a1", "a2"],
          quorum: 1,
          onFire: [{ _tag: "webhook" as const, url: hooks.url }],
          onMiss: [{ _tag: "webhook" as const, url: hooks.url }]
        }))
        ids.push(...(await pick().scheduleMany(batch)).map((e) => e.id))
      }
      // Nine in ten are confirmed (by a random attendee, through a random replica), in fire-time
      // order, while the run goes on; the rest miss. A confirmation that comes after its event
      // missed is refused (EventTerminal), and that event counts as unconfirmed.
      const confirmed = new Set<string>()
      let refused = 0
      let next = 0
      const confirming = Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < EVENTS) {
            const i = next++
            if (i % 10 === 9) continue
            const agent = Math.random() < 0.5 ? "a1" : "a2"
            for (let attempt = 1; ; attempt++) {
              try {
                await pick().confirm(ids[i]!, agent)
                confirmed.add(ids[i]!)
              } catch (error) {
                const tag = (error as { _tag?: string })._tag
                // The replica died under the call: ask a live one (a confirmation is idempotent).
                if (tag === "RpcClientError" && attempt < 3) continue
                if (tag !== "EventTerminal") throw error
                refused += 1
              }
              break
            }
          }
        })
      )
      assert.isBelow(Date.now(), start, "scheduling took longer than the lead time")

      // Mid-run, the replica that ticks dies.
      await sleep(start + SPREAD_MS / 2 - Date.now())
      const victim = await c.holder()
      assert.isDefined(victim)
      const victimIndex = Number(victim!.slice(1)) - 1
      const killedAt = Date.now()
      alive[victimIndex] = false
      c.replicas[victimIndex]!.child.kill("SIGKILL")
      assert.strictEqual(await c.replicas[victimIndex]!.exited, null)
      const survivor = c.clients[(victimIndex + 1) % 3]!

      await until(
        "every event ended",
        SPREAD_MS,
        async () => (await survivor.list({ status: "scheduled" })).length === 0
      )
      await confirming
      assert.isAbove(confirmed.size, EVENTS / 2)
      await until("every action delivered", 60_000, async () => hooks.heard.size === EVENTS)

      const ended = await endings(c.where)
      assert.strictEqual(ended.length, EVENTS)
      // No transition twice: one fired-or-missed entry per event, and no event both.
      assert.deepStrictEqual(
        ended.filter((e) => Number(e.n) !== 1).map((e) => e.event_id),
        []
      )
      for (const e of ended) assert.strictEqual(e.type, confirmed.has(e.event_id) ? "fired" : "missed")
      // Actions: every event's webhook arrived; the outbox holds nothing undelivered. Attempts
      // the dead replica made but never recorded are made again once their claim (the webhook
      // timeout plus 30 s) runs out: wait for that.
      const outbox = () =>
        sql<{ status: string; n: string }>(
          `SELECT status, COUNT(*) AS n FROM ${c.where}.actions GROUP BY status`
        )
      await until("every action recorded as delivered", 60_000, async () => {
        const rows = await outbox()
        return rows.length === 1 && rows[0]!.status === "delivered"
      })
      assert.deepStrictEqual(
        (await outbox()).map((r) => [r.status, Number(r.n)]),
        [["delivered", EVENTS]]
      )
      // Lateness: within the lease plus 1 s, for the dead replica's events above all.
      const lateness = ended.map((e) => Number(e.late)).sort((a, b) => a - b)
      const max = lateness[lateness.length - 1]!
      // The dead replica's events: due from its death until the lease it held ran out.
      const orphaned = ended.filter((e) => Number(e.due) >= killedAt && Number(e.due) <= killedAt + LEASE_MS)
      assert.isAbove(orphaned.length, 0)
      const orphanedMax = Math.max(...orphaned.map((e) => Number(e.late)))
      assert.isAtMost(orphanedMax, LEASE_MS + 1_000)
      assert.isAtMost(max, LEASE_MS + 1_000)
      const byReplica = new Map<string, number>()
      for (const e of ended) byReplica.set(e.replica ?? "?", (byReplica.get(e.replica ?? "?") ?? 0) + 1)
      assert.isTrue(byReplica.has(victim!), "the victim fired the first half")
      assert.strictEqual([...byReplica.keys()].filter((r) => r !== victim).length, 1, "one replica took over")
      const duplicates = hooks.deliveries() - EVENTS
      console.log(
        JSON.stringify({
          test: "kill",
          killed: victim,
          killedAtOffsetMs: killedAt - start,
          byReplica: Object.fromEntries(byReplica),
          latenessMs: {
            p50: lateness[Math.floor(lateness.length * 0.5)],
            p99: lateness[Math.floor(lateness.length * 0.99)],
            max
          },
          orphaned: orphaned.length,
          orphanedMaxLatenessMs: orphanedMax,
          confirmed: confirmed.size,
          confirmationsTooLate: refused,
          duplicateDeliveries: duplicates
        })
      )
    } finally {
      await c.close()
      await hooks.close()
    }
  }, 240_000)

  it("a replica frozen past its lease (SIGSTOP, then SIGCONT) fires nothing it no longer owns", async () => {
    const EVENTS = 600
    const LEASE_MS = 2_000
    const hooks = await receiver()
    const c = await cluster("pause", 2, LEASE_MS)
    try {
      const start = Date.now() + 3_000
      const due = (i: number) => start + i * 20 // over 12 s
      const ids: Array<string> = []
      for (let i = 0; i < EVENTS; i += 100) {
        const batch = Array.from({ length: 100 }, (_, j) => ({
          kind: "checkpoint",
          at: due(i + j),
          attendees: [],
          onFire: [{ _tag: "webhook" as const, url: hooks.url }]
        }))
        ids.push(...(await c.clients[(i / 100) % 2]!.scheduleMany(batch)).map((e) => e.id))
      }
      await sleep(start + 2_000 - Date.now())
      const frozen = await c.holder()
      assert.isDefined(frozen)
      const index = Number(frozen!.slice(1)) - 1
      const other = c.clients[1 - index]!
      const pausedAt = Date.now()
      c.replicas[index]!.child.kill("SIGSTOP")
      // Frozen for three leases: the other replica takes over meanwhile.
      await sleep(3 * LEASE_MS)
      assert.notStrictEqual(await c.holder(), frozen)
      const resumedAt = Date.now()
      c.replicas[index]!.child.kill("SIGCONT")
      // Resumed, it still serves requests; firing stays with the new holder.
      const late = await c.clients[index]!.scheduleMany([
        {
          kind: "checkpoint",
          at: Date.now() + 1_000,
          attendees: [],
          onFire: [{ _tag: "webhook", url: hooks.url }]
        }
      ])
      ids.push(late[0]!.id)
      await until(
        "every event ended",
        30_000,
        async () => (await other.list({ status: "scheduled" })).length === 0
      )
      await until("every action delivered", 30_000, async () => hooks.heard.size === ids.length)
      const ended = await endings(c.where)
      assert.strictEqual(ended.length, ids.length)
      assert.deepStrictEqual(
        ended.filter((e) => Number(e.n) !== 1 || e.type !== "fired").map((e) => e.event_id),
        []
      )
      // Nothing was fired by the frozen replica from the moment it froze.
      const afterFreeze = await sql<{ n: string }>(
        `SELECT COUNT(*) AS n FROM ${c.where}.history WHERE detail::json->>'replica' = $1 AND at >= $2`,
        [frozen, pausedAt]
      )
      assert.strictEqual(Number(afterFreeze[0]!.n), 0)
      assert.notStrictEqual(await c.holder(), frozen)
      // Events due while it was frozen fired within the lease plus 1 s, by the other replica.
      const orphaned = ended.filter((e) => Number(e.due) >= pausedAt && Number(e.due) < resumedAt)
      assert.isAbove(orphaned.length, 0)
      for (const e of orphaned) assert.notStrictEqual(e.replica, frozen)
      const worst = Math.max(...orphaned.map((e) => Number(e.late)))
      assert.isAtMost(worst, LEASE_MS + 1_000)
      // No action lost: every one recorded as delivered (the frozen replica's own attempts too,
      // recorded once it resumed).
      const outbox = () =>
        sql<{ status: string; n: string }>(
          `SELECT status, COUNT(*) AS n FROM ${c.where}.actions GROUP BY status`
        )
      await until("every action recorded as delivered", 10_000, async () => {
        const rows = await outbox()
        return rows.length === 1 && rows[0]!.status === "delivered"
      })
      assert.deepStrictEqual(
        (await outbox()).map((r) => [r.status, Number(r.n)]),
        [["delivered", ids.length]]
      )
      console.log(
        JSON.stringify({
          test: "pause",
          frozen,
          frozenForMs: resumedAt - pausedAt,
          orphaned: orphaned.length,
          orphanedMaxLatenessMs: worst,
          duplicateDeliveries: hooks.deliveries() - ids.length
        })
      )
    } finally {
      await c.close()
      await hooks.close()
    }
  }, 120_000)

  it("keys are shared: made or revoked through the database, they apply on every replica at once", async () => {
    const c = await cluster("keys", 2, 3_000)
    try {
      const database = ["--database-url", PG_URL, "--database-schema", c.where]
      const { key, id } = await makeKey(c.where, "ann", "organizer")
      const [one, two] = await Promise.all(
        c.replicas.map((r) => TMinusClient.connect({ url: r.url, apiKey: key, protocol: "http" }))
      )
      // Scheduled through one replica, seen and cancelled through the other: one database.
      const event = await one!.scheduleTimer({ in: "1h", name: "shared" })
      assert.strictEqual((await two!.get(event.id)).name, "shared")
      // A wait on one replica hears of a fire decided by whichever holds the lease.
      const soon = await two!.scheduleTimer({ in: "1s" })
      const waited = await Promise.all([one!.waitFor(soon.id, "20s"), two!.waitFor(soon.id, "20s")])
      assert.deepStrictEqual(
        waited.map((w) => w.outcome),
        ["fired", "fired"]
      )
      const listed = await run(["keys", "list", "--json", ...database])
      assert.include(
        (JSON.parse(listed.out) as Array<{ id: string }>).map((k) => k.id),
        id
      )
      assert.strictEqual((await run(["keys", "revoke", id, ...database])).code, 0)
      for (const client of [one!, two!]) {
        const refused = await client.get(event.id).then(
          () => null,
          (error: { _tag?: string }) => error._tag
        )
        assert.strictEqual(refused, "Unauthenticated")
      }
      await Promise.all([one!.close(), two!.close()])
      // The two stores are one choice: both flags at once are refused, naming them.
      const both = await run(["keys", "list", "--db", "x.db", ...database])
      assert.strictEqual(both.code, 2)
      assert.include(both.err, "--db (SQLite) or --database-url (Postgres), not both")
    } finally {
      await c.close()
    }
  }, 60_000)
})
