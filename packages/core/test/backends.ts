import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as Coordinator from "../src/Coordinator.ts"
import type { StorageError } from "../src/Errors.ts"
import * as EventStore from "../src/EventStore.ts"
import * as Sqlite from "../src/sqlite.ts"

/** Every backend the conformance and scenario suites run against, each a fresh empty store. */
export const backends: ReadonlyArray<
  readonly [name: string, store: () => Layer.Layer<EventStore.EventStore, StorageError>]
> = [
  ["memory", () => EventStore.layerMemory],
  ["sqlite", () => Sqlite.layerStore({ filename: ":memory:" })],
  ["sqlite via @effect/sql SqlClient", () => Sqlite.layerSqlClientStore({ filename: ":memory:" })]
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
