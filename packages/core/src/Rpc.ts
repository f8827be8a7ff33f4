/**
 * The RPC contract of t-minus (SPEC 8): every coordinator operation, `watch` (a stream of
 * transitions) and `waitFor`, as an `@effect/rpc` group over the core's schemas. Servers and
 * clients both import it from `@t-minus/core/rpc`; it holds no server code.
 *
 * Payloads are checked in two steps: the schemas here check shapes (types of fields) at the wire,
 * then the coordinator checks meaning and names the field (`InvalidInput`), exactly as in
 * embedded use. Who calls (tenant, principal, role) is not in any payload: it comes from the
 * request's credentials (`authorization: Bearer <api key>`), which the `Authentication` middleware
 * turns into the `CurrentCaller` of the handlers.
 *
 * @since 0.1.0
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcMiddleware from "@effect/rpc/RpcMiddleware"
import * as Schema from "effect/Schema"
import { CurrentCaller } from "./Access.ts"
import {
  CoordinatorError,
  Forbidden,
  ResourceExhausted,
  ServerUnavailable,
  Unauthenticated,
  WatchLagged
} from "./Errors.ts"
import {
  Action,
  Campaign,
  CatchUpPolicy,
  DeliveryStatus,
  Event,
  EventStatus,
  WaitResult as EventWaitResult,
  HistoryEntry,
  MisfirePolicy,
  QueuedAction,
  TickResult,
  Transition
} from "./Event.ts"

/**
 * An instant: epoch milliseconds, ISO 8601, the time grammar (`+10m`, `in 2h`, …), or a `Date`
 * (sent as ISO 8601).
 *
 * @since 0.1.0
 */
export const TimeInput = Schema.Union(Schema.Number, Schema.String, Schema.Date)

/** A duration: milliseconds, or the time grammar (`90s`, `1h30m`). @since 0.1.0 */
export const DurationInput = Schema.Union(Schema.Number, Schema.String)

const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(schema)

/** What `schedule` takes (`Lifecycle.ScheduleInput`). @since 0.1.0 */
export const ScheduleInput = Schema.Struct({
  kind: Schema.String,
  at: optional(TimeInput),
  after: optional(
    Schema.Union(Schema.String, Schema.Struct({ eventId: Schema.String, offset: optional(DurationInput) }))
  ),
  tMinus: optional(DurationInput),
  name: optional(Schema.String),
  organizer: optional(Schema.String),
  attendees: optional(Schema.Array(Schema.String)),
  quorum: optional(Schema.Number),
  payload: optional(Schema.Unknown),
  onFire: optional(Schema.Array(Action)),
  onMiss: optional(Schema.Array(Action)),
  maxDeferrals: optional(Schema.Number),
  deadline: optional(TimeInput),
  misfire: optional(MisfirePolicy),
  recurrence: optional(
    Schema.Struct({ cron: Schema.String, tz: optional(Schema.String), catchUp: optional(CatchUpPolicy) })
  )
})

/** What `scheduleTimer` takes (`Lifecycle.TimerInput`). @since 0.1.0 */
export const TimerInput = Schema.Struct({
  at: optional(TimeInput),
  in: optional(DurationInput),
  name: optional(Schema.String),
  organizer: optional(Schema.String),
  payload: optional(Schema.Unknown),
  onFire: optional(Schema.Array(Action)),
  misfire: optional(MisfirePolicy),
  recurrence: ScheduleInput.fields.recurrence
})

/** How `waitFor` ended (`Event.WaitResult`). @since 0.1.0 */
export const WaitResult = EventWaitResult
/** @since 0.1.0 */
export type WaitResult = EventWaitResult

/**
 * What every operation can fail with: the coordinator's errors, and `Forbidden` when the caller's
 * role does not allow it (SPEC 8).
 *
 * @since 0.1.0
 */
export const RpcError = Schema.Union(CoordinatorError, Forbidden)
/** @since 0.1.0 */
export type RpcError = typeof RpcError.Type

/**
 * Runs before every request: resolves its credentials to the `CurrentCaller`, or fails with
 * `Unauthenticated`, with `ResourceExhausted` when the tenant's request rate is used up, or with
 * `ServerUnavailable` once the server is shutting down. Clients
 * implement it too (`requiredForClient`): that is where they add their API key to each request.
 *
 * @since 0.1.0
 */
export class Authentication extends RpcMiddleware.Tag<Authentication>()("Authentication", {
  provides: CurrentCaller,
  failure: Schema.Union(Unauthenticated, ResourceExhausted, ServerUnavailable),
  requiredForClient: true
}) {}

const eventOp = <const Tag extends string, Fields extends Schema.Struct.Fields>(tag: Tag, payload: Fields) =>
  Rpc.make(tag, { payload, success: Event, error: RpcError })

/**
 * Every operation, named as the coordinator (and `TMinus`) names it.
 *
 * @since 0.1.0
 */
export class TMinusRpcs extends RpcGroup.make(
  eventOp("schedule", { input: ScheduleInput }),
  Rpc.make("scheduleMany", {
    payload: { inputs: Schema.Array(ScheduleInput) },
    success: Schema.Array(Event),
    error: RpcError
  }),
  eventOp("scheduleTimer", { input: TimerInput }),
  eventOp("confirm", { eventId: Schema.String, agent: Schema.String }),
  eventOp("defer", { eventId: Schema.String, agent: Schema.String, duration: DurationInput }),
  eventOp("decline", { eventId: Schema.String, agent: Schema.String }),
  eventOp("cancel", {
    eventId: Schema.String,
    reason: optional(Schema.String),
    actor: optional(Schema.String),
    endSeries: optional(Schema.Boolean)
  }),
  eventOp("reschedule", { eventId: Schema.String, at: TimeInput, actor: optional(Schema.String) }),
  eventOp("get", { eventId: Schema.String }),
  Rpc.make("list", {
    payload: {
      status: optional(Schema.Union(EventStatus, Schema.Array(EventStatus))),
      kind: optional(Schema.String),
      attendee: optional(Schema.String),
      campaignId: optional(Schema.String),
      limit: optional(Schema.Number)
    },
    success: Schema.Array(Event),
    error: RpcError
  }),
  Rpc.make("history", {
    payload: { eventId: Schema.String },
    success: Schema.Array(HistoryEntry),
    error: RpcError
  }),
  Rpc.make("listActions", {
    payload: {
      status: optional(DeliveryStatus),
      eventId: optional(Schema.String),
      limit: optional(Schema.Number)
    },
    success: Schema.Array(QueuedAction),
    error: RpcError
  }),
  Rpc.make("retryAction", {
    payload: { key: Schema.String, actor: optional(Schema.String) },
    success: QueuedAction,
    error: RpcError
  }),
  Rpc.make("createCampaign", {
    payload: { name: Schema.String },
    success: Campaign,
    error: RpcError
  }),
  eventOp("addToCampaign", { campaignId: Schema.String, event: Schema.Union(Schema.String, ScheduleInput) }),
  Rpc.make("link", {
    payload: { campaignId: Schema.String, from: Schema.String, to: Schema.String },
    success: Campaign,
    error: RpcError
  }),
  Rpc.make("executionOrder", {
    payload: { campaignId: Schema.String },
    success: Schema.Array(Schema.String),
    error: RpcError
  }),
  Rpc.make("getCampaign", {
    payload: { campaignId: Schema.String },
    success: Campaign,
    error: RpcError
  }),
  Rpc.make("listCampaigns", { success: Schema.Array(Campaign), error: RpcError }),
  // Admins only. A remote tick may not run ahead of the server's clock; it reports the caller's
  // tenant's events. `cleanup` removes only the caller's tenant's ended events.
  Rpc.make("tick", {
    payload: { now: optional(TimeInput) },
    success: TickResult,
    error: RpcError
  }),
  Rpc.make("cleanup", {
    payload: { olderThan: optional(DurationInput) },
    success: Schema.Number,
    error: RpcError
  }),
  Rpc.make("watch", {
    payload: {
      eventId: optional(Schema.String),
      campaignId: optional(Schema.String),
      agent: optional(Schema.String),
      types: optional(Schema.Array(Transition.fields.type))
    },
    success: Transition,
    error: WatchLagged,
    stream: true
  }),
  Rpc.make("waitFor", {
    payload: { eventId: Schema.String, timeout: optional(DurationInput) },
    success: WaitResult,
    error: RpcError
  })
).middleware(Authentication) {}
