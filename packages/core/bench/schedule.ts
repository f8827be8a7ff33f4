/**
 * `schedule` throughput on a SQLite file (WAL, synchronous=NORMAL), next to a raw better-sqlite3
 * loop that writes the same rows with the same statements per transaction: the physical limit.
 * Every run gets fresh files; raw and ours alternate so drift hits both alike.
 */
import type Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Coordinator from "../src/Coordinator.ts"
import type * as Lifecycle from "../src/Lifecycle.ts"
import * as Sqlite from "../src/sqlite.ts"
import { TMinus } from "../src/TMinus.ts"
import {
  BUMP,
  createMigrated,
  EVENT_COLUMNS,
  type EventRows,
  insertAgentsSql,
  insertEventsSql,
  insertHistorySql,
  median,
  openRaw,
  pragmaSummary,
  removeDb,
  reviewInputs,
  rowInserter,
  rowsFromInputs,
  scaled,
  tempFile
} from "./fixtures.ts"

export interface ScheduleFigures {
  readonly singleEvents: number
  readonly batchEvents: number
  readonly batchSize: number
  readonly runs: number
  /** events/s, median over runs */
  readonly single: { readonly ours: number; readonly raw: number; readonly facade: number }
  readonly batched: { readonly ours: number; readonly rawRowStatements: number; readonly rawMultiRow: number }
  readonly samples: Record<string, ReadonlyArray<number>>
  readonly pragmas: { readonly ours: string; readonly raw: string }
  readonly rowsPerEvent: { readonly ours: string; readonly raw: string }
}

const RUNS = 5
/** Rows per multi-row statement in our store (SqlEventStore's CHUNK). */
const STORE_CHUNK = 500

// ---------------------------------------------------------------------------------------------
// Ours

const withCoordinator = <A, E>(
  filename: string,
  body: (c: Coordinator.CoordinatorShape) => Effect.Effect<A, E>
): Promise<A> =>
  Effect.runPromise(
    Effect.flatMap(Coordinator.Coordinator, body).pipe(Effect.provide(Sqlite.layer({ filename })))
  )

const oursSingle = (
  filename: string,
  warm: ReadonlyArray<Lifecycle.ScheduleInput>,
  inputs: ReadonlyArray<Lifecycle.ScheduleInput>
): Promise<number> =>
  withCoordinator(filename, (c) =>
    Effect.gen(function* () {
      for (const input of warm) yield* c.schedule(input)
      const start = performance.now()
      for (const input of inputs) yield* c.schedule(input)
      return performance.now() - start
    })
  )

const oursBatched = (
  filename: string,
  warm: ReadonlyArray<Lifecycle.ScheduleInput>,
  batches: ReadonlyArray<ReadonlyArray<Lifecycle.ScheduleInput>>
): Promise<number> =>
  withCoordinator(filename, (c) =>
    Effect.gen(function* () {
      yield* c.scheduleMany(warm)
      const start = performance.now()
      for (const batch of batches) yield* c.scheduleMany(batch)
      return performance.now() - start
    })
  )

/** The Promise facade (`TMinus.schedule`): one `runPromise` per call on top of `schedule`. */
const facadeSingle = async (
  filename: string,
  warm: ReadonlyArray<Lifecycle.ScheduleInput>,
  inputs: ReadonlyArray<Lifecycle.ScheduleInput>
): Promise<number> => {
  const tm = await TMinus.open({ filename })
  try {
    for (const input of warm) await tm.schedule(input)
    const start = performance.now()
    for (const input of inputs) await tm.schedule(input)
    return performance.now() - start
  } finally {
    await tm.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Raw better-sqlite3

const withRaw = async <A>(filename: string, body: (db: Database.Database) => A): Promise<A> => {
  await createMigrated(filename)
  const db = openRaw(filename)
  try {
    return body(db)
  } finally {
    db.close()
  }
}

/** One transaction per event: bump, 1 events row, 3 event_agents rows (one statement), 1 history row. */
const rawSingle = (filename: string, warm: ReadonlyArray<EventRows>, rows: ReadonlyArray<EventRows>) =>
  withRaw(filename, (db) => {
    const bump = db.prepare(BUMP)
    const event = db.prepare(insertEventsSql(1))
    const agents = db.prepare(insertAgentsSql(3))
    const history = db.prepare(insertHistorySql(1))
    const tx = db.transaction((r: EventRows) => {
      bump.run()
      event.run(r.event)
      agents.run(r.agents)
      history.run(r.history[0])
    })
    for (const r of warm) tx(r)
    const start = performance.now()
    for (const r of rows) tx(r)
    return performance.now() - start
  })

/** One transaction per batch, one prepared single-row statement per row. */
const rawBatchedRows = (
  filename: string,
  warm: ReadonlyArray<EventRows>,
  batches: ReadonlyArray<ReadonlyArray<EventRows>>
) =>
  withRaw(filename, (db) => {
    const bump = db.prepare(BUMP)
    const insert = rowInserter(db)
    const tx = db.transaction((batch: ReadonlyArray<EventRows>) => {
      bump.run()
      for (const r of batch) insert(r)
    })
    tx(warm)
    const start = performance.now()
    for (const batch of batches) tx(batch)
    return performance.now() - start
  })

type Table = "events" | "agents" | "history"

/**
 * The statements our store sends for one batch, in its order: per 500 events one 500-row events
 * INSERT and the agents in 500-row INSERTs, then the history in 500-row INSERTs. Parameters are
 * flattened before the timed loop.
 */
const toMultiRow = (batch: ReadonlyArray<EventRows>): Array<readonly [Table, Array<unknown>]> => {
  const out: Array<readonly [Table, Array<unknown>]> = []
  for (let i = 0; i < batch.length; i += STORE_CHUNK) {
    const part = batch.slice(i, i + STORE_CHUNK)
    out.push(["events", part.flatMap((r) => r.event)])
    const agents = part.flatMap((r) => r.agents)
    for (let k = 0; k < agents.length; k += STORE_CHUNK * 2)
      out.push(["agents", agents.slice(k, k + STORE_CHUNK * 2)])
  }
  const history = batch.flatMap((r) => r.history.flat())
  for (let k = 0; k < history.length; k += STORE_CHUNK * 5)
    out.push(["history", history.slice(k, k + STORE_CHUNK * 5)])
  return out
}

/** One transaction per batch, with the multi-row statements our store uses. */
const rawBatchedMultiRow = (
  filename: string,
  warm: ReadonlyArray<EventRows>,
  batches: ReadonlyArray<ReadonlyArray<EventRows>>
) =>
  withRaw(filename, (db) => {
    const bump = db.prepare(BUMP)
    const statements = new Map<string, Database.Statement>()
    const columns = { events: EVENT_COLUMNS.length, agents: 2, history: 5 } as const
    const text = { events: insertEventsSql, agents: insertAgentsSql, history: insertHistorySql } as const
    // Prepared up front, outside the timed loop.
    const prepare = (batch: ReadonlyArray<EventRows>) =>
      toMultiRow(batch).map(([table, params]) => {
        const sql = text[table](params.length / columns[table])
        let statement = statements.get(sql)
        if (statement === undefined) {
          statement = db.prepare(sql)
          statements.set(sql, statement)
        }
        return [statement, params] as const
      })
    const write = db.transaction((batch: ReturnType<typeof prepare>) => {
      bump.run()
      for (const [statement, params] of batch) statement.run(params)
    })
    write(prepare(warm))
    const ready = batches.map(prepare)
    const start = performance.now()
    for (const batch of ready) write(batch)
    return performance.now() - start
  })

// ---------------------------------------------------------------------------------------------

const countRows = (filename: string): string => {
  const db = openRaw(filename)
  try {
    const n = (table: string) => Number(db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).pluck().get())
    const events = n("events")
    const counter = Number(
      db.prepare("SELECT value FROM tminus_meta WHERE key = 'change_counter'").pluck().get()
    )
    return `events ${events}, event_agents ${n("event_agents")}, history ${n("history")}, change_counter +${counter}`
  } finally {
    db.close()
  }
}

const readPragmas = (filename: string): string => {
  const db = openRaw(filename)
  try {
    return pragmaSummary(db)
  } finally {
    db.close()
  }
}

const chunk = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

export const runScheduleBench = async (log: (line: string) => void): Promise<ScheduleFigures> => {
  const singleEvents = scaled(5_000, 200)
  const singleWarm = scaled(500, 50)
  const batchSize = Math.min(1_000, scaled(1_000, 100))
  const batchEvents = Math.max(batchSize, Math.round(scaled(20_000, 1_000) / batchSize) * batchSize)
  const samples: Record<string, Array<number>> = {
    oursSingle: [],
    rawSingle: [],
    facadeSingle: [],
    oursBatched: [],
    rawBatchedRows: [],
    rawBatchedMultiRow: []
  }
  let pragmas = { ours: "", raw: "" }
  let rowsPerEvent = { ours: "", raw: "" }
  const rate = (events: number, ms: number) => (events / ms) * 1_000

  for (let run = 0; run < RUNS; run++) {
    // Fire times an hour ahead, one second apart, so every request is valid whenever it runs.
    const at = Date.now() + 3_600_000
    const warm = reviewInputs(singleWarm, at, 0)
    const inputs = reviewInputs(singleEvents, at + singleWarm * 1_000, singleWarm)
    const warmRows = rowsFromInputs(warm)
    const rows = rowsFromInputs(inputs)

    const files = {
      ours: tempFile(`single-ours-${run}`),
      raw: tempFile(`single-raw-${run}`),
      facade: tempFile(`single-facade-${run}`)
    }
    const doOurs = async () =>
      samples.oursSingle!.push(rate(singleEvents, await oursSingle(files.ours, warm, inputs)))
    const doRaw = async () =>
      samples.rawSingle!.push(rate(singleEvents, await rawSingle(files.raw, warmRows, rows)))
    if (run % 2 === 0) {
      await doRaw()
      await doOurs()
    } else {
      await doOurs()
      await doRaw()
    }
    samples.facadeSingle!.push(rate(singleEvents, await facadeSingle(files.facade, warm, inputs)))
    if (run === 0) {
      pragmas = { ours: readPragmas(files.ours), raw: readPragmas(files.raw) }
      rowsPerEvent = { ours: countRows(files.ours), raw: countRows(files.raw) }
    }
    for (const f of Object.values(files)) removeDb(f)
    log(
      `  single run ${run + 1}/${RUNS}: ours ${Math.round(samples.oursSingle!.at(-1)!)}/s, raw ${Math.round(samples.rawSingle!.at(-1)!)}/s, facade ${Math.round(samples.facadeSingle!.at(-1)!)}/s`
    )

    const bAt = Date.now() + 3_600_000
    const bWarm = reviewInputs(batchSize, bAt, 0)
    const bInputs = reviewInputs(batchEvents, bAt + batchSize * 1_000, batchSize)
    const bBatches = chunk(bInputs, batchSize)
    const bWarmRows = rowsFromInputs(bWarm)
    const bRowBatches = chunk(rowsFromInputs(bInputs), batchSize)
    const bFiles = {
      ours: tempFile(`batch-ours-${run}`),
      rawRows: tempFile(`batch-raw-rows-${run}`),
      rawMulti: tempFile(`batch-raw-multi-${run}`)
    }
    const steps = [
      async () =>
        samples.oursBatched!.push(rate(batchEvents, await oursBatched(bFiles.ours, bWarm, bBatches))),
      async () =>
        samples.rawBatchedRows!.push(
          rate(batchEvents, await rawBatchedRows(bFiles.rawRows, bWarmRows, bRowBatches))
        ),
      async () =>
        samples.rawBatchedMultiRow!.push(
          rate(batchEvents, await rawBatchedMultiRow(bFiles.rawMulti, bWarmRows, bRowBatches))
        )
    ]
    for (let k = 0; k < steps.length; k++) await steps[(k + run) % steps.length]!()
    for (const f of Object.values(bFiles)) removeDb(f)
    log(
      `  batched run ${run + 1}/${RUNS}: ours ${Math.round(samples.oursBatched!.at(-1)!)}/s, raw (row statements) ${Math.round(samples.rawBatchedRows!.at(-1)!)}/s, raw (500-row statements) ${Math.round(samples.rawBatchedMultiRow!.at(-1)!)}/s`
    )
  }

  return {
    singleEvents,
    batchEvents,
    batchSize,
    runs: RUNS,
    single: {
      ours: median(samples.oursSingle!),
      raw: median(samples.rawSingle!),
      facade: median(samples.facadeSingle!)
    },
    batched: {
      ours: median(samples.oursBatched!),
      rawRowStatements: median(samples.rawBatchedRows!),
      rawMultiRow: median(samples.rawBatchedMultiRow!)
    },
    samples,
    pragmas,
    rowsPerEvent
  }
}
