/**
 * The embedded SQLite backend (Node only: better-sqlite3). One file, WAL journal, a busy timeout,
 * so several processes (a CLI and a server, say) can share it safely: write transactions start
 * with `BEGIN IMMEDIATE`, so writers queue and nobody loses an update.
 *
 * The default store runs the SQL store on a native driver (cached prepared statements, one
 * `Effect.sync` per statement, WAL checkpoints on a worker thread). `layerClient` gives an
 * `@effect/sql` `SqlClient` on the same file instead, for programs that want one;
 * `layerSqlClientStore` runs the store through it.
 *
 * @since 0.1.0
 */

import { createRequire } from "node:module"
import { resolve } from "node:path"
import { Worker } from "node:worker_threads"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import Database from "better-sqlite3"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Coordinator from "./Coordinator.ts"
import { StorageError } from "./Errors.ts"
import { EventStore, makeChangeSignal } from "./EventStore.ts"
import * as Runner from "./Runner.ts"
import {
  isBusy,
  isOpen,
  noteEventsIn,
  noteIn,
  noteLogIn,
  type OpenTransaction,
  openTransaction,
  type SqlDriver,
  storageError
} from "./SqlDriver.ts"
import * as SqlEventStore from "./SqlEventStore.ts"

/** The database file used when none is given. @since 0.1.0 */
export const DEFAULT_FILENAME = "./t-minus.db"

/**
 * Options of the SQLite backend.
 *
 * @since 0.1.0
 */
export interface SqliteOptions {
  /** Database file; default `./t-minus.db`. `:memory:` gives a private in-memory database. */
  readonly filename?: string | undefined
  /** How long a writer waits for another process's write lock, in ms; default 10 000. */
  readonly busyTimeoutMs?: number | undefined
  /**
   * `NORMAL` (default) survives a crash of the process and never corrupts; `FULL` also survives
   * power loss at the cost of an fsync per commit.
   */
  readonly synchronous?: "NORMAL" | "FULL" | undefined
}

const pragmas = (options: SqliteOptions): ReadonlyArray<string> => [
  `busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 10_000))}`,
  `synchronous = ${options.synchronous === "FULL" ? "FULL" : "NORMAL"}`
]

/** Without the worker: row changes after which a checkpoint runs (about 1 000 WAL pages). */
const CHECKPOINT_AFTER_CHANGES = 2_000

/** Row changes after which the worker, when idle, is asked for a checkpoint: often, and off this thread. */
const WORKER_CHECKPOINT_AFTER_CHANGES = 250

/**
 * WAL pages past which the committing transaction keeps the lock until the worker has caught up.
 * SQLite starts the WAL over only at a write that begins with every page checkpointed, which
 * writers that never pause can deny the worker; under the lock nobody here commits.
 */
const CHECKPOINT_FORCED_AFTER_FRAMES = 2_048

/**
 * Row changes the worker may fall behind by (a starved thread, or one still starting) before
 * writers wait for it. A small commit writes about four WAL pages per changed row (the indexes),
 * so this keeps the backlog near `CHECKPOINT_FORCED_AFTER_FRAMES` too.
 */
const CHECKPOINT_FORCED_BACKLOG = 500

/** Row changes after which the committing transaction checkpoints on this thread (no worker). */
const CHECKPOINT_FORCED_AFTER_CHANGES = 50_000

/** Prepared statements kept per connection; texts beyond this (odd batch sizes) are re-prepared. */
const STATEMENT_CACHE = 256

/** Slots of the worker's status, in shared memory so that reading it needs no event loop turn. */
const DONE = 0 // the last request the worker finished
const WAL_PAGES = 1 // the WAL's length in pages at its last checkpoint

/**
 * The checkpoint worker: its own connection to the file and, per request, a passive checkpoint
 * (it never waits for readers or writers). Inline so that it runs wherever this module runs (tsx,
 * vitest, a compiled build) with nothing to resolve but better-sqlite3, whose path this module
 * passes. The same better-sqlite3 as this thread's rather than `node:sqlite`: two SQLite libraries
 * in one process do not see each other's POSIX locks, and closing a file in one drops the other's.
 */
const CHECKPOINT_WORKER = `
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.driver)
const db = new Database(workerData.filename, { fileMustExist: true })
for (const pragma of workerData.pragmas) db.pragma(pragma)
const status = new Int32Array(workerData.status)
parentPort.on("message", (request) => {
  try {
    const [result] = db.pragma("wal_checkpoint(PASSIVE)")
    if (result.busy === 0) Atomics.store(status, ${WAL_PAGES}, result.log)
  } catch {
    // Not now (another process recovering the WAL, say): the next request tries again.
  }
  Atomics.store(status, ${DONE}, request)
  parentPort.postMessage(request)
})
`

/**
 * Starts the checkpoint worker on a WAL file, ended with the scope. It does not keep the process
 * alive; when it fails (or cannot start) the driver checkpoints on its own thread again.
 */
const startCheckpointWorker = (
  filename: string,
  options: SqliteOptions,
  status: Int32Array,
  handlers: { readonly onDone: (request: number) => void; readonly onGone: () => void }
): Effect.Effect<Worker | null, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      try {
        const worker = new Worker(CHECKPOINT_WORKER, {
          eval: true,
          workerData: {
            driver: createRequire(import.meta.url).resolve("better-sqlite3"),
            filename: resolve(filename),
            pragmas: pragmas(options),
            status: status.buffer
          }
        })
        worker.on("message", handlers.onDone)
        worker.on("error", handlers.onGone)
        worker.on("exit", handlers.onGone)
        worker.unref()
        return worker
      } catch {
        return null
      }
    }),
    // The timeout's timer also keeps the event loop alive until the worker has ended, which a
    // terminating worker does not; past it, the scope closes without waiting any longer.
    (worker) =>
      worker === null
        ? Effect.void
        : Effect.ignore(
            Effect.timeout(
              Effect.promise(() => worker.terminate()),
              "5 seconds"
            )
          )
  )

/** The lock of the native driver's connection, as its checkpoints take it. */
interface ConnectionLock {
  readonly acquire: Effect.Effect<void>
  readonly release: () => void
}

/**
 * When and where the WAL is checkpointed. Never inside a transaction: SQLite's automatic
 * checkpoint would run in the COMMIT of whichever transaction crossed its threshold (a tick,
 * typically) and double its latency. On a file, the worker checkpoints off this thread whenever
 * enough rows changed; without it (it failed), a transaction checkpoints here after committing.
 */
const makeCheckpoints = (
  db: Database.Database,
  filename: string,
  options: SqliteOptions,
  lock: ConnectionLock
): Effect.Effect<
  {
    /** Counts rows a statement changed. */
    readonly changed: (rows: number) => void
    /** After a commit, with the lock held: lets go of it, at once or once the WAL is in bounds. */
    readonly releaseAfterCommit: () => Effect.Effect<void>
  },
  never,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const wal = !db.memory && String(db.pragma("journal_mode", { simple: true })) === "wal"
    let changes = 0 // rows changed since the last checkpoint was asked for

    const status = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT))
    let requests = 0
    let forcedRequest = 0 // until the worker finishes a later request, its WAL length is stale
    const waiting: Array<{ readonly request: number; readonly resume: () => void }> = []
    const wake = (done: number) => {
      for (let i = waiting.length - 1; i >= 0; i--) {
        const waiter = waiting[i]!
        if (waiter.request <= done) {
          waiting.splice(i, 1)
          waiter.resume()
        }
      }
      if (waiting.length === 0) worker?.unref()
    }
    // Started at the first checkpoint, so a short-lived process (a CLI command) starts no thread.
    const scope = yield* Effect.scope
    let started = false
    let worker: Worker | null = null
    const start = Scope.extend(
      startCheckpointWorker(filename, options, status, {
        onDone: wake,
        onGone: () => {
          worker = null
          wake(Number.POSITIVE_INFINITY)
        }
      }),
      scope
    )
    const ask = (to: Worker): number => {
      changes = 0
      to.postMessage(++requests)
      return requests
    }
    // While someone waits for the worker's answer, the worker keeps the process alive.
    const finished = (request: number) =>
      Effect.async<void>((resume) => {
        if (worker === null || Atomics.load(status, DONE) >= request) return resume(Effect.void)
        waiting.push({ request, resume: () => resume(Effect.void) })
        worker.ref()
      })

    const checkpointHere = () => {
      changes = 0
      try {
        db.pragma("wal_checkpoint(PASSIVE)")
      } catch {
        // A checkpoint that cannot run now (another process holds the WAL) runs next time.
      }
    }
    // Without the worker the checkpoint queues for the lock like a transaction: skipping it while
    // writers are busy would starve it under back-to-back writes and let the WAL grow without bound.
    let pending = false
    const checkpointHereLocked = Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(
        restore(lock.acquire),
        Effect.sync(() => {
          pending = false
          try {
            checkpointHere()
          } finally {
            lock.release()
          }
        })
      )
    )

    const releaseAfterCommit = (): Effect.Effect<void> => {
      if (!wal) {
        lock.release()
        return Effect.void
      }
      if (!started && changes >= WORKER_CHECKPOINT_AFTER_CHANGES) {
        started = true
        lock.release()
        return Effect.map(start, (begun) => {
          worker = begun
          if (begun !== null) ask(begun)
        })
      }
      if (worker === null) {
        // No worker (it failed): checkpoints run here. A writer that never pauses would never let
        // the forked one run: past a hard limit the transaction checkpoints before letting go.
        if (changes >= CHECKPOINT_FORCED_AFTER_CHANGES) checkpointHere()
        lock.release()
        if (changes < CHECKPOINT_AFTER_CHANGES || pending) return Effect.void
        pending = true
        return Effect.asVoid(Effect.forkDaemon(Effect.zipRight(Effect.yieldNow(), checkpointHereLocked)))
      }
      const done = Atomics.load(status, DONE)
      if (
        (done > forcedRequest && Atomics.load(status, WAL_PAGES) >= CHECKPOINT_FORCED_AFTER_FRAMES) ||
        (done < requests && changes >= CHECKPOINT_FORCED_BACKLOG)
      ) {
        // The lock stays held, by a fiber of its own so that the committer goes on, until the
        // worker has caught up; this thread stays free meanwhile.
        forcedRequest = ask(worker)
        return Effect.asVoid(
          Effect.forkDaemon(Effect.ensuring(finished(forcedRequest), Effect.sync(lock.release)))
        )
      }
      if (changes >= WORKER_CHECKPOINT_AFTER_CHANGES && done === requests) ask(worker)
      lock.release()
      return Effect.void
    }

    return {
      changed: (rows) => {
        changes += rows
      },
      releaseAfterCommit
    }
  })

/**
 * A native driver on a SQLite file, closed with its scope. On a file, WAL checkpoints run on a
 * worker thread with a connection of its own (a passive checkpoint does not block this thread's
 * writers), not on the JavaScript thread.
 *
 * @since 0.1.0
 */
export const makeDriver = (
  options: SqliteOptions = {}
): Effect.Effect<SqlDriver, StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const filename = options.filename ?? DEFAULT_FILENAME
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const db = new Database(filename)
          db.pragma("journal_mode = WAL")
          db.pragma("wal_autocheckpoint = 0")
          for (const pragma of pragmas(options)) db.pragma(pragma)
          return db
        },
        catch: (cause) => storageError(`cannot open SQLite database ${filename}`, cause)
      }),
      (db) => Effect.sync(() => db.close())
    )
    const cache = new Map<string, Database.Statement>()
    const prepare = (sql: string): Database.Statement => {
      let statement = cache.get(sql)
      if (statement === undefined) {
        if (cache.size >= STATEMENT_CACHE) cache.clear()
        statement = db.prepare(sql)
        cache.set(sql, statement)
      }
      return statement
    }
    const begin = db.prepare("BEGIN IMMEDIATE")
    const commit = db.prepare("COMMIT")
    const rollback = db.prepare("ROLLBACK")
    const dataVersion = db.prepare("PRAGMA data_version")
    const signal = makeChangeSignal()

    // One connection per process. A write transaction holds the lock; a statement outside one runs
    // at once when the lock is free (better-sqlite3 is synchronous, so nothing can interleave) and
    // waits otherwise, so no reader ever sees another fiber's uncommitted writes. Hand-made rather
    // than Effect's Semaphore because taking a free lock here is one synchronous step.
    let held = false
    const waiters: Array<Deferred.Deferred<void>> = []
    const release = () => {
      const next = waiters.shift()
      if (next === undefined) held = false
      else Deferred.unsafeDone(next, Exit.void)
    }
    const acquire = Effect.suspend(() => {
      if (!held) {
        held = true
        return Effect.void
      }
      const waiter = Deferred.unsafeMake<void>(FiberId.none)
      waiters.push(waiter)
      return Effect.onInterrupt(Deferred.await(waiter), () =>
        Effect.sync(() => {
          const index = waiters.indexOf(waiter)
          if (index >= 0) waiters.splice(index, 1)
          else release() // the lock was handed over just as we were interrupted: pass it on
        })
      )
    })
    const current = FiberRef.unsafeMake<OpenTransaction | null>(null)
    const fail = (message: string, cause: unknown) => Effect.fail(storageError(message, cause))

    const checkpoints = yield* makeCheckpoints(db, filename, options, { acquire, release })

    /** A statement's rows; for a write with `keys`, the rowids of the rows it inserted. */
    const execute = <A>(
      sql: string,
      params: ReadonlyArray<unknown>,
      keys: boolean
    ): Effect.Effect<ReadonlyArray<A>, StorageError> =>
      Effect.withFiberRuntime((fiber) => {
        const tx = fiber.getFiberRef(current)
        const inside = isOpen(tx)
        const executeNow = (): Effect.Effect<ReadonlyArray<A>, StorageError> => {
          try {
            const statement = prepare(sql)
            if (statement.reader) return Effect.succeed(statement.all(params) as ReadonlyArray<A>)
            const info = statement.run(params)
            checkpoints.changed(info.changes)
            if (inside) tx.wrote = true
            else signal.bump()
            if (!keys) return Effect.succeed([] as ReadonlyArray<A>)
            // One INSERT under the write lock: its rows took consecutive rowids, the last one last.
            const last = Number(info.lastInsertRowid)
            return Effect.succeed(
              Array.from(
                { length: info.changes },
                (_, i) => last - info.changes + 1 + i
              ) as ReadonlyArray<unknown> as ReadonlyArray<A>
            )
          } catch (cause) {
            return fail("SQLite statement failed", cause)
          }
        }
        // The lock check and the statement run in one synchronous step: nothing can slip between.
        return !held || inside
          ? executeNow()
          : Effect.uninterruptibleMask((restore) =>
              Effect.zipRight(
                restore(acquire),
                Effect.ensuring(Effect.suspend(executeNow), Effect.sync(release))
              )
            )
      })
    const all = <A>(sql: string, params: ReadonlyArray<unknown> = []) => execute<A>(sql, params, false)

    const rollbackIfOpen = () => {
      try {
        if (db.inTransaction) rollback.run()
      } catch {
        // The connection is unusable anyway; the caller sees the original failure.
      }
    }
    const runInTransaction = <A, E, R>(
      effect: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | StorageError, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(restore(acquire), () => {
          try {
            begin.run()
          } catch (cause) {
            release()
            return fail("cannot begin a SQLite transaction", cause)
          }
          const tx = openTransaction()
          return Effect.flatMap(
            Effect.exit(restore(Effect.locally(effect, current, tx))),
            (exit): Effect.Effect<A, E | StorageError> => {
              tx.open = false
              if (Exit.isFailure(exit)) {
                rollbackIfOpen()
                release()
                return exit
              }
              try {
                commit.run()
              } catch (cause) {
                rollbackIfOpen()
                release()
                return fail("cannot commit a SQLite transaction", cause)
              }
              if (tx.wrote) signal.bump(tx)
              return Effect.as(checkpoints.releaseAfterCommit(), exit.value)
            }
          )
        })
      )
    const retryBusy = <A, E, R>(effect: Effect.Effect<A, E, R>, times: number): Effect.Effect<A, E, R> =>
      times === 0 ? effect : Effect.catchIf(effect, isBusy, () => retryBusy(effect, times - 1))

    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
      Effect.withFiberRuntime((fiber) =>
        isOpen(fiber.getFiberRef(current)) ? effect : retryBusy(runInTransaction(effect), 50)
      )

    return {
      dialect: "sqlite",
      all,
      run: (sql, params) => Effect.asVoid(all(sql, params)),
      insertKeys: (sql, params) => execute<number>(sql, params, true),
      transaction,
      inTransaction: Effect.map(FiberRef.get(current), isOpen),
      dataVersion: Effect.try({
        try: () => Number(dataVersion.pluck().get()),
        catch: (cause) => storageError("cannot read SQLite data_version", cause)
      }),
      note: noteIn(current),
      noteLog: noteLogIn(current),
      noteEvents: noteEventsIn(current),
      observeWrites: signal.observe,
      localChanges: signal.localChanges,
      awaitLocalChange: signal.awaitLocalChange
    } satisfies SqlDriver
  })

/**
 * The `EventStore` on a SQLite file (migrated when built), on the native driver.
 *
 * @since 0.1.0
 */
export const layerStore = (options: SqliteOptions = {}): Layer.Layer<EventStore, StorageError> =>
  Layer.scoped(EventStore, Effect.flatMap(makeDriver(options), SqlEventStore.make))

/**
 * A `Coordinator` and its `EventStore` on a SQLite file.
 *
 * @since 0.1.0
 */
export const layer = (
  options: SqliteOptions = {}
): Layer.Layer<Coordinator.Coordinator | EventStore, StorageError> =>
  Layer.provideMerge(Coordinator.layer, layerStore(options))

/**
 * An `@effect/sql` `SqlClient` on a SQLite file, configured like the native driver.
 *
 * @since 0.1.0
 */
export const layerClient = (options: SqliteOptions = {}): Layer.Layer<SqlClient.SqlClient, StorageError> => {
  const filename = options.filename ?? DEFAULT_FILENAME
  const configure = Layer.effectDiscard(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      for (const pragma of pragmas(options)) yield* sql.unsafe(`PRAGMA ${pragma}`)
    }).pipe(Effect.mapError((error) => storageError(`cannot configure SQLite database ${filename}`, error)))
  )
  return Layer.provideMerge(configure, SqliteClient.layer({ filename })).pipe(
    Layer.catchAllCause((cause) =>
      Layer.fail(new StorageError({ message: `cannot open SQLite database ${filename}: ${String(cause)}` }))
    )
  )
}

/**
 * The `EventStore` on a SQLite file through `@effect/sql`'s `SqlClient` (the path Postgres takes).
 *
 * @since 0.1.0
 */
export const layerSqlClientStore = (options: SqliteOptions = {}): Layer.Layer<EventStore, StorageError> =>
  SqlEventStore.layer.pipe(Layer.provide(layerClient(options)))

/**
 * The platform services action delivery uses on Node: processes, files, and `fetch` for HTTP.
 *
 * @since 0.1.0
 */
export const layerPlatform: Layer.Layer<Runner.Platform | Runner.OptionalPlatform> = Layer.merge(
  NodeContext.layer,
  FetchHttpClient.layer
)

/**
 * Everything a long-running program needs on a SQLite file: the store, a coordinator that checks
 * actions against the runner's allow-list, and the runner itself, started with the layer.
 *
 * @since 0.1.0
 */
export const layerRunner = (
  options: SqliteOptions & { readonly runner?: Runner.RunnerOptions | undefined } = {}
): Layer.Layer<Runner.Runner | Coordinator.Coordinator | EventStore, StorageError> =>
  Runner.layer(options.runner).pipe(
    Layer.provideMerge(Runner.layerCoordinator(options.runner)),
    Layer.provideMerge(layerStore(options)),
    Layer.provide(layerPlatform)
  )
