/**
 * The t-minus tool set, independent of any agent framework: each tool has a name, a description
 * a model reads, a strict JSON Schema of its input (derived from the Effect schema here, which is
 * built from the core's schemas) and a `call` that never rejects. `LangChain.ts` and `Mcp.ts`
 * serve the same tools.
 *
 * A tool set acts as one agent (`agent`): it confirms, defers and declines only for that agent,
 * schedules with it as organizer, and cancels or reschedules only events it organizes. No tool
 * takes an agent id, so a model cannot act for another one.
 *
 * @since 0.1.0
 */
import { Event, type Lifecycle, type Operations, TimeGrammar } from "@t-minus/core"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as StrictJsonSchema from "./StrictJsonSchema.ts"

/**
 * Where the tools act: a `TMinus` engine (open it with `runner: true` so events fire and
 * `wait_for_event` works) or a `TMinusClient`.
 *
 * @since 0.1.0
 */
export type Backend = Operations

/** @since 0.1.0 */
export interface ToolsOptions {
  /** The agent every tool acts as. */
  readonly agent: string
  /** Where the tools act: a `TMinus` engine or a `TMinusClient`. */
  readonly client: Backend
  /** Epoch ms now, for the time remaining in answers; default the system clock. */
  readonly now?: (() => number) | undefined
  /** The longest `wait_for_event` may wait, in ms; default 5 minutes. */
  readonly maxWaitMs?: number | undefined
}

/**
 * What a tool call answers: `text` is what the model reads (JSON), `data` the same as a value.
 * `ok: false` is a failure the model can act on: `data.error` says what went wrong (`tag`,
 * `message`, and `field` for bad input) and `hint` what to do.
 *
 * @since 0.1.0
 */
export interface ToolResult {
  readonly ok: boolean
  readonly data: unknown
  readonly text: string
}

/**
 * One tool. `check` decodes arguments without running anything (`args` completed with `null`
 * for the optional fields left out, as the strict schema has them).
 *
 * @since 0.1.0
 */
export interface Tool {
  readonly name: string
  readonly description: string
  readonly inputSchema: StrictJsonSchema.JsonSchema
  readonly check: (
    args: unknown
  ) =>
    | { readonly ok: true; readonly args: Record<string, unknown> }
    | { readonly ok: false; readonly result: ToolResult }
  /** Runs the tool; `signal` ends a wait early (the client gave up on the call). Never rejects. */
  readonly call: (
    args: unknown,
    options?: { readonly signal?: AbortSignal | undefined }
  ) => Promise<ToolResult>
}

/** The default and largest wait of `wait_for_event`. */
const DEFAULT_WAIT = "30s"
const DEFAULT_MAX_WAIT_MS = 5 * 60_000
const DEFAULT_LIST_LIMIT = 50
const MAX_LIST_LIMIT = 200

/** Fields a model might add to speak for someone else; refused with an explanation. */
const IDENTITY_FIELDS = new Set(["agent", "organizer", "actor", "attendee", "as", "principal", "user"])

const described = <S extends Schema.Schema.Any>(schema: S, description: string) =>
  schema.annotations({ description }) as S
const nullable = <S extends Schema.Schema.Any>(schema: S, description: string) =>
  Schema.optionalWith(schema, { nullable: true, exact: true }).annotations({ description })

const eventId = described(Event.Event.fields.id, "The event's id, as schedule_event or list_events gave it.")
const campaignId = described(Event.Campaign.fields.id, "The campaign's id, as create_campaign gave it.")
const time = (what: string) =>
  `${what}: relative to now ("+10m", "+1h30m") or an RFC 3339 instant ("2026-12-01T15:00:00Z").`
const duration = (what: string) => `${what}: "30s", "5m", "1h30m" or ISO 8601 ("PT2M").`
/** Times and durations as text, checked by the core's grammar before anything runs. */
const Time = TimeGrammar.TimeText
const Duration = TimeGrammar.DurationText
const durationField = (what: string) => Duration.annotations({ jsonSchema: { description: duration(what) } })
const agents = Schema.Array(Event.Attendee.fields.agent)

const ScheduleEventInput = Schema.Struct({
  kind: Event.EventKind.annotations({
    jsonSchema: {
      description: 'meeting, checkpoint, review, deploy, or custom:<name> (for example "custom:migration").'
    }
  }),
  at: nullable(Time, time("When it fires (give `at` or `afterEventId`)")),
  afterEventId: nullable(Event.RelativeStart.fields.eventId, "Fire relative to this event: when it fires."),
  afterOffset: nullable(Duration, duration("With afterEventId: how long after that event fires")),
  name: nullable(Event.Event.fields.name.members[0], "A short human label."),
  attendees: described(agents, "Agent ids that must confirm readiness (may include yourself)."),
  quorum: nullable(
    Event.Event.fields.quorum,
    "How many attendees must confirm for it to fire; default all of them."
  ),
  tMinus: nullable(Duration, duration("Lead time: it fires this long before `at`")),
  maxDeferrals: nullable(Event.Event.fields.maxDeferrals, "How many deferral cascades it allows; default 3."),
  deadline: nullable(Time, time("No deferral may move it past this instant")),
  payloadJson: nullable(Schema.String, "Any JSON value, as JSON text (at most 64 KiB), handed to actions."),
  webhookUrl: nullable(
    Event.WebhookAction.fields.url,
    "POST a signed JSON notice to this URL when it fires."
  ),
  campaignId: nullable(Event.Campaign.fields.id, "Add it to this campaign as it is scheduled.")
})

const CreateTimerInput = Schema.Struct({
  in: nullable(Duration, duration("Fire this long from now (or give `at`)")),
  at: nullable(Time, time("When it fires")),
  name: nullable(Event.Event.fields.name.members[0], "The timer's name."),
  message: nullable(Schema.String, "A line logged (and seen by watchers) when it fires."),
  webhookUrl: nullable(Event.WebhookAction.fields.url, "POST a signed JSON notice to this URL when it fires.")
})

const EventIdInput = Schema.Struct({ eventId })

const DeferInput = Schema.Struct({
  eventId,
  duration: durationField("How much more time you need")
})

const ListEventsInput = Schema.Struct({
  status: nullable(Event.EventStatus, "Only events in this state; default scheduled."),
  attendingOnly: nullable(Schema.Boolean, "Only events you are an attendee of."),
  kind: nullable(Event.EventKind, "Only events of this kind."),
  campaignId: nullable(Event.Campaign.fields.id, "Only events of this campaign."),
  limit: nullable(
    Schema.Int.pipe(Schema.between(1, MAX_LIST_LIMIT)),
    `At most this many (1 to ${MAX_LIST_LIMIT}); default ${DEFAULT_LIST_LIMIT}.`
  )
})

const CancelInput = Schema.Struct({
  eventId,
  reason: nullable(Event.Event.fields.reason.members[0], "Why it is cancelled.")
})

const RescheduleInput = Schema.Struct({
  eventId,
  at: Time.annotations({ jsonSchema: { description: time("The new fire time") } })
})

const WaitInput = Schema.Struct({
  eventId,
  timeout: nullable(Duration, duration(`The longest to wait; default ${DEFAULT_WAIT}`))
})

const CreateCampaignInput = Schema.Struct({
  name: described(Event.Campaign.fields.name, "The campaign's name.")
})

const AddToCampaignInput = Schema.Struct({ campaignId, eventId })

const LinkInput = Schema.Struct({
  campaignId,
  from: described(Event.Campaign.fields.id, "The event that must fire first."),
  to: described(Event.Campaign.fields.id, "The event that waits for it.")
})

const CampaignInput = Schema.Struct({ campaignId })

/** A failure the model reads: what went wrong and what to do. */
interface Failure {
  readonly tag: string
  readonly message: string
  readonly field?: string | undefined
  readonly hint: string
}

const failed = (failure: Failure): ToolResult => {
  const { hint, ...error } = failure
  const data = { error, hint }
  return { ok: false, data, text: JSON.stringify(data) }
}

const succeeded = (data: unknown): ToolResult => ({ ok: true, data, text: JSON.stringify(data) })

/** A thrown value as a failure, with advice for each kind of error. */
const failureOf = (error: unknown, agent: string): Failure => {
  const tag =
    typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
      ? error._tag
      : "Error"
  const message = error instanceof Error ? error.message : String(error)
  const field =
    typeof error === "object" && error !== null && "field" in error && typeof error.field === "string"
      ? error.field
      : undefined
  const hint =
    HINTS[tag]?.(error as Record<string, unknown>, agent) ?? "This was unexpected; report it to a human."
  return { tag, message, ...(field === undefined ? {} : { field }), hint }
}

const HINTS: Record<string, (error: Record<string, unknown>, agent: string) => string> = {
  InvalidInput: (e) => `Fix \`${String(e.field)}\` as the message says, then call the tool again.`,
  EventNotFound: () => "Check the id: list_events shows the events you can see.",
  CampaignNotFound: () => "Check the id: create_campaign returns it; a campaign is not an event.",
  NotAnAttendee: (_, agent) =>
    `You act as ${agent} and are not an attendee of this event: only its attendees respond. Leave it, or ask its organizer.`,
  EventTerminal: (e) =>
    `The event is already ${String(e.status)}; nothing can change it. get_event shows how it ended.`,
  CycleDetected: () => "Linking these would make a cycle: link them the other way round, or not at all.",
  CampaignMembership: () =>
    "Add the event to this campaign first (add_to_campaign), or use the campaign it is in.",
  Forbidden: (_, agent) =>
    `You act as ${agent}, and that is not allowed for you. Ask the event's organizer (or a human) to do it.`,
  Impersonation: (_, agent) =>
    `You can only act as ${agent}: drop that field. Other agents confirm, defer or decline with their own tools.`,
  ResourceExhausted: (e) =>
    `The server's quota is used up; wait ${String(e.retryAfterMs ?? "a few seconds")} ms and try again, or end some events.`,
  Unauthenticated: () =>
    "The API key of this tool set is not accepted: a human must fix the configuration. Stop retrying.",
  ServerUnavailable: () => "The server is shutting down; try again in a little while.",
  RpcClientError: () =>
    "The t-minus server could not be reached; try again in a little while, then tell a human.",
  UnknownTool: () => "Call one of the tools listed.",
  Cancelled: () => "The call was cancelled before it ended; call it again if it is still needed."
}

/** A parse failure as one message naming every field that is wrong. */
const inputFailure = (tool: string, error: ParseResult.ParseError, agent: string): Failure => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const impostor = issues.find(
    (issue) =>
      issue._tag === "Unexpected" && issue.path.length === 1 && IDENTITY_FIELDS.has(String(issue.path[0]))
  )
  if (impostor !== undefined) {
    const field = String(impostor.path[0])
    return {
      tag: "Impersonation",
      field,
      message: `${tool}: \`${field}\` is not accepted; this tool set acts as ${agent} and cannot name another agent`,
      hint: HINTS.Impersonation!({}, agent)
    }
  }
  // A nullable field's union also reports "Expected null": noise beside the real complaint.
  const paths = (issue: ParseResult.ArrayFormatterIssue) => issue.path.map(String).join(".")
  const relevant = issues.filter(
    (issue) =>
      !issue.message.startsWith("Expected null,") ||
      !issues.some((other) => other !== issue && paths(other) === paths(issue))
  )
  const lines = relevant.map((issue) => {
    const path = paths(issue)
    const message = issue._tag === "Unexpected" ? "is not a field of this tool" : issue.message
    return path === "" ? message : `${path}: ${message}`
  })
  // The field to fix: a wrong or missing one before one that should not be there.
  const first = (relevant.find((issue) => issue._tag !== "Unexpected") ?? relevant[0])?.path[0]
  return {
    tag: "InvalidInput",
    ...(first === undefined ? {} : { field: String(first) }),
    message: `${tool}: ${lines.join("; ")}`,
    hint: "Fix those fields to match the tool's schema, then call it again."
  }
}

/** The event as a model needs it: where it stands, what is missing, how long is left. */
export const summarize = (event: Event.Event, agent: string, now: number) => {
  const fireAt = event.fireAt?.getTime() ?? null
  const by = (status: Event.ResponseStatus) =>
    event.attendees.filter((a) => a.status === status).map((a) => a.agent)
  const confirmed = by("confirmed").length
  const remainingMs = event.status === "scheduled" && fireAt !== null ? fireAt - now : null
  const you = event.attendees.find((a) => a.agent === agent)
  return {
    id: event.id,
    kind: event.kind,
    name: event.name,
    organizer: event.organizer,
    status: event.status,
    fireAt: event.fireAt?.toISOString() ?? null,
    remainingMs,
    remaining:
      remainingMs === null
        ? null
        : remainingMs >= 0
          ? `in ${TimeGrammar.formatDuration(remainingMs)}`
          : `due ${TimeGrammar.formatDuration(-remainingMs)} ago`,
    quorum: event.quorum,
    confirmed,
    /** Readiness toward the quorum, 0..1 (1 once it is met, and for a timer). */
    progress: event.quorum === 0 ? 1 : Math.min(1, confirmed / event.quorum),
    pending: by("pending"),
    deferred: event.attendees
      .filter((a) => a.status === "deferred")
      .map((a) => ({ agent: a.agent, by: TimeGrammar.formatDuration(a.deferMs ?? 0) })),
    declined: by("declined"),
    missed: by("missed"),
    confirmedBy: by("confirmed"),
    yourResponse: you?.status ?? null,
    deferralsUsed: event.deferralsUsed,
    maxDeferrals: event.maxDeferrals,
    deadline: event.deadline?.toISOString() ?? null,
    waitsFor: event.after?.eventId ?? null,
    campaignId: event.campaignId,
    endedAt: (event.firedAt ?? event.missedAt ?? event.cancelledAt)?.toISOString() ?? null,
    reason: event.reason
  }
}

interface Definition<A, I> {
  readonly name: string
  readonly description: string
  readonly input: Schema.Schema<A, I>
  readonly run: (input: A, signal: AbortSignal | undefined) => Promise<unknown>
}

/** Each input's strict JSON Schema, made once: tool sets are made per MCP request. */
const strictSchemas = new WeakMap<Schema.Schema.Any, StrictJsonSchema.JsonSchema>()
const strictSchemaOf = (input: Schema.Schema.Any): StrictJsonSchema.JsonSchema => {
  let made = strictSchemas.get(input)
  if (made === undefined) {
    made = StrictJsonSchema.make(input)
    strictSchemas.set(input, made)
  }
  return made
}

/** A definition as a `Tool`: strict schema once, input checked, every failure a result. */
const build = <A, I>(definition: Definition<A, I>, agent: string): Tool => {
  const decode = Schema.decodeUnknownEither(definition.input, { errors: "all", onExcessProperty: "error" })
  const inputSchema = strictSchemaOf(definition.input)
  const fields = Object.keys((inputSchema.properties ?? {}) as object)
  const check: Tool["check"] = (args) => {
    const given = args ?? {}
    const decoded = decode(given)
    if (Either.isLeft(decoded))
      return { ok: false, result: failed(inputFailure(definition.name, decoded.left, agent)) }
    const completed: Record<string, unknown> = { ...(given as Record<string, unknown>) }
    for (const field of fields) if (!(field in completed)) completed[field] = null
    return { ok: true, args: completed }
  }
  return {
    name: definition.name,
    description: definition.description,
    inputSchema,
    check,
    call: async (args, options) => {
      const decoded = decode(args ?? {})
      if (Either.isLeft(decoded)) return failed(inputFailure(definition.name, decoded.left, agent))
      try {
        return succeeded(await definition.run(decoded.right, options?.signal))
      } catch (error) {
        return failed(failureOf(error, agent))
      }
    }
  }
}

class InvalidField extends Error {
  readonly _tag = "InvalidInput"
  readonly field: string
  constructor(field: string, message: string) {
    super(message)
    this.field = field
  }
}

class Cancelled extends Error {
  readonly _tag = "Cancelled"
}

/** `promise`, or a `Cancelled` rejection as soon as `signal` aborts (what it waited for is left to end by itself). */
const unlessAborted = <A>(promise: Promise<A>, signal: AbortSignal | undefined): Promise<A> => {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(new Cancelled("the caller cancelled the call"))
  return new Promise<A>((resolve, reject) => {
    const abort = () => reject(new Cancelled("the caller cancelled the call"))
    signal.addEventListener("abort", abort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort))
  })
}

/** What each organizer-only tool does to the event, for the refusal. */
const MANAGING = {
  cancel_event: "cancel it",
  reschedule_event: "move it",
  add_to_campaign: "put it in a campaign",
  link_campaign_events: "make it wait on another event"
} as const

class NotOrganizer extends Error {
  readonly _tag = "Forbidden"
}

const parsePayload = (text: string | undefined): unknown => {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new InvalidField("payloadJson", `payloadJson: not JSON text (${(error as Error).message})`)
  }
}

const webhook = (url: string | undefined): ReadonlyArray<Event.Action> =>
  url === undefined ? [] : [{ _tag: "webhook", url }]

/**
 * The tool set acting as `options.agent`.
 *
 * @since 0.1.0
 */
export const make = (options: ToolsOptions): ReadonlyArray<Tool> => {
  const { agent, client } = options
  if (typeof agent !== "string" || agent.trim() === "")
    throw new Error("t-minus tools: `agent` must be a non-empty agent id")
  const now = options.now ?? Date.now
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS
  const view = (event: Event.Event) => summarize(event, agent, now())
  const campaignView = async (campaign: Event.Campaign) => {
    const order = await client.executionOrder(campaign.id)
    const events = await Promise.all(order.map((id) => client.get(id)))
    return {
      id: campaign.id,
      name: campaign.name,
      order: events.map((event, i) => ({
        position: i + 1,
        id: event.id,
        name: event.name,
        kind: event.kind,
        status: event.status,
        fireAt: event.fireAt?.toISOString() ?? null,
        after: campaign.dependencies.filter(([, to]) => to === event.id).map(([from]) => from)
      }))
    }
  }
  /** Only an event's organizer may cancel it, move it, put it in a campaign or make it wait. */
  const organizing = async (operation: keyof typeof MANAGING, id: string) => {
    const event = await client.get(id)
    if (event.organizer !== agent) {
      throw new NotOrganizer(
        `${operation}: event ${id} is organized by ${event.organizer}; you act as ${agent}, and only its organizer may ${MANAGING[operation]}`
      )
    }
    return event
  }

  const definitions: ReadonlyArray<Definition<any, any>> = [
    {
      name: "schedule_event",
      description:
        "Schedule an event you organize: it fires at its time only if a quorum of its attendees has confirmed readiness. " +
        "Attendees may defer (the countdown extends) or decline. Returns the event with its id.",
      input: ScheduleEventInput,
      run: async (input: typeof ScheduleEventInput.Type) => {
        const payload = parsePayload(input.payloadJson)
        const request: Lifecycle.ScheduleInput = {
          kind: input.kind,
          organizer: agent,
          attendees: input.attendees,
          ...(input.at === undefined ? {} : { at: input.at }),
          ...(input.afterEventId === undefined
            ? {}
            : {
                after: {
                  eventId: input.afterEventId,
                  ...(input.afterOffset === undefined ? {} : { offset: input.afterOffset })
                }
              }),
          ...(input.name === undefined ? {} : { name: input.name }),
          ...(input.quorum === undefined ? {} : { quorum: input.quorum }),
          ...(input.tMinus === undefined ? {} : { tMinus: input.tMinus }),
          ...(input.maxDeferrals === undefined ? {} : { maxDeferrals: input.maxDeferrals }),
          ...(input.deadline === undefined ? {} : { deadline: input.deadline }),
          ...(payload === undefined ? {} : { payload }),
          onFire: webhook(input.webhookUrl)
        }
        const event =
          input.campaignId === undefined
            ? await client.schedule(request)
            : await client.addToCampaign(input.campaignId, request)
        return { event: view(event) }
      }
    },
    {
      name: "create_timer",
      description:
        "Start a timer: an event with no attendees that fires unconditionally at its time (give `in` or `at`).",
      input: CreateTimerInput,
      run: async (input: typeof CreateTimerInput.Type) => {
        const event = await client.scheduleTimer({
          organizer: agent,
          ...(input.in === undefined ? {} : { in: input.in }),
          ...(input.at === undefined ? {} : { at: input.at }),
          ...(input.name === undefined ? {} : { name: input.name }),
          onFire: [
            ...webhook(input.webhookUrl),
            ...(input.message === undefined ? [] : [{ _tag: "log" as const, message: input.message }])
          ]
        })
        return { event: view(event) }
      }
    },
    {
      name: "confirm_readiness",
      description: `Confirm that you (${agent}) are ready for the event. Overrides an earlier deferral.`,
      input: EventIdInput,
      run: async (input: typeof EventIdInput.Type) => ({
        event: view(await client.confirm(input.eventId, agent))
      })
    },
    {
      name: "defer",
      description:
        `Ask for more time (as ${agent}). If the quorum is not met at the fire time, the countdown extends by the ` +
        "largest deferral and deferred attendees are asked again (pending).",
      input: DeferInput,
      run: async (input: typeof DeferInput.Type) => ({
        event: view(await client.defer(input.eventId, agent, input.duration))
      })
    },
    {
      name: "decline",
      description: `Decline the event (as ${agent}). If the quorum can no longer be reached, the event is missed.`,
      input: EventIdInput,
      run: async (input: typeof EventIdInput.Type) => ({
        event: view(await client.decline(input.eventId, agent))
      })
    },
    {
      name: "get_event",
      description:
        "An event's status, readiness progress toward its quorum (0..1), time remaining, and who is pending, deferred or declined.",
      input: EventIdInput,
      run: async (input: typeof EventIdInput.Type) => ({ event: view(await client.get(input.eventId)) })
    },
    {
      name: "list_events",
      description: "List events by fire time, scheduled ones by default.",
      input: ListEventsInput,
      run: async (input: typeof ListEventsInput.Type) => {
        const events = await client.list({
          status: input.status ?? "scheduled",
          limit: input.limit ?? DEFAULT_LIST_LIMIT,
          ...(input.attendingOnly === true ? { attendee: agent } : {}),
          ...(input.kind === undefined ? {} : { kind: input.kind }),
          ...(input.campaignId === undefined ? {} : { campaignId: input.campaignId })
        })
        return { count: events.length, events: events.map(view) }
      }
    },
    {
      name: "cancel_event",
      description: "Cancel an event you organize. Its actions do not run.",
      input: CancelInput,
      run: async (input: typeof CancelInput.Type) => {
        await organizing("cancel_event", input.eventId)
        const event = await client.cancel(input.eventId, {
          actor: agent,
          ...(input.reason === undefined ? {} : { reason: input.reason })
        })
        return { event: view(event) }
      }
    },
    {
      name: "reschedule_event",
      description: "Move the fire time of an event you organize. Responses so far are kept.",
      input: RescheduleInput,
      run: async (input: typeof RescheduleInput.Type) => {
        await organizing("reschedule_event", input.eventId)
        return { event: view(await client.reschedule(input.eventId, input.at, { actor: agent })) }
      }
    },
    {
      name: "wait_for_event",
      description:
        "Wait until the event fires, is missed or cancelled, or the timeout passes (default 30s, at most " +
        `${TimeGrammar.formatDuration(maxWaitMs)}). outcome "timeout" means it is still scheduled: call again to keep waiting.`,
      input: WaitInput,
      run: async (input: typeof WaitInput.Type, signal) => {
        const asked = TimeGrammar.parseDuration(input.timeout ?? DEFAULT_WAIT, { field: "timeout" })
        if (Either.isLeft(asked)) throw asked.left
        if (asked.right <= 0) throw new InvalidField("timeout", "timeout: must be more than 0")
        const timeoutMs = Math.min(asked.right, maxWaitMs)
        const result = await unlessAborted(client.waitFor(input.eventId, timeoutMs), signal)
        return {
          outcome: result.outcome,
          waitedUpToMs: timeoutMs,
          event: view(result.event),
          ...(result.outcome === "timeout"
            ? { next: "Still scheduled: call wait_for_event again to keep waiting." }
            : {})
        }
      }
    },
    {
      name: "create_campaign",
      description: "Create a campaign: a dependency graph of events that fire in order.",
      input: CreateCampaignInput,
      run: async (input: typeof CreateCampaignInput.Type) => {
        const campaign = await client.createCampaign(input.name)
        return { campaign: { id: campaign.id, name: campaign.name } }
      }
    },
    {
      name: "add_to_campaign",
      description:
        "Add an event you organize to a campaign (schedule_event with campaignId creates and adds in one step).",
      input: AddToCampaignInput,
      run: async (input: typeof AddToCampaignInput.Type) => {
        await organizing("add_to_campaign", input.eventId)
        return { event: view(await client.addToCampaign(input.campaignId, input.eventId)) }
      }
    },
    {
      name: "link_campaign_events",
      description:
        "Make `to` (an event you organize) wait for `from` in a campaign: `to` fires only after `from` has fired, and is missed if `from` is missed or cancelled.",
      input: LinkInput,
      run: async (input: typeof LinkInput.Type) => {
        await organizing("link_campaign_events", input.to)
        return campaignView(await client.link(input.campaignId, input.from, input.to))
      }
    },
    {
      name: "campaign_order",
      description:
        "A campaign's execution order: its events in the order they can fire, with what each waits for.",
      input: CampaignInput,
      run: async (input: typeof CampaignInput.Type) =>
        campaignView(await client.getCampaign(input.campaignId))
    }
  ]
  return definitions.map((definition) => build(definition, agent))
}

/**
 * The answer to a call of a tool that is not in the set.
 *
 * @since 0.1.0
 */
export const unknownTool = (name: string, tools: ReadonlyArray<Tool>): ToolResult =>
  failed({
    tag: "UnknownTool",
    message: `no tool named ${JSON.stringify(name)}; the tools are ${tools.map((t) => t.name).join(", ")}`,
    hint: HINTS.UnknownTool!({}, "")
  })
