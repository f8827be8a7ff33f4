/**
 * Every rejection of SPEC 3 as a typed, serializable error. Each error carries the data a caller
 * needs (the field, the event, the status) and a message a user can act on.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * Input that breaks a rule: a bad quorum, agent id, payload, time or duration, a fire time in the
 * past, a non-positive deferral, a path or command that is not allowed. `field` names the input.
 *
 * @since 0.1.0
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  field: Schema.String,
  message: Schema.String
}) {}

/** @since 0.1.0 */
export class EventNotFound extends Schema.TaggedError<EventNotFound>()("EventNotFound", {
  eventId: Schema.String
}) {
  override get message() {
    return `event ${this.eventId} not found`
  }
}

/** @since 0.1.0 */
export class CampaignNotFound extends Schema.TaggedError<CampaignNotFound>()("CampaignNotFound", {
  campaignId: Schema.String
}) {
  override get message() {
    return `campaign ${this.campaignId} not found`
  }
}

/** @since 0.1.0 */
export class NotAnAttendee extends Schema.TaggedError<NotAnAttendee>()("NotAnAttendee", {
  eventId: Schema.String,
  agent: Schema.String
}) {
  override get message() {
    return `agent ${JSON.stringify(this.agent)} is not an attendee of event ${this.eventId}`
  }
}

/**
 * A response, cancel or reschedule on an event that already ended.
 *
 * @since 0.1.0
 */
export class EventTerminal extends Schema.TaggedError<EventTerminal>()("EventTerminal", {
  eventId: Schema.String,
  status: Schema.Literal("fired", "missed", "cancelled")
}) {
  override get message() {
    return `event ${this.eventId} is already ${this.status}; it accepts no more changes`
  }
}

/**
 * A campaign link that would close a cycle; `cycle` lists its members in order, starting with the
 * link's `from` (`from → to → … → from`).
 *
 * @since 0.1.0
 */
export class CycleDetected extends Schema.TaggedError<CycleDetected>()("CycleDetected", {
  campaignId: Schema.String,
  cycle: Schema.Array(Schema.String)
}) {
  override get message() {
    return `linking would form a cycle in campaign ${this.campaignId}: ${[...this.cycle, this.cycle[0]].join(" → ")}`
  }
}

/**
 * An event used in a campaign operation that does not belong to that campaign, or already belongs
 * to another one.
 *
 * @since 0.1.0
 */
export class CampaignMembership extends Schema.TaggedError<CampaignMembership>()("CampaignMembership", {
  campaignId: Schema.String,
  eventId: Schema.String,
  reason: Schema.Literal("not-a-member", "in-another-campaign"),
  otherCampaignId: Schema.optional(Schema.String)
}) {
  override get message() {
    return this.reason === "not-a-member"
      ? `event ${this.eventId} is not in campaign ${this.campaignId}; add it first`
      : `event ${this.eventId} already belongs to campaign ${this.otherCampaignId}; an event is in at most one campaign`
  }
}

/**
 * The store failed (disk, lock, corruption). The operation was rolled back: nothing was written.
 *
 * @since 0.1.0
 */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  message: Schema.String,
  /** The driver's error code when it has one (e.g. `SQLITE_BUSY`). */
  code: Schema.optional(Schema.String)
}) {}

/** @since 0.1.0 */
export class ActionNotFound extends Schema.TaggedError<ActionNotFound>()("ActionNotFound", {
  key: Schema.String
}) {
  override get message() {
    return `action ${this.key} not found`
  }
}

/**
 * Every error the coordinator can answer with.
 *
 * @since 0.1.0
 */
/**
 * A tenant's quota is used up (SPEC 8): `activeEvents` (scheduled events at once) or `requests`
 * (per second). `retryAfterMs` says when trying again can succeed.
 *
 * @since 0.1.0
 */
export class ResourceExhausted extends Schema.TaggedError<ResourceExhausted>()("ResourceExhausted", {
  resource: Schema.Literal("activeEvents", "requests"),
  limit: Schema.Number,
  retryAfterMs: Schema.Number
}) {
  override get message() {
    return this.resource === "activeEvents"
      ? `quota: at most ${this.limit} active events; retry after ${this.retryAfterMs} ms`
      : `quota: at most ${this.limit} requests per second; retry after ${this.retryAfterMs} ms`
  }
}

/**
 * The caller is known but may not do this (SPEC 8): a viewer writing, an agent answering for
 * another agent, a cancel or reschedule by someone other than the organizer or an admin.
 *
 * @since 0.1.0
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.operation}: forbidden: ${this.reason}`
  }
}

/**
 * No valid credentials: a missing, unknown or revoked API key.
 *
 * @since 0.1.0
 */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  reason: Schema.String
}) {
  override get message() {
    return `unauthenticated: ${this.reason}`
  }
}

/**
 * The server is shutting down (or otherwise not taking new requests): try again, on another
 * replica if there is one. Requests it had accepted still finish.
 *
 * @since 0.1.0
 */
export class ServerUnavailable extends Schema.TaggedError<ServerUnavailable>()("ServerUnavailable", {
  reason: Schema.String
}) {
  override get message() {
    return `server unavailable: ${this.reason}`
  }
}

/**
 * A remote `watch` fell too far behind (its client did not keep up): the stream ends with this
 * rather than holding transitions for it without bound. Watch again, and read `history` for what
 * happened in between.
 *
 * @since 0.1.0
 */
export class WatchLagged extends Schema.TaggedError<WatchLagged>()("WatchLagged", {
  buffered: Schema.Number
}) {
  override get message() {
    return `watch: the client fell ${this.buffered} transitions behind; watch again and read history for the gap`
  }
}

export type CoordinatorError =
  | InvalidInput
  | EventNotFound
  | CampaignNotFound
  | NotAnAttendee
  | EventTerminal
  | CycleDetected
  | CampaignMembership
  | ActionNotFound
  | ResourceExhausted
  | StorageError

/**
 * The schema of every coordinator error, for transports (RPC, CLI `--json`).
 *
 * @since 0.1.0
 */
export const CoordinatorError = Schema.Union(
  InvalidInput,
  EventNotFound,
  CampaignNotFound,
  NotAnAttendee,
  EventTerminal,
  CycleDetected,
  CampaignMembership,
  ActionNotFound,
  ResourceExhausted,
  StorageError
)
