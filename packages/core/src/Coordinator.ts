/**
 * The coordination engine as an Effect service: a thin shell that loads events from the
 * `EventStore`, applies the pure rules of `Lifecycle` and `CampaignGraph`, and commits the result
 * and its history in one transaction. Time comes only from Effect's `Clock` (or the `now` given
 * to `tick`).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as CampaignGraph from "./CampaignGraph.ts"
import {
  ActionNotFound,
  CampaignMembership,
  CampaignNotFound,
  type CoordinatorError,
  CycleDetected,
  EventNotFound,
  EventTerminal,
  InvalidInput,
  ResourceExhausted,
  type StorageError
} from "./Errors.ts"
import type { Action, Campaign, Event, HistoryEntry, QueuedAction, TickResult } from "./Event.ts"
import { DEFAULT_TENANT } from "./Event.ts"
import type { ActionFilter, EventFilter } from "./EventStore.ts"
import { EventStore } from "./EventStore.ts"
import { uuidv7 } from "./internal/uuid.ts"
import * as Lifecycle from "./Lifecycle.ts"
import type { TimeInput } from "./TimeGrammar.ts"
import { parseTime } from "./TimeGrammar.ts"

/** Options of `cancel`. @since 0.1.0 */
export interface CancelOptions {
  readonly reason?: string | undefined
  /** Who cancels; recorded in history (defaults to the organizer). */
  readonly actor?: string | undefined
  /**
   * For an occurrence of a recurring event: `true` ends the series; by default only this
   * occurrence is cancelled and the next one is scheduled (SPEC 4.6).
   */
  readonly endSeries?: boolean | undefined
}

/** Options of `tick`. @since 0.1.0 */
export interface TickOptions {
  /** How late an event with `misfire: "miss"` may still fire; default 60 s. */
  readonly misfireGraceMs?: number | undefined
  /**
   * Who ticks (a server replica's id): written as `replica` in the detail of the transitions the
   * tick decides (fired, missed, deferred, released), so history shows which replica made each.
   */
  readonly replica?: string | undefined
}

/**
 * Configuration of the coordinator: a check of every action against what the runner allows
 * (its command allow-list), so a bad action is rejected when it is scheduled, not when it fires.
 *
 * @since 0.1.0
 */
export interface CoordinatorOptions {
  readonly checkAction?: ((action: Action, field: string) => Either.Either<Action, InvalidInput>) | undefined
}

/**
 * The operations of SPEC 4 (items 1–5 and 7).
 *
 * @since 0.1.0
 */
export interface CoordinatorShape {
  readonly schedule: (input: Lifecycle.ScheduleInput) => Effect.Effect<Event, CoordinatorError>
  /** Schedules every input in one transaction: all or none. A failing field is named `[index].field`. */
  readonly scheduleMany: (
    inputs: ReadonlyArray<Lifecycle.ScheduleInput>
  ) => Effect.Effect<ReadonlyArray<Event>, CoordinatorError>
  readonly scheduleTimer: (input: Lifecycle.TimerInput) => Effect.Effect<Event, CoordinatorError>
  readonly confirm: (eventId: string, agent: string) => Effect.Effect<Event, CoordinatorError>
  readonly defer: (
    eventId: string,
    agent: string,
    duration: Lifecycle.DurationInput
  ) => Effect.Effect<Event, CoordinatorError>
  readonly decline: (eventId: string, agent: string) => Effect.Effect<Event, CoordinatorError>
  readonly cancel: (eventId: string, options?: CancelOptions) => Effect.Effect<Event, CoordinatorError>
  readonly reschedule: (
    eventId: string,
    at: TimeInput,
    options?: { readonly actor?: string | undefined }
  ) => Effect.Effect<Event, CoordinatorError>
  readonly get: (eventId: string) => Effect.Effect<Event, CoordinatorError>
  readonly list: (filter?: EventFilter) => Effect.Effect<ReadonlyArray<Event>, CoordinatorError>
  readonly history: (eventId: string) => Effect.Effect<ReadonlyArray<HistoryEntry>, CoordinatorError>
  /** Processes every due event at `now` (default: the clock), inclusive. */
  readonly tick: (now?: TimeInput, options?: TickOptions) => Effect.Effect<TickResult, CoordinatorError>
  /** Queued actions (the outbox): pending, delivered or dead-lettered. */
  readonly listActions: (
    filter?: ActionFilter
  ) => Effect.Effect<ReadonlyArray<QueuedAction>, CoordinatorError>
  /** Puts a dead-lettered action back in the queue for a new round of attempts, due now. */
  readonly retryAction: (
    key: string,
    options?: { readonly actor?: string | undefined }
  ) => Effect.Effect<QueuedAction, CoordinatorError>
  /** Deletes terminal events that ended more than `olderThan` ago (default 0: all of them). */
  readonly cleanup: (olderThan?: Lifecycle.DurationInput) => Effect.Effect<number, CoordinatorError>
  readonly createCampaign: (name: string) => Effect.Effect<Campaign, CoordinatorError>
  /** Adds an existing event (by id), or schedules a new one and adds it. Returns the event. */
  readonly addToCampaign: (
    campaignId: string,
    event: string | Lifecycle.ScheduleInput
  ) => Effect.Effect<Event, CoordinatorError>
  /** Makes `from` a predecessor of `to`: `to` fires only after `from` fired. */
  readonly link: (campaignId: string, from: string, to: string) => Effect.Effect<Campaign, CoordinatorError>
  readonly executionOrder: (campaignId: string) => Effect.Effect<ReadonlyArray<string>, CoordinatorError>
  readonly getCampaign: (campaignId: string) => Effect.Effect<Campaign, CoordinatorError>
  readonly listCampaigns: () => Effect.Effect<ReadonlyArray<Campaign>, CoordinatorError>
}

/**
 * Whom the coordinator works for in the current fiber (SPEC 8). Within a scope, new events and
 * campaigns belong to `tenant`; another tenant's events, campaigns and actions answer *not
 * found*; lists hold only the tenant's own. `maxActiveEvents` caps the tenant's scheduled events
 * (checked in the scheduling transaction, so concurrent requests cannot overshoot it).
 *
 * @since 0.1.0
 */
export interface TenantScope {
  readonly tenant: string
  readonly maxActiveEvents?: number | undefined
}

/**
 * The current `TenantScope`; `null` (the default, embedded use) sees every tenant and makes new
 * things in `DEFAULT_TENANT`. The runner works unscoped.
 *
 * @since 0.1.0
 */
export const currentTenant: FiberRef.FiberRef<TenantScope | null> = globalValue(
  Symbol.for("@t-minus/core/Coordinator/currentTenant"),
  () => FiberRef.unsafeMake<TenantScope | null>(null)
)

/**
 * Runs `effect` for one tenant.
 *
 * @since 0.1.0
 */
export const withTenant =
  (scope: TenantScope) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.locally(effect, currentTenant, scope)

/** How long a tenant at its active-events quota should wait when nothing of it is due soon. */
const QUOTA_RETRY_FALLBACK_MS = 60_000

/**
 * The coordination engine.
 *
 * @since 0.1.0
 */
export class Coordinator extends Context.Tag("@t-minus/core/Coordinator")<Coordinator, CoordinatorShape>() {}

/**
 * Resumes after the event loop's current turn: after the I/O callbacks already due (Node's check
 * phase), not just after the microtasks.
 */
const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  if (typeof setImmediate === "function") {
    const handle = setImmediate(() => resume(Effect.void))
    return Effect.sync(() => clearImmediate(handle))
  }
  const handle = setTimeout(() => resume(Effect.void), 0)
  return Effect.sync(() => clearTimeout(handle))
})

/** How many due events one tick loads at a time. */
const TICK_BATCH = 1_000

const prefixField = (index: number) => (error: CoordinatorError) =>
  error._tag === "InvalidInput"
    ? new InvalidInput({ field: `[${index}].${error.field}`, message: `[${index}].${error.message}` })
    : error

/** How a member of a group commit hears its own outcome. */
type Done = (exit: Exit.Exit<Event, CoordinatorError>) => void

/**
 * `schedule` for a caller outside Effect (`TMinus`), without a fiber per call: validates the
 * request at `now`, queues it for the next group commit and returns `true`; `done` hears the
 * outcome (at once when the request is refused). A request that starts after another event reads
 * it first: the function returns `false` and leaves it to `schedule`. No tenant scope applies.
 *
 * @internal
 */
export type SubmitSchedule = (input: Lifecycle.ScheduleInput, now: number, done: Done) => boolean

const submitters = new WeakMap<CoordinatorShape, SubmitSchedule>()

/** The `SubmitSchedule` of a coordinator built by `make`. @internal */
export const unsafeSubmitSchedule = (coordinator: CoordinatorShape): SubmitSchedule | undefined =>
  submitters.get(coordinator)

/**
 * Builds the coordinator over the `EventStore` in context.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<CoordinatorShape, never, EventStore> = Effect.suspend(() => makeWith({}))

/**
 * Builds the coordinator over the `EventStore` in context, with options.
 *
 * @since 0.1.0
 */
export const makeWith = (options: CoordinatorOptions): Effect.Effect<CoordinatorShape, never, EventStore> =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const checkAction = options.checkAction

    /** The runner's own checks of every action of an event (its allow-list), when configured. */
    const checkAllowed = (event: Event): Either.Either<Event, InvalidInput> => {
      if (checkAction === undefined) return Either.right(event)
      for (const [list, name] of [
        [event.actions.onFire, "onFire"],
        [event.actions.onMiss, "onMiss"]
      ] as const) {
        for (let i = 0; i < list.length; i++) {
          const checked = checkAction(list[i]!, `${name}[${i}]`)
          if (Either.isLeft(checked)) return Either.left(checked.left)
        }
      }
      return Either.right(event)
    }

    /** Whether the current scope sees something of `tenant`. */
    const visible = (tenant: string) =>
      Effect.map(FiberRef.get(currentTenant), (scope) => scope === null || scope.tenant === tenant)

    /** The event, if it exists and the current scope sees it. */
    const find = (eventId: string): Effect.Effect<Option.Option<Event>, StorageError> =>
      Effect.flatMap(store.getEvent(eventId), (found) =>
        Option.isNone(found)
          ? Effect.succeed(found)
          : Effect.map(visible(found.value.tenant), (seen) => (seen ? found : Option.none()))
      )

    const load = (eventId: string): Effect.Effect<Event, EventNotFound | StorageError> =>
      Effect.flatMap(find(eventId), (found) =>
        Option.match(found, {
          onNone: () => Effect.fail(new EventNotFound({ eventId })),
          onSome: Effect.succeed
        })
      )

    const loadCampaign = (campaignId: string): Effect.Effect<Campaign, CampaignNotFound | StorageError> =>
      Effect.flatMap(store.getCampaign(campaignId), (found) =>
        Option.isNone(found)
          ? Effect.fail(new CampaignNotFound({ campaignId }))
          : Effect.flatMap(visible(found.value.tenant), (seen) =>
              seen ? Effect.succeed(found.value) : Effect.fail(new CampaignNotFound({ campaignId }))
            )
      )

    /**
     * Fails with `ResourceExhausted` when `count` more scheduled events would pass the scope's
     * quota. Runs inside the scheduling transaction.
     */
    const admit = (count: number, now: number) =>
      Effect.flatMap(FiberRef.get(currentTenant), (scope) => {
        const limit = scope?.maxActiveEvents
        if (scope === null || limit === undefined) return Effect.void
        return Effect.flatMap(store.countActive(scope.tenant), (active) =>
          active + count <= limit
            ? Effect.void
            : Effect.flatMap(exhausted(scope.tenant, limit, now), Effect.fail)
        )
      })

    /** The refusal of a tenant at its quota, with when to retry: when its next event is due to end. */
    const exhausted = (tenant: string, limit: number, now: number) =>
      Effect.map(store.listEvents({ tenant, status: "scheduled", limit: 1 }), (earliest) => {
        const next = earliest[0]?.dueAt ?? earliest[0]?.fireAt ?? null
        const retryAfterMs = next === null ? QUOTA_RETRY_FALLBACK_MS : Math.max(1_000, next.getTime() - now)
        return new ResourceExhausted({ resource: "activeEvents", limit, retryAfterMs })
      })

    const commit = (events: ReadonlyArray<Event>, history: ReadonlyArray<HistoryEntry>) =>
      Effect.zipRight(store.updateEvents(events), store.appendHistory(history))

    /** Resolves the predecessor of a relative start: its fire time may be known already. */
    const resolveAfter = (event: Event, after: NonNullable<Event["after"]>, now: number) =>
      Effect.gen(function* () {
        const predecessor = yield* find(after.eventId)
        if (Option.isNone(predecessor)) {
          return yield* new InvalidInput({
            field: "after",
            message: `after: event ${after.eventId} not found`
          })
        }
        const p = predecessor.value
        if (p.status === "missed" || p.status === "cancelled") {
          return yield* new EventTerminal({ eventId: p.id, status: p.status })
        }
        if (p.status !== "fired") return event
        const released = Lifecycle.release(event, p.id, p.firedAt!.getTime(), now).event
        if (released.fireAt!.getTime() < now) {
          return yield* new InvalidInput({
            field: "after",
            message: `after: ${p.id} fired at ${p.firedAt!.toISOString()}, so the fire time ${released.fireAt!.toISOString()} is in the past`
          })
        }
        return { ...released, version: 1 }
      })

    /** A request validated as it stands (synchronously: a relative start is not resolved). */
    const buildNow = (input: Lifecycle.ScheduleInput, now: number, tenant: string) =>
      Either.flatMap(Lifecycle.buildEvent(input, uuidv7(now), now, tenant), checkAllowed)

    /** Validates one request (synchronously, unless it starts after another event). */
    const build = (
      input: Lifecycle.ScheduleInput,
      now: number,
      tenant: string
    ): Effect.Effect<Event, CoordinatorError> => {
      const built = buildNow(input, now, tenant)
      if (Either.isLeft(built)) return Effect.fail(built.left)
      const event = built.right
      return event.after === null ? Effect.succeed(event) : resolveAfter(event, event.after, now)
    }

    const scheduledEntry = (e: Event, now: number) =>
      Lifecycle.historyEntry(e, "scheduled", e.organizer, now, {
        fireAt: e.fireAt?.toISOString() ?? null,
        quorum: e.quorum,
        attendees: e.attendees.length,
        ...(e.after === null ? {} : { after: e.after.eventId, offsetMs: e.after.offsetMs })
      })

    const insert = (events: ReadonlyArray<Event>, now: number) =>
      Effect.zipRight(
        store.insertEvents(events),
        store.appendHistory(events.map((e) => scheduledEntry(e, now)))
      )

    /**
     * Group commit. Single schedules and responses (confirm, defer, decline) that arrive while a
     * transaction is running wait here and are then committed together, in one transaction, each
     * answered with its own outcome: a quota refusal of one schedule, or a refused response, does
     * not affect the others. One commit (and on Postgres one round of statements for BEGIN, the
     * write lock and COMMIT), one change signal and one wake of the runner per group instead of
     * per call.
     */
    interface Waiting {
      readonly event: Event
      readonly scope: TenantScope | null
      readonly now: number
      readonly done: Done
    }
    /**
     * A response waiting for the group: it reads, decides (failing only with its own typed error,
     * before it writes) and writes; a storage failure fails the whole group.
     */
    interface WaitingJob {
      readonly run: Effect.Effect<Event, CoordinatorError>
      readonly scope: TenantScope | null
      readonly done: Done
    }
    let waiting: Array<Waiting> = []
    let waitingJobs: Array<WaitingJob> = []
    let leading = false

    /** Runs the group's responses in order, each in its caller's tenant scope; their outcomes. */
    const runJobs = (jobs: ReadonlyArray<WaitingJob>) =>
      Effect.gen(function* () {
        const outcomes: Array<Exit.Exit<Event, CoordinatorError>> = []
        for (const job of jobs) {
          const exit = yield* Effect.exit(Effect.locally(job.run, currentTenant, job.scope))
          // Its own refusal (typed, nothing written) is its answer; anything else ends the group.
          const refusal = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          if (Exit.isFailure(exit) && (Option.isNone(refusal) || refusal.value._tag === "StorageError")) {
            return yield* Effect.failCause(exit.cause)
          }
          outcomes.push(exit)
        }
        return outcomes
      })

    const commitGroup = (
      group: ReadonlyArray<Waiting>,
      jobs: ReadonlyArray<WaitingJob>
    ): Effect.Effect<void> =>
      Effect.flatMap(
        Effect.exit(
          store.transaction(
            Effect.gen(function* () {
              const active = new Map<string, number>()
              const admitted: Array<Waiting> = []
              const over: Array<readonly [Waiting, number]> = []
              for (const w of group) {
                const limit = w.scope?.maxActiveEvents
                if (limit !== undefined) {
                  const tenant = w.event.tenant
                  const count = active.get(tenant) ?? (yield* store.countActive(tenant))
                  active.set(tenant, count)
                  if (count + 1 > limit) {
                    over.push([w, limit])
                    continue
                  }
                  active.set(tenant, count + 1)
                }
                admitted.push(w)
              }
              yield* store.insertEvents(admitted.map((w) => w.event))
              yield* store.appendHistory(admitted.map((w) => scheduledEntry(w.event, w.now)))
              // Refusals say when to retry from the tenant's events, this group's included.
              const refused: Array<readonly [Waiting, ResourceExhausted]> = []
              for (const [w, limit] of over) refused.push([w, yield* exhausted(w.event.tenant, limit, w.now)])
              return { refused, outcomes: jobs.length === 0 ? [] : yield* runJobs(jobs) }
            })
          )
        ),
        (exit) => {
          // A failed group (storage, or a member's defect) is committed again one member at a
          // time, so that one member's failure answers only that member.
          if (Exit.isFailure(exit) && group.length + jobs.length > 1) {
            return Effect.zipRight(
              Effect.forEach(group, (w) => commitGroup([w], []), { discard: true }),
              Effect.forEach(jobs, (job) => commitGroup([], [job]), { discard: true })
            )
          }
          return Effect.sync(() => {
            if (Exit.isFailure(exit)) {
              for (const w of group) w.done(Exit.failCause(exit.cause))
              for (const job of jobs) job.done(Exit.failCause(exit.cause))
              return
            }
            const refusedBy = new Map(exit.value.refused)
            for (const w of group) {
              const refusal = refusedBy.get(w)
              w.done(refusal === undefined ? Exit.succeed(w.event) : Exit.fail(refusal))
            }
            for (let i = 0; i < jobs.length; i++) jobs[i]!.done(exit.value.outcomes[i]!)
          })
        }
      )

    /**
     * Starts a leader unless one runs (a leader always runs while anything is queued): a fiber of
     * its own, on the runtime the coordinator was built in, so that no caller's interrupt stops it
     * and callers outside Effect can start one too (`unsafeSubmitSchedule`).
     */
    const runtime = yield* Effect.runtime<never>()
    const ensureLeader = () => {
      if (leading) return
      leading = true
      Runtime.runFork(runtime)(lead)
    }

    /**
     * Queues a member for the next group and waits for its own outcome. The first member queued
     * while nobody leads starts a leader, which lets the event loop finish its turn, so that
     * requests read from other sockets meanwhile join, then commits everything queued, and again
     * while more came during the commit. Queuing and starting the leader are one step (a leader
     * is always running while anything is queued). Interrupted while still queued, a caller takes
     * its member out unwritten; once taken, it is committed whatever happens to its caller (as
     * when an interrupt comes after a commit).
     */
    const joinGroup = (
      push: (done: Done) => void,
      remove: () => void
    ): Effect.Effect<Event, CoordinatorError> =>
      // The interrupt handler is in place before the member is queued: `Effect.async` would add
      // its canceler only after registering, and the fiber may yield in between.
      Effect.onInterrupt(
        Effect.async<Event, CoordinatorError>((resume) => {
          push(resume)
          ensureLeader()
        }),
        () => Effect.sync(remove)
      )

    /** A response committed with the next group. */
    const grouped = (run: Effect.Effect<Event, CoordinatorError>) =>
      Effect.withFiberRuntime<Event, CoordinatorError>((fiber) => {
        const scope = fiber.getFiberRef(currentTenant)
        let job: WaitingJob | undefined
        return joinGroup(
          (done) => {
            job = { run, scope, done }
            waitingJobs.push(job)
          },
          () => {
            waitingJobs = waitingJobs.filter((other) => other !== job)
          }
        )
      })

    /** A schedule committed with the next group. */
    const scheduleGrouped = (event: Event, scope: TenantScope | null, now: number) =>
      Effect.suspend(() => {
        let w: Waiting | undefined
        return joinGroup(
          (done) => {
            w = { event, scope, now, done }
            waiting.push(w)
          },
          () => {
            waiting = waiting.filter((other) => other !== w)
          }
        )
      })

    /** Commits what is queued until nothing is; taking and committing a group is one step. */
    const lead: Effect.Effect<void> = Effect.zipRight(
      nextTurn,
      Effect.uninterruptible(
        Effect.suspend(function next(): Effect.Effect<void> {
          const group = waiting
          const jobs = waitingJobs
          waiting = []
          waitingJobs = []
          if (group.length === 0 && jobs.length === 0) {
            leading = false
            return Effect.void
          }
          return Effect.flatMap(commitGroup(group, jobs), next)
        })
      )
    )

    const scheduleMany = (inputs: ReadonlyArray<Lifecycle.ScheduleInput>) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const tenant = (yield* FiberRef.get(currentTenant))?.tenant ?? DEFAULT_TENANT
        return yield* store.transaction(
          Effect.gen(function* () {
            const events: Array<Event> = []
            for (let i = 0; i < inputs.length; i++) {
              const input = inputs[i]!
              if (input.after === undefined) {
                // The common case stays out of Effect: one plain validation per event.
                const built = buildNow(input, now, tenant)
                if (Either.isLeft(built)) return yield* Effect.fail(prefixField(i)(built.left))
                events.push(built.right)
              } else {
                events.push(yield* Effect.mapError(build(input, now, tenant), prefixField(i)))
              }
            }
            yield* admit(events.length, now)
            yield* insert(events, now)
            return events as ReadonlyArray<Event>
          })
        )
      })

    const submitSchedule: SubmitSchedule = (input, now, done) => {
      if (input.after !== undefined) return false
      const built = buildNow(input, now, DEFAULT_TENANT)
      if (Either.isLeft(built)) {
        done(Exit.fail(built.left))
        return true
      }
      waiting.push({ event: built.right, scope: null, now, done })
      ensureLeader()
      return true
    }

    const schedule = (input: Lifecycle.ScheduleInput): Effect.Effect<Event, CoordinatorError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.withFiberRuntime((fiber) => {
          const scope = fiber.getFiberRef(currentTenant)
          const tenant = scope?.tenant ?? DEFAULT_TENANT
          // One transaction of its own; `built` when the event is already validated.
          const alone = (built?: Event) =>
            store.transaction(
              Effect.gen(function* () {
                const event = built ?? (yield* build(input, now, tenant))
                yield* admit(1, now)
                yield* insert([event], now)
                return event
              })
            )
          // A relative start reads its predecessor in the transaction; inside a caller's own
          // transaction the event must commit (or not) with it.
          if (input.after !== undefined) return alone()
          const built = buildNow(input, now, tenant)
          if (Either.isLeft(built)) return Effect.fail(built.left)
          return Effect.flatMap(store.inTransaction, (inside) =>
            inside ? alone(built.right) : scheduleGrouped(built.right, scope, now)
          )
        })
      )

    const respond = (eventId: string, agent: string, response: Lifecycle.Response) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        // Reads and decides first: a refusal writes nothing (what a group needs of its members).
        const body = Effect.gen(function* () {
          const event = yield* load(eventId)
          const outcome = yield* Lifecycle.respond(event, agent, response, now)
          if (outcome.event !== event) yield* commit([outcome.event], outcome.history)
          return outcome.event
        })
        const inside = yield* store.inTransaction
        return yield* inside ? body : grouped(body)
      })

    /** Makes the scheduled dependents of failed events due now, so the next tick misses them. */
    const doomDependents = (ids: ReadonlyArray<string>, now: number) =>
      Effect.gen(function* () {
        if (ids.length === 0) return
        const dependents = yield* store.dependents(ids)
        if (dependents.length > 0)
          yield* store.updateEvents(dependents.map((d) => Lifecycle.doom(d.event, now)))
      })

    /**
     * What ending an event queues in the same transaction: its actions, its next occurrence.
     * `readyAt` holds when events that waited for a predecessor became ready to fire.
     */
    const afterEnd = (ended: ReadonlyArray<Event>, now: number, readyAt?: ReadonlyMap<string, number>) =>
      Effect.gen(function* () {
        const queued: Array<QueuedAction> = []
        const occurrences: Array<Event> = []
        const history: Array<HistoryEntry> = []
        for (const event of ended) {
          queued.push(...Lifecycle.queuedActions(event, now))
          const next = Lifecycle.nextOccurrence(event, uuidv7(now), now, readyAt?.get(event.id))
          if (next !== null) {
            occurrences.push(next.event)
            history.push(...next.history)
          }
        }
        if (queued.length > 0) yield* store.enqueueActions(queued)
        if (occurrences.length > 0) {
          yield* store.insertEvents(occurrences)
          yield* store.appendHistory(history)
        }
      })

    const tick = (at?: TimeInput, tickOptions: TickOptions = {}) =>
      Effect.gen(function* () {
        const clock = yield* Clock.currentTimeMillis
        const now = at === undefined ? clock : yield* parseTime(at, clock, { field: "now" })
        return yield* store.transaction(
          Effect.gen(function* () {
            const reports = {
              fired: [] as Array<Event>,
              missed: [] as Array<Event>,
              deferred: [] as Array<Event>
            }
            const status = new Map<string, Event["status"]>()
            const waitedUntil = new Map<string, number>()
            while (true) {
              const due = [...(yield* store.dueEvents(now, TICK_BATCH))].sort(Lifecycle.byFireTime)
              if (due.length === 0) break
              const linked = due.filter((e) => e.campaignId !== null || e.after !== null).map((e) => e.id)
              const predecessors = new Map<string, Array<Lifecycle.Predecessor>>()
              if (linked.length > 0) {
                for (const [id, p] of yield* store.predecessors(linked)) {
                  const list = predecessors.get(id) ?? []
                  list.push(p)
                  predecessors.set(id, list)
                }
              }
              const updated = new Map<string, Event>()
              const history: Array<HistoryEntry> = []
              const firedAt = new Map<string, number>()
              const failed: Array<string> = []
              for (const event of due) {
                // A predecessor that fired in this tick fired at `now`: its dependents were waiting until then.
                const preds = (predecessors.get(event.id) ?? []).map((p): Lifecycle.Predecessor => {
                  const current = status.get(p.id)
                  return current === "fired"
                    ? { id: p.id, status: current, firedAt: now }
                    : { id: p.id, status: current ?? p.status }
                })
                const ready = Lifecycle.readyAt(event, preds)
                if (ready !== null && ready > event.fireAt!.getTime()) waitedUntil.set(event.id, ready)
                const step = Lifecycle.decide(event, preds, now, tickOptions.misfireGraceMs)
                const outcome = Lifecycle.applyStep(event, step, now)
                updated.set(event.id, outcome.event)
                history.push(...outcome.history)
                if (outcome.report !== null) reports[outcome.report].push(event)
                if (outcome.event.status !== "scheduled") status.set(event.id, outcome.event.status)
                if (outcome.report === "fired") firedAt.set(event.id, now)
                if (outcome.report === "missed") failed.push(event.id)
              }
              // Whether this batch can have made other events due now (released or doomed
              // dependents, next occurrences); otherwise a short batch was the last one.
              let touchedOthers = false
              if (firedAt.size > 0) {
                for (const { predecessorId, event } of yield* store.dependents([...firedAt.keys()])) {
                  const current = updated.get(event.id) ?? event
                  if (current.status !== "scheduled") continue
                  touchedOthers = true
                  const outcome = Lifecycle.release(current, predecessorId, firedAt.get(predecessorId)!, now)
                  updated.set(event.id, outcome.event)
                  history.push(...outcome.history)
                }
              }
              if (failed.length > 0) {
                for (const { event } of yield* store.dependents(failed)) {
                  touchedOthers = true
                  const current = updated.get(event.id) ?? event
                  updated.set(event.id, Lifecycle.doom(current, now))
                }
              }
              const replica = tickOptions.replica
              yield* commit(
                [...updated.values()],
                replica === undefined
                  ? history
                  : history.map((h) => ({ ...h, detail: { ...h.detail, replica } }))
              )
              const ended = [...updated.values()].filter((e) => e.status !== "scheduled")
              if (ended.length > 0) yield* afterEnd(ended, now, waitedUntil)
              if (due.length < TICK_BATCH && !touchedOthers && ended.every((e) => e.recurrence === null))
                break
            }
            // Scoped to a tenant (a remote caller), the report names only that tenant's events: a
            // tick processes whatever is due, as the runner would at that instant.
            const scope = yield* FiberRef.get(currentTenant)
            const ids = (events: Array<Event>) =>
              events
                .filter((e) => scope === null || e.tenant === scope.tenant)
                .sort(Lifecycle.byFireTime)
                .map((e) => e.id)
            return { fired: ids(reports.fired), missed: ids(reports.missed), deferred: ids(reports.deferred) }
          })
        )
      })

    const addExisting = (campaign: Campaign, event: Event, now: number) =>
      Effect.gen(function* () {
        if (event.campaignId === campaign.id) return event
        if (event.campaignId !== null) {
          return yield* new CampaignMembership({
            campaignId: campaign.id,
            eventId: event.id,
            reason: "in-another-campaign",
            otherCampaignId: event.campaignId
          })
        }
        const joined: Event = {
          ...event,
          campaignId: campaign.id,
          updatedAt: new Date(now),
          version: event.version + 1
        }
        yield* store.addCampaignEvent(campaign.id, event.id)
        yield* commit(
          [joined],
          [
            Lifecycle.historyEntry(joined, "campaign_added", event.organizer, now, {
              campaignId: campaign.id
            })
          ]
        )
        return joined
      })

    /**
     * Every "must fire first" edge among a campaign's members: its links, and the relative starts of
     * members that start after another member (both gate a tick, so both can close a cycle).
     */
    const dependencyEdges = (campaign: Campaign) =>
      Effect.map(store.listEvents({ campaignId: campaign.id }), (members) => {
        const inCampaign = new Set(campaign.events)
        const edges: Array<readonly [string, string]> = [...campaign.dependencies]
        for (const e of members) {
          if (e.after !== null && inCampaign.has(e.after.eventId)) edges.push([e.after.eventId, e.id])
        }
        return edges
      })

    const requireMember = (campaign: Campaign, eventId: string) =>
      campaign.events.includes(eventId)
        ? Effect.void
        : Effect.fail(new CampaignMembership({ campaignId: campaign.id, eventId, reason: "not-a-member" }))

    const shape: CoordinatorShape = {
      schedule,
      scheduleMany,
      scheduleTimer: (input) => Effect.flatMap(Lifecycle.checkedTimerRequest(input), schedule),
      confirm: (eventId, agent) => respond(eventId, agent, { status: "confirmed" }),
      decline: (eventId, agent) => respond(eventId, agent, { status: "declined" }),
      defer: (eventId, agent, duration) =>
        Effect.flatMap(Lifecycle.durationMs(duration, "duration"), (deferMs) =>
          respond(eventId, agent, { status: "deferred", deferMs })
        ),
      cancel: (eventId, options = {}) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          return yield* store.transaction(
            Effect.gen(function* () {
              const event = yield* load(eventId)
              const outcome = yield* Lifecycle.cancel(
                event,
                options.actor ?? event.organizer,
                options.reason,
                now
              )
              yield* commit([outcome.event], outcome.history)
              yield* doomDependents([event.id], now)
              if (options.endSeries !== true) yield* afterEnd([outcome.event], now)
              return outcome.event
            })
          )
        }),
      reschedule: (eventId, at, options = {}) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          return yield* store.transaction(
            Effect.gen(function* () {
              const event = yield* load(eventId)
              const outcome = yield* Lifecycle.reschedule(event, at, options.actor ?? event.organizer, now)
              yield* commit([outcome.event], outcome.history)
              return outcome.event
            })
          )
        }),
      get: load,
      list: (filter = {}) =>
        filter.limit !== undefined && (!Number.isInteger(filter.limit) || filter.limit < 0)
          ? Effect.fail(
              new InvalidInput({
                field: "limit",
                message: `limit: must be a whole number ≥ 0, got ${filter.limit}`
              })
            )
          : Effect.flatMap(FiberRef.get(currentTenant), (scope) =>
              store.listEvents(scope === null ? filter : { ...filter, tenant: scope.tenant })
            ),
      history: (eventId) => Effect.zipRight(load(eventId), store.history(eventId)),
      tick,
      cleanup: (olderThan = 0) =>
        Effect.gen(function* () {
          const ms = yield* Lifecycle.durationMs(olderThan, "olderThan")
          const now = yield* Clock.currentTimeMillis
          const scope = yield* FiberRef.get(currentTenant)
          const removed = yield* store.transaction(store.deleteTerminalBefore(now - ms + 1, scope?.tenant))
          return removed.length
        }),
      createCampaign: (name) =>
        Effect.gen(function* () {
          if (typeof name !== "string" || name.trim() === "") {
            return yield* new InvalidInput({
              field: "name",
              message: "name: a campaign needs a non-empty name"
            })
          }
          const now = yield* Clock.currentTimeMillis
          const scope = yield* FiberRef.get(currentTenant)
          const campaign: Campaign = {
            id: uuidv7(now),
            tenant: scope?.tenant ?? DEFAULT_TENANT,
            name,
            events: [],
            dependencies: [],
            createdAt: new Date(now)
          }
          yield* store.transaction(store.insertCampaign(campaign))
          return campaign
        }),
      addToCampaign: (campaignId, target) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          return yield* store.transaction(
            Effect.gen(function* () {
              const campaign = yield* loadCampaign(campaignId)
              if (typeof target === "string") return yield* addExisting(campaign, yield* load(target), now)
              const event = yield* build(target, now, campaign.tenant)
              yield* admit(1, now)
              yield* insert([event], now)
              return yield* addExisting(campaign, event, now)
            })
          )
        }),
      link: (campaignId, from, to) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          return yield* store.transaction(
            Effect.gen(function* () {
              const campaign = yield* loadCampaign(campaignId)
              yield* requireMember(campaign, from)
              yield* requireMember(campaign, to)
              if (campaign.dependencies.some(([a, b]) => a === from && b === to)) return campaign
              const target = yield* load(to)
              if (target.status !== "scheduled") {
                // `from` must fire before `to`: an event that already ended cannot wait for anything.
                return yield* new EventTerminal({ eventId: to, status: target.status })
              }
              const cycle = CampaignGraph.cycleThrough(yield* dependencyEdges(campaign), from, to)
              if (cycle !== null) return yield* new CycleDetected({ campaignId, cycle })
              yield* store.addCampaignLink(campaignId, from, to)
              const predecessor = yield* load(from)
              if (predecessor.status === "missed" || predecessor.status === "cancelled") {
                yield* store.updateEvents([Lifecycle.doom(yield* load(to), now)])
              }
              return { ...campaign, dependencies: [...campaign.dependencies, [from, to] as const] }
            })
          )
        }),
      executionOrder: (campaignId) =>
        Effect.gen(function* () {
          const campaign = yield* loadCampaign(campaignId)
          return CampaignGraph.executionOrder(campaign.events, yield* dependencyEdges(campaign))
        }),
      getCampaign: loadCampaign,
      listCampaigns: () =>
        Effect.flatMap(FiberRef.get(currentTenant), (scope) => store.listCampaigns(scope?.tenant)),
      listActions: (filter = {}) =>
        Effect.flatMap(FiberRef.get(currentTenant), (scope) =>
          store.listActions(scope === null ? filter : { ...filter, tenant: scope.tenant })
        ),
      retryAction: (key, retryOptions = {}) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          return yield* store.transaction(
            Effect.gen(function* () {
              const found = yield* store.getAction(key)
              if (Option.isNone(found) || Option.isNone(yield* find(found.value.eventId))) {
                return yield* new ActionNotFound({ key })
              }
              const action = found.value
              if (action.status === "pending") return action
              if (action.status === "delivered") {
                return yield* new InvalidInput({
                  field: "key",
                  message: `key: action ${key} was already delivered`
                })
              }
              const retried: QueuedAction = {
                ...action,
                status: "pending",
                attempts: 0,
                nextAttemptAt: new Date(now),
                updatedAt: new Date(now)
              }
              yield* store.updateActions([retried])
              yield* store.appendHistory([
                {
                  eventId: action.eventId,
                  at: new Date(now),
                  type: "action_retried",
                  actor: retryOptions.actor ?? Lifecycle.ENGINE_ACTOR,
                  detail: { key, action: action.action._tag, lastError: action.lastError }
                }
              ])
              return retried
            })
          )
        })
    }
    submitters.set(shape, submitSchedule)
    return shape
  })

/**
 * The coordinator over the `EventStore` in context.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Coordinator, never, EventStore> = Layer.effect(Coordinator, make)

/**
 * The coordinator over the `EventStore` in context, with options.
 *
 * @since 0.1.0
 */
export const layerWith = (options: CoordinatorOptions): Layer.Layer<Coordinator, never, EventStore> =>
  Layer.effect(Coordinator, makeWith(options))
