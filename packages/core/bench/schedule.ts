/**
 * `schedule` throughput on a SQLite file (WAL, synchronous=NORMAL), next to a raw better-sqlite3
 * loop that writes the same rows with the same statements per transaction: the physical limit.
 * Our default store (native driver) is measured against the targets; the same store through
 * `@effect/sql`'s `SqlClient` (`Sqlite.layerSqlClientStore`) is measured for reference. Every run
 * gets fresh files; the order of the contenders rotates from run to run so drift hits all alike.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Coordinator from "../src/Coordinator.ts"
import type * as Lifecycle from "../src/Lifecycle.ts"
import * as Sqlite from "../src/sqlite.ts"
import { TMinus } from "../src/TMinus.ts"
import {
  checkpointsBetween,
  createMigrated,
  EVENT_COLUMNS,
  type EventRows,
  firstValue,
  insertAgentsSql,
  insertEventsSql,
  insertHistorySql,
  median,
  openRaw,
  pragmaSummary,
  pragmaSummaryWith,
  RawCheckpoints,
  rawTransaction,
  removeDb,
  reviewInputs,
  rowInserter,
  rowsFromInputs,
  scaled,
  tempFile
} from "./fixtures.ts"

/** One timed loop: its wall time and the checkpoints that ran inside it. */
export interface Timed {
  readonly ms: number
  readonly checkpoints: number
  readonly checkpointMs: number
}

/** Row counts of a file after a run, and whether they equal the raw file's. */
export interface RowCheck {
  readonly lines: ReadonlyArray<readonly [string, string]>
  readonly same: boolean
}

export interface ScheduleFigures {
  readonly singleEvents: number
  readonly batchEvents: number
  readonly batchSize: number
  readonly runs: number
  /** events/s, median over runs */
  readonly single: {
    readonly ours: number
    readonly raw: number
    readonly sqlClient: number
    readonly facade: number
  }
  readonly batched: {
    readonly ours: number
    readonly rawRowStatements: number
    readonly rawMultiRow: number
    readonly sqlClient: number
  }
  /** events/s of every run, by contender */
  readonly samples: Record<string, ReadonlyArray<number>>
  /** every run's timed loop, by contender (with the checkpoints that ran inside it) */
  readonly timed: Record<string, ReadonlyArray<Timed>>
  /** events/s with the time spent in checkpoints taken out, median over runs, by contender */
  readonly withoutCheckpoints: Record<string, number>
  readonly pragmas: { readonly ours: string; readonly raw: string; readonly sqlClient: string }
  readonly rows: { readonly single: RowCheck; readonly batched: RowCheck }
}

const RUNS = 5
/** Rows per multi-row statement in our store (SqlEventStore's CHUNK). */
const STORE_CHUNK = 500

type Backend = "native" | "sqlClient"

// ---------------------------------------------------------------------------------------------
// Ours

const coordinatorLayer = (backend: Backend, filename: string) =>
  backend === "native"
    ? Sqlite.layer({ filename })
    : Layer.provideMerge(Coordinator.layer, Sqlite.layerSqlClientStore({ filename }))

/**
 * Waits for the event loop to come round once (a timer), so fibers the store forked after its
 * last commit (the native driver's checkpoint) run inside the timed window, as they would in a
 * loop that goes on.
 */
const settle = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 0)))

const timedEffect = <E>(body: Effect.Effect<void, E>): Effect.Effect<Timed, E> =>
  Effect.gen(function* () {
    const start = performance.now()
    yield* body
    yield* settle
    const end = performance.now()
    return timedResult(start, end)
  })

const timedResult = (start: number, end: number): Timed => {
  const checkpoints = checkpointsBetween(start, end)
  return {
    ms: end - start,
    checkpoints: checkpoints.length,
    checkpointMs: checkpoints.reduce((sum, c) => sum + c.ms, 0)
  }
}

const withCoordinator = <A, E>(
  backend: Backend,
  filename: string,
  body: (c: Coordinator.CoordinatorShape) => Effect.Effect<A, E>
): Promise<A> =>
  Effect.runPromise(
    Effect.flatMap(Coordinator.Coordinator, body).pipe(Effect.provide(coordinatorLayer(backend, filename)))
  )

const oursSingle = (
  backend: Backend,
  filename: string,
  warm: ReadonlyArray<Lifecycle.ScheduleInput>,
  inputs: ReadonlyArray<Lifecycle.ScheduleInput>
): Promise<Timed> =>
  withCoordinator(backend, filename, (c) =>
    Effect.gen(function* () {
      for (const input of warm) yield* c.schedule(input)
      yield* settle
      return yield* timedEffect(
        Effect.gen(function* () {
          for (const input of inputs) yield* c.schedule(input)
        })
      )
    })
  )

const oursBatched = (
  backend: Backend,
  filename: string,
  warm: ReadonlyArray<Lifecycle.ScheduleInput>,
  batches: ReadonlyArray<ReadonlyArray<Lifecycle.ScheduleInput>>
): Promise<Timed> =>
  withCoordinator(backend, filename, (c) =>
    Effect.gen(function* () {
      yield* c.scheduleMany(warm)
      yield* settle
      return yield* timedEffect(
        Effect.gen(function* () {
          for (const batch of batches) yield* c.scheduleMany(batch)
        })
      )
    })
  )

/** The Promise facade (`TMinus.schedule`, native driver): one `runPromise` per call. */
const facadeSingle = async (
  filename: string,
  warm: ReadonlyArray<Lifecycle.ScheduleInput>,
  inputs: ReadonlyArray<Lifecycle.ScheduleInput>
): Promise<Timed> => {
  const tm = await TMinus.open({ filename })
  try {
    for (const input of warm) await tm.schedule(input)
    const start = performance.now()
    for (const input of inputs) await tm.schedule(input)
    await new Promise<void>((resolve) => setTimeout(resolve, 0))
    return timedResult(start, performance.now())
  } finally {
    await tm.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Raw better-sqlite3: our driver's transaction and checkpoint policy, our store's statements

const withRaw = async (
  filename: string,
  body: (db: Database.Database, cp: RawCheckpoints) => Timed
): Promise<Timed> => {
  await createMigrated(filename)
  const db = openRaw(filename)
  try {
    return body(db, new RawCheckpoints(db))
  } finally {
    db.close()
  }
}

const timedSync = (body: () => void): Timed => {
  const start = performance.now()
  body()
  return timedResult(start, performance.now())
}

/**
 * One transaction per event, as `schedule` writes it: `BEGIN IMMEDIATE`, 1 `events` row, the 3
 * `event_agents` rows in one statement, 1 `history` row, `COMMIT`.
 */
const rawSingle = (filename: string, warm: ReadonlyArray<EventRows>, rows: ReadonlyArray<EventRows>) =>
  withRaw(filename, (db, cp) => {
    const tx = rawTransaction(db, cp)
    const event = db.prepare(insertEventsSql(1))
    const agents = db.prepare(insertAgentsSql(3))
    const history = db.prepare(insertHistorySql(1))
    const write = (r: EventRows) =>
      tx(() => {
        cp.add(event.run(r.event).changes)
        cp.add(agents.run(r.agents).changes)
        cp.add(history.run(r.history[0]).changes)
      })
    for (const r of warm) write(r)
    return timedSync(() => {
      for (const r of rows) write(r)
    })
  })

/** One transaction per batch, one prepared single-row statement per row. */
const rawBatchedRows = (
  filename: string,
  warm: ReadonlyArray<EventRows>,
  batches: ReadonlyArray<ReadonlyArray<EventRows>>
) =>
  withRaw(filename, (db, cp) => {
    const tx = rawTransaction(db, cp)
    const insert = rowInserter(db)
    const write = (batch: ReadonlyArray<EventRows>) =>
      tx(() => {
        for (const r of batch) cp.add(insert(r))
      })
    write(warm)
    return timedSync(() => {
      for (const batch of batches) write(batch)
    })
  })

type Table = "events" | "agents" | "history"

/**
 * The statements our store sends for one batch, in its order (`insertEvents`, then
 * `appendHistory`): per 500 events one 500-row `events` INSERT and their `event_agents` rows in
 * 500-row INSERTs, then the history in 500-row INSERTs. Parameters are flattened before the timed
 * loop.
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
  withRaw(filename, (db, cp) => {
    const tx = rawTransaction(db, cp)
    const statements = new Map<string, Database.Statement>()
    const columns = { events: EVENT_COLUMNS.length, agents: 2, history: 5 } as const
    const text = { events: insertEventsSql, agents: insertAgentsSql, history: insertHistorySql } as const
    // Prepared up front, outside the timed loop (ours caches its prepared statements too).
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
    const write = (batch: ReturnType<typeof prepare>) =>
      tx(() => {
        for (const [statement, params] of batch) cp.add(statement.run(params).changes)
      })
    write(prepare(warm))
    const ready = batches.map(prepare)
    return timedSync(() => {
      for (const batch of ready) write(batch)
    })
  })

// ---------------------------------------------------------------------------------------------

const COUNTED = ["events", "event_agents", "history"] as const

const countRows = (filename: string): { readonly counts: ReadonlyArray<number>; readonly text: string } => {
  const db = openRaw(filename)
  try {
    const counts = COUNTED.map((table) => Number(db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get()))
    const text = COUNTED.map((table, k) => `${table} ${counts[k]}`).join(", ")
    return { counts, text }
  } finally {
    db.close()
  }
}

/** Compares the row counts of `files` (label → file) with those of the file labelled `raw…`. */
const checkRows = (files: ReadonlyArray<readonly [string, string]>): RowCheck => {
  const counted = files.map(([label, file]) => [label, countRows(file)] as const)
  const reference = counted.find(([label]) => label.startsWith("raw"))![1].counts.join(",")
  return {
    lines: counted.map(([label, c]) => [label, c.text] as const),
    same: counted.every(([, c]) => c.counts.join(",") === reference)
  }
}

const PRAGMAS = ["journal_mode", "synchronous", "busy_timeout", "wal_autocheckpoint"] as const

/** The settings of each store's own connection, read through it (on a scratch file). */
const readPragmas = async (): Promise<ScheduleFigures["pragmas"]> => {
  const summary = (values: ReadonlyArray<unknown>) =>
    pragmaSummaryWith((pragma) => values[PRAGMAS.indexOf(pragma as (typeof PRAGMAS)[number])])
  const native = tempFile("pragmas-native")
  const client = tempFile("pragmas-sqlclient")
  const raw = tempFile("pragmas-raw")
  try {
    const ours = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(Sqlite.makeDriver({ filename: native }), (driver) =>
          Effect.forEach(PRAGMAS, (pragma) => Effect.map(driver.all(`PRAGMA ${pragma}`), firstValue))
        )
      )
    )
    const sqlClient = await Effect.runPromise(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.forEach(PRAGMAS, (pragma) => Effect.map(sql.unsafe(`PRAGMA ${pragma}`), firstValue))
      ).pipe(Effect.provide(Sqlite.layerClient({ filename: client })))
    )
    const db = openRaw(raw)
    const rawSummary = pragmaSummary(db)
    db.close()
    return { ours: summary(ours), raw: rawSummary, sqlClient: summary(sqlClient) }
  } finally {
    for (const f of [native, client, raw]) removeDb(f)
  }
}

const chunk = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Runs `steps` in an order rotated by `run`. */
const rotated = async (run: number, steps: ReadonlyArray<() => Promise<void>>) => {
  for (let k = 0; k < steps.length; k++) await steps[(k + run) % steps.length]!()
}

export const runScheduleBench = async (log: (line: string) => void): Promise<ScheduleFigures> => {
  const singleEvents = scaled(5_000, 200)
  const singleWarm = scaled(500, 50)
  const batchSize = Math.min(1_000, scaled(1_000, 100))
  const batchEvents = Math.max(batchSize, Math.round(scaled(20_000, 1_000) / batchSize) * batchSize)
  const samples: Record<string, Array<number>> = {}
  const timed: Record<string, Array<Timed>> = {}
  const events: Record<string, number> = {}
  const record = (key: string, count: number) => (result: Timed) => {
    const list = samples[key] ?? []
    samples[key] = list
    list.push((count / result.ms) * 1_000)
    const all = timed[key] ?? []
    timed[key] = all
    all.push(result)
    events[key] = count
  }
  const last = (key: string) => Math.round(samples[key]!.at(-1)!)
  const pragmas = await readPragmas()
  let rows: ScheduleFigures["rows"] | undefined

  for (let run = 0; run < RUNS; run++) {
    // Fire times an hour ahead, one second apart, so every request is valid whenever it runs.
    const at = Date.now() + 3_600_000
    const warm = reviewInputs(singleWarm, at, 0)
    const inputs = reviewInputs(singleEvents, at + singleWarm * 1_000, singleWarm)
    const warmRows = rowsFromInputs(warm)
    const eventRows = rowsFromInputs(inputs)
    if (eventRows.some((r) => r.agents.length !== 6 || r.history.length !== 1))
      throw new Error("expected 3 attendees and 1 history row per event")

    const files = {
      ours: tempFile(`single-ours-${run}`),
      raw: tempFile(`single-raw-${run}`),
      sqlClient: tempFile(`single-sqlclient-${run}`),
      facade: tempFile(`single-facade-${run}`)
    }
    await rotated(run, [
      async () => record("rawSingle", singleEvents)(await rawSingle(files.raw, warmRows, eventRows)),
      async () => record("oursSingle", singleEvents)(await oursSingle("native", files.ours, warm, inputs)),
      async () =>
        record("sqlClientSingle", singleEvents)(await oursSingle("sqlClient", files.sqlClient, warm, inputs))
    ])
    record("facadeSingle", singleEvents)(await facadeSingle(files.facade, warm, inputs))
    const singleCheck =
      run === 0
        ? checkRows([
            ["ours (native)", files.ours],
            ["raw", files.raw],
            ["@effect/sql", files.sqlClient]
          ])
        : undefined
    for (const f of Object.values(files)) removeDb(f)
    log(
      `  single run ${run + 1}/${RUNS}: ours ${last("oursSingle")}/s, raw ${last("rawSingle")}/s, @effect/sql ${last("sqlClientSingle")}/s, facade ${last("facadeSingle")}/s`
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
      rawMulti: tempFile(`batch-raw-multi-${run}`),
      sqlClient: tempFile(`batch-sqlclient-${run}`)
    }
    await rotated(run, [
      async () =>
        record("oursBatched", batchEvents)(await oursBatched("native", bFiles.ours, bWarm, bBatches)),
      async () =>
        record("rawBatchedRows", batchEvents)(await rawBatchedRows(bFiles.rawRows, bWarmRows, bRowBatches)),
      async () =>
        record(
          "rawBatchedMultiRow",
          batchEvents
        )(await rawBatchedMultiRow(bFiles.rawMulti, bWarmRows, bRowBatches)),
      async () =>
        record(
          "sqlClientBatched",
          batchEvents
        )(await oursBatched("sqlClient", bFiles.sqlClient, bWarm, bBatches))
    ])
    if (run === 0 && singleCheck !== undefined) {
      rows = {
        single: singleCheck,
        batched: checkRows([
          ["ours (native)", bFiles.ours],
          ["raw (500-row)", bFiles.rawMulti],
          ["raw (row stmts)", bFiles.rawRows],
          ["@effect/sql", bFiles.sqlClient]
        ])
      }
    }
    for (const f of Object.values(bFiles)) removeDb(f)
    log(
      `  batched run ${run + 1}/${RUNS}: ours ${last("oursBatched")}/s, raw (row statements) ${last("rawBatchedRows")}/s, raw (500-row statements) ${last("rawBatchedMultiRow")}/s, @effect/sql ${last("sqlClientBatched")}/s`
    )
  }

  const med = (key: string) => median(samples[key]!)
  return {
    singleEvents,
    batchEvents,
    batchSize,
    runs: RUNS,
    single: {
      ours: med("oursSingle"),
      raw: med("rawSingle"),
      sqlClient: med("sqlClientSingle"),
      facade: med("facadeSingle")
    },
    batched: {
      ours: med("oursBatched"),
      rawRowStatements: med("rawBatchedRows"),
      rawMultiRow: med("rawBatchedMultiRow"),
      sqlClient: med("sqlClientBatched")
    },
    samples,
    timed,
    withoutCheckpoints: Object.fromEntries(
      Object.entries(timed).map(([key, list]) => [
        key,
        median(list.map((t) => (events[key]! / (t.ms - t.checkpointMs)) * 1_000))
      ])
    ),
    pragmas,
    rows: rows!
  }
}
