import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as Coordinator from "../src/Coordinator.ts"
import type { StorageError } from "../src/Errors.ts"
import * as EventStore from "../src/EventStore.ts"
import * as Postgres from "../src/postgres.ts"
import * as Sqlite from "../src/sqlite.ts"
import { execute, PG_URL, postgresAnswers } from "./postgres.ts"

export { PG_URL }

/** Whether PostgreSQL answers; when it does not, its suites are skipped, loudly. */
export const postgresUp = await postgresAnswers("the postgres backend is")

let schemas = 0
/** A new schema name for one test. */
export const freshSchema = () => `tm_test_${process.pid}_${++schemas}`

/** A store in `schema` (default a fresh one), the schema dropped afterwards. */
export const postgresStore = (schema = freshSchema()): Layer.Layer<EventStore.EventStore, StorageError> => {
  const drop = Effect.promise(() => execute(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
  return Layer.provideMerge(
    Postgres.layerStore({ url: PG_URL, schema, maxConnections: 4 }),
    Layer.scopedDiscard(Effect.addFinalizer(() => drop))
  )
}

type Backends = ReadonlyArray<
  readonly [name: string, store: () => Layer.Layer<EventStore.EventStore, StorageError>]
>

const local: Backends = [
  ["memory", () => EventStore.layerMemory],
  ["sqlite", () => Sqlite.layerStore({ filename: ":memory:" })],
  ["sqlite via @effect/sql SqlClient", () => Sqlite.layerSqlClientStore({ filename: ":memory:" })]
]

/** Every backend the conformance and scenario suites run against, each a fresh empty store. */
export const backends: Backends = [
  ...local,
  ...(postgresUp ? ([["postgres", () => postgresStore()]] as const) : [])
]

/** A coordinator over a fresh store of the given backend. */
export const coordinatorOn = (store: () => Layer.Layer<EventStore.EventStore, StorageError>) =>
  Layer.provideMerge(Coordinator.layer, Layer.suspend(store))

/** 2026-01-01T00:00:00Z: scenario tests start their TestClock here. */
export const T0 = Date.parse("2026-01-01T00:00:00Z")

/** Runs `body` on a coordinator over a fresh store of the given backend, its TestClock at `T0`. */
export const scenarioOn = <A, E>(
  store: () => Layer.Layer<EventStore.EventStore, StorageError>,
  body: Effect.Effect<A, E, Coordinator.Coordinator | EventStore.EventStore>
) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(T0)
    return yield* body
  }).pipe(Effect.provide(coordinatorOn(store)))
