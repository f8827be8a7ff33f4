/**
 * The event store on PostgreSQL (`@effect/sql-pg`, node-postgres): the same SQL store and
 * migrations as SQLite, the dialect differences inside `SqlDriver`. Node only.
 *
 * Several processes (server replicas) may share one database: every write transaction holds the
 * database's write lock (a row lock) until it commits, so writers are serialized as on SQLite,
 * and announces what it wrote with `NOTIFY`, so every other process's runner and `watch` streams
 * hear of it at once (`externalWrites`). Setting up (schema, migrations) is serialized by an
 * advisory lock, so replicas may start together on an empty database.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import pg from "pg"
import type * as Coordinator from "./Coordinator.ts"
import { StorageError } from "./Errors.ts"
import { EventStore, UNKNOWN_WRITE, type WriteHint } from "./EventStore.ts"
import * as Runner from "./Runner.ts"
import * as SqlDriver from "./SqlDriver.ts"
import * as SqlEventStore from "./SqlEventStore.ts"
import * as Sqlite from "./sqlite.ts"

/** @since 0.1.0 */
export interface PostgresOptions {
  /** `postgres://user@host:port/database` (`DATABASE_URL`). */
  readonly url: string
  /** Tables live in this schema (created if missing); default `public`. */
  readonly schema?: string | undefined
  /** Connections of this process's pool; default 10. */
  readonly maxConnections?: number | undefined
  /**
   * A session that holds a transaction open without a statement for this long is ended by the
   * server, its transaction undone (`idle_in_transaction_session_timeout`), in ms; default 10 000.
   * It bounds how long a frozen process (stopped, swapped out, cut off) can hold the write lock
   * that every other replica waits for. No healthy transaction idles for anything like it.
   */
  readonly idleInTransactionTimeoutMs?: number | undefined
}

/** The default of `idleInTransactionTimeoutMs`. @since 0.1.0 */
export const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000

/**
 * How long a statement waits for a lock (`lock_timeout`) before its transaction is retried from
 * the start. Waiting in short turns matters when a process freezes: its sessions queued for the
 * write lock give up their places instead of each taking the lock in turn and holding it,
 * frozen, until `idleInTransactionTimeoutMs` ends it (one after the other, a chain of stalls).
 */
const LOCK_WAIT_MS = 250

/**
 * The advisory lock taken while a process sets the database up (schema, tables, migrations; the
 * server's API keys too), so replicas starting together do it one at a time. @since 0.1.0
 */
export const SETUP_LOCK = 7_420_001

/** How long the listener waits before connecting again after losing its connection. */
const RELISTEN_MS = 1_000

const connectError = (cause: unknown) =>
  new StorageError({
    message: `postgres: cannot connect: ${cause instanceof Error ? cause.message : String(cause)}`
  })

/**
 * The commits of other processes on `channel`, as `WriteHint`s. It listens on a connection of its
 * own; when that is lost it connects again (every second until it can), and after every `LISTEN`
 * (the first included) it yields `UNKNOWN_WRITE`, standing for whatever it may have missed.
 *
 * @since 0.1.0
 */
export const listen = (url: string, channel: string, source: string): Stream.Stream<WriteHint> =>
  Stream.asyncPush<WriteHint>((emit) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        let closed = false
        let client: pg.Client | null = null
        let timer: ReturnType<typeof setTimeout> | undefined
        const connect = () => {
          const c = new pg.Client({ connectionString: url, keepAlive: true })
          client = c
          let lost = false
          const retry = () => {
            if (lost || closed) return
            lost = true
            c.end().catch(() => {})
            // Real time on purpose: reconnecting is about the network, not the engine's clock
            // (under a test clock it would never come).
            timer = setTimeout(connect, RELISTEN_MS)
          }
          c.on("notification", (message) => {
            if (message.channel !== channel || message.payload === undefined) return
            const write = SqlDriver.parseNotice(message.payload, source)
            if (write !== null) emit.single(write)
          })
          c.on("error", retry)
          c.on("end", retry)
          c.connect()
            .then(() => c.query(`LISTEN ${pg.escapeIdentifier(channel)}`))
            .then(() => {
              if (!closed) emit.single(UNKNOWN_WRITE)
            }, retry)
        }
        connect()
        return () => {
          closed = true
          clearTimeout(timer)
          client?.end().catch(() => {})
        }
      }),
      (stop) => Effect.sync(stop)
    )
  )

/** The channel a store's commits are announced on: one per schema (channels span a database). */
const channelOf = (schema: string) => `tminus_changes_${schema}`

/**
 * A schema name as the store takes it: lower-case letters, digits and `_`, at most 48 characters
 * (its channel name must fit Postgres's 63), default `public`. Used quoted, so words Postgres
 * reserves (`user`) are fine.
 *
 * @since 0.1.0
 */
export const checkSchema = (schema: string | undefined): string => {
  const name = schema ?? "public"
  if (!/^[a-z_][a-z0-9_]{0,47}$/.test(name)) {
    throw new Error(
      `postgres: the schema must be lower-case letters, digits and _, at most 48 characters; got ${JSON.stringify(name)}`
    )
  }
  return name
}

/** Logs what a pool or client reports between queries (a connection the server ended), instead of crashing. */
const logConnectionError = (what: string) => (error: Error) =>
  console.warn(`t-minus postgres: ${what}: ${error.message} (the connection is replaced)`)

/**
 * An `EventStore` on PostgreSQL, migrated on start.
 *
 * @since 0.1.0
 */
export const layerStore = (options: PostgresOptions): Layer.Layer<EventStore, StorageError> => {
  const schema = checkSchema(options.schema)
  const idleMs = options.idleInTransactionTimeoutMs ?? DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS
  const pool = Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new pg.Pool({
        connectionString: options.url,
        max: options.maxConnections ?? 10,
        keepAlive: true,
        application_name: `t-minus/${schema}`,
        options: `-c search_path=${pg.escapeIdentifier(schema)} -c lock_timeout=${LOCK_WAIT_MS} -c idle_in_transaction_session_timeout=${Math.max(0, Math.round(idleMs))}`
      })
      // An idle connection the server ends (restart, failover) is an `error` event on the
      // pool: without a listener Node would end the process.
      pool.on("error", logConnectionError("an idle pooled connection failed"))
      return pool
    }),
    (p) => Effect.promise(() => p.end())
  )
  // One process at a time makes the schema, the tables and the migrations.
  const setupLock = Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const admin = new pg.Client({ connectionString: options.url })
        admin.on("error", logConnectionError("the set-up connection failed"))
        await admin.connect()
        try {
          await admin.query("SELECT pg_advisory_lock($1)", [SETUP_LOCK])
          await admin.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`)
        } catch (error) {
          await admin.end().catch(() => {})
          throw error
        }
        return admin
      },
      catch: connectError
    }),
    (admin) => Effect.promise(() => admin.end().catch(() => {}))
  )
  const announce: SqlDriver.Announce = { channel: channelOf(schema), source: randomBytes(8).toString("hex") }
  // Built (and migrated, by `make`) under the set-up lock; the listener starts when a runner reads it.
  const store = Effect.scoped(
    Effect.zipRight(
      setupLock,
      Effect.flatMap(SqlDriver.fromSqlClientWith({ announce }), (driver) =>
        SqlEventStore.make({
          ...driver,
          externalWrites: listen(options.url, announce.channel, announce.source)
        })
      )
    )
  )
  return Layer.effect(EventStore, store).pipe(
    Layer.provide(
      Layer.mapError(PgClient.layerFromPool({ acquire: pool as never }), (error) =>
        error instanceof StorageError ? error : connectError(error)
      )
    )
  )
}

/**
 * The store, the coordinator and the runner on PostgreSQL, with Node's platform services for
 * actions. Pass `runner.replica` when several processes share the database.
 *
 * @since 0.1.0
 */
export const layerRunner = (
  options: PostgresOptions & { readonly runner?: Runner.RunnerOptions | undefined }
): Layer.Layer<Runner.Runner | Coordinator.Coordinator | EventStore, StorageError> =>
  Runner.layer(options.runner).pipe(
    Layer.provideMerge(Runner.layerCoordinator(options.runner)),
    Layer.provideMerge(layerStore(options)),
    Layer.provide(Sqlite.layerPlatform)
  )
