/**
 * The Promise facade, for callers who do not use Effect: Effect inside, plain async methods
 * outside, failures thrown as the typed error instances of `Errors` (`InvalidInput`,
 * `EventNotFound`, …).
 *
 * ```ts
 * import { TMinus } from "@t-minus/core"
 * const tm = await TMinus.open({ filename: "./t-minus.db" })
 * const review = await tm.schedule({ kind: "review", at: "+5m", attendees: ["alice", "bob"], quorum: 2 })
 * await tm.confirm(review.id, "alice")
 * ```
 *
 * @since 0.1.0
 */

import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import {
  type CancelOptions,
  Coordinator,
  type CoordinatorShape,
  layer as coordinatorLayer,
  currentTenant,
  type SubmitSchedule,
  unsafeSubmitSchedule
} from "./Coordinator.ts"
import type { CoordinatorError } from "./Errors.ts"
import type {
  Campaign,
  Event,
  HistoryEntry,
  QueuedAction,
  TickResult,
  Transition,
  WaitResult
} from "./Event.ts"
import type { ActionFilter, EventFilter } from "./EventStore.ts"
import { type EventStore, layerMemory } from "./EventStore.ts"
import { valueOrThrow } from "./internal/exit.ts"
import type { DurationInput, ScheduleInput, TimerInput } from "./Lifecycle.ts"
import * as Lifecycle from "./Lifecycle.ts"
import * as Runner from "./Runner.ts"
import type { TimeInput } from "./TimeGrammar.ts"

/**
 * Options shared by every constructor.
 *
 * @since 0.1.0
 */
export interface EngineOptions {
  /** Where "now" comes from, in epoch ms; default the system clock. Tests pass a fake one. */
  readonly now?: (() => number) | undefined
  /**
   * Run the real-time runner in this engine (`true`, or its options): events fire on time and
   * actions are delivered while the engine is open, and `watch` streams transitions. The runner
   * sleeps on the real clock, so it does not combine with `now`.
   */
  readonly runner?: boolean | Runner.RunnerOptions | undefined
  /**
   * The platform services for action delivery; default `fetch` alone (webhooks) on any runtime,
   * and processes and files too on a SQLite engine (Node).
   */
  readonly platform?:
    | Layer.Layer<Runner.Platform | Runner.OptionalPlatform>
    | Layer.Layer<Runner.Platform>
    | undefined
}

/** A runner on a shared database takes part in the tick lease (`RunnerOptions.replica`). */
const asReplica = (options: Runner.RunnerOptions): Runner.RunnerOptions => ({
  ...options,
  replica: options.replica ?? {}
})

const clockFrom = (now: () => number): Clock.Clock => {
  const system = Clock.make()
  return {
    ...system,
    unsafeCurrentTimeMillis: now,
    currentTimeMillis: Effect.sync(now),
    unsafeCurrentTimeNanos: () => BigInt(now()) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now()) * 1_000_000n)
  }
}

/**
 * The operations `TMinus` (embedded) and `TMinusClient` (remote) share, with the same names and
 * errors: code written against it runs on either.
 *
 * @since 0.1.0
 */
export type Operations = Pick<
  TMinus,
  | "schedule"
  | "scheduleMany"
  | "scheduleTimer"
  | "confirm"
  | "defer"
  | "decline"
  | "cancel"
  | "reschedule"
  | "get"
  | "list"
  | "history"
  | "tick"
  | "cleanup"
  | "createCampaign"
  | "addToCampaign"
  | "link"
  | "executionOrder"
  | "getCampaign"
  | "listCampaigns"
  | "listActions"
  | "retryAction"
  | "waitFor"
  | "close"
>

/**
 * A t-minus engine with async methods. Create one with `TMinus.open`, `TMinus.inMemory` or
 * `TMinus.fromLayer`; `close` releases the database.
 *
 * @since 0.1.0
 */
export class TMinus {
  /**
   * An engine on a SQLite file (default `./t-minus.db`) or on PostgreSQL (`databaseUrl`),
   * migrated on open. Node only.
   */
  static async open(
    options: {
      readonly filename?: string | undefined
      /**
       * PostgreSQL instead of the file (`postgres://…`); its runner, if any, runs as a replica
       * (`RunnerOptions.replica`), so it shares the database safely with servers and other engines.
       */
      readonly databaseUrl?: string | undefined
      /** On Postgres, the schema of the tables; default `public`. */
      readonly databaseSchema?: string | undefined
    } & EngineOptions = {}
  ): Promise<TMinus> {
    const Sqlite = await import("./sqlite.ts")
    if (options.databaseUrl === undefined) {
      return TMinus.fromLayer(Sqlite.layerStore({ filename: options.filename }), {
        platform: Sqlite.layerPlatform,
        ...options
      })
    }
    const Postgres = await import("./postgres.ts")
    const runner = options.runner
    return TMinus.fromLayer(
      Postgres.layerStore({ url: options.databaseUrl, schema: options.databaseSchema }),
      {
        platform: Sqlite.layerPlatform,
        ...options,
        runner: runner === undefined || runner === false ? runner : asReplica(runner === true ? {} : runner)
      }
    )
  }

  /** An engine whose data lives in memory and is gone on `close`. */
  static async inMemory(options: EngineOptions = {}): Promise<TMinus> {
    return TMinus.fromLayer(layerMemory, options)
  }

  /** An engine on any `EventStore` layer. */
  static async fromLayer<E>(store: Layer.Layer<EventStore, E>, options: EngineOptions = {}): Promise<TMinus> {
    if (options.runner !== undefined && options.runner !== false && options.now !== undefined) {
      throw new Error("TMinus: the runner sleeps on the real clock; give either `runner` or `now`, not both")
    }
    const clock = options.now === undefined ? Layer.empty : Layer.setClock(clockFrom(options.now))
    if (options.runner === undefined || options.runner === false) {
      const layer = Layer.merge(Layer.provide(coordinatorLayer, store), clock)
      return TMinus.start(ManagedRuntime.make(layer))
    }
    const runnerOptions = options.runner === true ? {} : options.runner
    const layer = Runner.layer(runnerOptions).pipe(
      Layer.provideMerge(Runner.layerCoordinator(runnerOptions)),
      Layer.provideMerge(store),
      Layer.provide(options.platform ?? FetchHttpClient.layer)
    )
    return TMinus.start(ManagedRuntime.make(layer))
  }

  private static async start<R extends Coordinator>(runtime: ManagedRuntime.ManagedRuntime<R, unknown>) {
    const engine = new TMinus(runtime as ManagedRuntime.ManagedRuntime<Coordinator, unknown>)
    // Built here (a failure to open throws); single schedules then skip the fiber a call would
    // take (see `schedule`), on the runtime's clock; not under a tenant scope set on the runtime,
    // which only the Effect path applies.
    const [coordinator, clock, tenant] = valueOrThrow(
      await engine.runtime.runPromiseExit(
        Effect.all([Coordinator, Effect.clock, FiberRef.get(currentTenant)])
      )
    )
    const submit = unsafeSubmitSchedule(coordinator)
    if (submit !== undefined && tenant === null) engine.submit = { schedule: submit, clock }
    return engine
  }

  private readonly runtime: ManagedRuntime.ManagedRuntime<Coordinator, unknown>
  private submit: { readonly schedule: SubmitSchedule; readonly clock: Clock.Clock } | undefined
  /** Aborted by `close`: ends what is still waiting (`waitFor`), which the runtime does not own. */
  private readonly closing = new AbortController()

  private constructor(runtime: ManagedRuntime.ManagedRuntime<Coordinator, unknown>) {
    this.runtime = runtime
  }

  private async run<A>(use: (c: CoordinatorShape) => Effect.Effect<A, CoordinatorError>): Promise<A> {
    return valueOrThrow(await this.runtime.runPromiseExit(Effect.flatMap(Coordinator, use)))
  }

  schedule(input: ScheduleInput): Promise<Event> {
    // Queued for the next group commit straight from here, without the fiber and the Deferred a
    // call through Effect takes. What that cannot take (a relative start) goes through Effect.
    const submit = this.submit
    if (submit === undefined || this.closing.signal.aborted) return this.run((c) => c.schedule(input))
    return new Promise((resolve, reject) => {
      const settle = (exit: Exit.Exit<Event, CoordinatorError>) => {
        try {
          resolve(valueOrThrow(exit))
        } catch (error) {
          reject(error)
        }
      }
      if (!submit.schedule(input, submit.clock.unsafeCurrentTimeMillis(), settle)) {
        this.run((c) => c.schedule(input)).then(resolve, reject)
      }
    })
  }
  scheduleMany(inputs: ReadonlyArray<ScheduleInput>): Promise<ReadonlyArray<Event>> {
    return this.run((c) => c.scheduleMany(inputs))
  }
  async scheduleTimer(input: TimerInput): Promise<Event> {
    const request = Lifecycle.checkedTimerRequest(input)
    if (Either.isLeft(request)) throw request.left
    return this.schedule(request.right)
  }
  confirm(eventId: string, agent: string): Promise<Event> {
    return this.run((c) => c.confirm(eventId, agent))
  }
  defer(eventId: string, agent: string, duration: DurationInput): Promise<Event> {
    return this.run((c) => c.defer(eventId, agent, duration))
  }
  decline(eventId: string, agent: string): Promise<Event> {
    return this.run((c) => c.decline(eventId, agent))
  }
  cancel(eventId: string, options?: CancelOptions): Promise<Event> {
    return this.run((c) => c.cancel(eventId, options))
  }
  reschedule(eventId: string, at: TimeInput, options?: { actor?: string }): Promise<Event> {
    return this.run((c) => c.reschedule(eventId, at, options))
  }
  get(eventId: string): Promise<Event> {
    return this.run((c) => c.get(eventId))
  }
  list(filter?: EventFilter): Promise<ReadonlyArray<Event>> {
    return this.run((c) => c.list(filter))
  }
  history(eventId: string): Promise<ReadonlyArray<HistoryEntry>> {
    return this.run((c) => c.history(eventId))
  }
  tick(now?: TimeInput): Promise<TickResult> {
    return this.run((c) => c.tick(now))
  }
  cleanup(olderThan?: DurationInput): Promise<number> {
    return this.run((c) => c.cleanup(olderThan))
  }
  createCampaign(name: string): Promise<Campaign> {
    return this.run((c) => c.createCampaign(name))
  }
  addToCampaign(campaignId: string, event: string | ScheduleInput): Promise<Event> {
    return this.run((c) => c.addToCampaign(campaignId, event))
  }
  link(campaignId: string, from: string, to: string): Promise<Campaign> {
    return this.run((c) => c.link(campaignId, from, to))
  }
  executionOrder(campaignId: string): Promise<ReadonlyArray<string>> {
    return this.run((c) => c.executionOrder(campaignId))
  }
  getCampaign(campaignId: string): Promise<Campaign> {
    return this.run((c) => c.getCampaign(campaignId))
  }
  listCampaigns(): Promise<ReadonlyArray<Campaign>> {
    return this.run((c) => c.listCampaigns())
  }
  /** Queued actions (the outbox), with their delivery state. */
  listActions(filter?: ActionFilter): Promise<ReadonlyArray<QueuedAction>> {
    return this.run((c) => c.listActions(filter))
  }
  /** Queues a dead-lettered action again, due now. */
  retryAction(key: string, options?: { actor?: string }): Promise<QueuedAction> {
    return this.run((c) => c.retryAction(key, options))
  }
  /**
   * Resolves when the event fires, is missed or cancelled, or after `timeout`
   * (`outcome: "timeout"`, with the event as it stands), as `TMinusClient.waitFor`. Needs an
   * engine started with `runner`.
   */
  waitFor(eventId: string, timeout?: DurationInput): Promise<WaitResult> {
    const runtime = this.runtime as ManagedRuntime.ManagedRuntime<Coordinator | Runner.Runner, unknown>
    return runtime
      .runPromiseExit(
        Effect.flatMap(Effect.serviceOption(Runner.Runner), (runner) =>
          Option.isNone(runner)
            ? Effect.die(new Error("TMinus.waitFor needs an engine started with { runner: true }"))
            : Runner.waitFor(eventId, timeout)
        ),
        { signal: this.closing.signal }
      )
      .then(valueOrThrow)
  }
  /**
   * Calls `listener` with every transition committed from now on (by any process on the database)
   * that passes the filter, in commit order. Needs an engine started with `runner`. Returns a
   * function that stops the subscription.
   */
  watch(listener: (transition: Transition) => void, filter?: Runner.WatchFilter): () => void {
    const runtime = this.runtime as ManagedRuntime.ManagedRuntime<Coordinator | Runner.Runner, unknown>
    let stopped = false
    let stop: (() => void) | undefined
    runtime.runFork(
      Effect.flatMap(Effect.serviceOption(Runner.Runner), (runner) =>
        Option.isNone(runner)
          ? Effect.die(new Error("TMinus.watch needs an engine started with { runner: true }"))
          : Effect.map(runner.value.listen(listener, filter), (unlisten) => {
              if (stopped) unlisten()
              else stop = unlisten
            })
      )
    )
    return () => {
      stopped = true
      stop?.()
    }
  }
  /** Closes the store (and the database file), stopping the runner first. */
  close(): Promise<void> {
    this.closing.abort()
    return this.runtime.dispose()
  }
}
