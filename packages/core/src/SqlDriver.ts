/**
 * The few things the SQL store needs from a database: run a statement, read rows, and run a write
 * transaction that holds the write lock from its start. Statements use `?` placeholders.
 *
 * Two drivers exist: `fromSqlClient`, over any `@effect/sql` `SqlClient` (SQLite through
 * `@effect/sql-sqlite-node`, or Postgres), and the native SQLite driver of
 * `@t-minus/core/sqlite`, which calls better-sqlite3 with cached prepared statements and is about
 * three times faster per statement (see docs/benchmarks.md).
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import { StorageError } from "./Errors.ts"
import type { Event, HistoryEntry, Transition } from "./Event.ts"
import { makeChangeSignal, type WriteHint } from "./EventStore.ts"

/** @since 0.1.0 */
export type Dialect = "sqlite" | "pg"

/**
 * A database as the SQL store uses it.
 *
 * @since 0.1.0
 */
export interface SqlDriver {
  readonly dialect: Dialect
  /** The rows a statement returns. Writes go through `run`, which counts them. */
  readonly all: <A = Record<string, unknown>>(
    sql: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<A>, StorageError>
  /**
   * Runs a statement that writes. Inside a transaction it marks that transaction as one that
   * wrote; outside one it is committed at once and counts as a change by itself.
   */
  readonly run: (sql: string, params?: ReadonlyArray<unknown>) => Effect.Effect<void, StorageError>
  /**
   * Runs `effect` as one transaction that takes the write lock before its first statement, so
   * concurrent writers (also in other processes) queue instead of failing on a stale read. Inside
   * a transaction of the same driver, `effect` joins it.
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
  /** Whether the current fiber runs inside an open transaction of this driver. */
  readonly inTransaction: Effect.Effect<boolean>
  /**
   * A number that changes when another connection commits a write: SQLite's `PRAGMA data_version`;
   * on Postgres a counter that every commit that wrote advances (this process's included). A
   * transaction that wrote nothing leaves it alone.
   */
  readonly dataVersion: Effect.Effect<number, StorageError>
  /**
   * Records what the current transaction wrote (see `WriteHint`), reported to `observeWrites`
   * when it commits; outside a transaction it does nothing (a `run` there reports `UNKNOWN_WRITE`).
   */
  readonly note: (earliestDue: number, actions: boolean) => Effect.Effect<void>
  /**
   * Records the entries the current transaction appended to the history log, with their `seq`s;
   * `null`: entries it cannot describe. At commit they become `WriteHint.transitions`, with the
   * events as the transaction left them (`noteEvents`); an entry of an event it did not write makes
   * them unknown. Outside a transaction it does nothing (such a write reports `UNKNOWN_WRITE`).
   */
  readonly noteLog: (appended: Appended | null) => Effect.Effect<void>
  /** Records events the current transaction wrote (the latest version of each counts). */
  readonly noteEvents: (events: ReadonlyArray<Event>) => Effect.Effect<void>
  /**
   * Runs an `INSERT` (counted like `run`) into a table keyed by an increasing integer `key` (a
   * SQLite rowid alias, a Postgres sequence); the keys of the rows it inserted, in insertion order.
   */
  readonly insertKeys: (
    sql: string,
    params: ReadonlyArray<unknown>,
    key: string
  ) => Effect.Effect<ReadonlyArray<number>, StorageError>
  /** Calls `observer` at every commit that wrote, before `localChanges` counts it. */
  readonly observeWrites: (observer: (write: WriteHint) => void) => () => void
  /** How many commits of this driver wrote: transactions that ran `run`, and `run`s outside one. */
  readonly localChanges: Effect.Effect<number>
  /** Waits until `localChanges` exceeds `seen`. */
  readonly awaitLocalChange: (seen: number) => Effect.Effect<void>
  /** Other processes' commits as they happen, where the database can push them (see `EventStoreShape`). */
  readonly externalWrites?: Stream.Stream<WriteHint> | undefined
}

/**
 * Where a Postgres driver announces its commits: every transaction that wrote sends
 * `NOTIFY channel, '<source>:<earliestDue>:<0|1>'` (delivered when it commits), which
 * `parseNotice` reads back on the listening side.
 *
 * @since 0.1.0
 */
export interface Announce {
  readonly channel: string
  /** This driver's own id: listeners skip their own commits (they see them locally). */
  readonly source: string
}

/** The write a notice announces, or `null` for this process's own (or a notice not ours). @since 0.1.0 */
export const parseNotice = (payload: string, ownSource: string): WriteHint | null => {
  const [source, due, actions] = payload.split(":")
  if (source === ownSource || due === undefined || actions === undefined) return null
  const earliest = Number(due)
  return {
    earliestDue: Number.isNaN(earliest) ? Number.NEGATIVE_INFINITY : earliest,
    actions: actions !== "0"
  }
}

/**
 * The transaction a fiber runs in. Each transaction owns its cell, so whether it wrote is never
 * mixed up with another's; closed at its end, so a fiber forked inside that outlives it counts as
 * outside.
 *
 * @internal
 */
export interface OpenTransaction extends WriteHint {
  open: boolean
  wrote: boolean
  earliestDue: number
  actions: boolean
  appended: Array<Appended> | null
  /** The event batches it wrote, in order (a later version of an event wins). */
  events: Array<ReadonlyArray<Event>> | null
}

/**
 * History entries one statement of a transaction appended: their `seq`s and their details as
 * stored (JSON), by position. Kept as given; made into transitions only if asked (`sealLog`).
 *
 * @since 0.1.0
 */
export interface Appended {
  readonly seqs: ReadonlyArray<number>
  readonly entries: ReadonlyArray<HistoryEntry>
  readonly details: ReadonlyArray<string>
}

/**
 * A new open transaction. Its `transitions` are worked out when first read (by an observer of
 * its commit), so a commit nobody listens to does not pay for them. @internal
 */
export const openTransaction = (): OpenTransaction => {
  let sealed: ReadonlyArray<Transition> | null | undefined
  const tx: OpenTransaction = {
    open: true,
    wrote: false,
    earliestDue: Number.POSITIVE_INFINITY,
    actions: false,
    appended: [],
    events: null,
    get transitions() {
      sealed ??= sealLog(tx)
      return sealed
    }
  }
  return tx
}

/** `SqlDriver.noteLog` over the fiber's transaction cell. @internal */
export const noteLogIn =
  (current: FiberRef.FiberRef<OpenTransaction | null>) =>
  (appended: Appended | null): Effect.Effect<void> =>
    Effect.withFiberRuntime((fiber) => {
      const tx = fiber.getFiberRef(current)
      if (isOpen(tx) && tx.appended !== null) {
        if (appended === null) tx.appended = null
        else tx.appended.push(appended)
      }
      return Effect.void
    })

/** `SqlDriver.noteEvents` over the fiber's transaction cell. @internal */
export const noteEventsIn =
  (current: FiberRef.FiberRef<OpenTransaction | null>) =>
  (events: ReadonlyArray<Event>): Effect.Effect<void> =>
    Effect.withFiberRuntime((fiber) => {
      const tx = fiber.getFiberRef(current)
      if (isOpen(tx)) {
        tx.events ??= []
        tx.events.push(events)
      }
      return Effect.void
    })

/**
 * What a committed transaction appended, as `WriteHint.transitions`: as the log would give them
 * back, in `seq` order, consecutive, each with its event as the transaction left it; `null` when
 * any of that cannot be said.
 */
const sealLog = (tx: OpenTransaction): ReadonlyArray<Transition> | null => {
  if (tx.appended === null) return null
  const events = new Map<string, Event>()
  for (const batch of tx.events ?? []) for (const e of batch) events.set(e.id, e)
  const out: Array<Transition> = []
  for (const { seqs, entries, details } of tx.appended) {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      const e = events.get(entry.eventId)
      if (e === undefined) return null
      out.push({
        seq: seqs[i]!,
        eventId: entry.eventId,
        at: entry.at,
        type: entry.type,
        actor: entry.actor,
        detail: JSON.parse(details[i]!),
        campaignId: e.campaignId,
        agents: e.attendees.map((attendee) => attendee.agent),
        tenant: e.tenant
      })
    }
  }
  out.sort((x, y) => x.seq - y.seq)
  return out.every((t, i) => i === 0 || t.seq === out[i - 1]!.seq + 1) ? out : null
}

/** `SqlDriver.note` over the fiber's transaction cell. @internal */
export const noteIn =
  (current: FiberRef.FiberRef<OpenTransaction | null>) =>
  (earliestDue: number, actions: boolean): Effect.Effect<void> =>
    Effect.withFiberRuntime((fiber) => {
      const tx = fiber.getFiberRef(current)
      if (isOpen(tx)) {
        if (earliestDue < tx.earliestDue) tx.earliestDue = earliestDue
        if (actions) tx.actions = true
      }
      return Effect.void
    })

/** Whether `tx` is a transaction still open. @internal */
export const isOpen = (tx: OpenTransaction | null): tx is OpenTransaction => tx?.open === true

/** `(?, ?, ?)` for `n` values. @since 0.1.0 */
export const placeholders = (n: number): string => `(${Array.from({ length: n }, () => "?").join(", ")})`

/** `?` placeholders renumbered `$1, $2, …` for Postgres (our statements hold no literal `?`). @internal */
export const dollarPlaceholders = (sql: string): string => {
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

/**
 * Whether an error says the write lock was not had in time, after which a whole transaction is
 * retried: SQLite's "database is locked", Postgres's `lock_not_available` (its `lock_timeout`).
 *
 * @since 0.1.0
 */
export const isBusy = (error: unknown): boolean =>
  error instanceof StorageError && ((error.code ?? "").startsWith("SQLITE_BUSY") || error.code === "55P03")

const fromSqlError = (error: SqlError): StorageError => storageError(error.message, error.cause)

const isSqlError = (error: unknown): error is SqlError =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "SqlError"

/**
 * The table of the change counter (Postgres) and the statement SQLite's write lock is taken with;
 * made by `migrate` and, since it needs it first, by `fromSqlClient`.
 *
 * @internal
 */
export const META_TABLE: ReadonlyArray<string> = [
  "CREATE TABLE IF NOT EXISTS tminus_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
  "INSERT INTO tminus_meta (key, value) VALUES ('change_counter', 0) ON CONFLICT (key) DO NOTHING"
]

/**
 * A driver over the `SqlClient` in context (made once per client: it counts the client's commits).
 *
 * On SQLite the client must hold one connection, as `@effect/sql-sqlite-node`'s does: `dataVersion`
 * is that connection's `PRAGMA data_version`, which only other connections' commits move. On
 * Postgres `dataVersion` is a counter in `tminus_meta` that every transaction that wrote advances
 * before it commits, and a `run` outside a transaction runs as one.
 *
 * @since 0.1.0
 */
export const fromSqlClient: Effect.Effect<SqlDriver, StorageError, SqlClient.SqlClient> = Effect.suspend(() =>
  fromSqlClientWith({})
)

/**
 * `fromSqlClient`, on Postgres announcing every commit that wrote on `announce.channel`.
 *
 * @since 0.1.0
 */
export const fromSqlClientWith = (options: {
  readonly announce?: Announce | undefined
}): Effect.Effect<SqlDriver, StorageError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const dialect: Dialect = sql.onDialectOrElse({ pg: () => "pg" as const, orElse: () => "sqlite" as const })
    const text = dialect === "pg" ? dollarPlaceholders : (s: string) => s
    const query = <A>(statement: string, params: ReadonlyArray<unknown> = []) =>
      Effect.mapError(sql.unsafe<A & object>(text(statement), params), fromSqlError) as Effect.Effect<
        ReadonlyArray<A>,
        StorageError
      >
    for (const statement of META_TABLE) yield* query(statement)

    // The lock comes before any read, so every read after it sees the latest committed data.
    // SQLite's plain BEGIN takes the write lock only at the first write: an UPDATE that matches no
    // row takes it and writes nothing, so a transaction that writes nothing commits nothing. On
    // Postgres (READ COMMITTED) the counter's row lock serializes writers until commit.
    const lock = query(
      dialect === "pg"
        ? "SELECT value FROM tminus_meta WHERE key = 'change_counter' FOR UPDATE"
        : "UPDATE tminus_meta SET value = value WHERE 0"
    )
    const announce = options.announce
    const advance = (tx: OpenTransaction) =>
      announce === undefined
        ? query("UPDATE tminus_meta SET value = value + 1 WHERE key = 'change_counter'")
        : query(
            "UPDATE tminus_meta SET value = value + 1 WHERE key = 'change_counter' RETURNING pg_notify(?, ?)",
            [announce.channel, `${announce.source}:${tx.earliestDue}:${tx.actions ? 1 : 0}`]
          )
    const signal = makeChangeSignal()
    const current = FiberRef.unsafeMake<OpenTransaction | null>(null)
    // A fiber forked inside a transaction that outlived it still carries that transaction's
    // connection: it must go through the client like any fiber outside a transaction.
    const outside = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.withFiberRuntime((fiber) => {
        const tx = fiber.getFiberRef(current)
        return tx === null || tx.open
          ? effect
          : Effect.mapInputContext(
              effect,
              Context.omit(SqlClient.TransactionConnection) as (
                context: Context.Context<R>
              ) => Context.Context<R>
            )
      })
    const all = <A>(
      statement: string,
      params?: ReadonlyArray<unknown>
    ): Effect.Effect<ReadonlyArray<A>, StorageError> => outside(query<A>(statement, params))

    // One attempt: a retry after SQLITE_BUSY starts from a fresh cell, since its writes were undone.
    const attempt = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        const tx = openTransaction()
        const body = Effect.zipRight(lock, Effect.locally(effect, current, tx))
        return sql
          .withTransaction(
            dialect === "pg" ? Effect.tap(body, () => (tx.wrote ? advance(tx) : Effect.void)) : body
          )
          .pipe(
            Effect.ensuring(Effect.sync(() => (tx.open = false))),
            Effect.map((a) => [a, tx] as const)
          )
      })
    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
      Effect.withFiberRuntime((fiber) =>
        isOpen(fiber.getFiberRef(current))
          ? effect
          : outside(attempt(effect)).pipe(
              // `@effect/sql` dies when COMMIT or ROLLBACK fails (a connection lost mid-transaction,
              // or ended by the server): to the store that is a storage failure like any other.
              Effect.catchSomeDefect((defect) =>
                isSqlError(defect) ? Option.some(Effect.fail(defect)) : Option.none()
              ),
              Effect.mapError((error: E | SqlError | StorageError) =>
                isSqlError(error) ? fromSqlError(error) : error
              ),
              // Postgres waits in turns of its `lock_timeout` (250 ms): long enough for a frozen
              // holder to be ended by `idle_in_transaction_session_timeout` (the lease).
              Effect.retry({ while: isBusy, times: dialect === "pg" ? 600 : 100 }),
              Effect.map(([a, tx]) => {
                if (tx.wrote) signal.bump(tx)
                return a
              })
            )
      )
    const note = noteIn(current)
    const noteLog = noteLogIn(current)
    /** What a lone write's own transaction reports: it may have changed anything. */
    const unknownWrite = Effect.zipRight(note(Number.NEGATIVE_INFINITY, true), noteLog(null))
    const run = (statement: string, params?: ReadonlyArray<unknown>): Effect.Effect<void, StorageError> =>
      Effect.withFiberRuntime((fiber) => {
        const tx = fiber.getFiberRef(current)
        if (isOpen(tx)) {
          tx.wrote = true
          return Effect.asVoid(query(statement, params))
        }
        // A write that says nothing of itself may have changed anything (`UNKNOWN_WRITE`).
        return dialect === "pg"
          ? transaction(Effect.zipRight(unknownWrite, run(statement, params)))
          : Effect.tap(outside(query(statement, params)), () => signal.bump())
      })

    const writeReturning = <A>(
      statement: string,
      params?: ReadonlyArray<unknown>
    ): Effect.Effect<ReadonlyArray<A>, StorageError> =>
      Effect.withFiberRuntime((fiber) => {
        const tx = fiber.getFiberRef(current)
        if (isOpen(tx)) {
          tx.wrote = true
          return query<A>(statement, params)
        }
        return transaction(Effect.zipRight(unknownWrite, writeReturning<A>(statement, params)))
      })

    return {
      dialect,
      all,
      run,
      // Rows of one statement under the write lock take increasing keys, in order.
      insertKeys: (statement, params, key) =>
        Effect.map(writeReturning<Record<string, unknown>>(`${statement} RETURNING ${key}`, params), (rows) =>
          rows.map((row) => Number(row[key])).sort((a, b) => a - b)
        ),
      noteLog,
      noteEvents: noteEventsIn(current),
      transaction,
      inTransaction: Effect.map(FiberRef.get(current), isOpen),
      dataVersion: Effect.map(
        all<{ value: unknown }>(
          dialect === "pg"
            ? "SELECT value FROM tminus_meta WHERE key = 'change_counter'"
            : "SELECT data_version AS value FROM pragma_data_version"
        ),
        (rows) => Number(rows[0]?.value ?? 0)
      ),
      note,
      observeWrites: signal.observe,
      localChanges: signal.localChanges,
      awaitLocalChange: signal.awaitLocalChange
    }
  })
