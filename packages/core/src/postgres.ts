/**
 * The event store on PostgreSQL (`@effect/sql-pg`, node-postgres): the same SQL store and
 * migrations as SQLite, the dialect differences inside `SqlDriver`. Node only.
 *
 * Status: the `EventStore` conformance suite and the coordinator's scenarios pass on it; the
 * runner's change detection across processes (LISTEN/NOTIFY) and several replicas are not built
 * yet (docs/STATUS.md).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import pg from "pg"
import { StorageError } from "./Errors.ts"
import type { EventStore } from "./EventStore.ts"
import * as SqlEventStore from "./SqlEventStore.ts"

/** @since 0.1.0 */
export interface PostgresOptions {
  /** `postgres://user@host:port/database` (`DATABASE_URL`). */
  readonly url: string
  /** Tables live in this schema (created if missing); default the connection's search path. */
  readonly schema?: string | undefined
  readonly maxConnections?: number | undefined
}

/**
 * An `EventStore` on PostgreSQL, migrated on start.
 *
 * @since 0.1.0
 */
export const layerStore = (options: PostgresOptions): Layer.Layer<EventStore, StorageError> => {
  const schema = options.schema
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
    throw new Error(`postgres: schema must be a plain lower-case identifier, got ${JSON.stringify(schema)}`)
  }
  const pool = Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        if (schema !== undefined) {
          const admin = new pg.Client({ connectionString: options.url })
          await admin.connect()
          try {
            await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
          } finally {
            await admin.end()
          }
        }
        return new pg.Pool({
          connectionString: options.url,
          max: options.maxConnections ?? 10,
          ...(schema === undefined ? {} : { options: `-c search_path=${schema}` })
        })
      },
      catch: (cause) => new StorageError({ message: `postgres: cannot connect: ${String(cause)}` })
    }),
    (p) => Effect.promise(() => p.end())
  )
  return SqlEventStore.layer.pipe(
    Layer.provide(
      Layer.mapError(PgClient.layerFromPool({ acquire: pool as never }), (error) =>
        error instanceof StorageError ? error : new StorageError({ message: `postgres: ${String(error)}` })
      )
    )
  )
}
