/**
 * The real-time runner (SPEC 4.8 and 5): it sleeps until the next due instant, ticks, delivers the
 * actions the transitions queued, and streams every transition to whoever watches. No fixed polling
 * period: it sleeps until the earliest `dueAt` (in chunks of at most 2^31−1 ms, the longest timer
 * a runtime keeps) and re-arms at once when this process commits a change, or within
 * `externalPollMs` when another process sharing the database does (SQLite's `data_version`).
 *
 * Runtime-agnostic: HTTP, commands and files come from `@effect/platform` services in context.
 *
 * @since 0.1.0
 */
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Path from "@effect/platform/Path"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Actions from "./Actions.ts"
import * as CoordinatorModule from "./Coordinator.ts"
import { Coordinator } from "./Coordinator.ts"
import type { CoordinatorError, StorageError } from "./Errors.ts"
import type { Event, HistoryEntry, QueuedAction, Transition, WaitResult } from "./Event.ts"
import { EventStore, type Lease, makeChangeSignal, type WriteHint } from "./EventStore.ts"
import * as Lifecycle from "./Lifecycle.ts"
import { formatDuration } from "./TimeGrammar.ts"

/** The longest single sleep: runtimes keep timers of at most 2^31−1 ms. @since 0.1.0 */
export const MAX_SLEEP_MS = 2 ** 31 - 1

/**
 * The longest the runner sleeps before it reads the wall clock again by default: timers run on a
 * monotonic clock, so a machine that was suspended, or whose clock was set forward, is noticed
 * within this. @since 0.1.0
 */
export const CLOCK_CHECK_MS = 60_000

/** Transitions buffered for `watch` subscribers; past this the slowest one holds the others back. @since 0.1.0 */
export const WATCH_BUFFER = 4_096

/** Added to an action's own timeout to make the lease of an attempt (see `attemptLeaseMs`). */
const LEASE_MARGIN_MS = 30_000

/** The default retry schedule of an action after a failed attempt (SPEC 5). @since 0.1.0 */
export const DEFAULT_RETRY_SCHEDULE: ReadonlyArray<Lifecycle.DurationInput> = [
  "5s",
  "5m",
  "30m",
  "2h",
  "5h",
  "10h"
]

/**
 * Options of the runner.
 *
 * @since 0.1.0
 */
export interface RunnerOptions {
  /** What actions may do here: the command allow-list, the file directory, timeouts. */
  readonly actions?: Actions.ActionsConfig | undefined
  /** Waits before each retry of a failed action; after the last one it is dead-lettered. */
  readonly retrySchedule?: ReadonlyArray<Lifecycle.DurationInput> | undefined
  /** How late an event with `misfire: "miss"` may still fire; default 60 s. */
  readonly misfireGraceMs?: number | undefined
  /**
   * How often to look for commits by other processes, in ms; default 100. `Infinity` turns it off
   * (a store no other process can reach, such as the in-memory one).
   */
  readonly externalPollMs?: number | undefined
  /** Attempts running at once; default 16. */
  readonly deliveryConcurrency?: number | undefined
  /**
   * How long a claimed attempt is hidden from other runners on the same database, in ms: when a
   * runner dies mid-attempt, the action is attempted again after this. Default: that action's own
   * timeout (webhook, or the command's) plus 30 s, so a slow attempt is never run twice at once.
   */
  readonly attemptLeaseMs?: number | undefined
  /** The longest single sleep before the wall clock is read again, in ms; default `CLOCK_CHECK_MS`. */
  readonly clockCheckMs?: number | undefined
  /**
   * When the runner stops, how long attempts already running may take to finish (and have their
   * outcome recorded) before they are cut short, in ms of real time; default 5 000. An attempt cut
   * short is attempted again after its lease (delivery is at least once).
   */
  readonly shutdownGraceMs?: number | undefined
  /**
   * Runs this runner as one replica of several sharing the database (`t-minus-server` on
   * Postgres). Only the holder of the tick lease ticks: it renews the lease every third of
   * `leaseMs`; when it stops renewing (dead, frozen, cut off), another replica takes the lease
   * over once it expires. Every tick checks the lease inside its own transaction, so a replica
   * that lost it (say, frozen past it) fires nothing. Actions are delivered by every replica, each
   * attempt under its own claim. Without this option every runner ticks (the database's write
   * lock still makes each transition happen once).
   */
  readonly replica?: ReplicaOptions | undefined
}

/**
 * A runner as one of several replicas (see `RunnerOptions.replica`).
 *
 * @since 0.1.0
 */
export interface ReplicaOptions {
  /** Names the replica in the lease and in history (`detail.replica`); default a random id. */
  readonly id?: string | undefined
  /** How long the tick lease lasts unrenewed, in ms; default `DEFAULT_LEASE_MS`. */
  readonly leaseMs?: number | undefined
}

/** The tick lease's default duration: a dead replica's ticking is taken over within it. @since 0.1.0 */
export const DEFAULT_LEASE_MS = 10_000

/** The name of the lease whose holder ticks. @since 0.1.0 */
export const TICK_LEASE = "tick"

/**
 * Which transitions `watch` streams; every given criterion must hold. `agent` matches entries
 * made by that agent and entries of events it attends.
 *
 * @since 0.1.0
 */
export interface WatchFilter {
  /** Transitions of this tenant's events only. */
  readonly tenant?: string | undefined
  readonly eventId?: string | undefined
  readonly campaignId?: string | undefined
  readonly agent?: string | undefined
  readonly types?: ReadonlyArray<Transition["type"]> | undefined
}

/**
 * The running runner.
 *
 * @since 0.1.0
 */
export interface RunnerShape {
  /** Every transition committed from now on (by any process on the database), in commit order. */
  readonly watch: (filter?: WatchFilter) => Stream.Stream<Transition>
  /**
   * Calls `listener` with the same transitions as `watch`, synchronously, until the returned
   * function is called or the runner stops: those of this process's commits as each commits (in
   * the committing fiber, while no `watch` stream is open), the others as the runner reads them
   * from the log. No stream and no
   * buffer per subscriber, so much cheaper per transition; a listener must return quickly (one
   * that throws is logged and skipped). `latencyMs`: how late the listener may hear of a
   * transition; while only such listeners subscribe, the log is read once per that window instead
   * of every few milliseconds (for metrics, say). Without it (or with `watch` streams open), as
   * soon as the runner reads it.
   */
  readonly listen: (
    listener: (transition: Transition) => void,
    filter?: WatchFilter,
    options?: { readonly latencyMs?: number | undefined }
  ) => Effect.Effect<() => void>
  /** Whether this runner ticks: always without `replica`, else while it holds the tick lease. */
  readonly ticking: Effect.Effect<boolean>
}

const ended = (event: Event): WaitResult | null =>
  event.status === "scheduled" ? null : { outcome: event.status, event }

/**
 * Waits until the event fires, is missed or cancelled, or `timeout` passes (`outcome: "timeout"`,
 * with the event as it stands); no timeout waits as long as it takes. Fails like `get` for an
 * unknown event and with `InvalidInput` (field `timeout`) for a bad duration.
 *
 * @since 0.1.0
 */
export const waitFor = (
  eventId: string,
  timeout?: Lifecycle.DurationInput
): Effect.Effect<WaitResult, CoordinatorError, Coordinator | Runner> =>
  Effect.gen(function* () {
    const c = yield* Coordinator
    const runner = yield* Runner
    const timeoutMs = timeout === undefined ? null : yield* Lifecycle.durationMs(timeout, "timeout")
    yield* c.get(eventId)
    const done = yield* Deferred.make<void>()
    // Listen first, then look: an end between the two is not missed.
    const stop = yield* runner.listen(() => Deferred.unsafeDone(done, Effect.void), {
      eventId,
      types: ["fired", "missed", "cancelled"]
    })
    return yield* Effect.gen(function* () {
      const now = ended(yield* c.get(eventId))
      if (now !== null) return now
      const finished = Deferred.await(done)
      if (timeoutMs === null) yield* finished
      else yield* Effect.timeoutOption(finished, Duration.millis(timeoutMs))
      const after = yield* c.get(eventId)
      return ended(after) ?? { outcome: "timeout" as const, event: after }
    }).pipe(Effect.ensuring(Effect.sync(stop)))
  })

/**
 * The runner of the program: present while its layer's scope is open.
 *
 * @since 0.1.0
 */
export class Runner extends Context.Tag("@t-minus/core/Runner")<Runner, RunnerShape>() {}

/**
 * What the runner needs from the platform: an HTTP client (webhooks). Processes (`command`) and
 * files (`file_write`) are used when they are in context (`OptionalPlatform`); without them such
 * actions fail permanently with a message saying what to provide, so the runner itself runs on
 * any runtime with `fetch`.
 *
 * @since 0.1.0
 */
export type Platform = HttpClient.HttpClient

/** The platform services for `command` and `file_write` actions. @since 0.1.0 */
export type OptionalPlatform = CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path

/** A loop iteration that failed is logged and retried after a pause; interruption passes. */
const survive = <R>(label: string, effect: Effect.Effect<void, unknown, R>): Effect.Effect<void, never, R> =>
  Effect.catchAllCause(effect, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.failCause(cause as Cause.Cause<never>)
      : Effect.zipRight(
          Effect.logWarning(`t-minus runner: ${label} failed; retrying in 1s`, cause),
          Effect.sleep(Duration.seconds(1))
        )
  )

/** How long running attempts may take to finish when the runner stops, by default. @since 0.1.0 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000

/** How a claimed attempt's reads and its recording are tried again after a storage failure. */
const storageRetry = { times: 10, schedule: Schedule.spaced(Duration.millis(500)) }

/** Rows of the history log read at a time by the watch tail. */
const TAIL_BATCH = 1_000
/**
 * After a read that found commits, the watch tail waits this long (on the real clock) before it
 * reads again, so a burst of commits costs a read per window, not per commit. The first commit
 * after a quiet spell is read at once; later ones in a burst reach watchers up to this much later.
 */
const TAIL_WINDOW = Duration.millis(2)
const liveClock = Clock.make()

/** Whether a transition passes a watch filter. @since 0.1.0 */
export const matches =
  (filter: WatchFilter) =>
  (t: Transition): boolean =>
    (filter.tenant === undefined || t.tenant === filter.tenant) &&
    (filter.eventId === undefined || t.eventId === filter.eventId) &&
    (filter.campaignId === undefined || t.campaignId === filter.campaignId) &&
    (filter.agent === undefined || t.actor === filter.agent || t.agents.includes(filter.agent)) &&
    (filter.types === undefined || filter.types.includes(t.type))

/**
 * What an attempt leaves behind: the action's next state and the history entry of the attempt.
 *
 * @since 0.1.0
 */
export const recordAttempt = (
  queued: QueuedAction,
  outcome: Actions.AttemptOutcome,
  retryScheduleMs: ReadonlyArray<number>,
  now: number
): { readonly action: QueuedAction; readonly entry: HistoryEntry } => {
  const attempt = queued.attempts + 1
  const common = {
    key: queued.key,
    action: queued.action._tag,
    attempt,
    durationMs: outcome.durationMs,
    ...(outcome.statusCode === undefined ? {} : { statusCode: outcome.statusCode }),
    ...(outcome.exitCode === undefined ? {} : { exitCode: outcome.exitCode }),
    ...(outcome.outputTail === undefined ? {} : { outputTail: outcome.outputTail })
  }
  const at = new Date(now)
  if (outcome._tag === "Delivered") {
    return {
      action: {
        ...queued,
        status: "delivered",
        attempts: attempt,
        nextAttemptAt: null,
        lastError: null,
        updatedAt: at
      },
      entry: {
        eventId: queued.eventId,
        at,
        type: "action_delivered",
        actor: Lifecycle.ENGINE_ACTOR,
        detail: { ...common, ...(outcome.path === undefined ? {} : { path: outcome.path }) }
      }
    }
  }
  const wait = outcome.retry ? retryScheduleMs[attempt - 1] : undefined
  if (wait === undefined) {
    return {
      action: {
        ...queued,
        status: "dead",
        attempts: attempt,
        nextAttemptAt: null,
        lastError: outcome.error,
        updatedAt: at
      },
      entry: {
        eventId: queued.eventId,
        at,
        type: "action_dead",
        actor: Lifecycle.ENGINE_ACTOR,
        detail: {
          ...common,
          error: outcome.error,
          reason: outcome.retry ? `gave up after ${attempt} attempts` : "not retryable"
        }
      }
    }
  }
  const next = new Date(now + wait)
  return {
    action: {
      ...queued,
      status: "pending",
      attempts: attempt,
      nextAttemptAt: next,
      lastError: outcome.error,
      updatedAt: at
    },
    entry: {
      eventId: queued.eventId,
      at,
      type: "action_failed",
      actor: Lifecycle.ENGINE_ACTOR,
      detail: { ...common, error: outcome.error, retryAt: next.toISOString(), retryIn: formatDuration(wait) }
    }
  }
}

/**
 * Starts the runner in the current scope: its loops stop when the scope closes. An attempt cut
 * short by that is attempted again later (at least once), never lost.
 *
 * @since 0.1.0
 */
export const make = (
  options: RunnerOptions = {}
): Effect.Effect<RunnerShape, never, Coordinator | EventStore | Platform | Scope.Scope> =>
  Effect.gen(function* () {
    const coordinator = yield* Coordinator
    const store = yield* EventStore
    const actionsConfig = options.actions ?? {}
    const retryScheduleMs = (options.retrySchedule ?? DEFAULT_RETRY_SCHEDULE).map((d, i) =>
      Either.getOrThrowWith(Lifecycle.durationMs(d, `retrySchedule[${i}]`), (e) => e)
    )
    // Where other processes' commits are pushed (Postgres), polling is only the safety net.
    const pollMs = Math.max(1, options.externalPollMs ?? (store.externalWrites === undefined ? 100 : 1_000))
    const concurrency = Math.max(1, options.deliveryConcurrency ?? 16)
    const leaseFor = (action: QueuedAction["action"]) =>
      options.attemptLeaseMs ?? Actions.attemptTimeoutMs(action, actionsConfig) + LEASE_MARGIN_MS
    const chunkMs = Math.min(MAX_SLEEP_MS, Math.max(1, options.clockCheckMs ?? CLOCK_CHECK_MS))
    const replica = options.replica
    const nonce = Math.random().toString(36).slice(2, 10)
    const replicaId = replica?.id ?? `replica-${nonce}`
    // The lease's owner is this process, not its name: two replicas given the same id (a shared
    // config file) must still not share the lease, nor its fencing.
    const leaseOwner = `${replicaId}#${nonce}`
    const leaseMs = Math.max(30, replica?.leaseMs ?? DEFAULT_LEASE_MS)
    const tickOptions = {
      misfireGraceMs: options.misfireGraceMs,
      ...(replica === undefined ? {} : { replica: replicaId })
    }

    // The watch tail's wake-up signal: this process's commits, commits by other processes (seen
    // by one poller) and new watchers all bump it. The tick and delivery loops have their own,
    // bumped only by what can move what they wait for (below).
    const wake = makeChangeSignal()
    const dueWake = makeChangeSignal()
    const actionsWake = makeChangeSignal()
    // Whether a commit of this process left transitions for the tail to read: not when the commit
    // handed them to the listeners itself (see `WriteHint.transitions`, below).
    let tailNeeded = true
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(store.localChanges, (seen) =>
          Effect.zipRight(
            store.awaitLocalChange(seen),
            Effect.sync(() => {
              if (!tailNeeded) return
              tailNeeded = false
              wake.bump()
            })
          )
        )
      )
    )
    // Whether what the tick and delivery loops last read may be out of date. A commit of this
    // process says what it wrote: one that wrote nothing due before the tick loop's next instant
    // and no actions leaves both reads valid, so under load the loops do not read again per commit.
    // `dueTarget` is the instant the tick loop waits for (+∞ while it reads: any due write counts).
    let dueStale = true
    let actionsStale = true
    let dueTarget = Number.POSITIVE_INFINITY
    const onWrite = (write: WriteHint) => {
      if (write.earliestDue < dueTarget) {
        dueStale = true
        dueWake.bump()
      }
      if (write.actions) {
        actionsStale = true
        actionsWake.bump()
      }
    }
    // Called after the commit, before anyone hears of it: a loop that wakes reads what it wrote.
    const unobserve = store.observeWrites(onWrite)
    yield* Effect.addFinalizer(() => Effect.sync(unobserve))
    // Other processes' commits, where the store pushes them.
    const external = store.externalWrites
    if (external !== undefined) {
      yield* Effect.forkScoped(
        Stream.runForEach(external, (write) =>
          Effect.sync(() => {
            onWrite(write)
            wake.bump()
          })
        )
      )
    }
    // A read that fails or dies leaves its loop to read again.
    const staleOnError = (mark: () => void) => Effect.tapErrorCause(() => Effect.sync(mark))

    let version = yield* Effect.orElseSucceed(store.externalVersion, () => 0)
    yield* Effect.when(
      Effect.forkScoped(
        Effect.forever(
          Effect.zipRight(
            Effect.sleep(Duration.millis(pollMs)),
            Effect.flatMap(
              Effect.orElseSucceed(store.externalVersion, () => version),
              (v) =>
                Effect.sync(() => {
                  if (v !== version) {
                    version = v
                    dueStale = true
                    actionsStale = true
                    dueWake.bump()
                    actionsWake.bump()
                    wake.bump()
                  }
                })
            )
          )
        )
      ),
      () => Number.isFinite(pollMs)
    )

    /**
     * Sleeps until `at` or a wake-up after `seen` (read before the caller looked at the store),
     * whichever is first. Sleeps are chunked (`chunkMs`): the caller re-reads the clock after each.
     * One sleep on the `Clock` (as a detached fiber) and one listener on the signal: an
     * `Effect.race` of the two (two supervised child fibers per wait) added visibly to the
     * runner's GC pauses (docs/benchmarks.md).
     */
    const clock = yield* Effect.clock
    const waitUntil = (
      signal: ReturnType<typeof makeChangeSignal>,
      at: Option.Option<number>,
      now: number,
      seen: number
    ): Effect.Effect<void> =>
      Option.isNone(at)
        ? signal.awaitLocalChange(seen)
        : at.value <= now
          ? Effect.void
          : Effect.async<void>((resume) => {
              let done = false
              let cancelSleep = () => {}
              let stop = () => {}
              const finish = () => {
                if (done) return
                done = true
                cancelSleep()
                stop()
                resume(Effect.void)
              }
              stop = signal.listen(seen, finish)
              if (!done) {
                const interrupt = Effect.runCallback(
                  clock.sleep(Duration.millis(Math.min(at.value - now, chunkMs))),
                  {
                    onExit: finish
                  }
                )
                cancelSleep = () => interrupt()
              }
              return Effect.sync(() => {
                done = true
                cancelSleep()
                stop()
              })
            })

    // The tick lease (replicas only): taken, renewed every third of its time, or waited for.
    let held: Lease | null = null
    let leaving = false
    const leaseWake = makeChangeSignal()
    if (replica !== undefined) {
      // A replica that stops gives its lease up (it expires now), so another takes it over at
      // its next ask instead of at the expiry; ticks after that are fenced out like any other.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          leaving = true
          if (held === null) return Effect.void
          held = null
          return Effect.ignore(
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              store.acquireLease(TICK_LEASE, leaseOwner, now, 0)
            )
          )
        })
      )
      yield* Effect.forkScoped(
        Effect.forever(
          survive(
            "lease",
            Effect.gen(function* () {
              const seen = yield* leaseWake.localChanges
              if (leaving) return yield* Effect.never
              const now = yield* Clock.currentTimeMillis
              const lease = yield* store.acquireLease(TICK_LEASE, leaseOwner, now, leaseMs)
              const mine = lease.owner === leaseOwner
              if (mine && held?.token !== lease.token) {
                yield* Effect.logInfo(`t-minus runner: ${replicaId} ticks (lease token ${lease.token})`)
                dueStale = true
                dueWake.bump()
              } else if (!mine && held !== null) {
                yield* Effect.logWarning(`t-minus runner: ${replicaId} lost the tick lease to ${lease.owner}`)
              }
              held = mine ? lease : null
              // The holder renews every third of the lease; the others ask as often, or at its expiry
              // when that is sooner (a holder that stops gives the lease up: see below).
              const wait = mine ? leaseMs / 3 : Math.min(leaseMs / 3, Math.max(10, lease.expiresAt - now))
              yield* Effect.raceFirst(Effect.sleep(Duration.millis(wait)), leaseWake.awaitLocalChange(seen))
            })
          )
        )
      )
    }
    /** One tick; a replica ticks only under the lease it holds, checked in the tick's transaction. */
    const tickNow = (now: number) =>
      replica === undefined
        ? Effect.asVoid(coordinator.tick(now, tickOptions))
        : store.transaction(
            Effect.gen(function* () {
              const lease = held
              if (lease !== null && (yield* store.holdsLease(lease, now))) {
                yield* coordinator.tick(now, tickOptions)
                return
              }
              // Lost (taken over, or expired unrenewed): stop ticking, ask the lease loop again.
              if (held === lease) held = null
              leaseWake.bump()
            })
          )

    // The clock loop: tick whatever is due, then sleep until the next due instant or a change.
    let knownDue: Option.Option<number> = Option.none()
    yield* Effect.forkScoped(
      Effect.forever(
        survive(
          "tick",
          Effect.gen(function* () {
            const seen = yield* dueWake.localChanges
            // A replica without the lease waits until it takes it (which bumps `dueWake`).
            if (replica !== undefined && held === null) return yield* dueWake.awaitLocalChange(seen)
            // The next due instant is read again only when a write may have moved it (the tick
            // finds what is due itself): waking at it, the loop ticks at once.
            let now = yield* Clock.currentTimeMillis
            if (dueStale) {
              dueStale = false
              dueTarget = Number.POSITIVE_INFINITY
              knownDue = yield* staleOnError(() => (dueStale = true))(store.nextDueAt)
              // The read took time (a round trip on Postgres): what is due, and how long to sleep,
              // is judged from the clock after it, or the wake-up would be late by the read.
              now = yield* Clock.currentTimeMillis
            }
            const next = knownDue
            if (Option.isSome(next) && next.value <= now) {
              dueStale = true
              yield* tickNow(now)
              return
            }
            dueTarget = Option.isSome(next) ? next.value : Number.POSITIVE_INFINITY
            yield* waitUntil(dueWake, next, now, seen)
          })
        )
      )
    )

    // The delivery loop: claim due attempts (hidden from other runners for a lease), run them
    // concurrently, record each outcome in the event's history. The lease's instant doubles as the
    // claim's token: an outcome that comes back after someone else claimed the action again (or it
    // was retried by hand) goes into history but leaves the action's state alone.
    const running = new Set<string>()
    // Attempts run in a scope of their own: stopping lets them finish (bounded) before it closes.
    const attempts = yield* Scope.make()
    let stopping = false
    const optional = yield* Effect.all({
      exec: Effect.serviceOption(CommandExecutor.CommandExecutor),
      fs: Effect.serviceOption(FileSystem.FileSystem),
      path: Effect.serviceOption(Path.Path)
    })
    let services = Context.empty() as Context.Context<OptionalPlatform>
    if (Option.isSome(optional.exec))
      services = Context.add(services, CommandExecutor.CommandExecutor, optional.exec.value)
    if (Option.isSome(optional.fs)) services = Context.add(services, FileSystem.FileSystem, optional.fs.value)
    if (Option.isSome(optional.path)) services = Context.add(services, Path.Path, optional.path.value)
    const unavailable = (action: QueuedAction["action"]): string | null =>
      action._tag === "command" && Option.isNone(optional.exec)
        ? "commands need a CommandExecutor in the runner's context (e.g. NodeContext.layer from @effect/platform-node)"
        : action._tag === "file_write" && (Option.isNone(optional.fs) || Option.isNone(optional.path))
          ? "file writes need FileSystem and Path in the runner's context (e.g. NodeContext.layer from @effect/platform-node)"
          : null
    const deliverOne = (queued: QueuedAction, leaseAt: number): Effect.Effect<void, unknown, Platform> =>
      Effect.gen(function* () {
        // Claimed, the action is hidden from every runner until its lease: a read that fails (a
        // connection lost meanwhile) is tried again rather than leaving it hidden that long.
        const event = yield* Effect.retry(store.getEvent(queued.eventId), storageRetry)
        const missing = unavailable(queued.action)
        const outcome: Actions.AttemptOutcome = Option.isNone(event)
          ? { _tag: "Failed", retry: false, error: `event ${queued.eventId} no longer exists`, durationMs: 0 }
          : missing !== null
            ? { _tag: "Failed", retry: false, error: missing, durationMs: 0 }
            : yield* Effect.provide(
                Actions.deliver(
                  queued.action,
                  {
                    key: queued.key,
                    transition: queued.transition,
                    event: event.value,
                    occurredAt: queued.occurredAt,
                    attempt: queued.attempts + 1
                  },
                  actionsConfig
                ),
                // What this action uses is in `services` (checked by `unavailable` above).
                services
              ) as Effect.Effect<Actions.AttemptOutcome, never, Platform>
        const now = yield* Clock.currentTimeMillis
        // The attempt happened: its outcome is worth a few tries (a connection lost meanwhile,
        // say). Recording twice is harmless: the claim's instant tells a stale outcome.
        yield* Effect.retry(
          Effect.suspend(() =>
            record({ queued, leaseAt, outcome, now, done: Deferred.unsafeMake(FiberId.none) })
          ),
          storageRetry
        )
      })
    /**
     * Outcomes are recorded in groups: those that finish while a group commits wait and go into
     * the next one, one transaction for many attempts (on Postgres, one round of BEGIN, write
     * lock and COMMIT instead of one per attempt). Each attempt's caller waits for its group.
     */
    interface Outcome {
      readonly queued: QueuedAction
      readonly leaseAt: number
      readonly outcome: Actions.AttemptOutcome
      readonly now: number
      readonly done: Deferred.Deferred<void, StorageError>
    }
    let outcomes: Array<Outcome> = []
    let recording = false
    const recordGroup = (group: ReadonlyArray<Outcome>) =>
      store.transaction(
        Effect.gen(function* () {
          const updates: Array<QueuedAction> = []
          const entries: Array<HistoryEntry> = []
          for (const { queued, leaseAt, outcome, now } of group) {
            const current = yield* store.getAction(queued.key)
            const recorded = recordAttempt(queued, outcome, retryScheduleMs, now)
            const stillOurs =
              Option.isSome(current) &&
              current.value.status === "pending" &&
              current.value.attempts === queued.attempts &&
              current.value.nextAttemptAt?.getTime() === leaseAt
            if (stillOurs) updates.push(recorded.action)
            entries.push(
              stillOurs
                ? recorded.entry
                : { ...recorded.entry, detail: { ...recorded.entry.detail, stale: true } }
            )
          }
          if (updates.length > 0) yield* store.updateActions(updates)
          yield* store.appendHistory(entries)
        })
      )
    const recorder: Effect.Effect<void> = Effect.suspend(function next(): Effect.Effect<void> {
      const group = outcomes
      outcomes = []
      if (group.length === 0) {
        recording = false
        return Effect.void
      }
      return Effect.flatMap(Effect.exit(recordGroup(group)), (exit) => {
        if (Exit.isFailure(exit) && group.length > 1) {
          // One member's failure must not fail the others: each is recorded on its own.
          return Effect.flatMap(
            Effect.forEach(group, (o) =>
              Effect.flatMap(Effect.exit(recordGroup([o])), (own) =>
                Effect.sync(() => Deferred.unsafeDone(o.done, own))
              )
            ),
            next
          )
        }
        for (const o of group) Deferred.unsafeDone(o.done, exit)
        return next()
      })
    })
    const record = (o: Outcome): Effect.Effect<void, StorageError> =>
      Effect.zipRight(
        Effect.suspend(() => {
          outcomes.push(o)
          if (recording) return Effect.void
          recording = true
          return Effect.asVoid(Effect.forkDaemon(Effect.uninterruptible(recorder)))
        }),
        Deferred.await(o.done)
      )
    /** Claims up to `limit` due attempts not already running here; `blocked` when only those were due. */
    const claim = (now: number, limit: number) =>
      store.transaction(
        Effect.gen(function* () {
          const rows = yield* store.dueActions(now, limit + running.size)
          const due = rows.filter((a) => !running.has(a.key)).slice(0, limit)
          const claimed = due.map((a) => ({ ...a, nextAttemptAt: new Date(now + leaseFor(a.action)) }))
          if (claimed.length > 0) yield* store.updateActions(claimed)
          return { claimed, blocked: rows.length > 0 && claimed.length === 0 }
        })
      )
    let knownAction: Option.Option<number> = Option.none()
    yield* Effect.forkScoped(
      Effect.forever(
        survive(
          "delivery",
          Effect.gen(function* () {
            const seen = yield* actionsWake.localChanges
            if (stopping) return yield* Effect.never
            if (running.size >= concurrency) return yield* actionsWake.awaitLocalChange(seen)
            let now = yield* Clock.currentTimeMillis
            // Read outside a transaction first: an idle runner never takes the write lock.
            if (actionsStale || (Option.isSome(knownAction) && knownAction.value <= now)) {
              actionsStale = false
              knownAction = yield* staleOnError(() => (actionsStale = true))(store.nextActionAt)
              now = yield* Clock.currentTimeMillis // as in the clock loop
            }
            const next = knownAction
            if (Option.isSome(next) && next.value <= now) {
              actionsStale = true
              const { blocked, claimed } = yield* claim(now, concurrency - running.size)
              for (const queued of claimed) {
                const leaseAt = queued.nextAttemptAt!.getTime()
                running.add(queued.key)
                yield* Effect.forkIn(
                  survive(`action ${queued.key}`, deliverOne(queued, leaseAt)).pipe(
                    Effect.ensuring(
                      Effect.sync(() => {
                        running.delete(queued.key)
                        actionsStale = true
                        actionsWake.bump()
                      })
                    )
                  ),
                  attempts
                )
              }
              if (claimed.length > 0) return
              // Only attempts still running here are due: wait for them to finish.
              if (blocked) return yield* waitUntil(actionsWake, Option.some(now + chunkMs), now, seen)
              return
            }
            yield* waitUntil(actionsWake, next, now, seen)
          })
        )
      )
    )

    // Watchers: the history log, tailed while anyone watches. The buffer is bounded: a subscriber
    // that falls behind holds the tail back (nothing is dropped; the log is durable), never memory.
    const hub = yield* PubSub.bounded<Transition>(WATCH_BUFFER)
    yield* Effect.addFinalizer(() => PubSub.shutdown(hub))
    let watchers = 0
    let lastSeq = 0
    const listeners = new Set<{
      readonly call: (t: Transition) => void
      readonly match: (t: Transition) => boolean
      readonly latencyMs: number
    }>()
    // Bumped when a subscriber that wants transitions at once arrives, to end a long window.
    const eagerArrived = makeChangeSignal()
    /** How long the tail may wait between reads: the shortest any subscriber accepts. */
    const tailWindow = (): Duration.Duration => {
      if (watchers > 0) return TAIL_WINDOW
      let ms = Number.POSITIVE_INFINITY
      for (const l of listeners) ms = Math.min(ms, l.latencyMs)
      return ms <= Duration.toMillis(TAIL_WINDOW) ? TAIL_WINDOW : Duration.millis(ms)
    }
    /** Calls the listeners with `rows`; what the last one that threw threw. */
    const deliver = (rows: ReadonlyArray<Transition>): unknown => {
      let failed: unknown
      for (const row of rows) {
        for (const l of listeners) {
          if (!l.match(row)) continue
          try {
            l.call(row)
          } catch (error) {
            failed = error
          }
        }
      }
      return failed
    }
    // This process's commits report the transitions they appended as they commit: while only
    // listeners subscribe and the tail has read everything before them, the listeners hear them at
    // once, without the log being read back (a read, and the tail's window, per commit). Anything
    // else (a gap, streams, a commit that cannot say) is left to the tail, which reads the log.
    let directFailure: unknown
    const unobserveLog = store.observeWrites((write) => {
      // (Asked only when a listener could take them: working them out has a cost.)
      const added = watchers === 0 && listeners.size > 0 ? write.transitions : undefined
      if (added === undefined || added === null) {
        tailNeeded = true
        return
      }
      if (added.length === 0) return
      if (added[0]!.seq === lastSeq + 1) {
        lastSeq = added[added.length - 1]!.seq
        const failed = deliver(added)
        if (failed !== undefined) {
          directFailure = failed
          tailNeeded = true
        }
        return
      }
      tailNeeded = true
    })
    yield* Effect.addFinalizer(() => Effect.sync(unobserveLog))
    yield* Effect.forkScoped(
      Effect.forever(
        survive(
          "watch",
          Effect.gen(function* () {
            const seen = yield* wake.localChanges
            if (directFailure !== undefined) {
              yield* Effect.logWarning("t-minus runner: a watch listener threw", directFailure)
              directFailure = undefined
            }
            if (watchers + listeners.size > 0) {
              const read = yield* store.historySince(lastSeq, TAIL_BATCH)
              if (read.length > 0) {
                // Listeners may have heard some of these directly while the read was under way.
                const rows = read[0]!.seq > lastSeq ? read : read.filter((row) => row.seq > lastSeq)
                lastSeq = Math.max(lastSeq, read[read.length - 1]!.seq)
                const failed = deliver(rows)
                if (failed !== undefined)
                  yield* Effect.logWarning("t-minus runner: a watch listener threw", failed)
                if (watchers > 0) yield* PubSub.publishAll(hub, rows)
                // Read again at once after a full batch; otherwise after a short window, so under
                // load one read takes the commits of the window rather than one read per commit.
                if (read.length < TAIL_BATCH) {
                  const window = tailWindow()
                  const seenEager = yield* eagerArrived.localChanges
                  yield* window === TAIL_WINDOW
                    ? Effect.withClock(Effect.sleep(window), liveClock)
                    : Effect.raceFirst(
                        Effect.withClock(Effect.sleep(window), liveClock),
                        eagerArrived.awaitLocalChange(seenEager)
                      )
                }
                return
              }
            }
            yield* wake.awaitLocalChange(seen)
          })
        )
      )
    )
    /** A first subscriber starts the tail at the end of the log. */
    const startTail = Effect.suspend(() =>
      watchers + listeners.size === 0
        ? Effect.map(
            Effect.orElseSucceed(store.lastHistorySeq, () => lastSeq),
            (seq) => {
              // Never back: two first subscribers may read the end of the log at once, and a
              // commit may have been heard in between.
              lastSeq = Math.max(lastSeq, seq)
            }
          )
        : Effect.void
    )
    const subscribe = Effect.acquireRelease(
      Effect.gen(function* () {
        yield* startTail
        // Counted first: from now on commits go through the log, which the stream reads.
        watchers += 1
        const queue = yield* PubSub.subscribe(hub)
        eagerArrived.bump()
        wake.bump()
        return queue
      }),
      () =>
        Effect.sync(() => {
          watchers -= 1
        })
    )

    // Stopping, first of all (this finalizer is added after the loops): no new claims, attempts
    // already running finish and record their outcome (bounded, on the real clock), then the rest
    // is cut short.
    const shutdownGraceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        stopping = true
        const idle = Effect.suspend(() =>
          running.size === 0 ? Effect.succeed(true) : Effect.as(Effect.sleep(Duration.millis(10)), false)
        )
        yield* Effect.withClock(
          Effect.timeoutOption(
            idle.pipe(Effect.repeat({ until: (done) => done })),
            Duration.millis(shutdownGraceMs)
          ),
          liveClock
        )
        yield* Scope.close(attempts, Exit.void)
      })
    )

    return {
      ticking: Effect.sync(() => replica === undefined || held !== null),
      listen: (call, filter = {}, options = {}) =>
        Effect.gen(function* () {
          yield* startTail
          const entry = { call, match: matches(filter), latencyMs: Math.max(0, options.latencyMs ?? 0) }
          listeners.add(entry)
          if (entry.latencyMs <= Duration.toMillis(TAIL_WINDOW)) eagerArrived.bump()
          wake.bump()
          return () => {
            listeners.delete(entry)
          }
        }),
      watch: (filter = {}) =>
        Stream.filter(
          Stream.unwrapScoped(Effect.map(subscribe, (queue) => Stream.fromQueue(queue))),
          matches(filter)
        )
    }
  })

/**
 * The runner, started with the layer and stopped when it is released. The coordinator in context
 * should check actions against the same `actions` configuration (see `layerCoordinator`).
 *
 * @since 0.1.0
 */
export const layer = (
  options: RunnerOptions = {}
): Layer.Layer<Runner, never, Coordinator | EventStore | Platform> => Layer.scoped(Runner, make(options))

/**
 * A coordinator that rejects, when they are scheduled, actions this runner would refuse (command
 * names not on its allow-list).
 *
 * @since 0.1.0
 */
export const layerCoordinator = (options: RunnerOptions = {}): Layer.Layer<Coordinator, never, EventStore> =>
  CoordinatorModule.layerWith({
    checkAction: (action, field) => Actions.checkAllowed(action, field, options.actions ?? {})
  })
