/**
 * How a store tells the runner that something changed: `localChanges` / `awaitLocalChange` for this
 * process's commits, `externalVersion` for other connections' (other processes'). And the native
 * SQLite driver's checkpoint worker, which keeps the WAL in bounds off the JavaScript thread.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { afterAll, assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Coordinator from "../src/Coordinator.ts"
import type { StorageError } from "../src/Errors.ts"
import type { Campaign } from "../src/Event.ts"
import { EventStore, type EventStoreShape } from "../src/EventStore.ts"
import * as Sqlite from "../src/sqlite.ts"
import { backends, T0 } from "./backends.ts"

const dir = mkdtempSync(join(tmpdir(), "t-minus-signal-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const freshFile = () => join(dir, `store-${++files}.db`)

let campaigns = 0
const campaign = (): Campaign => ({
  id: `c-${++campaigns}`,
  name: "signal",
  events: [],
  tenant: "default",
  dependencies: [],
  createdAt: new Date(T0)
})

/** What the runner's delivery loop does when nothing is due: a claim that finds nothing. */
const idleTransaction = (s: EventStoreShape) =>
  s.transaction(Effect.flatMap(s.dueActions(T0, 10), (due) => s.updateActions(due)))

/** Builds a store in the current scope (so two can share a file, as two processes would). */
const open = (layer: Layer.Layer<EventStore, StorageError>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, EventStore))

/** The SQL stores on a file of their own, by driver. */
const sqlFileStores: ReadonlyArray<
  readonly [name: string, store: (filename: string) => Layer.Layer<EventStore, StorageError>]
> = [
  ["native SQLite", (filename) => Sqlite.layerStore({ filename })],
  ["SQLite via @effect/sql SqlClient", (filename) => Sqlite.layerSqlClientStore({ filename })]
]

for (const [backend, store] of backends) {
  describe(`change signal: ${backend}`, () => {
    const test = (name: string, body: Effect.Effect<void, unknown, EventStore>) =>
      it.effect(name, () => Effect.provide(body, store()))

    test(
      "transactions that write nothing move neither localChanges nor externalVersion",
      Effect.gen(function* () {
        const s = yield* EventStore
        const local = yield* s.localChanges
        const version = yield* s.externalVersion
        for (let i = 0; i < 50; i++) yield* idleTransaction(s)
        assert.strictEqual(yield* s.localChanges, local)
        assert.strictEqual(yield* s.externalVersion, version)
      })
    )

    test(
      "every committed transaction that wrote bumps localChanges once; empty and failed ones never",
      Effect.gen(function* () {
        const s = yield* EventStore
        const local = yield* s.localChanges
        const writing = () => {
          const c = campaign()
          // Several writes and a nested transaction: still one commit.
          return s.transaction(
            Effect.zipRight(s.insertCampaign(c), s.transaction(s.addCampaignEvent(c.id, "e-1")))
          )
        }
        const failing = s.transaction(Effect.zipRight(s.insertCampaign(campaign()), Effect.fail("undone")))
        yield* Effect.all(
          Array.from({ length: 30 }, (_, i) =>
            i % 3 === 0 ? writing() : i % 3 === 1 ? idleTransaction(s) : Effect.ignore(failing)
          ),
          { concurrency: "unbounded", discard: true }
        )
        assert.strictEqual((yield* s.localChanges) - local, 10)

        const seen = yield* s.localChanges
        const waiter = yield* Effect.fork(s.awaitLocalChange(seen))
        yield* idleTransaction(s)
        assert.isNull(waiter.unsafePoll(), "no wake-up for a transaction that wrote nothing")
        yield* writing()
        yield* Fiber.join(waiter)
      })
    )

    it.effect(
      "observeWrites: each commit that wrote says its earliest due and whether it wrote actions",
      () =>
        Effect.gen(function* () {
          const s = yield* EventStore
          const c = yield* Coordinator.Coordinator
          const seen: Array<readonly [earliestDue: number, actions: boolean]> = []
          const stop = s.observeWrites((write) => {
            seen.push([write.earliestDue, write.actions])
          })
          const before = yield* s.localChanges
          yield* c.scheduleTimer({ at: new Date(T0 + 600_000) })
          yield* c.schedule({
            kind: "review",
            at: new Date(T0 + 300_000),
            attendees: [],
            onFire: [{ _tag: "log" }]
          })
          yield* Effect.ignore(
            s.transaction(
              Effect.zipRight(c.scheduleTimer({ at: new Date(T0 + 60_000) }), Effect.fail("undone"))
            )
          )
          // Firing the review: it is no longer due (∞) and its action is queued.
          yield* c.tick(T0 + 300_000)
          assert.strictEqual((yield* s.localChanges) - before, 3)
          assert.deepStrictEqual(seen, [
            [T0 + 600_000, false],
            [T0 + 300_000, false],
            [Number.POSITIVE_INFINITY, true]
          ])
          // Each is reported before the commit counts, so a woken reader finds the report.
          const counts: Array<number> = []
          const stop2 = s.observeWrites(() => counts.push(Effect.runSync(s.localChanges)))
          const at = yield* s.localChanges
          yield* c.scheduleTimer({ at: new Date(T0 + 900_000) })
          assert.deepStrictEqual(counts, [at])
          stop()
          stop2()
          yield* c.scheduleTimer({ at: new Date(T0 + 1_200_000) })
          assert.strictEqual(seen.length, 4)
        }).pipe(Effect.provide(Layer.provideMerge(Coordinator.layer, store())))
    )
  })
}

for (const [driver, store] of sqlFileStores) {
  describe(`change signal on a SQLite file: ${driver}`, () => {
    it.effect("a write outside a transaction bumps localChanges once", () =>
      Effect.gen(function* () {
        const s = yield* open(store(freshFile()))
        const local = yield* s.localChanges
        const c = campaign()
        yield* s.insertCampaign(c)
        assert.strictEqual(yield* s.localChanges, local + 1)
        yield* s.transaction(s.getCampaign(c.id))
        assert.strictEqual(yield* s.localChanges, local + 1)
      }).pipe(Effect.scoped)
    )

    it.live("a write that never ran is never announced, even queued behind an open transaction", () =>
      Effect.gen(function* () {
        const s = yield* open(store(freshFile()))
        const inside = yield* Deferred.make<void>()
        const finish = yield* Deferred.make<void>()
        const reader = yield* Effect.fork(
          s.transaction(
            Effect.zipRight(
              Effect.zipRight(s.nextDueAt, Deferred.succeed(inside, undefined)),
              Deferred.await(finish)
            )
          )
        )
        yield* Deferred.await(inside)
        // Queued for the lock the reader holds, then cancelled before it could write.
        const c = campaign()
        const writer = yield* Effect.fork(s.insertCampaign(c))
        yield* Effect.sleep("20 millis")
        yield* Fiber.interrupt(writer)
        const local = yield* s.localChanges
        yield* Deferred.succeed(finish, undefined)
        yield* Fiber.join(reader)
        assert.strictEqual(yield* s.localChanges, local, "the reader's commit announced no write")
        assert.isTrue(Option.isNone(yield* s.getCampaign(c.id)))

        // The same write, run: announced once it is readable.
        const waiter = yield* Effect.fork(
          Effect.zipRight(s.awaitLocalChange(local), Effect.map(s.getCampaign(c.id), Option.isSome))
        )
        yield* s.insertCampaign(c)
        assert.isTrue(yield* Fiber.join(waiter))
        assert.strictEqual(yield* s.localChanges, local + 1)
      }).pipe(Effect.scoped)
    )

    it.live(
      "a fiber forked inside a transaction that outlives it writes outside, not into the next one",
      () =>
        Effect.gen(function* () {
          const s = yield* open(store(freshFile()))
          const go = yield* Deferred.make<void>()
          const c = campaign()
          const late = yield* s.transaction(
            Effect.forkDaemon(Effect.zipRight(Deferred.await(go), s.insertCampaign(c)))
          )
          const local = yield* s.localChanges
          // The next transaction lets the late write go, then rolls back: the write must not be in it.
          const next = s.transaction(
            Effect.gen(function* () {
              yield* s.nextDueAt
              yield* Deferred.succeed(go, undefined)
              yield* Effect.sleep("20 millis")
              return yield* Effect.fail("rolled back")
            })
          )
          assert.deepStrictEqual(yield* Effect.flip(next), "rolled back")
          yield* Fiber.join(late)
          assert.isTrue(Option.isSome(yield* s.getCampaign(c.id)), "the late write survived the rollback")
          assert.strictEqual(yield* s.localChanges, local + 1)
        }).pipe(Effect.scoped)
    )

    for (const [otherDriver, other] of sqlFileStores) {
      it.effect(
        `${otherDriver} on the same file: its empty transactions leave externalVersion alone, its writes move it`,
        () =>
          Effect.gen(function* () {
            const filename = freshFile()
            const watcher = yield* open(store(filename))
            const writer = yield* open(other(filename))
            const version = yield* watcher.externalVersion
            const local = yield* watcher.localChanges
            for (let i = 0; i < 50; i++) yield* idleTransaction(writer)
            assert.strictEqual(yield* watcher.externalVersion, version)

            yield* writer.transaction(writer.insertCampaign(campaign()))
            const moved = yield* watcher.externalVersion
            assert.notStrictEqual(moved, version)
            yield* writer.insertCampaign(campaign())
            assert.notStrictEqual(yield* watcher.externalVersion, moved, "a write outside a transaction too")
            assert.strictEqual(
              yield* watcher.localChanges,
              local,
              "another connection's writes are not local"
            )
            // Its own commits are not external.
            const own = yield* watcher.externalVersion
            yield* watcher.transaction(watcher.insertCampaign(campaign()))
            assert.strictEqual(yield* watcher.externalVersion, own)
          }).pipe(Effect.scoped)
      )
    }
  })
}

describe("SQLite through @effect/sql SqlClient", () => {
  it.effect("a transaction holds the write lock from its start, even one that only reads", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      const s = yield* open(Sqlite.layerSqlClientStore({ filename }))
      const other = new Database(filename, { timeout: 0 })
      const code = yield* s.transaction(
        Effect.zipRight(
          s.nextDueAt,
          Effect.sync(() => {
            try {
              other.exec("BEGIN IMMEDIATE; ROLLBACK")
              return "free"
            } catch (error) {
              return (error as { code?: string }).code
            }
          })
        )
      )
      other.close()
      assert.strictEqual(code, "SQLITE_BUSY")
    }).pipe(Effect.scoped)
  )
})

describe("native SQLite checkpoints", () => {
  /** Counts `wal_checkpoint` pragmas run on this (the JavaScript) thread while `effect` runs. */
  const checkpointsOnThisThread = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const original = Database.prototype.pragma
        const counted = { original, count: 0 }
        Database.prototype.pragma = function (this: Database.Database, source, options) {
          if (/wal_checkpoint/i.test(source)) counted.count += 1
          return original.call(this, source, options)
        } as typeof original
        return counted
      }),
      (counted) => Effect.map(effect, (a) => [a, counted.count] as const),
      (counted) =>
        Effect.sync(() => {
          Database.prototype.pragma = counted.original
        })
    )

  it.effect("after many writes the WAL is checkpointed by the worker, never on this thread", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      const [largest, onThisThread] = yield* checkpointsOnThisThread(
        Effect.gen(function* () {
          const c = yield* Coordinator.Coordinator
          let largest = 0
          // Small commits, as a runner's ticks are, then back-to-back batches.
          for (let i = 0; i < 3_000; i++) {
            yield* c.schedule({ kind: "timer", at: new Date(T0 + 3_600_000 + i), attendees: [], quorum: 0 })
            if (i % 100 === 0) largest = Math.max(largest, statSync(`${filename}-wal`).size)
          }
          const batch = Array.from({ length: 1_000 }, () => ({
            kind: "review",
            at: new Date(T0 + 7_200_000),
            attendees: ["a", "b", "c"],
            quorum: 2
          }))
          for (let i = 0; i < 20; i++) {
            yield* c.scheduleMany(batch)
            largest = Math.max(largest, statSync(`${filename}-wal`).size)
          }
          return largest
        }).pipe(Effect.provide(Sqlite.layer({ filename })))
      )
      assert.strictEqual(onThisThread, 0)
      // Without checkpoints this WAL would reach about 100 MB. Bounded at 2,048 pages (8 MiB), plus
      // what is committed before the worker reports; generous here for a loaded machine.
      assert.isBelow(largest, 24 * 2 ** 20)
    })
  )

  it.live("closing the scope ends the worker: the last connection gone, the WAL is removed", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const s = yield* open(Sqlite.layerStore({ filename }))
          for (let i = 0; i < 500; i++) yield* s.transaction(s.insertCampaign(campaign()))
          // Long enough for the worker to have opened its connection and checkpointed.
          yield* Effect.sleep("300 millis")
          assert.isTrue(existsSync(`${filename}-wal`))
        })
      )
      // SQLite deletes the WAL when the last connection to the file closes: the worker's too.
      assert.isFalse(existsSync(`${filename}-wal`))
      assert.isFalse(existsSync(`${filename}-shm`))
    })
  )

  it("the worker keeps no process alive: one that never closes its store exits", async () => {
    const script = join(dir, "never-closes.mts")
    const index = pathToFileURL(fileURLToPath(new URL("../src/index.ts", import.meta.url))).href
    writeFileSync(
      script,
      `import { TMinus } from ${JSON.stringify(index)}
const tm = await TMinus.open({ filename: ${JSON.stringify(freshFile())} })
for (let i = 0; i < 300; i++) await tm.scheduleTimer({ at: "+1h" })
console.log("written, not closed")
`
    )
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", tsx, script], {
      timeout: 60_000
    })
    assert.strictEqual(stdout.trim(), "written, not closed")
  })
})
