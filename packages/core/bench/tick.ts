/**
 * `tick` latency on a big database: at least 1,000,000 scheduled events of which 1,000 are due.
 * The file is filled with raw better-sqlite3 inserts of rows built by the store's own `toRow`
 * (setup, not measured). Two kinds of rounds, each with a fresh set of 1,000 due events:
 *
 * - spread: due sets placed during the fill, spread evenly over the table, as when the events
 *   were scheduled over time among all the others; a tick then rewrites rows (and appends history
 *   under event ids) all over the file;
 * - fresh: 1,000 due events inserted just before the tick, so their rows sit together at the end.
 *
 * Every round has a raw twin: a raw better-sqlite3 transaction on its own due set that sends the
 * statements our tick sends (due query, dependents queries, one `UPDATE` of the mutable columns
 * per event, 500-row history INSERTs, the empty due query, `COMMIT`), with the new rows computed
 * ahead by the store's own rules. Ours and raw alternate; both checkpoint after the commit once
 * 2,000 rows changed (our driver's policy), and that checkpoint is timed apart.
 */
import { closeSync, fsyncSync, openSync, statSync } from "node:fs"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Coordinator from "../src/Coordinator.ts"
import type { Event, HistoryEntry } from "../src/Event.ts"
import { EventStore } from "../src/EventStore.ts"
import * as Lifecycle from "../src/Lifecycle.ts"
import { dependentsQuery, dueQuery } from "../src/SqlEventStore.ts"
import * as Sqlite from "../src/sqlite.ts"
import {
  checkpointsBetween,
  createMigrated,
  type EventRows,
  historyParams,
  insertHistorySql,
  makeEventFactory,
  median,
  openRaw,
  pragmaSummary,
  RawCheckpoints,
  rawTransaction,
  removeDb,
  rowInserter,
  scaled,
  tempFile,
  UPDATE_EVENT_SQL,
  updateParams
} from "./fixtures.ts"

/** The due query our store runs (`dueQuery` in SqlEventStore.ts). */
export const DUE_SQL = dueQuery(0, 0)[0]

export interface TickRound {
  readonly ms: number
  /** Events still scheduled (due_at set) when the tick started. */
  readonly scheduled: number
  readonly fired: number
  readonly missed: number
  /** Checkpoints that started inside the tick's timed window (the native driver: none expected). */
  readonly checkpointsInside: number
  /** Time spent in the checkpoint(s) that ran right after the tick, before the next round. */
  readonly checkpointAfterMs: number
}

export interface TickSeries {
  readonly rounds: ReadonlyArray<TickRound>
  readonly medianMs: number
  readonly maxMs: number
  /** The fewest scheduled events any of the rounds started with. */
  readonly minScheduled: number
  readonly checkpointAfterMedianMs: number
  readonly checkpointAfterMaxMs: number
  readonly checkpointsInside: number
}

export interface TickFigures {
  readonly due: number
  readonly fillEvents: number
  readonly fillMs: number
  readonly fileMiB: number
  readonly pragmas: string
  readonly plan: ReadonlyArray<string>
  /** The first tick after opening (spread due set): JIT, statements and page cache all cold. */
  readonly first: TickRound
  readonly spread: TickSeries
  readonly fresh: TickSeries
  readonly rawSpread: TickSeries
  readonly rawFresh: TickSeries
  /** One more spread set: the due query alone, through the store and raw, then its tick. */
  readonly breakdown: { readonly storeDueMs: number; readonly rawDueMs: number; readonly tickMs: number }
  /** Whether the rows ours and raw left behind have the same shape, round by round. */
  readonly sameRows: { readonly ok: boolean; readonly detail: string }
}

const ROUNDS = 5
const MINUTE = 60_000
const DAY = 86_400_000
/** Rows per multi-row statement in our store (SqlEventStore's CHUNK). */
const STORE_CHUNK = 500

/** A small deterministic PRNG (mulberry32), so every run fills the same fire times. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const series = (rounds: ReadonlyArray<TickRound>): TickSeries => ({
  rounds,
  medianMs: median(rounds.map((r) => r.ms)),
  maxMs: Math.max(...rounds.map((r) => r.ms)),
  minScheduled: Math.min(...rounds.map((r) => r.scheduled)),
  checkpointAfterMedianMs: median(rounds.map((r) => r.checkpointAfterMs)),
  checkpointAfterMaxMs: Math.max(...rounds.map((r) => r.checkpointAfterMs)),
  checkpointsInside: rounds.reduce((n, r) => n + r.checkpointsInside, 0)
})

/** Lets forked fibers (the driver's checkpoint) run: one turn of the event loop. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

/** Who ticks which set: `[ours, raw]` for round `k` (1-based) of sets `first + 2(k−1)`, `+1`. */
const pairFor = (first: number, k: number): readonly [number, number] => {
  const a = first + 2 * (k - 1)
  // Alternate who goes first, so drift and the page cache favour neither.
  return k % 2 === 1 ? [a, a + 1] : [a + 1, a]
}

export const runTickBench = async (log: (line: string) => void): Promise<TickFigures> => {
  const scheduled = scaled(1_000_000, 10_000)
  const due = Math.min(1_000, Math.floor(scheduled / 20))
  // Spread due sets, in tick order: 0 for the first (cold) tick, 1..2·ROUNDS for the rounds (ours
  // and raw alternating), the last one taken apart. Fresh sets follow them.
  const breakdownSet = 2 * ROUNDS + 1
  const sets = breakdownSet + 1
  const fillEvents = scheduled + sets * due
  const filename = tempFile("tick")
  // Set k fires in (T(k) − 1 min, T(k)]; everything else fires 30 to 395 days later, so it is
  // never due.
  const base = Date.now() + DAY
  const T = (set: number) => base + set * MINUTE
  const make = makeEventFactory()
  const random = prng(42)
  let serial = 0
  /** The rows of every due set, kept for the raw ticks and the row check. */
  const dueSets = new Map<number, Array<EventRows>>()
  /** The j-th event of due set k: half with two confirmations (they fire), half pending (missed). */
  const dueEvent = (set: number, j: number): EventRows => {
    const rows = make(serial++, T(set) - MINUTE + Math.floor(((j + 1) * MINUTE) / (due + 1)), j % 2 === 0)
    const list = dueSets.get(set) ?? []
    if (list.length === 0) dueSets.set(set, list)
    list.push(rows)
    return rows
  }

  // --- Fill (setup, not measured: synchronous=OFF and a big page cache for speed) ---
  removeDb(filename)
  await createMigrated(filename)
  const fillStart = performance.now()
  {
    const db = new Database(filename)
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = OFF")
    db.pragma("cache_size = -1048576")
    const insert = rowInserter(db)
    const stride = Math.floor(fillEvents / (sets * due))
    let slot = 0
    const rowFor = (i: number): EventRows => {
      if (i % stride === 0 && slot < sets * due) {
        const set = slot % sets
        const j = Math.floor(slot / sets)
        slot++
        return dueEvent(set, j)
      }
      return make(serial++, base + 30 * DAY + Math.floor(random() * 365 * DAY), random() < 0.3)
    }
    const fillRange = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) insert(rowFor(i))
    })
    const STEP = 50_000
    for (let from = 0; from < fillEvents; from += STEP) {
      const to = Math.min(fillEvents, from + STEP)
      fillRange(from, to)
      if ((from / STEP) % 5 === 4 || to === fillEvents) log(`  filled ${(to / 1e6).toFixed(2)}M events…`)
    }
    if (slot !== sets * due) throw new Error(`placed ${slot} due events, expected ${sets * due}`)
    db.pragma("wal_checkpoint(TRUNCATE)")
    db.close()
    // The fill ran without fsync: flush it now, or the first checkpoint's fsync in the measured
    // ticks would pay for writing back the whole file.
    const fd = openSync(filename, "r+")
    fsyncSync(fd)
    closeSync(fd)
  }
  const fillMs = performance.now() - fillStart
  const fileMiB = statSync(filename).size / 2 ** 20
  log(
    `  fill: ${fillEvents.toLocaleString("en-US")} events in ${(fillMs / 1_000).toFixed(1)} s (incl. fsync), file ${fileMiB.toFixed(0)} MiB`
  )

  // --- A raw connection with our driver's pragmas and checkpoint policy ---
  const raw = openRaw(filename)
  const plan = (raw.prepare(`EXPLAIN QUERY PLAN ${DUE_SQL}`).all(T(1), due) as Array<{ detail: string }>).map(
    (row) => row.detail
  )
  const pragmas = pragmaSummary(raw)
  const rawCheckpoints = new RawCheckpoints(raw)
  const rawDue = raw.prepare(DUE_SQL)
  const countScheduled = raw.prepare("SELECT COUNT(*) FROM events WHERE due_at IS NOT NULL").pluck()
  const insertRaw = rowInserter(raw)
  const tx = rawTransaction(raw, rawCheckpoints)
  /**
   * A fresh due set, written like a `scheduleMany` would: one transaction, rows at the end, then
   * (5,000 row changes) the checkpoint our driver would run after it. Setup, not measured.
   */
  const addFreshSet = (set: number) =>
    tx(() => {
      for (let j = 0; j < due; j++) rawCheckpoints.add(insertRaw(dueEvent(set, j)))
    })

  // The raw tick: our tick's statements, with the new rows computed ahead by our rules.
  const begin = raw.prepare("BEGIN IMMEDIATE")
  const commit = raw.prepare("COMMIT")
  const update = raw.prepare(UPDATE_EVENT_SQL)
  const statements = new Map<string, Database.Statement>()
  const prepared = (sql: string) => {
    let statement = statements.get(sql)
    if (statement === undefined) {
      statement = raw.prepare(sql)
      statements.set(sql, statement)
    }
    return statement
  }
  const planRawTick = (set: number) => {
    const now = T(set)
    const events: Array<Event> = dueSets
      .get(set)!
      .map((r) => r.source)
      .sort(Lifecycle.byFireTime)
    const updates: Array<Array<unknown>> = []
    const history: Array<HistoryEntry> = []
    const fired: Array<string> = []
    const missed: Array<string> = []
    for (const event of events) {
      const outcome = Lifecycle.applyStep(event, Lifecycle.decide(event, [], now), now)
      updates.push(updateParams(outcome.event))
      history.push(...outcome.history)
      if (outcome.report === "fired") fired.push(event.id)
      if (outcome.report === "missed") missed.push(event.id)
    }
    const queries = [fired, missed]
      .filter((ids) => ids.length > 0)
      .map((ids) => {
        if (ids.length > STORE_CHUNK) throw new Error("more dependents ids than one chunk")
        const [sql, params] = dependentsQuery(ids)
        return [prepared(sql), params] as const
      })
    const inserts: Array<readonly [Database.Statement, Array<unknown>]> = []
    for (let i = 0; i < history.length; i += STORE_CHUNK) {
      const part = history.slice(i, i + STORE_CHUNK)
      inserts.push([prepared(insertHistorySql(part.length)), historyParams(part)])
    }
    return { now, updates, queries, inserts, fired: fired.length, missed: missed.length }
  }
  const rawTick = (set: number, label: string): TickRound => {
    const p = planRawTick(set)
    const waiting = Number(countScheduled.get())
    const start = performance.now()
    begin.run()
    const loaded = rawDue.all(p.now, due).length
    for (const [statement, params] of p.queries) statement.all(params)
    for (const params of p.updates) rawCheckpoints.add(update.run(params).changes)
    for (const [statement, params] of p.inserts) rawCheckpoints.add(statement.run(params).changes)
    const again = rawDue.all(p.now, due).length
    commit.run()
    const end = performance.now()
    rawCheckpoints.afterCommit()
    const checkpointAfterMs = checkpointsBetween(end).reduce((sum, c) => sum + c.ms, 0)
    if (loaded !== due || again !== 0)
      throw new Error(`${label}: due query returned ${loaded}, then ${again}`)
    const ms = end - start
    log(
      `  ${label}: ${ms.toFixed(1)} ms, then checkpoint ${checkpointAfterMs.toFixed(1)} ms (scheduled ${waiting.toLocaleString("en-US")}; fired ${p.fired}, missed ${p.missed})`
    )
    return {
      ms,
      scheduled: waiting,
      fired: p.fired,
      missed: p.missed,
      checkpointsInside: 0,
      checkpointAfterMs
    }
  }

  // --- The row check: what ours and raw left behind, with ids and times made relative ---
  const eventById = raw.prepare("SELECT * FROM events WHERE id = ?")
  const historyOf = raw.prepare("SELECT at, type, actor, detail FROM history WHERE event_id = ? ORDER BY seq")
  const shapes = (set: number): Map<string, number> => {
    const t = T(set)
    const relative = (value: unknown) =>
      typeof value === "number" && value > 1e12 ? (value === t ? "T" : `T${value - t}`) : value
    const out = new Map<string, number>()
    for (const rows of dueSets.get(set)!) {
      const row = eventById.get(rows.id) as Record<string, unknown>
      const { id: _id, name: _name, payload: _payload, created_at: _created, attendees, ...rest } = row
      const shape = JSON.stringify([
        Object.entries(rest).map(([k, v]) => [k, relative(v)]),
        (JSON.parse(String(attendees)) as Array<{ status: string; respondedAt: number | null }>).map((a) => [
          a.status,
          a.respondedAt === null ? null : "set"
        ]),
        (historyOf.all(rows.id) as Array<Record<string, unknown>>).map((h) => [
          h.at === t ? "T" : "earlier",
          h.type,
          h.type === "confirmed" ? "attendee" : h.actor,
          h.type === "scheduled" ? "…" : h.detail
        ])
      ])
      out.set(shape, (out.get(shape) ?? 0) + 1)
    }
    return out
  }
  const sameShapes = (a: Map<string, number>, b: Map<string, number>) =>
    a.size === b.size && [...a].every(([shape, n]) => b.get(shape) === n)

  try {
    return await Effect.runPromise(
      Effect.gen(function* () {
        const coordinator = yield* Coordinator.Coordinator
        const store = yield* EventStore
        const oursTick = (set: number, label: string) =>
          Effect.gen(function* () {
            const waiting = Number(countScheduled.get())
            const start = performance.now()
            const result = yield* coordinator.tick(T(set))
            const end = performance.now()
            yield* Effect.promise(settle)
            const ms = end - start
            const inside = checkpointsBetween(start, end).length
            const checkpointAfterMs = checkpointsBetween(end).reduce((sum, c) => sum + c.ms, 0)
            const handled = result.fired.length + result.missed.length + result.deferred.length
            if (handled !== due) throw new Error(`${label}: tick handled ${handled} events, expected ${due}`)
            log(
              `  ${label}: ${ms.toFixed(1)} ms, then checkpoint ${checkpointAfterMs.toFixed(1)} ms${inside > 0 ? ` (${inside} checkpoint(s) INSIDE the tick)` : ""} (scheduled ${waiting.toLocaleString("en-US")}; fired ${result.fired.length}, missed ${result.missed.length})`
            )
            return {
              ms,
              scheduled: waiting,
              fired: result.fired.length,
              missed: result.missed.length,
              checkpointsInside: inside,
              checkpointAfterMs
            } satisfies TickRound
          })
        const rawTickEffect = (set: number, label: string) => Effect.sync(() => rawTick(set, label))

        const first = yield* oursTick(0, "first tick after opening (spread, ours)")
        const spread: Array<TickRound> = []
        const rawSpread: Array<TickRound> = []
        const pairs: Array<readonly [number, number]> = []
        for (let k = 1; k <= ROUNDS; k++) {
          const [oursSet, rawSet] = pairFor(1, k)
          pairs.push([oursSet, rawSet])
          const ours = oursTick(oursSet, `spread round ${k}/${ROUNDS}, ours`)
          const rawRound = rawTickEffect(rawSet, `spread round ${k}/${ROUNDS}, raw `)
          if (oursSet < rawSet) {
            spread.push(yield* ours)
            rawSpread.push(yield* rawRound)
          } else {
            rawSpread.push(yield* rawRound)
            spread.push(yield* ours)
          }
        }

        let start = performance.now()
        const loaded = yield* store.dueEvents(T(breakdownSet), due)
        const storeDueMs = performance.now() - start
        start = performance.now()
        const rawRows = rawDue.all(T(breakdownSet), due)
        const rawDueMs = performance.now() - start
        if (loaded.length !== due || rawRows.length !== due) {
          throw new Error(
            `due query returned ${loaded.length} (store) / ${rawRows.length} (raw), expected ${due}`
          )
        }
        start = performance.now()
        yield* coordinator.tick(T(breakdownSet))
        const tickMs = performance.now() - start
        yield* Effect.promise(settle)
        log(
          `  one more spread set taken apart: store.dueEvents ${tickMsFmt(storeDueMs)} ms, raw due query ${tickMsFmt(rawDueMs)} ms, then its tick ${tickMsFmt(tickMs)} ms`
        )

        const fresh: Array<TickRound> = []
        const rawFresh: Array<TickRound> = []
        for (let k = 1; k <= ROUNDS; k++) {
          const [oursSet, rawSet] = pairFor(sets, k)
          pairs.push([oursSet, rawSet])
          // Both sets are written before either tick, so both ticks see the same table.
          addFreshSet(Math.min(oursSet, rawSet))
          addFreshSet(Math.max(oursSet, rawSet))
          const ours = oursTick(oursSet, `fresh round ${k}/${ROUNDS}, ours`)
          const rawRound = rawTickEffect(rawSet, `fresh round ${k}/${ROUNDS}, raw `)
          if (oursSet < rawSet) {
            fresh.push(yield* ours)
            rawFresh.push(yield* rawRound)
          } else {
            rawFresh.push(yield* rawRound)
            fresh.push(yield* ours)
          }
        }

        const differing = pairs.filter(([o, r]) => !sameShapes(shapes(o), shapes(r)))
        const kinds = new Set(pairs.flatMap(([o]) => [...shapes(o).keys()])).size
        const sameRows = {
          ok: differing.length === 0,
          detail:
            differing.length === 0
              ? `${pairs.length} round pairs, ${fmtCount(pairs.length * due)} events each side: same rows (${kinds} row shapes over the columns, attendees and history, with ids, names, payloads and agents left out and times relative to T)`
              : `rows DIFFER in round pairs ${differing.map(([o, r]) => `${o}/${r}`).join(", ")}`
        }

        return {
          due,
          fillEvents,
          fillMs,
          fileMiB,
          pragmas,
          plan,
          first,
          spread: series(spread),
          fresh: series(fresh),
          rawSpread: series(rawSpread),
          rawFresh: series(rawFresh),
          breakdown: { storeDueMs, rawDueMs, tickMs },
          sameRows
        } satisfies TickFigures
      }).pipe(Effect.provide(Sqlite.layer({ filename })))
    )
  } finally {
    raw.close()
    removeDb(filename)
  }
}

const tickMsFmt = (ms: number) => ms.toFixed(1)
const fmtCount = (n: number) => n.toLocaleString("en-US")
