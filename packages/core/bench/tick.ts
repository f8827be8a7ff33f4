/**
 * `tick` latency on a big database: at least 1,000,000 scheduled events of which 1,000 are due.
 * The file is filled with raw better-sqlite3 inserts of rows built by the store's own `toRow`
 * (setup, not measured). Two kinds of rounds, each with a fresh set of 1,000 due events:
 *
 * - scattered: due sets placed during the fill, spread evenly over the table, as when the events
 *   were scheduled over time among all the others; a tick then rewrites rows (and appends history
 *   under event ids) all over the file;
 * - fresh: 1,000 due events inserted just before the tick, so their rows sit together at the end.
 */
import { closeSync, fsyncSync, openSync, statSync } from "node:fs"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Coordinator from "../src/Coordinator.ts"
import { EventStore } from "../src/EventStore.ts"
import * as Sqlite from "../src/sqlite.ts"
import {
  BUMP,
  createMigrated,
  type EventRows,
  makeEventFactory,
  median,
  openRaw,
  pragmaSummary,
  removeDb,
  rowInserter,
  scaled,
  tempFile
} from "./fixtures.ts"

export const DUE_SQL =
  "SELECT * FROM events WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at, id LIMIT ?"

export interface TickRound {
  readonly ms: number
  /** Events still scheduled (due_at set) when the tick started. */
  readonly scheduled: number
  readonly fired: number
  readonly missed: number
}

export interface TickSeries {
  readonly rounds: ReadonlyArray<TickRound>
  readonly medianMs: number
  readonly maxMs: number
  /** The fewest scheduled events any of the rounds started with. */
  readonly minScheduled: number
}

export interface TickFigures {
  readonly due: number
  readonly fillEvents: number
  readonly fillMs: number
  readonly fileMiB: number
  readonly pragmas: string
  readonly plan: ReadonlyArray<string>
  /** The first tick after opening (scattered due set): JIT, statements and page cache all cold. */
  readonly first: TickRound
  readonly scattered: TickSeries
  readonly fresh: TickSeries
  /** One more scattered set: the due query alone, through the store and raw, then its tick. */
  readonly breakdown: { readonly storeDueMs: number; readonly rawDueMs: number; readonly tickMs: number }
}

const ROUNDS = 5
const MINUTE = 60_000
const DAY = 86_400_000

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
  minScheduled: Math.min(...rounds.map((r) => r.scheduled))
})

export const runTickBench = async (log: (line: string) => void): Promise<TickFigures> => {
  const scheduled = scaled(1_000_000, 10_000)
  const due = Math.min(1_000, Math.floor(scheduled / 20))
  // Scattered due sets: 0 for the first (cold) tick, 1..ROUNDS measured, the last taken apart.
  const sets = ROUNDS + 2
  const fillEvents = scheduled + sets * due
  const filename = tempFile("tick")
  // Set k fires in (T(k) − 1 min, T(k)]; fresh sets use k > sets; everything else fires 30 to 395
  // days later, so it is never due.
  const base = Date.now() + DAY
  const T = (set: number) => base + set * MINUTE
  const make = makeEventFactory()
  const random = prng(42)
  let serial = 0
  /** The j-th event of due set k: half with two confirmations (they fire), half pending (missed). */
  const dueEvent = (set: number, j: number): EventRows =>
    make(serial++, T(set) - MINUTE + Math.floor(((j + 1) * MINUTE) / (due + 1)), j % 2 === 0)

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

  // --- Measure through our SQLite layer (WAL, synchronous=NORMAL) ---
  const raw = openRaw(filename)
  const plan = (raw.prepare(`EXPLAIN QUERY PLAN ${DUE_SQL}`).all(T(1), due) as Array<{ detail: string }>).map(
    (row) => row.detail
  )
  const pragmas = pragmaSummary(raw)
  const rawDue = raw.prepare(DUE_SQL)
  const countScheduled = raw.prepare("SELECT COUNT(*) FROM events WHERE due_at IS NOT NULL").pluck()
  const insertRaw = rowInserter(raw)
  const bump = raw.prepare(BUMP)
  /** A fresh due set, written like a `scheduleMany` would: one transaction, rows at the end. */
  const addFreshSet = raw.transaction((set: number) => {
    bump.run()
    for (let j = 0; j < due; j++) insertRaw(dueEvent(set, j))
  })

  try {
    return await Effect.runPromise(
      Effect.gen(function* () {
        const coordinator = yield* Coordinator.Coordinator
        const store = yield* EventStore
        const tickAt = (set: number, label: string) =>
          Effect.gen(function* () {
            const waiting = Number(countScheduled.get())
            const start = performance.now()
            const result = yield* coordinator.tick(T(set))
            const ms = performance.now() - start
            const handled = result.fired.length + result.missed.length + result.deferred.length
            if (handled !== due) throw new Error(`${label}: tick handled ${handled} events, expected ${due}`)
            log(
              `  ${label}: ${ms.toFixed(1)} ms (scheduled ${waiting.toLocaleString("en-US")}; fired ${result.fired.length}, missed ${result.missed.length})`
            )
            return { ms, scheduled: waiting, fired: result.fired.length, missed: result.missed.length }
          })

        const first = yield* tickAt(0, "first tick after opening (spread)")
        const scattered: Array<TickRound> = []
        for (let set = 1; set <= ROUNDS; set++) {
          scattered.push(yield* tickAt(set, `spread round ${set}/${ROUNDS}`))
        }
        const last = sets - 1
        let start = performance.now()
        const loaded = yield* store.dueEvents(T(last), due)
        const storeDueMs = performance.now() - start
        start = performance.now()
        const rawRows = rawDue.all(T(last), due)
        const rawDueMs = performance.now() - start
        if (loaded.length !== due || rawRows.length !== due) {
          throw new Error(
            `due query returned ${loaded.length} (store) / ${rawRows.length} (raw), expected ${due}`
          )
        }
        start = performance.now()
        yield* coordinator.tick(T(last))
        const tickMs = performance.now() - start
        log(
          `  one more spread set taken apart: store.dueEvents ${storeDueMs.toFixed(1)} ms, raw due query ${rawDueMs.toFixed(1)} ms, then its tick ${tickMs.toFixed(1)} ms`
        )

        const fresh: Array<TickRound> = []
        for (let k = 1; k <= ROUNDS; k++) {
          addFreshSet(sets + k)
          fresh.push(yield* tickAt(sets + k, `fresh round ${k}/${ROUNDS}`))
        }

        return {
          due,
          fillEvents,
          fillMs,
          fileMiB,
          pragmas,
          plan,
          first,
          scattered: series(scattered),
          fresh: series(fresh),
          breakdown: { storeDueMs, rawDueMs, tickMs }
        } satisfies TickFigures
      }).pipe(Effect.provide(Sqlite.layer({ filename })))
    )
  } finally {
    raw.close()
    removeDb(filename)
  }
}
