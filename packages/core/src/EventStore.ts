/**
 * The storage contract. The store only persists: every rule lives in `Lifecycle` and
 * `CampaignGraph`, and the `Coordinator` wraps each operation in one `transaction`. Backends are
 * layers: `layerMemory` here, SQL (SQLite, later Postgres) in `SqlEventStore`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { StorageError } from "./Errors.ts"
import type {
  Campaign,
  DeliveryStatus,
  Event,
  EventStatus,
  HistoryEntry,
  QueuedAction,
  Transition
} from "./Event.ts"
import { DEFAULT_TENANT } from "./Event.ts"
import type { Predecessor } from "./Lifecycle.ts"
import { byFireTime } from "./Lifecycle.ts"

/**
 * Which events `list` returns. Every given criterion must hold.
 *
 * @since 0.1.0
 */
export interface EventFilter {
  readonly tenant?: string | undefined
  readonly status?: EventStatus | ReadonlyArray<EventStatus> | undefined
  readonly kind?: string | undefined
  readonly attendee?: string | undefined
  readonly campaignId?: string | undefined
  readonly limit?: number | undefined
}

/**
 * Which queued actions `listActions` returns, oldest first.
 *
 * @since 0.1.0
 */
export interface ActionFilter {
  /** Actions of this tenant's events only. */
  readonly tenant?: string | undefined
  readonly status?: DeliveryStatus | undefined
  readonly eventId?: string | undefined
  readonly limit?: number | undefined
}

/** A scheduled event that depends on `predecessorId`. @since 0.1.0 */
export interface Dependent {
  readonly predecessorId: string
  readonly event: Event
}

/**
 * The operations a backend provides. Writes are only ever made inside `transaction`, which is
 * all-or-nothing and serializes writers (also across processes sharing one SQLite file).
 *
 * @since 0.1.0
 */
export interface EventStoreShape {
  /** Runs `effect` atomically: on failure nothing it wrote remains. */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StorageError, R>
  /** Whether the current fiber runs inside an open `transaction`. */
  readonly inTransaction: Effect.Effect<boolean>
  readonly insertEvents: (events: ReadonlyArray<Event>) => Effect.Effect<void, StorageError>
  /** Writes new versions of existing events. */
  readonly updateEvents: (events: ReadonlyArray<Event>) => Effect.Effect<void, StorageError>
  readonly getEvent: (id: string) => Effect.Effect<Option.Option<Event>, StorageError>
  /** Events matching the filter, ordered by (fireAt ?? dueAt, id), events with neither last. */
  readonly listEvents: (filter: EventFilter) => Effect.Effect<ReadonlyArray<Event>, StorageError>
  /** How many of `tenant`'s events are scheduled (not yet ended): what its quota counts. */
  readonly countActive: (tenant: string) => Effect.Effect<number, StorageError>
  /** How many events `listEvents` would return, without its `limit`. */
  readonly countEvents: (filter: EventFilter) => Effect.Effect<number, StorageError>
  /** At most `limit` events with `dueAt ≤ now`, earliest first; reads only due rows. */
  readonly dueEvents: (now: number, limit: number) => Effect.Effect<ReadonlyArray<Event>, StorageError>
  /** The earliest `dueAt` of any event, for a runner to sleep until. */
  readonly nextDueAt: Effect.Effect<Option.Option<number>, StorageError>
  /** The predecessors (campaign links and relative starts) of each of `ids`, as `[eventId, predecessor]`. */
  readonly predecessors: (
    ids: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<readonly [string, Predecessor]>, StorageError>
  /** The scheduled events that depend on any of `ids`. */
  readonly dependents: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Dependent>, StorageError>
  readonly appendHistory: (entries: ReadonlyArray<HistoryEntry>) => Effect.Effect<void, StorageError>
  /** An event's history, oldest first. */
  readonly history: (eventId: string) => Effect.Effect<ReadonlyArray<HistoryEntry>, StorageError>
  readonly insertCampaign: (campaign: Campaign) => Effect.Effect<void, StorageError>
  readonly getCampaign: (id: string) => Effect.Effect<Option.Option<Campaign>, StorageError>
  /** Every campaign (of `tenant`, when given), oldest first. */
  readonly listCampaigns: (
    tenant?: string | undefined
  ) => Effect.Effect<ReadonlyArray<Campaign>, StorageError>
  /** Appends an event to a campaign's order (the event's `campaignId` is written by `updateEvents`). */
  readonly addCampaignEvent: (campaignId: string, eventId: string) => Effect.Effect<void, StorageError>
  readonly addCampaignLink: (
    campaignId: string,
    from: string,
    to: string
  ) => Effect.Effect<void, StorageError>
  /**
   * Deletes terminal events that ended before `cutoff`, with their history and campaign
   * membership, keeping any that a scheduled event still depends on; only `tenant`'s when given.
   * Returns their ids.
   */
  readonly deleteTerminalBefore: (
    cutoff: number,
    tenant?: string | undefined
  ) => Effect.Effect<ReadonlyArray<string>, StorageError>
  /** Queues actions in the outbox (inside the transaction of the transition that caused them). */
  readonly enqueueActions: (actions: ReadonlyArray<QueuedAction>) => Effect.Effect<void, StorageError>
  /** Writes the new delivery state of queued actions, by key. */
  readonly updateActions: (actions: ReadonlyArray<QueuedAction>) => Effect.Effect<void, StorageError>
  readonly getAction: (key: string) => Effect.Effect<Option.Option<QueuedAction>, StorageError>
  /** Queued actions matching the filter, by (occurredAt, key). */
  readonly listActions: (filter: ActionFilter) => Effect.Effect<ReadonlyArray<QueuedAction>, StorageError>
  /** At most `limit` pending actions whose next attempt is due at `now`, earliest first. */
  readonly dueActions: (
    now: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<QueuedAction>, StorageError>
  /** The earliest next attempt of any pending action. */
  readonly nextActionAt: Effect.Effect<Option.Option<number>, StorageError>
  /** History entries after `seq` in commit order, at most `limit`, as `watch` streams them. */
  readonly historySince: (
    seq: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<Transition>, StorageError>
  /** The `seq` of the latest history entry (0 when there is none). */
  readonly lastHistorySeq: Effect.Effect<number, StorageError>
  /** How many transactions that wrote have committed in this process. */
  readonly localChanges: Effect.Effect<number>
  /**
   * Calls `observer` with a summary of every commit of this process that wrote, before the commit
   * counts in `localChanges` (so before anyone waiting on it wakes); returns a function that
   * removes it. The runner uses it to skip reads a commit cannot have changed.
   */
  readonly observeWrites: (observer: (write: WriteHint) => void) => () => void
  /** Waits until `localChanges` exceeds `seen`. */
  readonly awaitLocalChange: (seen: number) => Effect.Effect<void>
  /**
   * A number that changes when another process commits to the same database (SQLite's
   * `data_version`); constant for stores no other process can reach.
   */
  readonly externalVersion: Effect.Effect<number, StorageError>
  /**
   * What other processes' commits wrote, pushed as they commit (Postgres LISTEN/NOTIFY), so a
   * runner re-arms at once instead of at its next `externalVersion` poll. A lost connection, and
   * every (re)start of listening, yields `UNKNOWN_WRITE`. Absent where only polling can tell.
   */
  readonly externalWrites?: Stream.Stream<WriteHint> | undefined
  /**
   * Takes lease `name` for `owner` until `now + ttlMs` when it is free, expired at `now`, or
   * already `owner`'s (a renewal), and returns the lease as it then stands: `owner`'s, or the
   * other holder's. A change of owner advances the lease's fencing `token`. Runs in a transaction.
   */
  readonly acquireLease: (
    name: string,
    owner: string,
    now: number,
    ttlMs: number
  ) => Effect.Effect<Lease, StorageError>
  /**
   * Whether `lease` (its owner and token) still holds at `now`. Inside a transaction the answer
   * stands until it commits: taking a lease over needs the same write lock.
   */
  readonly holdsLease: (lease: Lease, now: number) => Effect.Effect<boolean, StorageError>
}

/**
 * A lease on shared work (the runner's ticking): held by `owner` until `expiresAt` unless
 * renewed. `token` grows with every change of owner: work done under an older token is fenced out.
 *
 * @since 0.1.0
 */
export interface Lease {
  readonly name: string
  readonly owner: string
  readonly token: number
  readonly expiresAt: number
}

/** Whether a lease row (or none) may be taken by `owner` at `now`, and with which token. @internal */
export const nextLease = (
  current: Lease | undefined,
  name: string,
  owner: string,
  now: number,
  ttlMs: number
): { readonly lease: Lease; readonly write: boolean } =>
  current === undefined
    ? { lease: { name, owner, token: 1, expiresAt: now + ttlMs }, write: true }
    : current.owner === owner
      ? { lease: { ...current, expiresAt: now + ttlMs }, write: true }
      : current.expiresAt <= now
        ? { lease: { name, owner, token: current.token + 1, expiresAt: now + ttlMs }, write: true }
        : { lease: current, write: false }

/** Whether `held` is still `current` at `now`. @internal */
export const stillHeld = (current: Lease | undefined, held: Lease, now: number): boolean =>
  current !== undefined &&
  current.owner === held.owner &&
  current.token === held.token &&
  current.expiresAt > now

/**
 * What a committed transaction wrote, as far as the runner cares: the earliest `dueAt` among the
 * events it wrote (`Infinity` when none is due) and whether it wrote actions. Conservative: a
 * write that cannot say reports `UNKNOWN_WRITE`.
 *
 * @since 0.1.0
 */
export interface WriteHint {
  readonly earliestDue: number
  readonly actions: boolean
  /**
   * The entries it appended to the history log, as transitions in `seq` order, when the store
   * knows them all (`[]`: it appended none); absent or `null` when it does not. Watchers in this
   * process hear them from here instead of reading the log back.
   */
  readonly transitions?: ReadonlyArray<Transition> | null | undefined
}

/** A write that may have changed anything. @since 0.1.0 */
export const UNKNOWN_WRITE: WriteHint = { earliestDue: Number.NEGATIVE_INFINITY, actions: true }

/** The earliest `dueAt` of `events`, `Infinity` when none is due. @internal */
export const earliestDue = (events: ReadonlyArray<Event>): number => {
  let earliest = Number.POSITIVE_INFINITY
  for (const e of events) if (e.dueAt !== null && e.dueAt.getTime() < earliest) earliest = e.dueAt.getTime()
  return earliest
}

/**
 * Counts this process's committed writes and wakes whoever waits for the next one (the runner
 * re-arms on it). Shared by every backend.
 *
 * @since 0.1.0
 */
export const makeChangeSignal = () => {
  let count = 0
  let waiting: Deferred.Deferred<void> | null = null
  let listeners: Array<() => void> = []
  const observers = new Set<(write: WriteHint) => void>()
  return {
    bump: (write: WriteHint = UNKNOWN_WRITE): void => {
      for (const observer of observers) observer(write)
      count += 1
      if (waiting !== null) {
        Deferred.unsafeDone(waiting, Effect.void)
        waiting = null
      }
      if (listeners.length > 0) {
        const called = listeners
        listeners = []
        for (const listener of called) listener()
      }
    },
    /**
     * Calls `listener` once, at the first change after `seen` (at once if there was one already);
     * returns a function that removes it. For waits that must not fork a fiber.
     */
    listen: (seen: number, listener: () => void): (() => void) => {
      if (count > seen) {
        listener()
        return () => {}
      }
      listeners.push(listener)
      return () => {
        listeners = listeners.filter((l) => l !== listener)
      }
    },
    observe: (observer: (write: WriteHint) => void): (() => void) => {
      observers.add(observer)
      return () => {
        observers.delete(observer)
      }
    },
    localChanges: Effect.sync(() => count),
    awaitLocalChange: (seen: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (count > seen) return Effect.void
        waiting ??= Deferred.unsafeMake<void>(FiberId.none)
        return Deferred.await(waiting)
      })
  }
}

/**
 * The event store of the running program.
 *
 * @since 0.1.0
 */
export class EventStore extends Context.Tag("@t-minus/core/EventStore")<EventStore, EventStoreShape>() {}

const endedAt = (event: Event): number | null =>
  (event.firedAt ?? event.missedAt ?? event.cancelledAt)?.getTime() ?? null

const statusSet = (status: EventFilter["status"]): ReadonlySet<EventStatus> | null =>
  status === undefined ? null : new Set(typeof status === "string" ? [status] : status)

/**
 * An in-memory store, for tests and for runtimes without SQLite. Transactions are serialized and
 * undone on failure.
 *
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<EventStoreShape> = Effect.gen(function* () {
  const events = new Map<string, Event>()
  const history = new Map<string, Array<HistoryEntry>>()
  const campaigns = new Map<string, Campaign>()
  const actions = new Map<string, QueuedAction>()
  const leases = new Map<string, Lease>()
  const log: Array<Transition> = []
  const signal = makeChangeSignal()
  const lock = yield* Effect.makeSemaphore(1)
  let undo: Array<() => void> | null = null
  // What the open transaction wrote (one at a time: the lock), for `observeWrites`.
  let due = Number.POSITIVE_INFINITY
  let wroteActions = false

  // Every mutation records its inverse while a transaction is open.
  const setIn = <K, V>(map: Map<K, V>, key: K, value: V) => {
    const had = map.has(key)
    const previous = map.get(key)
    map.set(key, value)
    undo?.push(() => (had ? map.set(key, previous as V) : map.delete(key)))
  }
  const deleteIn = <K, V>(map: Map<K, V>, key: K) => {
    if (!map.has(key)) return
    const previous = map.get(key) as V
    map.delete(key)
    undo?.push(() => map.set(key, previous))
  }

  // Reads outside a transaction wait while another fiber's transaction is open, so they never
  // see writes that may still be undone.
  const inTransaction = FiberRef.unsafeMake(false)
  const read = <A>(f: () => A): Effect.Effect<A> =>
    Effect.withFiberRuntime((fiber) =>
      undo === null || fiber.getFiberRef(inTransaction) ? Effect.sync(f) : lock.withPermits(1)(Effect.sync(f))
    )

  const matching = (filter: EventFilter) => {
    const statuses = statusSet(filter.status)
    return [...events.values()].filter(
      (e) =>
        (filter.tenant === undefined || e.tenant === filter.tenant) &&
        (statuses === null || statuses.has(e.status)) &&
        (filter.kind === undefined || e.kind === filter.kind) &&
        (filter.campaignId === undefined || e.campaignId === filter.campaignId) &&
        (filter.attendee === undefined || e.attendees.some((a) => a.agent === filter.attendee))
    )
  }

  const links = () => {
    const out: Array<readonly [string, string]> = []
    for (const campaign of campaigns.values()) out.push(...campaign.dependencies)
    return out
  }

  const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime<A, E, R>((fiber) =>
      fiber.getFiberRef(inTransaction)
        ? effect
        : lock.withPermits(1)(
            Effect.suspend(() => {
              const reverts: Array<() => void> = []
              undo = reverts
              due = Number.POSITIVE_INFINITY
              wroteActions = false
              return Effect.locally(effect, inTransaction, true).pipe(
                Effect.onExit((exit) =>
                  Effect.sync(() => {
                    undo = null
                    if (exit._tag === "Failure") for (const revert of reverts.reverse()) revert()
                    else if (reverts.length > 0) signal.bump({ earliestDue: due, actions: wroteActions })
                  })
                )
              )
            })
          )
    )

  return {
    transaction,
    inTransaction: FiberRef.get(inTransaction),
    insertEvents: (list) =>
      Effect.sync(() => {
        for (const event of list) setIn(events, event.id, event)
        due = Math.min(due, earliestDue(list))
      }),
    updateEvents: (list) =>
      Effect.sync(() => {
        for (const event of list) setIn(events, event.id, event)
        due = Math.min(due, earliestDue(list))
      }),
    getEvent: (id) => read(() => Option.fromNullable(events.get(id))),
    listEvents: (filter) =>
      read(() => {
        const out = matching(filter)
        out.sort(byFireTime)
        return filter.limit === undefined ? out : out.slice(0, filter.limit)
      }),
    countEvents: (filter) => read(() => matching(filter).length),
    countActive: (tenant) => read(() => matching({ tenant, status: "scheduled" }).length),
    dueEvents: (now, limit) =>
      read(() =>
        [...events.values()]
          .filter((e) => e.dueAt !== null && e.dueAt.getTime() <= now)
          .sort((a, b) => a.dueAt!.getTime() - b.dueAt!.getTime() || (a.id < b.id ? -1 : 1))
          .slice(0, limit)
      ),
    nextDueAt: read(() => {
      let min: number | null = null
      for (const e of events.values()) {
        if (e.dueAt !== null && (min === null || e.dueAt.getTime() < min)) min = e.dueAt.getTime()
      }
      return Option.fromNullable(min)
    }),
    predecessors: (ids) =>
      read(() => {
        const wanted = new Set(ids)
        const out: Array<readonly [string, Predecessor]> = []
        for (const [from, to] of links()) {
          const p = events.get(from)
          if (wanted.has(to) && p !== undefined) out.push([to, { id: p.id, status: p.status }])
        }
        for (const id of ids) {
          const after = events.get(id)?.after
          const p = after == null ? undefined : events.get(after.eventId)
          if (p !== undefined) out.push([id, { id: p.id, status: p.status }])
        }
        return out
      }),
    dependents: (ids) =>
      read(() => {
        const wanted = new Set(ids)
        const out: Array<{ predecessorId: string; event: Event }> = []
        for (const [from, to] of links()) {
          const e = events.get(to)
          if (wanted.has(from) && e !== undefined && e.status === "scheduled")
            out.push({ predecessorId: from, event: e })
        }
        for (const e of events.values()) {
          if (e.after !== null && wanted.has(e.after.eventId) && e.status === "scheduled") {
            out.push({ predecessorId: e.after.eventId, event: e })
          }
        }
        return out
      }),
    appendHistory: (entries) =>
      Effect.sync(() => {
        for (const entry of entries) {
          const list = history.get(entry.eventId) ?? []
          setIn(history, entry.eventId, [...list, entry])
          const e = events.get(entry.eventId)
          log.push({
            seq: log.length + 1,
            ...entry,
            campaignId: e?.campaignId ?? null,
            agents: e?.attendees.map((a) => a.agent) ?? [],
            tenant: e?.tenant ?? DEFAULT_TENANT
          })
          undo?.push(() => log.pop())
        }
      }),
    history: (eventId) => read(() => history.get(eventId) ?? []),
    insertCampaign: (campaign) => Effect.sync(() => setIn(campaigns, campaign.id, campaign)),
    getCampaign: (id) => read(() => Option.fromNullable(campaigns.get(id))),
    listCampaigns: (tenant) =>
      read(() =>
        [...campaigns.values()]
          .filter((c) => tenant === undefined || c.tenant === tenant)
          .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1))
      ),
    addCampaignEvent: (campaignId, eventId) =>
      Effect.sync(() => {
        const c = campaigns.get(campaignId)
        if (c !== undefined) setIn(campaigns, campaignId, { ...c, events: [...c.events, eventId] })
      }),
    addCampaignLink: (campaignId, from, to) =>
      Effect.sync(() => {
        const c = campaigns.get(campaignId)
        if (c !== undefined)
          setIn(campaigns, campaignId, { ...c, dependencies: [...c.dependencies, [from, to] as const] })
      }),
    deleteTerminalBefore: (cutoff, tenant) =>
      Effect.sync(() => {
        const pinned = new Set<string>()
        for (const [from, to] of links()) if (events.get(to)?.status === "scheduled") pinned.add(from)
        for (const e of events.values())
          if (e.status === "scheduled" && e.after !== null) pinned.add(e.after.eventId)
        const removed: Array<string> = []
        for (const e of events.values()) {
          const ended = endedAt(e)
          const undelivered = [...actions.values()].some((a) => a.eventId === e.id && a.status === "pending")
          if (
            e.status !== "scheduled" &&
            (tenant === undefined || e.tenant === tenant) &&
            ended !== null &&
            ended < cutoff &&
            !pinned.has(e.id) &&
            !undelivered
          )
            removed.push(e.id)
        }
        const gone = new Set(removed)
        for (const id of removed) {
          deleteIn(events, id)
          deleteIn(history, id)
        }
        for (const a of [...actions.values()]) if (gone.has(a.eventId)) deleteIn(actions, a.key)
        for (const c of campaigns.values()) {
          if (c.events.some((id) => gone.has(id))) {
            setIn(campaigns, c.id, {
              ...c,
              events: c.events.filter((id) => !gone.has(id)),
              dependencies: c.dependencies.filter(([a, b]) => !gone.has(a) && !gone.has(b))
            })
          }
        }
        return removed
      }),
    enqueueActions: (list) =>
      Effect.sync(() => {
        for (const a of list) setIn(actions, a.key, a)
        wroteActions ||= list.length > 0
      }),
    updateActions: (list) =>
      Effect.sync(() => {
        for (const a of list) if (actions.has(a.key)) setIn(actions, a.key, a)
        wroteActions ||= list.length > 0
      }),
    getAction: (key) => read(() => Option.fromNullable(actions.get(key))),
    listActions: (filter) =>
      read(() => {
        const out = [...actions.values()]
          .filter(
            (a) =>
              (filter.status === undefined || a.status === filter.status) &&
              (filter.eventId === undefined || a.eventId === filter.eventId) &&
              (filter.tenant === undefined || events.get(a.eventId)?.tenant === filter.tenant)
          )
          .sort(byOccurrence)
        return filter.limit === undefined ? out : out.slice(0, filter.limit)
      }),
    dueActions: (now, limit) =>
      read(() =>
        [...actions.values()]
          .filter(
            (a) => a.status === "pending" && a.nextAttemptAt !== null && a.nextAttemptAt.getTime() <= now
          )
          .sort((a, b) => a.nextAttemptAt!.getTime() - b.nextAttemptAt!.getTime() || (a.key < b.key ? -1 : 1))
          .slice(0, limit)
      ),
    nextActionAt: read(() => {
      let min: number | null = null
      for (const a of actions.values()) {
        const at = a.status === "pending" ? (a.nextAttemptAt?.getTime() ?? null) : null
        if (at !== null && (min === null || at < min)) min = at
      }
      return Option.fromNullable(min)
    }),
    historySince: (seq, limit) => read(() => log.slice(seq, seq + limit)),
    lastHistorySeq: read(() => log.length),
    observeWrites: signal.observe,
    localChanges: signal.localChanges,
    awaitLocalChange: signal.awaitLocalChange,
    externalVersion: Effect.succeed(0),
    acquireLease: (name, owner, now, ttlMs) =>
      transaction(
        Effect.sync(() => {
          const next = nextLease(leases.get(name), name, owner, now, ttlMs)
          if (next.write) setIn(leases, name, next.lease)
          return next.lease
        })
      ),
    holdsLease: (held, now) => read(() => stillHeld(leases.get(held.name), held, now))
  }
})

const byOccurrence = (a: QueuedAction, b: QueuedAction): number =>
  a.occurredAt.getTime() - b.occurredAt.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/**
 * An empty in-memory store.
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<EventStore> = Layer.effect(EventStore, makeMemory)
