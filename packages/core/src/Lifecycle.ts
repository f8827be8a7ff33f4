/**
 * The rules of an event's life (SPEC 3 and 4) as pure functions over plain data: validation,
 * quorum, responses, the deferral cascade and the tick transition. No store, no clock, no I/O:
 * every function takes `now` as an argument.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { EventTerminal, InvalidInput, NotAnAttendee } from "./Errors.ts"
import type {
  Action,
  Attendee,
  Event,
  EventActions,
  EventStatus,
  HistoryEntry,
  HistoryType
} from "./Event.ts"
import { Action as ActionSchema, isEventKind } from "./Event.ts"
import type { BareNumberUnit, TimeInput } from "./TimeGrammar.ts"
import { formatDuration, MAX_TIME_MS, parseDuration, parseTime } from "./TimeGrammar.ts"

/** A duration as the APIs take it: milliseconds, or a SPEC 6 string such as `5m`. @since 0.1.0 */
export type DurationInput = number | string

/** The largest payload, serialized as JSON (SPEC 2). @since 0.1.0 */
export const MAX_PAYLOAD_BYTES = 64 * 1024

/** The default number of deferral cascades an event allows. @since 0.1.0 */
export const DEFAULT_MAX_DEFERRALS = 3

/**
 * What `schedule` takes. `at` is the scheduled instant; the event fires at `at − tMinus`. Instead
 * of `at`, `after` starts the event relative to another one: it fires `offset` after that event
 * fires. `quorum` defaults to every attendee.
 *
 * @since 0.1.0
 */
export interface ScheduleInput {
  readonly kind: string
  readonly at?: TimeInput | undefined
  readonly after?:
    | string
    | { readonly eventId: string; readonly offset?: DurationInput | undefined }
    | undefined
  readonly tMinus?: DurationInput | undefined
  readonly name?: string | undefined
  readonly organizer?: string | undefined
  readonly attendees?: ReadonlyArray<string> | undefined
  readonly quorum?: number | undefined
  readonly payload?: unknown
  readonly onFire?: ReadonlyArray<Action> | undefined
  readonly onMiss?: ReadonlyArray<Action> | undefined
  readonly maxDeferrals?: number | undefined
  readonly deadline?: TimeInput | undefined
}

/**
 * What `scheduleTimer` takes: a timer has no attendees and quorum 0, so it fires unconditionally.
 *
 * @since 0.1.0
 */
export interface TimerInput {
  /** When it fires; or give `in`, a duration from now. */
  readonly at?: TimeInput | undefined
  readonly in?: DurationInput | undefined
  readonly name?: string | undefined
  readonly organizer?: string | undefined
  readonly payload?: unknown
  readonly onFire?: ReadonlyArray<Action> | undefined
}

/** The organizer recorded when a caller names none. @since 0.1.0 */
export const DEFAULT_ORGANIZER = "organizer"

/** The actor recorded for transitions made by `tick`. @since 0.1.0 */
export const ENGINE_ACTOR = "t-minus"

const invalid = (field: string, why: string) => new InvalidInput({ field, message: `${field}: ${why}` })

/**
 * Parses a duration given to an API (a number is milliseconds), naming `field` on failure.
 *
 * @since 0.1.0
 */
export const durationMs = (
  input: DurationInput,
  field: string,
  bareNumber: BareNumberUnit = "ms"
): Either.Either<number, InvalidInput> => parseDuration(input, { field, bareNumber })

const checkAgents = (agents: ReadonlyArray<string>): Either.Either<ReadonlyArray<string>, InvalidInput> => {
  if (!Array.isArray(agents)) return Either.left(invalid("attendees", "must be a list of agent ids"))
  const seen = new Set<string>()
  for (const agent of agents) {
    if (typeof agent !== "string" || agent.trim() === "") {
      return Either.left(invalid("attendees", "agent ids must be non-empty strings"))
    }
    if (seen.has(agent))
      return Either.left(invalid("attendees", `agent ${JSON.stringify(agent)} is listed twice`))
    seen.add(agent)
  }
  return Either.right(agents)
}

const isJsonValue = (value: unknown, depth: number): boolean => {
  if (depth > 256) return false
  if (value === null || typeof value === "string" || typeof value === "boolean") return true
  if (typeof value === "number") return Number.isFinite(value)
  if (Array.isArray(value)) {
    // A sparse array (`[1, , 2]`) would come back with nulls in its holes.
    return Object.keys(value).length === value.length && value.every((item) => isJsonValue(item, depth + 1))
  }
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return false
    return Object.values(value).every((item) => isJsonValue(item, depth + 1))
  }
  return false
}

/** UTF-8 byte length of a string, without encoding it. */
const utf8Length = (text: string): number => {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 2 // a surrogate pair: 2 UTF-16 units, 4 bytes
      i++
    } else if (code > 0x7ff) bytes += 2
    else if (code > 0x7f) bytes += 1
  }
  return bytes
}

/**
 * Checks that a payload is a JSON value of at most 64 KiB once serialized.
 *
 * @since 0.1.0
 */
export const checkPayload = (payload: unknown): Either.Either<unknown, InvalidInput> => {
  if (payload === undefined) return Either.right(null)
  if (!isJsonValue(payload, 0)) {
    return Either.left(
      invalid("payload", "must be a JSON value (null, boolean, finite number, string, array or plain object)")
    )
  }
  const bytes = utf8Length(JSON.stringify(payload))
  return bytes > MAX_PAYLOAD_BYTES
    ? Either.left(invalid("payload", `is ${bytes} bytes serialized; the limit is ${MAX_PAYLOAD_BYTES}`))
    : Either.right(payload)
}

const decodeAction = Schema.decodeUnknownEither(ActionSchema)

/**
 * Checks what can be checked of an action without the runner's configuration: a webhook URL is
 * http(s), a command has a name, a file path stays relative and never climbs with `..`.
 *
 * @since 0.1.0
 */
export const checkAction = (input: Action, field: string): Either.Either<Action, InvalidInput> => {
  // Callers outside TypeScript (RPC, CLI, agents) can send anything: decode before any check.
  const decoded = decodeAction(input)
  if (Either.isLeft(decoded)) {
    return Either.left(
      invalid(
        field,
        `is not a valid action (webhook, command, file_write or log): ${decoded.left.message.split("\n")[0]}`
      )
    )
  }
  const action = decoded.right
  switch (action._tag) {
    case "webhook": {
      let url: URL
      try {
        url = new URL(action.url)
      } catch {
        return Either.left(invalid(field, `webhook url ${JSON.stringify(action.url)} is not a URL`))
      }
      return url.protocol === "http:" || url.protocol === "https:"
        ? Either.right(action)
        : Either.left(invalid(field, `webhook url must be http or https, got ${url.protocol}`))
    }
    case "command":
      return /^[A-Za-z0-9._-]+$/.test(action.name)
        ? Either.right(action)
        : Either.left(
            invalid(field, `command name ${JSON.stringify(action.name)} must be an allow-listed name`)
          )
    case "file_write": {
      const path = action.path
      if (path === "" || path.startsWith("/") || path.startsWith("\\") || /^[A-Za-z]:/.test(path)) {
        return Either.left(
          invalid(field, `file path ${JSON.stringify(path)} must be relative to the configured directory`)
        )
      }
      if (path.split(/[\\/]/).includes("..")) {
        return Either.left(
          invalid(field, `file path ${JSON.stringify(path)} must not leave the configured directory`)
        )
      }
      return Either.right(action)
    }
    case "log":
      return Either.right(action)
  }
}

const NO_ACTIONS: EventActions = { onFire: [], onMiss: [] }

const checkActions = (
  onFire: ReadonlyArray<Action> | undefined,
  onMiss: ReadonlyArray<Action> | undefined
): Either.Either<EventActions, InvalidInput> =>
  (onFire === undefined || onFire.length === 0) && (onMiss === undefined || onMiss.length === 0)
    ? Either.right(NO_ACTIONS)
    : Either.all({
        onFire: Either.all((onFire ?? []).map((action, i) => checkAction(action, `onFire[${i}]`))),
        onMiss: Either.all((onMiss ?? []).map((action, i) => checkAction(action, `onMiss[${i}]`)))
      })

const checkFireAt = (fireAt: number, now: number, field: string): Either.Either<number, InvalidInput> =>
  fireAt < now
    ? Either.left(
        invalid(
          field,
          `fire time ${new Date(fireAt).toISOString()} is in the past (now is ${new Date(now).toISOString()})`
        )
      )
    : Either.right(fireAt)

/**
 * Reads a relative start: `{ eventId, offset? }`, or the SPEC 4.7 form `"<id>"` or
 * `"<id>+<duration>"` (spaces around `+` allowed).
 *
 * @since 0.1.0
 */
export const parseAfter = (
  after: NonNullable<ScheduleInput["after"]>
): Either.Either<NonNullable<Event["after"]>, InvalidInput> => {
  let eventId: unknown
  let offset: DurationInput | undefined
  if (typeof after === "string") {
    const plus = after.indexOf("+")
    eventId = (plus < 0 ? after : after.slice(0, plus)).trim()
    offset = plus < 0 ? undefined : after.slice(plus + 1).trim()
  } else {
    eventId = after.eventId
    offset = after.offset
  }
  if (typeof eventId !== "string" || eventId === "") {
    return Either.left(invalid("after", "must name the event to start after (e.g. <id> or <id>+5m)"))
  }
  const id = eventId
  if (offset === undefined) return Either.right({ eventId: id, offsetMs: 0 })
  return Either.map(durationMs(offset, "after"), (offsetMs) => ({ eventId: id, offsetMs }))
}

/**
 * Validates a schedule request and builds the new event (version 1), or names the first field
 * that is wrong. For a relative start the caller has checked that the predecessor exists.
 *
 * @since 0.1.0
 */
export const buildEvent = (
  input: ScheduleInput,
  id: string,
  now: number
): Either.Either<Event, InvalidInput> => {
  // Written with early returns rather than Either.gen: it runs once per scheduled event.
  if (typeof input.kind !== "string" || !isEventKind(input.kind)) {
    return Either.left(
      invalid(
        "kind",
        `${JSON.stringify(input.kind)} is not one of meeting, checkpoint, review, deploy, timer or custom:<name>`
      )
    )
  }
  const organizer = input.organizer ?? DEFAULT_ORGANIZER
  if (typeof organizer !== "string" || organizer.trim() === "") {
    return Either.left(invalid("organizer", "must be a non-empty agent id"))
  }
  if (input.name !== undefined && typeof input.name !== "string") {
    return Either.left(invalid("name", "must be a string"))
  }
  const agents = checkAgents(input.attendees ?? [])
  if (Either.isLeft(agents)) return Either.left(agents.left)
  const attendeeCount = agents.right.length
  const quorum = input.quorum ?? attendeeCount
  if (!Number.isInteger(quorum) || quorum < 0 || quorum > attendeeCount) {
    return Either.left(
      invalid(
        "quorum",
        `must be a whole number from 0 to ${attendeeCount} (the number of attendees), got ${quorum}`
      )
    )
  }
  const maxDeferrals = input.maxDeferrals ?? DEFAULT_MAX_DEFERRALS
  if (!Number.isInteger(maxDeferrals) || maxDeferrals < 0) {
    return Either.left(invalid("maxDeferrals", `must be a whole number ≥ 0, got ${maxDeferrals}`))
  }
  const payload = checkPayload(input.payload)
  if (Either.isLeft(payload)) return Either.left(payload.left)
  const actions = checkActions(input.onFire, input.onMiss)
  if (Either.isLeft(actions)) return Either.left(actions.left)
  const tMinus = input.tMinus === undefined ? Either.right(0) : durationMs(input.tMinus, "tMinus")
  if (Either.isLeft(tMinus)) return Either.left(tMinus.left)
  const tMinusMs = tMinus.right

  let scheduledAt: number | null = null
  let fireAt: number | null = null
  let after: Event["after"] = null
  if (input.after !== undefined) {
    if (input.at !== undefined) return Either.left(invalid("at", "give either at or after, not both"))
    const parsed = parseAfter(input.after)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    after = parsed.right
  } else {
    if (input.at === undefined) return Either.left(invalid("at", "is required (or give after)"))
    const parsed = parseTime(input.at, now, { field: "at" })
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    scheduledAt = parsed.right
    const checked = checkFireAt(scheduledAt - tMinusMs, now, "at")
    if (Either.isLeft(checked)) return Either.left(checked.left)
    fireAt = checked.right
  }
  let deadline: number | null = null
  if (input.deadline !== undefined) {
    const parsed = parseTime(input.deadline, now, { field: "deadline" })
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    deadline = parsed.right
    if (deadline < now)
      return Either.left(invalid("deadline", `${new Date(deadline).toISOString()} is in the past`))
    if (fireAt !== null && deadline < fireAt) {
      return Either.left(
        invalid(
          "deadline",
          `${new Date(deadline).toISOString()} is before the fire time ${new Date(fireAt).toISOString()}`
        )
      )
    }
  }
  const at = new Date(now)
  const event: Event = {
    id,
    kind: input.kind,
    name: input.name ?? null,
    organizer,
    attendees: agents.right.map((agent) => ({ agent, status: "pending", respondedAt: null })),
    quorum,
    scheduledAt: scheduledAt === null ? null : new Date(scheduledAt),
    tMinusMs,
    fireAt: fireAt === null ? null : new Date(fireAt),
    dueAt: null,
    status: "scheduled",
    payload: payload.right,
    actions: actions.right,
    maxDeferrals,
    deferralsUsed: 0,
    deadline: deadline === null ? null : new Date(deadline),
    after,
    campaignId: null,
    createdAt: at,
    updatedAt: at,
    firedAt: null,
    missedAt: null,
    cancelledAt: null,
    reason: null,
    version: 1
  }
  return Either.right(withDueAt(event, now))
}

/** `in` as an instant relative to now, or the unparsable duration itself (rejected as field `in`). */
const timerIn = (duration: DurationInput): TimeInput =>
  Either.match(durationMs(duration, "in"), {
    onLeft: () => `+${String(duration)}`,
    onRight: (ms) => `+${ms}ms`
  })

/**
 * A timer as a schedule request: kind `timer`, no attendees, quorum 0.
 *
 * @since 0.1.0
 */
export const timerRequest = (input: TimerInput): ScheduleInput => ({
  kind: "timer",
  at: input.in === undefined ? input.at : timerIn(input.in),
  name: input.name,
  organizer: input.organizer,
  payload: input.payload,
  onFire: input.onFire,
  attendees: [],
  quorum: 0
})

/** @since 0.1.0 */
export const countWith = (event: Event, statuses: ReadonlyArray<Attendee["status"]>): number =>
  event.attendees.reduce((n, a) => (statuses.includes(a.status) ? n + 1 : n), 0)

/** How many attendees have confirmed. @since 0.1.0 */
export const confirmedCount = (event: Event): number => countWith(event, ["confirmed"])

/** Whether enough attendees have confirmed. @since 0.1.0 */
export const quorumMet = (event: Event): boolean => confirmedCount(event) >= event.quorum

/**
 * Whether the quorum can still be met: confirmed + pending + deferred ≥ quorum (SPEC 4.3).
 *
 * @since 0.1.0
 */
export const quorumReachable = (event: Event): boolean =>
  countWith(event, ["confirmed", "pending", "deferred"]) >= event.quorum

/**
 * The next instant `tick` must look at an event: its fire time, or now when its quorum became
 * unreachable (it is missed at the next tick, not at its fire time).
 *
 * @since 0.1.0
 */
export const nextDueAt = (event: Event, now: number): number | null => {
  if (event.status !== "scheduled" || event.fireAt === null) return null
  const fireAt = event.fireAt.getTime()
  return quorumReachable(event) ? fireAt : Math.min(fireAt, now)
}

/** @since 0.1.0 */
export const withDueAt = (event: Event, now: number): Event => {
  const dueAt = nextDueAt(event, now)
  return { ...event, dueAt: dueAt === null ? null : new Date(dueAt) }
}

const touch = (event: Event, now: number): Event => ({
  ...event,
  updatedAt: new Date(now),
  version: event.version + 1
})

/** @since 0.1.0 */
export const historyEntry = (
  event: Event,
  type: HistoryType,
  actor: string,
  now: number,
  detail: Record<string, unknown> = {}
): HistoryEntry => ({ eventId: event.id, at: new Date(now), type, actor, detail })

/**
 * Fails when an event no longer accepts changes.
 *
 * @since 0.1.0
 */
export const requireScheduled = (event: Event): Either.Either<Event, EventTerminal> =>
  event.status === "scheduled"
    ? Either.right(event)
    : Either.left(new EventTerminal({ eventId: event.id, status: event.status }))

/** @since 0.1.0 */
export type Response =
  | { readonly status: "confirmed" }
  | { readonly status: "declined" }
  | { readonly status: "deferred"; readonly deferMs: number }

/**
 * Records an attendee's response (SPEC 4.1–4.3): the latest response wins, confirming twice is a
 * no-op. Nothing moves yet; a decline that makes the quorum unreachable makes the event due now.
 * Returns the unchanged event when nothing changed.
 *
 * @since 0.1.0
 */
export const respond = (
  event: Event,
  agent: string,
  response: Response,
  now: number
): Either.Either<
  { readonly event: Event; readonly history: ReadonlyArray<HistoryEntry> },
  EventTerminal | NotAnAttendee | InvalidInput
> =>
  Either.gen(function* () {
    yield* requireScheduled(event)
    const index = event.attendees.findIndex((a) => a.agent === agent)
    if (index < 0) return yield* Either.left(new NotAnAttendee({ eventId: event.id, agent }))
    if (response.status === "deferred" && (!Number.isInteger(response.deferMs) || response.deferMs <= 0)) {
      return yield* Either.left(
        invalid("duration", `a deferral must be longer than zero, got ${response.deferMs}ms`)
      )
    }
    const current = event.attendees[index]!
    const unchanged =
      current.status === response.status &&
      (response.status !== "deferred" || current.deferMs === response.deferMs)
    if (unchanged) return { event, history: [] }
    const attendee: Attendee =
      response.status === "deferred"
        ? { agent, status: "deferred", respondedAt: new Date(now), deferMs: response.deferMs }
        : { agent, status: response.status, respondedAt: new Date(now) }
    const attendees = event.attendees.with(index, attendee)
    const next = withDueAt(touch({ ...event, attendees }, now), now)
    const detail: Record<string, unknown> =
      response.status === "deferred" ? { deferMs: response.deferMs } : {}
    if (!quorumReachable(next)) detail.quorumUnreachable = true
    return { event: next, history: [historyEntry(next, response.status, agent, now, detail)] }
  })

/** The state of one predecessor of an event (a campaign link or a relative start). @since 0.1.0 */
export interface Predecessor {
  readonly id: string
  readonly status: EventStatus
}

/**
 * What `tick` does with one due event.
 *
 * @since 0.1.0
 */
export type TickStep =
  | { readonly _tag: "Fire" }
  | { readonly _tag: "Cascade"; readonly shiftMs: number }
  | { readonly _tag: "Miss"; readonly reason: string }
  | { readonly _tag: "Wait" }
  | { readonly _tag: "NotDue" }

/**
 * The tick transition (SPEC 4.4 and 4.7) for one scheduled event at `now`, given the status of
 * its predecessors.
 *
 * @since 0.1.0
 */
export const decide = (event: Event, predecessors: ReadonlyArray<Predecessor>, now: number): TickStep => {
  const failed = predecessors.find((p) => p.status === "missed" || p.status === "cancelled")
  if (failed !== undefined) return { _tag: "Miss", reason: `upstream ${failed.id}` }
  if (event.fireAt === null) return { _tag: "Wait" }
  if (!quorumReachable(event)) {
    return {
      _tag: "Miss",
      reason: `quorum unreachable (${countWith(event, ["confirmed", "pending", "deferred"])} of ${event.quorum} needed can still confirm)`
    }
  }
  if (event.fireAt.getTime() > now) return { _tag: "NotDue" }
  if (predecessors.some((p) => p.status !== "fired")) return { _tag: "Wait" }
  if (quorumMet(event)) return { _tag: "Fire" }
  let shiftMs = 0
  for (const a of event.attendees)
    if (a.status === "deferred" && (a.deferMs ?? 0) > shiftMs) shiftMs = a.deferMs ?? 0
  if (shiftMs > 0 && event.deferralsUsed < event.maxDeferrals) {
    const newFireAt = event.fireAt.getTime() + shiftMs
    const limit = event.deadline === null ? MAX_TIME_MS : Math.min(event.deadline.getTime(), MAX_TIME_MS)
    if (newFireAt <= limit) return { _tag: "Cascade", shiftMs }
  }
  return { _tag: "Miss", reason: `quorum not met (${confirmedCount(event)}/${event.quorum} confirmed)` }
}

/**
 * The outcome of applying a tick step: the new event, its history, and what the tick reports.
 *
 * @since 0.1.0
 */
export interface StepOutcome {
  readonly event: Event
  readonly history: ReadonlyArray<HistoryEntry>
  readonly report: "fired" | "missed" | "deferred" | null
}

/**
 * Applies a tick step to an event at `now`.
 *
 * @since 0.1.0
 */
export const applyStep = (event: Event, step: TickStep, now: number): StepOutcome => {
  switch (step._tag) {
    case "Fire": {
      const fired: Event = { ...touch(event, now), status: "fired", firedAt: new Date(now), dueAt: null }
      const lateByMs = event.fireAt === null ? 0 : Math.max(0, now - event.fireAt.getTime())
      return {
        event: fired,
        history: [
          historyEntry(fired, "fired", ENGINE_ACTOR, now, {
            lateByMs,
            confirmed: confirmedCount(event),
            quorum: event.quorum
          })
        ],
        report: "fired"
      }
    }
    case "Miss":
      return missEvent(event, step.reason, now)
    case "Cascade": {
      const fireAt = event.fireAt!.getTime() + step.shiftMs
      const attendees = event.attendees.map(
        (a): Attendee =>
          a.status === "deferred" ? { agent: a.agent, status: "pending", respondedAt: a.respondedAt } : a
      )
      const moved: Event = {
        ...touch(event, now),
        attendees,
        fireAt: new Date(fireAt),
        dueAt: new Date(fireAt),
        scheduledAt: new Date(fireAt + event.tMinusMs),
        deferralsUsed: event.deferralsUsed + 1
      }
      return {
        event: moved,
        history: [
          historyEntry(moved, "cascaded", ENGINE_ACTOR, now, {
            shiftMs: step.shiftMs,
            shift: formatDuration(step.shiftMs),
            fireAt: new Date(fireAt).toISOString(),
            deferralsUsed: moved.deferralsUsed
          })
        ],
        report: "deferred"
      }
    }
    case "Wait":
      return { event: { ...event, dueAt: null }, history: [], report: null }
    case "NotDue":
      return { event: withDueAt(event, now), history: [], report: null }
  }
}

/**
 * Marks an event missed: pending attendees become `missed`.
 *
 * @since 0.1.0
 */
export const missEvent = (event: Event, reason: string, now: number): StepOutcome => {
  const attendees = event.attendees.map(
    (a): Attendee =>
      a.status === "pending" ? { agent: a.agent, status: "missed", respondedAt: a.respondedAt } : a
  )
  const missed: Event = {
    ...touch(event, now),
    attendees,
    status: "missed",
    missedAt: new Date(now),
    dueAt: null,
    reason
  }
  return {
    event: missed,
    history: [historyEntry(missed, "missed", ENGINE_ACTOR, now, { reason })],
    report: "missed"
  }
}

/**
 * Cancels a scheduled event (SPEC 4.5).
 *
 * @since 0.1.0
 */
export const cancel = (
  event: Event,
  actor: string,
  reason: string | undefined,
  now: number
): Either.Either<StepOutcome, EventTerminal | InvalidInput> =>
  reason !== undefined && typeof reason !== "string"
    ? Either.left(invalid("reason", "must be a string"))
    : Either.map(requireScheduled(event), (e) => {
        const cancelled: Event = {
          ...touch(e, now),
          status: "cancelled",
          cancelledAt: new Date(now),
          dueAt: null,
          reason: reason ?? `cancelled by ${actor}`
        }
        return {
          event: cancelled,
          history: [historyEntry(cancelled, "cancelled", actor, now, { reason: cancelled.reason })],
          report: null
        }
      })

/**
 * Moves a scheduled event (SPEC 4.5): `at` is its new scheduled instant, so it fires at
 * `at − tMinus`; responses are kept. The new fire time may not be in the past or past the
 * deadline.
 *
 * @since 0.1.0
 */
export const reschedule = (
  event: Event,
  at: TimeInput,
  actor: string,
  now: number
): Either.Either<StepOutcome, EventTerminal | InvalidInput> =>
  Either.gen(function* () {
    yield* requireScheduled(event)
    const scheduledAt = yield* parseTime(at, now, { field: "at" })
    const fireAt = yield* checkFireAt(scheduledAt - event.tMinusMs, now, "at")
    if (event.deadline !== null && fireAt > event.deadline.getTime()) {
      return yield* Either.left(
        invalid(
          "at",
          `fire time ${new Date(fireAt).toISOString()} is past the deadline ${event.deadline.toISOString()}`
        )
      )
    }
    const moved = withDueAt(
      {
        ...touch(event, now),
        scheduledAt: new Date(scheduledAt),
        fireAt: new Date(fireAt),
        after: event.after
      },
      now
    )
    return {
      event: moved,
      history: [
        historyEntry(moved, "rescheduled", actor, now, {
          from: event.fireAt?.toISOString() ?? null,
          fireAt: new Date(fireAt).toISOString()
        })
      ],
      report: null
    }
  })

/**
 * Sets the fire time of a relative start once its predecessor has fired at `firedAt`, or, for a
 * campaign dependent that was waiting, makes it due again at its own fire time.
 *
 * @since 0.1.0
 */
export const release = (event: Event, predecessorId: string, firedAt: number, now: number): StepOutcome => {
  if (event.after !== null && event.after.eventId === predecessorId && event.fireAt === null) {
    const fireAt = firedAt + event.after.offsetMs
    const released = withDueAt(
      { ...touch(event, now), fireAt: new Date(fireAt), scheduledAt: new Date(fireAt + event.tMinusMs) },
      now
    )
    return {
      event: released,
      history: [
        historyEntry(released, "released", ENGINE_ACTOR, now, {
          after: predecessorId,
          fireAt: new Date(fireAt).toISOString()
        })
      ],
      report: null
    }
  }
  return { event: withDueAt(event, now), history: [], report: null }
}

/**
 * A dependent of a predecessor that was missed or cancelled becomes due now, so the next tick
 * misses it with reason `upstream <id>`.
 *
 * @since 0.1.0
 */
export const doom = (event: Event, now: number): Event =>
  event.status === "scheduled" ? { ...event, dueAt: new Date(now) } : event

/** Orders events by (fireAt, id), events without a fire time last. @since 0.1.0 */
export const byFireTime = (a: Event, b: Event): number => {
  const fa = a.fireAt?.getTime() ?? a.dueAt?.getTime() ?? Number.MAX_SAFE_INTEGER
  const fb = b.fireAt?.getTime() ?? b.dueAt?.getTime() ?? Number.MAX_SAFE_INTEGER
  return fa !== fb ? fa - fb : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
