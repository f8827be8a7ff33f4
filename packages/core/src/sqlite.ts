/**
 * The embedded SQLite backend (Node only: it uses better-sqlite3 through
 * `@effect/sql-sqlite-node`). One file, WAL journal, a busy timeout, so several processes (a CLI
 * and a server, say) can share it safely: writers queue, nobody loses an update.
 *
 * @since 0.1.0
 */

import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Coordinator from "./Coordinator.ts"
import { StorageError } from "./Errors.ts"
import type { EventStore } from "./EventStore.ts"
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

const pragmas = (options: SqliteOptions) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 10_000))}`)
      yield* sql.unsafe(`PRAGMA synchronous = ${options.synchronous === "FULL" ? "FULL" : "NORMAL"}`)
      yield* sql.unsafe("PRAGMA foreign_keys = ON")
    }).pipe(
      Effect.mapError((error) => new StorageError({ message: `cannot configure SQLite: ${error.message}` }))
    )
  )

/**
 * The `SqlClient` for a SQLite file, configured for t-minus.
 *
 * @since 0.1.0
 */
export const layerClient = (options: SqliteOptions = {}): Layer.Layer<SqlClient.SqlClient, StorageError> =>
  Layer.provideMerge(
    pragmas(options),
    SqliteClient.layer({ filename: options.filename ?? DEFAULT_FILENAME }).pipe(
      Layer.mapError(
        (error) => new StorageError({ message: `cannot open SQLite database: ${String(error)}` })
      )
    )
  ).pipe(
    Layer.catchAllCause((cause) =>
      Layer.fail(
        new StorageError({
          message: `cannot open SQLite database ${options.filename ?? DEFAULT_FILENAME}: ${String(cause)}`
        })
      )
    )
  )

/**
 * The `EventStore` on a SQLite file (migrated when built).
 *
 * @since 0.1.0
 */
export const layerStore = (options: SqliteOptions = {}): Layer.Layer<EventStore, StorageError> =>
  SqlEventStore.layer.pipe(Layer.provide(layerClient(options)))

/**
 * A `Coordinator` on a SQLite file, with its `EventStore` and `SqlClient`.
 *
 * @since 0.1.0
 */
export const layer = (
  options: SqliteOptions = {}
): Layer.Layer<Coordinator.Coordinator | EventStore | SqlClient.SqlClient, StorageError> =>
  Layer.provideMerge(Coordinator.layer, Layer.provideMerge(SqlEventStore.layer, layerClient(options)))
