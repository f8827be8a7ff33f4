/**
 * The embedded SQLite backend (Node only: better-sqlite3). One file, WAL journal, a busy timeout,
 * so several processes (a CLI and a server, say) can share it safely: write transactions start
 * with `BEGIN IMMEDIATE`, so writers queue and nobody loses an update.
 *
 * The default store runs the SQL store on a native driver (cached prepared statements, one
 * `Effect.sync` per statement). `layerClient` gives an `@effect/sql` `SqlClient` on the same
 * file instead, for programs that want one; `layerSqlClientStore` runs the store through it.
 *
 * @since 0.1.0
 */

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
import type * as Scope from "effect/Scope"
import * as Coordinator from "./Coordinator.ts"
import { StorageError } from "./Errors.ts"
import { EventStore } from "./EventStore.ts"
import * as Runner from "./Runner.ts"
import { isBusy, type SqlDriver, storageError } from "./SqlDriver.ts"
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

/** Row changes after which a checkpoint runs (about SQLite's default of 1 000 WAL pages). */
const CHECKPOINT_AFTER_CHANGES = 2_000

/** Row changes after which the committing transaction checkpoints itself (bounds the WAL). */
const CHECKPOINT_FORCED_AFTER_CHANGES = 50_000

/** Prepared statements kept per connection; texts beyond this (odd batch sizes) are re-prepared. */
const STATEMENT_CACHE = 256

/**
 * A native driver on a SQLite file, closed with its scope.
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
    const inTransaction = FiberRef.unsafeMake(false)
    const fail = (message: string, cause: unknown) => Effect.fail(storageError(message, cause))

    const all = <A>(
      sql: string,
      params: ReadonlyArray<unknown> = []
    ): Effect.Effect<ReadonlyArray<A>, StorageError> => {
      const executeNow = (): Effect.Effect<ReadonlyArray<A>, StorageError> => {
        try {
          const statement = prepare(sql)
          if (statement.reader) return Effect.succeed(statement.all(params) as ReadonlyArray<A>)
          changes += statement.run(params).changes
          return Effect.succeed([] as ReadonlyArray<A>)
        } catch (cause) {
          return fail("SQLite statement failed", cause)
        }
      }
      // The lock check and the statement run in one synchronous step: nothing can slip between.
      return Effect.withFiberRuntime((fiber) =>
        !held || fiber.getFiberRef(inTransaction)
          ? executeNow()
          : Effect.uninterruptibleMask((restore) =>
              Effect.zipRight(
                restore(acquire),
                Effect.ensuring(Effect.suspend(executeNow), Effect.sync(release))
              )
            )
      )
    }

    // Checkpoints run after a transaction, never inside one: SQLite's automatic checkpoint would
    // run in the COMMIT of whichever transaction crossed the threshold (a tick, typically) and
    // double its latency. Row changes since the last checkpoint stand in for the WAL's size.
    let changes = 0
    let checkpointPending = false
    const checkpointNow = () => {
      changes = 0
      try {
        db.pragma("wal_checkpoint(PASSIVE)")
      } catch {
        // A checkpoint that cannot run now (another process holds the WAL) runs next time.
      }
    }
    // The checkpoint queues for the lock like a transaction: skipping it while writers are busy
    // would starve it under back-to-back writes and let the WAL grow without bound.
    const checkpoint = Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(
        restore(acquire),
        Effect.sync(() => {
          checkpointPending = false
          try {
            checkpointNow()
          } finally {
            release()
          }
        })
      )
    )
    const scheduleCheckpoint = Effect.suspend(() => {
      if (checkpointPending) return Effect.void
      checkpointPending = true
      return Effect.asVoid(Effect.forkDaemon(Effect.zipRight(Effect.yieldNow(), checkpoint)))
    })

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
          return Effect.flatMap(
            Effect.exit(restore(Effect.locally(effect, inTransaction, true))),
            (exit): Effect.Effect<A, E | StorageError> => {
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
              // A writer that never pauses would never let the forked checkpoint run: past a hard
              // limit the transaction checkpoints itself before it lets go of the lock.
              if (changes >= CHECKPOINT_FORCED_AFTER_CHANGES) checkpointNow()
              release()
              return changes >= CHECKPOINT_AFTER_CHANGES
                ? Effect.as(scheduleCheckpoint, exit.value)
                : Effect.succeed(exit.value)
            }
          )
        })
      )
    const retryBusy = <A, E, R>(effect: Effect.Effect<A, E, R>, times: number): Effect.Effect<A, E, R> =>
      times === 0 ? effect : Effect.catchIf(effect, isBusy, () => retryBusy(effect, times - 1))

    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
      Effect.withFiberRuntime((fiber) =>
        fiber.getFiberRef(inTransaction) ? effect : retryBusy(runInTransaction(effect), 50)
      )

    return {
      dialect: "sqlite",
      all,
      run: (sql, params) => Effect.asVoid(all(sql, params)),
      transaction,
      dataVersion: Effect.try({
        try: () => Number(dataVersion.pluck().get()),
        catch: (cause) => storageError("cannot read SQLite data_version", cause)
      })
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
