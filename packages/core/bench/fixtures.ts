/**
 * Shared setup for the benchmarks: realistic schedule requests, the exact rows our store writes
 * for them (built with the store's own `toRow`), raw better-sqlite3 connections configured like
 * ours, temp files, and small formatting helpers. Nothing here is measured.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type { Attendee, Event, HistoryEntry } from "../src/Event.ts"
import { uuidv7 } from "../src/internal/uuid.ts"
import * as Lifecycle from "../src/Lifecycle.ts"
import { MUTABLE_COLUMNS, toRow } from "../src/SqlEventStore.ts"
import * as Sqlite from "../src/sqlite.ts"

/** `BENCH_SCALE=0.1 pnpm bench` shrinks every size (not the due-set size of the tick bench). */
export const SCALE = (() => {
  const raw = process.env.BENCH_SCALE
  if (raw === undefined || raw === "") return 1
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`BENCH_SCALE must be a positive number, got ${raw}`)
  return value
})()

export const scaled = (n: number, min: number): number => Math.max(min, Math.round(n * SCALE))

// ---------------------------------------------------------------------------------------------
// Temp files

let tempDir: string | undefined

/** A fresh path for a database file in the bench's temp dir (under `os.tmpdir()`). */
export const tempFile = (name: string): string => {
  tempDir ??= mkdtempSync(join(tmpdir(), "t-minus-bench-"))
  return join(tempDir, `${name}.db`)
}

/** Deletes a database file with its WAL and shared-memory files. */
export const removeDb = (filename: string): void => {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(filename + suffix, { force: true })
}

export const removeTempDir = (): void => {
  if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true })
  tempDir = undefined
}

// ---------------------------------------------------------------------------------------------
// Databases

/** Creates `filename` through our layer, so it holds exactly our migrated schema, then closes it. */
export const createMigrated = (filename: string): Promise<void> =>
  Effect.runPromise(Effect.scoped(Effect.asVoid(Layer.build(Sqlite.layerStore({ filename })))))

/**
 * The pragmas of our native driver (`Sqlite.makeDriver`): WAL, no automatic checkpoint (the driver
 * checkpoints itself after a commit, see `RawCheckpoints`), busy timeout 10 s, synchronous=NORMAL.
 */
export const DRIVER_PRAGMAS: ReadonlyArray<string> = [
  "journal_mode = WAL",
  "wal_autocheckpoint = 0",
  "busy_timeout = 10000",
  "synchronous = NORMAL"
]

/** A raw better-sqlite3 connection with the pragmas our native driver sets. */
export const openRaw = (filename: string): Database.Database => {
  const db = new Database(filename)
  for (const pragma of DRIVER_PRAGMAS) db.pragma(pragma)
  return db
}

/** The connection settings that matter here, read with `query` on the connection itself. */
export const pragmaSummaryWith = (query: (pragma: string) => unknown): string => {
  const names: Record<number, string> = { 0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA" }
  const sync = Number(query("synchronous"))
  return [
    `journal_mode=${String(query("journal_mode"))}`,
    `synchronous=${names[sync] ?? String(sync)}`,
    `busy_timeout=${String(query("busy_timeout"))}`,
    `wal_autocheckpoint=${String(query("wal_autocheckpoint"))}`
  ].join(", ")
}

export const pragmaSummary = (db: Database.Database): string =>
  pragmaSummaryWith((pragma) => db.pragma(pragma, { simple: true }))

/** The first column of the first row of an `@effect/sql`-style result. */
export const firstValue = (rows: ReadonlyArray<unknown>): unknown => {
  const row = rows[0]
  return row === undefined || row === null ? undefined : Object.values(row as object)[0]
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/** Row changes after which our native driver checkpoints (`CHECKPOINT_AFTER_CHANGES` in sqlite.ts). */
export const CHECKPOINT_AFTER_CHANGES = 2_000

export interface CheckpointRecord {
  /** `performance.now()` when it started. */
  readonly at: number
  readonly ms: number
}

/**
 * Every `wal_checkpoint` pragma run in this process (ours through the driver, raw through
 * `RawCheckpoints`, setup ones too), timed. Recorded by wrapping better-sqlite3's
 * `Database.prototype.pragma`, which is what the native driver calls; the statements are untouched.
 */
export const checkpointLog: Array<CheckpointRecord> = []

{
  const proto = Database.prototype as unknown as {
    pragma: (this: Database.Database, source: string, options?: Database.PragmaOptions) => unknown
  }
  const original = proto.pragma
  proto.pragma = function (source, options) {
    if (!/^\s*wal_checkpoint/i.test(source)) return original.call(this, source, options)
    const at = performance.now()
    try {
      return original.call(this, source, options)
    } finally {
      checkpointLog.push({ at, ms: performance.now() - at })
    }
  }
}

/** The checkpoints that started in `[from, to)`. */
export const checkpointsBetween = (from: number, to = Number.POSITIVE_INFINITY): Array<CheckpointRecord> =>
  checkpointLog.filter((c) => c.at >= from && c.at < to)

/**
 * Our native driver's checkpoint policy on a raw connection: count the row changes of the
 * statements run, and after a commit that brings them to ≥ 2,000 run `wal_checkpoint(PASSIVE)`
 * (ours runs it in a forked fiber just after the commit; raw runs it at once, after the commit).
 */
export class RawCheckpoints {
  private changes = 0
  private readonly db: Database.Database
  constructor(db: Database.Database) {
    this.db = db
  }
  /** Counts the row changes of a statement run (`RunResult.changes`). */
  add(changes: number): void {
    this.changes += changes
  }
  /** To call after each COMMIT. */
  afterCommit(): void {
    if (this.changes < CHECKPOINT_AFTER_CHANGES) return
    this.changes = 0
    this.db.pragma("wal_checkpoint(PASSIVE)")
  }
}

/** A write transaction as our native driver runs it: prepared `BEGIN IMMEDIATE` … `COMMIT`. */
export const rawTransaction = (db: Database.Database, checkpoints: RawCheckpoints) => {
  const begin = db.prepare("BEGIN IMMEDIATE")
  const commit = db.prepare("COMMIT")
  const rollback = db.prepare("ROLLBACK")
  return <A>(body: () => A): A => {
    begin.run()
    let result: A
    try {
      result = body()
    } catch (error) {
      if (db.inTransaction) rollback.run()
      throw error
    }
    commit.run()
    checkpoints.afterCommit()
    return result
  }
}

// ---------------------------------------------------------------------------------------------
// Requests and rows

/** A pool of agent ids; each event invites three consecutive ones. */
const AGENTS = Array.from({ length: 64 }, (_, i) => `agent-${String(i).padStart(2, "0")}`)

const attendeesFor = (i: number): Array<string> => [
  AGENTS[(i * 3) % AGENTS.length]!,
  AGENTS[(i * 3 + 1) % AGENTS.length]!,
  AGENTS[(i * 3 + 2) % AGENTS.length]!
]

/** A realistic request: a review with 3 attendees, quorum 2, a small payload, firing at `at`. */
export const reviewInput = (i: number, at: number): Lifecycle.ScheduleInput => ({
  kind: "review",
  name: `review PR #${1000 + i}`,
  organizer: "planner",
  at,
  attendees: attendeesFor(i),
  quorum: 2,
  payload: {
    repo: "acme/api",
    pr: 1000 + i,
    title: "Retry webhook deliveries with backoff",
    labels: ["backend"]
  }
})

/** `count` requests firing one second apart from `firstAt` on. */
export const reviewInputs = (count: number, firstAt: number, offset = 0): Array<Lifecycle.ScheduleInput> =>
  Array.from({ length: count }, (_, i) => reviewInput(offset + i, firstAt + i * 1_000))

/** The positional parameters of the rows our store writes for one new event. */
export interface EventRows {
  readonly id: string
  /** The event itself. */
  readonly source: Event
  /** The `events` row, in column order. */
  readonly event: Array<unknown>
  /** `event_agents` rows, flattened: agent, event_id, agent, event_id, … */
  readonly agents: Array<string>
  /** `history` rows (event_id, at, type, actor, detail), one per entry. */
  readonly history: Array<Array<unknown>>
}

/** The `events` columns in the order of `toRow`'s keys. */
export const EVENT_COLUMNS: ReadonlyArray<string> = (() => {
  const probe = Lifecycle.buildEvent(reviewInput(0, Date.now() + 60_000), uuidv7(Date.now()), Date.now())
  if (Either.isLeft(probe)) throw new Error(probe.left.message)
  return Object.keys(toRow(probe.right))
})()

const historyRow = (e: Event, type: "scheduled" | "confirmed", actor: string, at: number, detail: object) => [
  e.id,
  at,
  type,
  actor,
  JSON.stringify(detail)
]

/** The rows our `Coordinator.schedule` writes for `event` (built at `now`). */
export const rowsOf = (event: Event, now: number, confirmedBy: ReadonlyArray<string> = []): EventRows => {
  const history = [
    historyRow(event, "scheduled", event.organizer, now, {
      fireAt: event.fireAt?.toISOString() ?? null,
      quorum: event.quorum,
      attendees: event.attendees.length
    })
  ]
  for (const agent of confirmedBy) history.push(historyRow(event, "confirmed", agent, now, {}))
  return {
    id: event.id,
    source: event,
    event: Object.values(toRow(event)),
    agents: event.attendees.flatMap((a) => [a.agent, event.id]),
    history
  }
}

/** Builds events from requests exactly as `schedule` does (validation included) and their rows. */
export const rowsFromInputs = (inputs: ReadonlyArray<Lifecycle.ScheduleInput>): Array<EventRows> => {
  const now = Date.now()
  return inputs.map((input) => {
    const built = Lifecycle.buildEvent(input, uuidv7(now), now)
    if (Either.isLeft(built)) throw new Error(built.left.message)
    return rowsOf(built.right, now)
  })
}

/**
 * A fast generator of scheduled review events for filling big databases: one validated template,
 * then per event a new id, fire time and (optionally) two confirmed attendees.
 */
export const makeEventFactory = () => {
  const now = Date.now()
  const built = Lifecycle.buildEvent(reviewInput(0, now + 86_400_000), uuidv7(now), now)
  if (Either.isLeft(built)) throw new Error(built.left.message)
  const template = built.right
  return (i: number, fireAt: number, confirmed: boolean): EventRows => {
    const created = Date.now()
    const agents = attendeesFor(i)
    const attendees: Array<Attendee> = agents.map((agent, k) =>
      confirmed && k < 2
        ? { agent, status: "confirmed", respondedAt: new Date(created) }
        : { agent, status: "pending", respondedAt: null }
    )
    const event: Event = {
      ...template,
      id: uuidv7(created),
      name: `review PR #${1000 + i}`,
      payload: {
        repo: "acme/api",
        pr: 1000 + i,
        title: "Retry webhook deliveries with backoff",
        labels: ["backend"]
      },
      attendees,
      scheduledAt: new Date(fireAt),
      fireAt: new Date(fireAt),
      dueAt: new Date(fireAt),
      createdAt: new Date(created),
      updatedAt: new Date(created),
      version: confirmed ? 3 : 1
    }
    return rowsOf(event, created, confirmed ? agents.slice(0, 2) : [])
  }
}

// ---------------------------------------------------------------------------------------------
// Raw statements: the same writes our store's transaction makes

const placeholders = (columns: number, rows: number): string => {
  const one = `(${Array.from({ length: columns }, () => "?").join(", ")})`
  return Array.from({ length: rows }, () => one).join(", ")
}

export const insertEventsSql = (rows: number): string =>
  `INSERT INTO events (${EVENT_COLUMNS.join(", ")}) VALUES ${placeholders(EVENT_COLUMNS.length, rows)}`
export const insertAgentsSql = (rows: number): string =>
  `INSERT INTO event_agents (agent, event_id) VALUES ${placeholders(2, rows)}`
export const insertHistorySql = (rows: number): string =>
  `INSERT INTO history (event_id, at, type, actor, detail) VALUES ${placeholders(5, rows)}`

/** Our store's per-event update (`UPDATE_EVENT` in SqlEventStore.ts): the mutable columns by id. */
export const UPDATE_EVENT_SQL = `UPDATE events SET ${MUTABLE_COLUMNS.map((c) => `${c} = ?`).join(", ")} WHERE id = ?`

/** The parameters of `UPDATE_EVENT_SQL` for an event, as `updateEvents` binds them. */
export const updateParams = (event: Event): Array<unknown> => {
  const row = toRow(event) as Record<string, unknown>
  return [...MUTABLE_COLUMNS.map((c) => row[c]), event.id]
}

/** `history` parameters (event_id, at, type, actor, detail) of entries, as `appendHistory` binds them. */
export const historyParams = (entries: ReadonlyArray<HistoryEntry>): Array<unknown> =>
  entries.flatMap((h) => [h.eventId, h.at.getTime(), h.type, h.actor, JSON.stringify(h.detail)])

/**
 * Inserts rows with one prepared single-row statement per row (no transaction of its own);
 * returns the row changes.
 */
export const rowInserter = (db: Database.Database) => {
  const event = db.prepare(insertEventsSql(1))
  const agent = db.prepare(insertAgentsSql(1))
  const history = db.prepare(insertHistorySql(1))
  return (rows: EventRows): number => {
    let changes = event.run(rows.event).changes
    for (let k = 0; k < rows.agents.length; k += 2)
      changes += agent.run(rows.agents[k], rows.agents[k + 1]).changes
    for (const h of rows.history) changes += history.run(h).changes
    return changes
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

export const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US")
export const fmtMs = (ms: number): string =>
  ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)
export const pct = (ratio: number): string => `${(ratio * 100).toFixed(0)}%`

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(" | ")} |`
  const rule = `|${widths.map((w, c) => (c === 0 ? `${"-".repeat(w + 2)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`
  return [line(header), rule, ...rows.map(line)].join("\n")
}
