/**
 * The rules of an event's life (SPEC 3 and 4) as pure functions over plain data: validation,
 * quorum, responses, the deferral cascade and the tick transition. No store, no clock, no I/O:
 * every function takes `now` as an argument.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Cron from "./Cron.ts"
import { EventTerminal, InvalidInput, NotAnAttendee } from "./Errors.ts"
import type {
  Action,
  Attendee,
  CatchUpPolicy,
  Event,
  EventActions,
  EventStatus,
  HistoryEntry,
  HistoryType,
  MisfirePolicy,
  QueuedAction,
  Recurrence
} from "./Event.ts"
import { Action as ActionSchema, DEFAULT_TENANT, isEventKind } from "./Event.ts"
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
  /** What a runner does when the fire time passed while it was down; default `fire`. */
  readonly misfire?: MisfirePolicy | undefined
  /** Repeat on a cron schedule; the first occurrence is the first slot at or after `at` (default now). */
  readonly recurrence?: RecurrenceInput | undefined
}

/**
 * A recurrence as `schedule` takes it: a cron expression of 5 or 6 fields, an IANA time zone
 * (default UTC), and the catch-up policy after downtime (default `once`).
 *
 * @since 0.1.0
 */
export interface RecurrenceInput {
  readonly cron: string
  readonly tz?: string | undefined
  readonly catchUp?: CatchUpPolicy | undefined
}

/** How late an event with `misfire: "miss"` may still fire, unless the runner says otherwise. @since 0.1.0 */
export const DEFAULT_MISFIRE_GRACE_MS = 60_000

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
  readonly misfire?: MisfirePolicy | undefined
  readonly recurrence?: RecurrenceInput | undefined
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
 * Whether a webhook secret follows the Standard Webhooks convention: `whsec_` (optional) and
 * base64 whose bytes are the HMAC key, which is what independent verifiers expect.
 *
 * @since 0.1.0
 */
export const isWebhookSecret = (secret: string): boolean => {
  const body = secret.startsWith("whsec_") ? secret.slice(6) : secret
  return body.length >= 4 && body.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(body)
}

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
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        return Either.left(invalid(field, `webhook url must be http or https, got ${url.protocol}`))
      }
      return action.secret === undefined || isWebhookSecret(action.secret)
        ? Either.right(action)
        : Either.left(
            invalid(
              `${field}.secret`,
              "must be a Standard Webhooks secret: whsec_ followed by base64 (e.g. whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw)"
            )
          )
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

const CATCH_UP: ReadonlyArray<CatchUpPolicy> = ["skip", "once", "all"]

/** Validates a recurrence and finds its first slot at or after `from`. */
const firstOccurrence = (
  input: RecurrenceInput,
  from: number,
  seriesId: string
): Either.Either<Recurrence, InvalidInput> => {
  if (typeof input !== "object" || input === null || typeof input.cron !== "string") {
    return Either.left(invalid("recurrence.cron", 'must be a cron expression such as "30 2 * * *"'))
  }
  const catchUp = input.catchUp ?? "once"
  if (!CATCH_UP.includes(catchUp)) {
    return Either.left(
      invalid("recurrence.catchUp", `must be skip, once or all, got ${JSON.stringify(input.catchUp)}`)
    )
  }
  if (input.tz !== undefined && typeof input.tz !== "string") {
    return Either.left(invalid("recurrence.tz", "must be an IANA time zone name such as Europe/Berlin"))
  }
  return Either.flatMap(Cron.parse(input.cron, input.tz ?? "UTC"), (schedule) => {
    const slot = Cron.next(schedule, from - 1)
    return slot === null || slot > MAX_TIME_MS
      ? Either.left(invalid("recurrence.cron", `${JSON.stringify(input.cron)} never occurs`))
      : Either.right({
          cron: schedule.expression,
          tz: schedule.tz,
          catchUp,
          seriesId,
          occurrenceAt: new Date(slot)
        })
  })
}

/**
 * The most catch-up occurrences `catchUp: "all"` creates after one downtime (SPEC 4.6): only the
 * latest this many missed slots run, so a per-second schedule that was down for a day does not
 * write 86 400 events in one transaction. The first of them records the skipped slots in history.
 *
 * @since 0.1.0
 */
export const MAX_CATCH_UP_OCCURRENCES = 1_000

/** How many skipped slots are counted for that history entry; past it the entry gives a lower bound. */
const MAX_SKIPPED_COUNTED = 10 * MAX_CATCH_UP_OCCURRENCES

/** The slots a capped `catchUp: "all"` skipped: first and last slot, and how many. */
interface SkippedSlots {
  readonly from: number
  readonly until: number
  readonly count: number
  /** `count` is a lower bound: counting stopped at `MAX_SKIPPED_COUNTED`. */
  readonly atLeast: boolean
}

/** How many slots fall in (after, before), counting at most `limit`. */
const countSlots = (schedule: Cron.CronSchedule, after: number, before: number, limit: number): number => {
  let count = 0
  for (let slot = Cron.next(schedule, after); slot !== null && slot < before && count < limit; count++)
    slot = Cron.next(schedule, slot)
  return count
}

/**
 * `catchUp: "all"` from the first missed slot `next`: every missed slot in (after, lastDue), or
 * only the latest `MAX_CATCH_UP_OCCURRENCES` of them when there are more.
 */
const catchUpAll = (
  schedule: Cron.CronSchedule,
  event: Event,
  after: number,
  next: number,
  lastDue: number,
  now: number
): { readonly slot: number; readonly skipped: SkippedSlots | null } => {
  // A run of catch-ups was capped where it began and only shrinks, so an occurrence created at
  // this very instant (a link of that run) need not count again.
  if (event.createdAt.getTime() >= now) return { slot: next, skipped: null }
  if (countSlots(schedule, after, lastDue, MAX_CATCH_UP_OCCURRENCES + 1) <= MAX_CATCH_UP_OCCURRENCES) {
    return { slot: next, skipped: null }
  }
  let first = lastDue
  for (let i = 0; i < MAX_CATCH_UP_OCCURRENCES; i++) first = Cron.latest(schedule, after, first - 1) ?? first
  const count = countSlots(schedule, after, first, MAX_SKIPPED_COUNTED)
  return {
    slot: first,
    skipped: {
      from: next,
      until: Cron.latest(schedule, after, first - 1) ?? next,
      count,
      atLeast: count >= MAX_SKIPPED_COUNTED
    }
  }
}

/** The next slot of a series and, for a capped catch-up, the slots it skipped. */
const nextSlot = (
  event: Event,
  now: number,
  readyAt: number | undefined
): { readonly slot: number; readonly skipped: SkippedSlots | null } | null => {
  const recurrence = event.recurrence
  if (recurrence === null) return null
  const parsed = Cron.parse(recurrence.cron, recurrence.tz)
  if (Either.isLeft(parsed)) return null
  const schedule = parsed.right
  // Slots up to the instant this occurrence was due to run were not missed: a deferral, a
  // reschedule or a wait for a predecessor moved it there. Later slots passed while nothing ran.
  const dueAt = Math.max(event.fireAt?.getTime() ?? now, readyAt ?? Number.NEGATIVE_INFINITY)
  const after = Math.max(recurrence.occurrenceAt.getTime(), Math.min(dueAt, now) + event.tMinusMs)
  const next = Cron.next(schedule, after)
  if (next === null || next > MAX_TIME_MS) return null
  // A slot is in the past when its fire time (slot − tMinus) is.
  const lastDue = now + event.tMinusMs
  if (next >= lastDue) return { slot: next, skipped: null }
  switch (recurrence.catchUp) {
    case "all":
      return catchUpAll(schedule, event, after, next, lastDue, now)
    case "once":
      return { slot: Cron.latest(schedule, after, lastDue) ?? next, skipped: null }
    case "skip": {
      const ahead = Cron.next(schedule, lastDue - 1)
      return ahead === null || ahead > MAX_TIME_MS ? null : { slot: ahead, skipped: null }
    }
  }
}

/**
 * The slot of the occurrence that follows `event` in its series, once `event` has ended at `now`
 * (SPEC 4.6). Slots up to the instant `event` was due to run (its fire time as deferrals and
 * reschedules moved it, or `readyAt` when it waited for a predecessor) are passed over. Later
 * slots whose fire time already passed (nothing ran) follow the series' catch-up policy: `all`
 * takes the next one (it fires at once, and so on until the series is current; at most the latest
 * `MAX_CATCH_UP_OCCURRENCES`), `once` takes only the latest of them, `skip` the first one still
 * ahead. `null` when the series has no further slot.
 *
 * @since 0.1.0
 */
export const nextOccurrenceAt = (event: Event, now: number, readyAt?: number | undefined): number | null =>
  nextSlot(event, now, readyAt)?.slot ?? null

/**
 * The next occurrence of a recurring event that ended at `now`: a new scheduled event of the same
 * series with fresh responses, or `null` when the series is over. A deadline keeps its distance
 * from the slot (`occurrenceAt`), so deferring one occurrence never narrows the next one's window.
 * `readyAt` is when `event` became ready to fire, if it waited for a predecessor.
 *
 * @since 0.1.0
 */
export const nextOccurrence = (
  event: Event,
  id: string,
  now: number,
  readyAt?: number | undefined
): { readonly event: Event; readonly history: ReadonlyArray<HistoryEntry> } | null => {
  const found = nextSlot(event, now, readyAt)
  if (found === null || event.recurrence === null) return null
  const { skipped, slot } = found
  const fireAt = slot - event.tMinusMs
  const deadline =
    event.deadline === null
      ? null
      : Math.min(slot + (event.deadline.getTime() - event.recurrence.occurrenceAt.getTime()), MAX_TIME_MS)
  const at = new Date(now)
  const next: Event = withDueAt(
    {
      ...event,
      id,
      attendees: event.attendees.map((a) => ({ agent: a.agent, status: "pending", respondedAt: null })),
      scheduledAt: new Date(slot),
      fireAt: new Date(fireAt),
      status: "scheduled",
      deferralsUsed: 0,
      deadline: deadline === null ? null : new Date(deadline),
      after: null,
      campaignId: null,
      recurrence: { ...event.recurrence, occurrenceAt: new Date(slot) },
      createdAt: at,
      updatedAt: at,
      firedAt: null,
      missedAt: null,
      cancelledAt: null,
      reason: null,
      version: 1
    },
    now
  )
  return {
    event: next,
    history: [
      historyEntry(next, "scheduled", ENGINE_ACTOR, now, {
        fireAt: next.fireAt!.toISOString(),
        quorum: next.quorum,
        attendees: next.attendees.length,
        seriesId: event.recurrence.seriesId,
        previous: event.id,
        occurrenceAt: new Date(slot).toISOString(),
        ...(skipped === null
          ? {}
          : {
              catchUpSkipped: {
                from: new Date(skipped.from).toISOString(),
                until: new Date(skipped.until).toISOString(),
                ...(skipped.atLeast ? { countAtLeast: skipped.count } : { count: skipped.count })
              }
            })
      })
    ]
  }
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
  now: number,
  tenant: string = DEFAULT_TENANT
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

  const misfire = input.misfire ?? "fire"
  if (misfire !== "fire" && misfire !== "miss") {
    return Either.left(invalid("misfire", `must be fire or miss, got ${JSON.stringify(misfire)}`))
  }
  let scheduledAt: number | null = null
  let fireAt: number | null = null
  let after: Event["after"] = null
  let recurrence: Recurrence | null = null
  if (input.recurrence !== undefined) {
    if (input.after !== undefined) {
      return Either.left(invalid("recurrence", "a recurring event cannot also start after another event"))
    }
    const start = input.at === undefined ? Either.right(now) : parseTime(input.at, now, { field: "at" })
    if (Either.isLeft(start)) return Either.left(start.left)
    const first = firstOccurrence(input.recurrence, Math.max(start.right, now + tMinusMs), id)
    if (Either.isLeft(first)) return Either.left(first.left)
    recurrence = first.right
    scheduledAt = recurrence.occurrenceAt.getTime()
    fireAt = scheduledAt - tMinusMs
  } else if (input.after !== undefined) {
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
    tenant,
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
    misfire,
    recurrence,
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
  misfire: input.misfire,
  recurrence: input.recurrence,
  attendees: [],
  quorum: 0
})

/**
 * `timerRequest`, with `in` checked as itself first, so that a bad one is named `in` (not the
 * `at` it becomes).
 *
 * @since 0.1.0
 */
export const checkedTimerRequest = (input: TimerInput): Either.Either<ScheduleInput, InvalidInput> =>
  input.in === undefined
    ? Either.right(timerRequest(input))
    : Either.map(durationMs(input.in, "in"), () => timerRequest(input))

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
  /** When it fired, where known: the tick that fires it passes its instant on to its dependents. */
  readonly firedAt?: number | undefined
}

/**
 * The instant a due event became ready to fire: its fire time, or later when it waited for a
 * predecessor that fired after that (SPEC 4.7). `null` while it has no fire time.
 *
 * @since 0.1.0
 */
export const readyAt = (event: Event, predecessors: ReadonlyArray<Predecessor>): number | null => {
  if (event.fireAt === null) return null
  let ready = event.fireAt.getTime()
  for (const p of predecessors) if (p.firedAt !== undefined && p.firedAt > ready) ready = p.firedAt
  return ready
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
 * its predecessors. `misfire: "miss"` (SPEC 4.8) applies only to an event about to fire, late by
 * more than `misfireGraceMs` since it became ready (`readyAt`; a catch-up occurrence: since it
 * was created); a deferral still cascades.
 *
 * @since 0.1.0
 */
export const decide = (
  event: Event,
  predecessors: ReadonlyArray<Predecessor>,
  now: number,
  misfireGraceMs: number = DEFAULT_MISFIRE_GRACE_MS
): TickStep => {
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
  if (quorumMet(event)) {
    // Late counts from when it could first have fired: not while it waited for a predecessor, and
    // for a catch-up occurrence (created after its slot on purpose) only from its creation.
    const lateByMs = now - Math.max(readyAt(event, predecessors)!, event.createdAt.getTime())
    if (event.misfire === "miss" && lateByMs > misfireGraceMs) {
      return {
        _tag: "Miss",
        reason: `misfired: ${formatDuration(lateByMs)} late (grace ${formatDuration(misfireGraceMs)})`
      }
    }
    return { _tag: "Fire" }
  }
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

/**
 * The outbox rows a transition queues: the event's `onFire` actions when it fired, `onMiss` when it
 * was missed, each with its idempotency key `<eventId>:<transition>:<index>` (SPEC 5).
 *
 * @since 0.1.0
 */
export const queuedActions = (event: Event, now: number): ReadonlyArray<QueuedAction> => {
  const transition = event.status === "fired" ? "fire" : event.status === "missed" ? "miss" : null
  if (transition === null) return []
  const list = transition === "fire" ? event.actions.onFire : event.actions.onMiss
  return list.map((action, index) => ({
    key: `${event.id}:${transition}:${index}`,
    eventId: event.id,
    transition,
    index,
    action,
    status: "pending",
    attempts: 0,
    occurredAt: new Date(now),
    nextAttemptAt: new Date(now),
    lastError: null,
    updatedAt: new Date(now)
  }))
}

/** Orders events by (fireAt, id), events without a fire time last. @since 0.1.0 */
export const byFireTime = (a: Event, b: Event): number => {
  const fa = a.fireAt?.getTime() ?? a.dueAt?.getTime() ?? Number.MAX_SAFE_INTEGER
  const fb = b.fireAt?.getTime() ?? b.dueAt?.getTime() ?? Number.MAX_SAFE_INTEGER
  return fa !== fb ? fa - fb : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
