/**
 * The handlers of the RPC contract (`./Rpc.ts`) over the coordinator and the runner in context:
 * what a server mounts. Who may call what (SPEC 8) is checked before these run.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { Coordinator } from "./Coordinator.ts"
import type { Event } from "./Event.ts"
import * as Lifecycle from "./Lifecycle.ts"
import { TMinusRpcs, type WaitResult } from "./Rpc.ts"
import { Runner } from "./Runner.ts"

const ended = (event: Event): WaitResult | null =>
  event.status === "scheduled" ? null : { outcome: event.status, event }

/**
 * Every operation of `TMinusRpcs`, served by the `Coordinator` and `Runner` in context.
 *
 * @since 0.1.0
 */
export const layer = TMinusRpcs.toLayer(
  Effect.gen(function* () {
    const c = yield* Coordinator
    const runner = yield* Runner
    return {
      schedule: ({ input }) => c.schedule(input),
      scheduleMany: ({ inputs }) => c.scheduleMany(inputs),
      scheduleTimer: ({ input }) => c.scheduleTimer(input),
      confirm: ({ agent, eventId }) => c.confirm(eventId, agent),
      defer: ({ agent, duration, eventId }) => c.defer(eventId, agent, duration),
      decline: ({ agent, eventId }) => c.decline(eventId, agent),
      cancel: ({ eventId, ...options }) => c.cancel(eventId, options),
      reschedule: ({ at, eventId, ...options }) => c.reschedule(eventId, at, options),
      get: ({ eventId }) => c.get(eventId),
      list: (filter) => c.list(filter),
      history: ({ eventId }) => c.history(eventId),
      listActions: (filter) => c.listActions(filter),
      retryAction: ({ key, ...options }) => c.retryAction(key, options),
      createCampaign: ({ name }) => c.createCampaign(name),
      addToCampaign: ({ campaignId, event }) => c.addToCampaign(campaignId, event),
      link: ({ campaignId, from, to }) => c.link(campaignId, from, to),
      executionOrder: ({ campaignId }) => c.executionOrder(campaignId),
      getCampaign: ({ campaignId }) => c.getCampaign(campaignId),
      listCampaigns: () => c.listCampaigns(),
      watch: (filter) => runner.watch(filter),
      waitFor: ({ eventId, timeout }) =>
        Effect.gen(function* () {
          const timeoutMs = timeout === undefined ? null : yield* Lifecycle.durationMs(timeout, "timeout")
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
    }
  })
)
