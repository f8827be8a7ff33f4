/**
 * The handlers of the RPC contract (`./Rpc.ts`) over the coordinator and the runner in context:
 * what a server mounts. Every operation runs as the `CurrentCaller` the `Authentication`
 * middleware provides: in its tenant (`Coordinator.withTenant`, with its active-events quota), and
 * only if the rules of `./Access.ts` allow it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as Access from "./Access.ts"
import { Coordinator, withTenant } from "./Coordinator.ts"
import { ActionNotFound, type Forbidden, InvalidInput, WatchLagged } from "./Errors.ts"
import type { Transition } from "./Event.ts"
import { Authentication, TMinusRpcs } from "./Rpc.ts"
import * as Runner from "./Runner.ts"
import { parseTime } from "./TimeGrammar.ts"

/**
 * How many transitions a remote `watch` may have in flight to its client before it is ended with
 * `WatchLagged`.
 *
 * @since 0.1.0
 */
export const REMOTE_WATCH_BUFFER = 1_024

/** How many events or actions `list` and `listActions` return when the caller gives no `limit`. @since 0.1.0 */
export const DEFAULT_LIST_LIMIT = 1_000
/** The largest `limit` a remote caller may ask for (answers stay bounded in memory). @since 0.1.0 */
export const MAX_LIST_LIMIT = 10_000

const bounded = <F extends { readonly limit?: number | undefined }>(filter: F) =>
  filter.limit !== undefined && filter.limit > MAX_LIST_LIMIT
    ? Effect.fail(
        new InvalidInput({
          field: "limit",
          message: `limit: at most ${MAX_LIST_LIMIT} per call, got ${filter.limit}; page with filters`
        })
      )
    : Effect.succeed({ ...filter, limit: filter.limit ?? DEFAULT_LIST_LIMIT })

/**
 * Set by a server's middleware around a remote `watch`: the handler fails it when its client
 * lags, and the middleware ends the call with it at once. (The stream alone can only fail when
 * the transport pulls its next chunk, and a transport with acks pulls only after the client's.)
 *
 * @since 0.1.0
 */
export const currentWatchLagged: FiberRef.FiberRef<Deferred.Deferred<never, WatchLagged> | null> =
  globalValue(Symbol.for("@t-minus/core/RpcHandlers/currentWatchLagged"), () =>
    FiberRef.unsafeMake<Deferred.Deferred<never, WatchLagged> | null>(null)
  )

/** Runs `f` for the current caller, in its tenant. */
const asCaller = <A, E, R>(f: (caller: Access.Caller) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(Access.CurrentCaller, (caller) =>
    withTenant({ tenant: caller.tenant, maxActiveEvents: caller.maxActiveEvents })(f(caller))
  )

/** `effect`, unless a rule said no. */
const allowed = <A, E, R>(
  denied: Forbidden | null,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | Forbidden, R> => (denied === null ? effect : Effect.fail(denied))

/** A schedule request as the caller makes it: the caller is the organizer unless it names one. */
const asOrganizer = <I extends { readonly organizer?: string | undefined }>(
  caller: Access.Caller,
  input: I
): I => (input.organizer === undefined ? { ...input, organizer: caller.principal } : input)

/**
 * Every operation of `TMinusRpcs`, served by the `Coordinator` and `Runner` in context.
 *
 * @since 0.1.0
 */
export const layer = TMinusRpcs.toLayer(
  Effect.gen(function* () {
    const c = yield* Coordinator
    const runner = yield* Runner.Runner

    /** Loads the event, then runs `f` if the caller may manage it. */
    const managing = <A, E, R>(
      operation: string,
      eventId: string,
      actor: string | undefined,
      f: (caller: Access.Caller) => Effect.Effect<A, E, R>
    ) =>
      asCaller((caller) =>
        Effect.flatMap(c.get(eventId), (event) =>
          allowed(Access.manage(caller, operation, event, actor), f(caller))
        )
      )

    return {
      schedule: ({ input }) =>
        asCaller((caller) =>
          allowed(
            Access.schedule(caller, "schedule", input.organizer),
            c.schedule(asOrganizer(caller, input))
          )
        ),
      scheduleMany: ({ inputs }) =>
        asCaller((caller) =>
          allowed(
            inputs
              .map((input, i) => Access.schedule(caller, `scheduleMany[${i}]`, input.organizer))
              .find((denied) => denied !== null) ?? null,
            c.scheduleMany(inputs.map((input) => asOrganizer(caller, input)))
          )
        ),
      scheduleTimer: ({ input }) =>
        asCaller((caller) =>
          allowed(
            Access.schedule(caller, "scheduleTimer", input.organizer),
            c.scheduleTimer(asOrganizer(caller, input))
          )
        ),
      confirm: ({ agent, eventId }) =>
        asCaller((caller) => allowed(Access.respond(caller, "confirm", agent), c.confirm(eventId, agent))),
      defer: ({ agent, duration, eventId }) =>
        asCaller((caller) =>
          allowed(Access.respond(caller, "defer", agent), c.defer(eventId, agent, duration))
        ),
      decline: ({ agent, eventId }) =>
        asCaller((caller) => allowed(Access.respond(caller, "decline", agent), c.decline(eventId, agent))),
      cancel: ({ actor, eventId, ...options }) =>
        managing("cancel", eventId, actor, (caller) =>
          c.cancel(eventId, { ...options, actor: actor ?? caller.principal })
        ),
      reschedule: ({ actor, at, eventId }) =>
        managing("reschedule", eventId, actor, (caller) =>
          c.reschedule(eventId, at, { actor: actor ?? caller.principal })
        ),
      get: ({ eventId }) => asCaller(() => c.get(eventId)),
      list: (filter) => asCaller(() => Effect.flatMap(bounded(filter), c.list)),
      history: ({ eventId }) => asCaller(() => c.history(eventId)),
      listActions: (filter) => asCaller(() => Effect.flatMap(bounded(filter), c.listActions)),
      retryAction: ({ actor, key }) =>
        // An action's key is `<eventId>:<transition>:<index>`: the caller must manage that event.
        managing("retryAction", key.split(":")[0]!, actor, (caller) =>
          c.retryAction(key, { actor: actor ?? caller.principal })
        ).pipe(Effect.catchTag("EventNotFound", () => Effect.fail(new ActionNotFound({ key })))),
      createCampaign: ({ name }) =>
        asCaller((caller) => allowed(Access.organize(caller, "createCampaign"), c.createCampaign(name))),
      addToCampaign: ({ campaignId, event }) =>
        typeof event === "string"
          ? managing("addToCampaign", event, undefined, () => c.addToCampaign(campaignId, event))
          : asCaller((caller) =>
              allowed(
                Access.schedule(caller, "addToCampaign", event.organizer),
                c.addToCampaign(campaignId, asOrganizer(caller, event))
              )
            ),
      // Linking makes `to` wait on `from`, and misses it when `from` did not fire: only `to`'s
      // organizer (or an admin) may.
      link: ({ campaignId, from, to }) => managing("link", to, undefined, () => c.link(campaignId, from, to)),
      executionOrder: ({ campaignId }) => asCaller(() => c.executionOrder(campaignId)),
      getCampaign: ({ campaignId }) => asCaller(() => c.getCampaign(campaignId)),
      listCampaigns: () => asCaller(() => c.listCampaigns()),
      tick: ({ now }) =>
        asCaller((caller) =>
          allowed(
            Access.administer(caller, "tick"),
            Effect.gen(function* () {
              if (now !== undefined) {
                const clock = yield* Clock.currentTimeMillis
                const at = yield* parseTime(now, clock, { field: "now" })
                if (at > clock) {
                  return yield* new InvalidInput({
                    field: "now",
                    message: `now: a remote tick cannot run ahead of the server's clock (${new Date(clock).toISOString()})`
                  })
                }
              }
              return yield* c.tick(now)
            })
          )
        ),
      cleanup: ({ olderThan }) =>
        asCaller((caller) => allowed(Access.administer(caller, "cleanup"), c.cleanup(olderThan))),
      watch: (filter) =>
        Stream.unwrapScoped(
          Effect.gen(function* () {
            const caller = yield* Access.CurrentCaller
            // Each remote watcher has its own bounded buffer: one that does not keep up ends with
            // `WatchLagged` instead of holding the runner's tail (and everyone else) back.
            const queue = yield* Effect.acquireRelease(
              Queue.bounded<Transition>(REMOTE_WATCH_BUFFER),
              Queue.shutdown
            )
            // A server can end the whole call on lag, even while its transport waits for an ack.
            const lagged =
              (yield* FiberRef.get(currentWatchLagged)) ?? (yield* Deferred.make<never, WatchLagged>())
            const stop = yield* runner.listen(
              (t) => {
                if (!queue.unsafeOffer(t))
                  Deferred.unsafeDone(lagged, Effect.fail(new WatchLagged({ buffered: REMOTE_WATCH_BUFFER })))
              },
              { ...filter, tenant: caller.tenant }
            )
            yield* Effect.addFinalizer(() => Effect.sync(stop))
            return Stream.fromQueue(queue).pipe(Stream.interruptWhen(Deferred.await(lagged)))
          })
        ),
      waitFor: ({ eventId, timeout }) => asCaller(() => Runner.waitFor(eventId, timeout))
    }
  })
)

/**
 * Authentication that trusts every request as `caller`: for in-process use (tests, an embedded
 * server) and a server started with `--no-auth`. Never for a server others can reach.
 *
 * @since 0.1.0
 */
export const layerTrusted = (caller: Access.Caller): Layer.Layer<Authentication> =>
  Layer.succeed(
    Authentication,
    Authentication.of(() => Effect.succeed(caller))
  )
