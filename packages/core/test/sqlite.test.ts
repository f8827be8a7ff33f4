import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { promisify } from "node:util"
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import { Coordinator, InvalidInput, TMinus } from "../src/index.ts"
import * as SqlEventStore from "../src/SqlEventStore.ts"
import * as Sqlite from "../src/sqlite.ts"

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), "t-minus-sqlite-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const file = (name: string) => join(dir, name)

const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const runTs = (script: string, args: ReadonlyArray<string>, cwd?: string) =>
  run(process.execPath, ["--import", tsx, fixture(script), ...args], { cwd, timeout: 120_000 })

describe("SQLite backend", () => {
  it("events, responses, history and campaigns persist across engines on one file", async () => {
    let now = Date.parse("2026-05-01T00:00:00Z")
    const filename = file("persist.db")
    const first = await TMinus.open({ filename, now: () => now })
    const campaign = await first.createCampaign("release")
    const a = await first.addToCampaign(campaign.id, {
      kind: "review",
      at: "+1m",
      attendees: ["x", "y"],
      quorum: 1
    })
    const b = await first.addToCampaign(campaign.id, { kind: "custom:Gate", at: "+2m", quorum: 0 })
    await first.link(campaign.id, a.id, b.id)
    await first.confirm(a.id, "x")
    await first.close()

    const second = await TMinus.open({ filename, now: () => now })
    assert.deepStrictEqual(await second.getCampaign(campaign.id), {
      ...campaign,
      events: [a.id, b.id],
      dependencies: [[a.id, b.id]]
    })
    assert.deepStrictEqual(await second.executionOrder(campaign.id), [a.id, b.id])
    assert.strictEqual((await second.get(b.id)).kind, "custom:Gate")
    assert.strictEqual((await second.get(a.id)).attendees[0]?.status, "confirmed")
    now += 2 * 60_000
    assert.deepStrictEqual((await second.tick()).fired, [a.id, b.id])
    await second.close()

    const third = await TMinus.open({ filename, now: () => now })
    assert.strictEqual((await third.get(a.id)).status, "fired", "fired events are kept")
    assert.deepStrictEqual(
      (await third.history(a.id)).map((h) => h.type),
      ["scheduled", "campaign_added", "confirmed", "fired"]
    )
    await third.close()
  })

  it("the file is in WAL mode with a busy timeout", async () => {
    const filename = file("wal.db")
    const mode = await Effect.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [journal] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
        const [busy] = yield* sql<{ timeout: number }>`PRAGMA busy_timeout`
        return [journal?.journal_mode, busy?.timeout]
      }).pipe(Effect.provide(Sqlite.layerClient({ filename })))
    )
    assert.deepStrictEqual(mode, ["wal", 10_000])
    const native = file("native-wal.db")
    await (await TMinus.open({ filename: native })).close()
    const db = new Database(native, { readonly: true })
    assert.strictEqual(db.pragma("journal_mode", { simple: true }), "wal")
    db.close()
  })

  it("the facade throws the typed error instances", async () => {
    const tm = await TMinus.open({ filename: file("errors.db") })
    const error = await tm
      .schedule({ kind: "review", at: "+1m", attendees: ["a"], quorum: 2 })
      .catch((e) => e)
    assert.instanceOf(error, InvalidInput)
    assert.strictEqual(error.field, "quorum")
    assert.strictEqual(error._tag, "InvalidInput")
    await tm.close()
  })

  it("an unopenable file fails with a StorageError naming it", async () => {
    const error = await TMinus.open({ filename: join(dir, "no-such-dir", "x.db") }).catch((e) => e)
    assert.strictEqual(error._tag, "StorageError")
    assert.include(error.message, "no-such-dir")
  })

  it("opens ./t-minus.db in the working directory by default", async () => {
    const cwd = mkdtempSync(join(dir, "cwd-"))
    const { stdout } = await runTs("open-default.ts", [], cwd)
    assert.isTrue(existsSync(join(cwd, "t-minus.db")))
    const tm = await TMinus.open({ filename: join(cwd, "t-minus.db") })
    assert.strictEqual((await tm.get(stdout.trim())).name, "default-file")
    await tm.close()
  })

  it("two OS processes confirming on one file concurrently lose no update", async () => {
    const filename = file("shared.db")
    const start = file("shared.go")
    const tm = await TMinus.open({ filename })
    const agents = Array.from({ length: 30 }, (_, i) => `agent-${i}`)
    const events = await tm.scheduleMany(
      Array.from({ length: 4 }, () => ({
        kind: "meeting",
        at: "+1h",
        attendees: agents,
        quorum: agents.length
      }))
    )
    const ids = events.map((e) => e.id).join(",")
    const workers = [
      runTs("confirm-worker.ts", [filename, start, ids, agents.filter((_, i) => i % 2 === 0).join(",")]),
      runTs("confirm-worker.ts", [filename, start, ids, agents.filter((_, i) => i % 2 === 1).join(",")])
    ]
    // Both processes open the file first, then start together.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    writeFileSync(start, "go")
    const outputs = await Promise.all(workers)
    assert.deepStrictEqual(
      outputs.map((o) => JSON.parse(o.stdout).done),
      [60, 60]
    )
    for (const event of events) {
      const stored = await tm.get(event.id)
      assert.deepStrictEqual(
        stored.attendees.filter((a) => a.status !== "confirmed").map((a) => a.agent),
        [],
        "every confirmation survived"
      )
      assert.strictEqual(
        (await tm.history(event.id)).filter((h) => h.type === "confirmed").length,
        agents.length
      )
      assert.strictEqual(stored.version, 1 + agents.length)
    }
    await tm.close()
  })

  it("the WAL stays bounded while one fiber writes back to back (checkpoints keep pace)", async () => {
    const filename = file("wal-bound.db")
    const input = { kind: "review", at: "+1h", attendees: ["a", "b", "c"], quorum: 2 }
    const largestWal = await Effect.runPromise(
      Effect.gen(function* () {
        const c = yield* Coordinator.Coordinator
        const batch = Array.from({ length: 1_000 }, () => input)
        let largest = 0
        for (let i = 0; i < 30; i++) {
          yield* c.scheduleMany(batch)
          largest = Math.max(largest, statSync(`${filename}-wal`).size)
        }
        return largest
      }).pipe(Effect.provide(Sqlite.layer({ filename })))
    )
    // Without checkpoints the WAL would hold every page written: more than the database itself.
    assert.isBelow(largestWal, statSync(filename).size / 2)
  })

  it("tick reads only due rows: every query it runs is served by an index", async () => {
    const filename = file("plan.db")
    const tm = await TMinus.open({ filename })
    // Enough rows that SQLite's planner would rather scan if no index fitted.
    await tm.scheduleMany(Array.from({ length: 2_000 }, (_, i) => ({ kind: "timer", at: `+${i + 1}h` })))
    await tm.close()
    const db = new Database(filename, { readonly: true })
    const plan = ([sql, params]: readonly [string, ReadonlyArray<unknown>]) =>
      db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...params)
        .map((row: any) => row.detail as string)
    const due = plan(SqlEventStore.dueQuery(Date.now(), 1_000))
    const preds = plan(SqlEventStore.predecessorsQuery(["a", "b"]))
    const deps = plan(SqlEventStore.dependentsQuery(["a", "b"]))
    db.close()
    console.log(["due:", ...due, "predecessors:", ...preds, "dependents:", ...deps].join("\n  "))
    assert.deepStrictEqual(due, ["SEARCH events USING INDEX events_due (due_at>? AND due_at<?)"])
    for (const line of [...due, ...preds, ...deps]) {
      assert.notMatch(line, /^SCAN (events|campaign_links)\b/, `full scan in: ${line}`)
    }
  })
})
