/**
 * The event, its attendees, actions and history (SPEC 2), as Effect schemas. The schemas are the
 * single source of truth: the store, the RPC contract and the CLI's `--json` output all use them.
 * Instants are `Date`s in memory and ISO 8601 UTC strings when encoded.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The tenant of everything made without one: embedded use, and a server without API keys.
 *
 * @since 0.1.0
 */
export const DEFAULT_TENANT = "default"

/** The kinds built into t-minus; anything else is `custom:<name>`. @since 0.1.0 */
export const BUILTIN_KINDS = ["meeting", "checkpoint", "review", "deploy", "timer"] as const

/**
 * `meeting`, `checkpoint`, `review`, `deploy`, `timer`, or `custom:<name>`, stored and returned
 * exactly as given (case kept, never re-prefixed).
 *
 * @since 0.1.0
 */
export const isEventKind = (kind: string): boolean =>
  (BUILTIN_KINDS as ReadonlyArray<string>).includes(kind) || /^custom:\S+$/.test(kind)

/** @since 0.1.0 */
export const EventKind = Schema.String.pipe(
  Schema.filter(
    (kind) => isEventKind(kind) || `kind must be one of ${BUILTIN_KINDS.join(", ")} or custom:<name>`
  )
)
/** @since 0.1.0 */
export type EventKind = typeof EventKind.Type

/** @since 0.1.0 */
export const EventStatus = Schema.Literal("scheduled", "fired", "missed", "cancelled")
/** @since 0.1.0 */
export type EventStatus = typeof EventStatus.Type

/** @since 0.1.0 */
export const ResponseStatus = Schema.Literal("pending", "confirmed", "deferred", "declined", "missed")
/** @since 0.1.0 */
export type ResponseStatus = typeof ResponseStatus.Type

/**
 * One attendee and its latest response. `deferMs` is set only while the status is `deferred`.
 *
 * @since 0.1.0
 */
export const Attendee = Schema.Struct({
  agent: Schema.String,
  status: ResponseStatus,
  respondedAt: Schema.NullOr(Schema.Date),
  deferMs: Schema.optional(Schema.Int)
})
/** @since 0.1.0 */
export type Attendee = typeof Attendee.Type

/** POST a signed JSON body to `url` (SPEC 5). @since 0.1.0 */
export const WebhookAction = Schema.TaggedStruct("webhook", {
  url: Schema.String,
  secret: Schema.optional(Schema.String)
})

/** Run a command by its allow-listed name, never a raw shell string (SPEC 5). @since 0.1.0 */
export const CommandAction = Schema.TaggedStruct("command", {
  name: Schema.String,
  args: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
})

/** Write templated content to a path under the configured directory (SPEC 5). @since 0.1.0 */
export const FileWriteAction = Schema.TaggedStruct("file_write", {
  path: Schema.String,
  content: Schema.String
})

/** Write a line to the log. @since 0.1.0 */
export const LogAction = Schema.TaggedStruct("log", {
  message: Schema.optional(Schema.String)
})

/** @since 0.1.0 */
export const Action = Schema.Union(WebhookAction, CommandAction, FileWriteAction, LogAction)
/** @since 0.1.0 */
export type Action = typeof Action.Type

/** @since 0.1.0 */
export const EventActions = Schema.Struct({
  onFire: Schema.Array(Action),
  onMiss: Schema.Array(Action)
})
/** @since 0.1.0 */
export type EventActions = typeof EventActions.Type

/**
 * A relative start: the event's fire time is set to `firedAt(eventId) + offsetMs` when that
 * predecessor fires.
 *
 * @since 0.1.0
 */
export const RelativeStart = Schema.Struct({
  eventId: Schema.String,
  offsetMs: Schema.Int
})
/** @since 0.1.0 */
export type RelativeStart = typeof RelativeStart.Type

/**
 * What happens to an event whose fire time passed while no runner was running (SPEC 4.8): `fire`
 * it late (the default), or `miss` it once it is later than the runner's misfire grace.
 *
 * @since 0.1.0
 */
export const MisfirePolicy = Schema.Literal("fire", "miss")
/** @since 0.1.0 */
export type MisfirePolicy = typeof MisfirePolicy.Type

/**
 * After downtime, which missed occurrences of a series run (SPEC 4.6): none (`skip`), the latest
 * one (`once`, the default) or every one in order (`all`).
 *
 * @since 0.1.0
 */
export const CatchUpPolicy = Schema.Literal("skip", "once", "all")
/** @since 0.1.0 */
export type CatchUpPolicy = typeof CatchUpPolicy.Type

/**
 * The recurrence of an event in a series: the cron expression and zone it repeats on, and which
 * slot this occurrence stands for (`occurrenceAt`, the wall-clock slot as an instant, unmoved by
 * deferral cascades). `seriesId` is the id of the first occurrence.
 *
 * @since 0.1.0
 */
export const Recurrence = Schema.Struct({
  cron: Schema.String,
  tz: Schema.String,
  catchUp: CatchUpPolicy,
  seriesId: Schema.String,
  occurrenceAt: Schema.Date
})
/** @since 0.1.0 */
export type Recurrence = typeof Recurrence.Type

/**
 * An event. `fireAt = scheduledAt − tMinusMs`; both are `null` only for a relative start whose
 * predecessor has not fired yet. `dueAt` is the next instant at which `tick` must look at the
 * event (its fire time, earlier when it can no longer fire, `null` while it waits on a
 * predecessor or once it is terminal).
 *
 * @since 0.1.0
 */
export const Event = Schema.Struct({
  id: Schema.String,
  /** Whose event it is (SPEC 8); embedded use keeps everything in `DEFAULT_TENANT`. */
  tenant: Schema.String,
  kind: EventKind,
  name: Schema.NullOr(Schema.String),
  organizer: Schema.String,
  attendees: Schema.Array(Attendee),
  quorum: Schema.Int,
  scheduledAt: Schema.NullOr(Schema.Date),
  tMinusMs: Schema.Int,
  fireAt: Schema.NullOr(Schema.Date),
  dueAt: Schema.NullOr(Schema.Date),
  status: EventStatus,
  payload: Schema.Unknown,
  actions: EventActions,
  maxDeferrals: Schema.Int,
  deferralsUsed: Schema.Int,
  deadline: Schema.NullOr(Schema.Date),
  after: Schema.NullOr(RelativeStart),
  campaignId: Schema.NullOr(Schema.String),
  misfire: MisfirePolicy,
  recurrence: Schema.NullOr(Recurrence),
  createdAt: Schema.Date,
  updatedAt: Schema.Date,
  firedAt: Schema.NullOr(Schema.Date),
  missedAt: Schema.NullOr(Schema.Date),
  cancelledAt: Schema.NullOr(Schema.Date),
  reason: Schema.NullOr(Schema.String),
  version: Schema.Int
})
/** @since 0.1.0 */
export type Event = typeof Event.Type

/** @since 0.1.0 */
export const HistoryType = Schema.Literal(
  "scheduled",
  "confirmed",
  "deferred",
  "declined",
  "cascaded",
  "released",
  "fired",
  "missed",
  "cancelled",
  "rescheduled",
  "campaign_added",
  "action_delivered",
  "action_failed",
  "action_dead",
  "action_retried"
)
/** @since 0.1.0 */
export type HistoryType = typeof HistoryType.Type

/**
 * One entry of an event's append-only history: what happened, when, and who did it.
 *
 * @since 0.1.0
 */
export const HistoryEntry = Schema.Struct({
  eventId: Schema.String,
  at: Schema.Date,
  type: HistoryType,
  actor: Schema.String,
  detail: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
/** @since 0.1.0 */
export type HistoryEntry = typeof HistoryEntry.Type

/**
 * One change as `watch` streams it: a history entry with its place in the log (`seq`, increasing
 * in commit order) and what the filters need (the event's campaign and attendees).
 *
 * @since 0.1.0
 */
export const Transition = Schema.Struct({
  seq: Schema.Number,
  eventId: Schema.String,
  type: HistoryType,
  at: Schema.Date,
  actor: Schema.String,
  detail: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  campaignId: Schema.NullOr(Schema.String),
  agents: Schema.Array(Schema.String),
  /** The event's tenant (`DEFAULT_TENANT` once the event was cleaned up). */
  tenant: Schema.String
})
/** @since 0.1.0 */
export type Transition = typeof Transition.Type

/** Which transition queued an action: the event firing or being missed. @since 0.1.0 */
export const ActionTransition = Schema.Literal("fire", "miss")
/** @since 0.1.0 */
export type ActionTransition = typeof ActionTransition.Type

/**
 * Where a queued action stands: waiting for (another) attempt, delivered, or dead-lettered after
 * its last attempt (retried only by hand).
 *
 * @since 0.1.0
 */
export const DeliveryStatus = Schema.Literal("pending", "delivered", "dead")
/** @since 0.1.0 */
export type DeliveryStatus = typeof DeliveryStatus.Type

/**
 * An action in the outbox (SPEC 5): written in the transaction of the transition that caused it,
 * then delivered at least once. `key` (`<eventId>:<transition>:<index>`) is the idempotency key,
 * the same on every attempt. `nextAttemptAt` is set while it is pending.
 *
 * @since 0.1.0
 */
export const QueuedAction = Schema.Struct({
  key: Schema.String,
  eventId: Schema.String,
  transition: ActionTransition,
  index: Schema.Int,
  action: Action,
  status: DeliveryStatus,
  attempts: Schema.Int,
  occurredAt: Schema.Date,
  nextAttemptAt: Schema.NullOr(Schema.Date),
  lastError: Schema.NullOr(Schema.String),
  updatedAt: Schema.Date
})
/** @since 0.1.0 */
export type QueuedAction = typeof QueuedAction.Type

/**
 * What one `tick` did, each list ordered by (fireAt, id).
 *
 * @since 0.1.0
 */
export const TickResult = Schema.Struct({
  fired: Schema.Array(Schema.String),
  missed: Schema.Array(Schema.String),
  deferred: Schema.Array(Schema.String)
})
/** @since 0.1.0 */
export type TickResult = typeof TickResult.Type

/**
 * How a wait for an event ended: its terminal state, or `timeout` with the event as it stands.
 *
 * @since 0.1.0
 */
export const WaitResult = Schema.Struct({
  outcome: Schema.Literal("fired", "missed", "cancelled", "timeout"),
  event: Event
})
/** @since 0.1.0 */
export type WaitResult = typeof WaitResult.Type

/**
 * A campaign: a dependency DAG of events. `events` keeps the order in which they were added (the
 * tie-breaker of the execution order); `dependencies` holds `[from, to]` pairs.
 *
 * @since 0.1.0
 */
export const Campaign = Schema.Struct({
  id: Schema.String,
  tenant: Schema.String,
  name: Schema.String,
  events: Schema.Array(Schema.String),
  dependencies: Schema.Array(Schema.Tuple(Schema.String, Schema.String)),
  createdAt: Schema.Date
})
/** @since 0.1.0 */
export type Campaign = typeof Campaign.Type
