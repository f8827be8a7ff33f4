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
import type { Attendee, Event } from "../src/Event.ts"
import { uuidv7 } from "../src/internal/uuid.ts"
import * as Lifecycle from "../src/Lifecycle.ts"
import { toRow } from "../src/SqlEventStore.ts"
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

/** A raw better-sqlite3 connection with the pragmas our SQLite layer sets (WAL, NORMAL, …). */
export const openRaw = (filename: string): Database.Database => {
  const db = new Database(filename)
  db.pragma("journal_mode = WAL")
  db.pragma("busy_timeout = 10000")
  db.pragma("synchronous = NORMAL")
  db.pragma("foreign_keys = ON")
  return db
}

export const pragmaSummary = (db: Database.Database): string => {
  const journal = db.pragma("journal_mode", { simple: true })
  const sync = db.pragma("synchronous", { simple: true })
  const names: Record<number, string> = { 0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA" }
  return `journal_mode=${String(journal)}, synchronous=${names[Number(sync)] ?? String(sync)}`
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

export const BUMP = "UPDATE tminus_meta SET value = value + 1 WHERE key = 'change_counter'"

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

/** Inserts rows with one prepared single-row statement per table (no transaction of its own). */
export const rowInserter = (db: Database.Database) => {
  const event = db.prepare(insertEventsSql(1))
  const agent = db.prepare(insertAgentsSql(1))
  const history = db.prepare(insertHistorySql(1))
  return (rows: EventRows): void => {
    event.run(rows.event)
    for (let k = 0; k < rows.agents.length; k += 2) agent.run(rows.agents[k], rows.agents[k + 1])
    for (const h of rows.history) history.run(h)
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
