/**
 * The few things the SQL store needs from a database: run a statement, read rows, and run a write
 * transaction that holds the write lock from its start. Statements use `?` placeholders.
 *
 * Two drivers exist: `fromSqlClient`, over any `@effect/sql` `SqlClient` (SQLite through
 * `@effect/sql-sqlite-node`, Postgres later), and the native SQLite driver of
 * `@t-minus/core/sqlite`, which calls better-sqlite3 with cached prepared statements and is about
 * three times faster per statement (see docs/benchmarks.md).
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { StorageError } from "./Errors.ts"

/** @since 0.1.0 */
export type Dialect = "sqlite" | "pg"

/**
 * A database as the SQL store uses it.
 *
 * @since 0.1.0
 */
export interface SqlDriver {
  readonly dialect: Dialect
  /** The rows a statement returns. */
  readonly all: <A = Record<string, unknown>>(
    sql: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<A>, StorageError>
  /** Runs a statement for its effect. */
  readonly run: (sql: string, params?: ReadonlyArray<unknown>) => Effect.Effect<void, StorageError>
  /**
   * Runs `effect` as one transaction that takes the write lock before its first statement, so
   * concurrent writers (also in other processes) queue instead of failing on a stale read.
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
  /**
   * A number that changes when another connection commits (SQLite's `PRAGMA data_version`; the
   * change counter through `SqlClient`, which also moves on this process's own commits).
   */
  readonly dataVersion: Effect.Effect<number, StorageError>
}

/** `(?, ?, ?)` for `n` values. @since 0.1.0 */
export const placeholders = (n: number): string => `(${Array.from({ length: n }, () => "?").join(", ")})`

/** `?` placeholders renumbered `$1, $2, …` for Postgres (our statements hold no literal `?`). */
const dollarPlaceholders = (sql: string): string => {
  let i = 0
  return sql.replace(/\?/g, () => `$${++i}`)
}

const errorCode = (cause: unknown): string | undefined => {
  const code = (cause as { code?: unknown } | undefined)?.code
  return typeof code === "string" ? code : undefined
}

/**
 * A `StorageError` from a driver failure, keeping the driver's error code.
 *
 * @since 0.1.0
 */
export const storageError = (message: string, cause: unknown): StorageError => {
  const code = errorCode(cause)
  const detail = cause instanceof Error ? cause.message : String(cause)
  return new StorageError({ message: `${message}: ${detail}`, ...(code === undefined ? {} : { code }) })
}

/** Whether an error is SQLite's "database is locked", after which a whole transaction is retried. @since 0.1.0 */
export const isBusy = (error: unknown): boolean =>
  error instanceof StorageError && (error.code ?? "").startsWith("SQLITE_BUSY")

const fromSqlError = (error: SqlError): StorageError => storageError(error.message, error.cause)

const isSqlError = (error: unknown): error is SqlError =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "SqlError"

/**
 * A driver over the `SqlClient` in context.
 *
 * @since 0.1.0
 */
export const fromSqlClient: Effect.Effect<SqlDriver, never, SqlClient.SqlClient> = Effect.map(
  SqlClient.SqlClient,
  (sql) => {
    const dialect: Dialect = sql.onDialectOrElse({ pg: () => "pg" as const, orElse: () => "sqlite" as const })
    const text = dialect === "pg" ? dollarPlaceholders : (s: string) => s
    const all = <A>(statement: string, params: ReadonlyArray<unknown> = []) =>
      Effect.mapError(sql.unsafe<A & object>(text(statement), params), fromSqlError) as Effect.Effect<
        ReadonlyArray<A>,
        StorageError
      >
    // Writing first (the change counter) takes the lock before any read: SQLite's plain BEGIN
    // takes its write lock only at the first write, and on Postgres (READ COMMITTED) the row lock
    // serializes writers until commit, so every read after it sees the latest committed data.
    const lock = all("UPDATE tminus_meta SET value = value + 1 WHERE key = 'change_counter'")
    return {
      dialect,
      all,
      run: (statement, params) => Effect.asVoid(all(statement, params)),
      dataVersion: Effect.map(
        all<{ value: unknown }>("SELECT value FROM tminus_meta WHERE key = 'change_counter'"),
        (rows) => Number(rows[0]?.value ?? 0)
      ),
      transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        sql.withTransaction(Effect.zipRight(lock, effect)).pipe(
          Effect.mapError((error: E | SqlError | StorageError) =>
            isSqlError(error) ? fromSqlError(error) : error
          ),
          Effect.retry({ while: isBusy, times: 100 })
        )
    }
  }
)
