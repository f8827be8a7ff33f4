/**
 * The action's logic: read the inputs, act on a `t-minus-server` through `TMinusClient`, set the
 * outputs and the job summary. `run` never throws: every failure fails the step with a message
 * that names the input, or says what to check.
 *
 * @since 0.1.0
 */
import * as core from "@actions/core"
import { Event, Lifecycle, TimeGrammar } from "@t-minus/core"
import { TMinusClient } from "@t-minus/core/client"
import * as Either from "effect/Either"

/** The operations, in the order the README lists them. @since 0.1.0 */
export const OPERATIONS = [
  "schedule",
  "timer",
  "confirm",
  "defer",
  "decline",
  "cancel",
  "wait",
  "status"
] as const
/** @since 0.1.0 */
export type Operation = (typeof OPERATIONS)[number]

/** How long `wait` waits when `timeout` is not given (the action's default input says the same). */
const DEFAULT_WAIT_MS = 30 * 60_000

/** The longest a call may go unanswered (beyond what it waits for), unless `request-timeout` says otherwise. */
const DEFAULT_REQUEST_MS = 30_000
let REQUEST_MS = DEFAULT_REQUEST_MS

/** How long `wait` pauses before asking again a server it could not reach. */
const RETRY_MS = 2_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

class NoAnswer extends Error {
  readonly _tag = "NoAnswer"
}

/** `promise`, or a `NoAnswer` failure after `ms`: a server that accepts and never answers ends the step. */
const answered = <A>(promise: Promise<A>, ms: number): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NoAnswer(`no answer within ${TimeGrammar.formatDuration(ms)}`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

/** Whether asking again later may work: the server was unreachable, silent or shutting down. */
const transient = (error: unknown) => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : ""
  return tag === "RpcClientError" || tag === "NoAnswer" || tag === "ServerUnavailable"
}

/** How often `wait` logs the countdown while it waits. */
const LOG_EVERY_MS = 15_000

/** A problem with an input, named as the workflow names it. */
class InputError extends Error {}

const input = (name: string): string | undefined => {
  const value = core.getInput(name)
  return value === "" ? undefined : value
}

const required = (name: string, operation: string): string => {
  const value = input(name)
  if (value === undefined)
    throw new InputError(`input \`${name}\` is required for operation \`${operation}\``)
  return value
}

const integer = (name: string): number | undefined => {
  const value = input(name)
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value))
    throw new InputError(`input \`${name}\` must be a whole number, got ${JSON.stringify(value)}`)
  return Number(value)
}

/** A duration input in milliseconds (a bare number is seconds, as on the command line). */
const duration = (name: string): number | undefined => {
  const value = input(name)
  if (value === undefined) return undefined
  const parsed = TimeGrammar.parseDuration(value, { field: name, bareNumber: "s" })
  if (Either.isLeft(parsed))
    throw new InputError(`input \`${name}\`: ${parsed.left.message.replace(`${name}: `, "")}`)
  if (parsed.right <= 0)
    throw new InputError(`input \`${name}\` must be more than 0, got ${JSON.stringify(value)}`)
  return parsed.right
}

const json = (name: string): unknown => {
  const value = input(name)
  if (value === undefined) return undefined
  try {
    return JSON.parse(value)
  } catch (error) {
    throw new InputError(`input \`${name}\` is not JSON: ${(error as Error).message}`)
  }
}

const list = (name: string): Array<string> | undefined =>
  input(name)
    ?.split(/[,\n]/)
    .map((item) => item.trim())
    .filter((item) => item !== "")

const boolean = (name: string, fallback: boolean): boolean => {
  if (input(name) === undefined) return fallback
  const value = input(name)!.toLowerCase()
  if (["true", "yes", "on", "1"].includes(value)) return true
  if (["false", "no", "off", "0"].includes(value)) return false
  throw new InputError(`input \`${name}\` must be true or false, got ${JSON.stringify(input(name))}`)
}

/** `at` or `in` as the engine takes a time. */
const when = (operation: string): number => {
  const at = input("at")
  const later = duration("in")
  if (at !== undefined && later !== undefined) throw new InputError("give input `at` or `in`, not both")
  if (at === undefined && later === undefined) {
    throw new InputError(`input \`at\` or \`in\` is required for operation \`${operation}\``)
  }
  if (at === undefined) return Date.now() + later!
  // As on the command line: `+10` is ten seconds (the server would read milliseconds).
  const parsed = TimeGrammar.parseTime(at, Date.now(), { field: "at", bareNumber: "s" })
  if (Either.isLeft(parsed)) throw new InputError(`input \`at\`: ${parsed.left.message.replace(/^at: /, "")}`)
  return parsed.right
}

const kindInput = (operation: string): string => {
  const kind = required("kind", operation)
  if (!Event.isEventKind(kind)) {
    throw new InputError(
      `input \`kind\` must be one of ${Event.BUILTIN_KINDS.filter((k) => k !== "timer").join(", ")} or custom:<name>, got ${JSON.stringify(kind)}`
    )
  }
  return kind
}

const operationInput = (): Operation => {
  const value = input("operation")
  if (value === undefined)
    throw new InputError(`input \`operation\` is required: one of ${OPERATIONS.join(", ")}`)
  if (!(OPERATIONS as ReadonlyArray<string>).includes(value)) {
    throw new InputError(
      `input \`operation\` must be one of ${OPERATIONS.join(", ")}, got ${JSON.stringify(value)}`
    )
  }
  return value as Operation
}

const serverUrl = (): string => {
  const value = input("server-url")
  if (value === undefined) throw new InputError("input `server-url` is required: the t-minus-server URL")
  try {
    const url = new URL(value)
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)")
  } catch {
    throw new InputError(`input \`server-url\` is not an http(s) URL: ${JSON.stringify(value)}`)
  }
  return value
}

/** What to tell the user for an error from the server or the network. */
const explain = (error: unknown, url: string): string => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : ""
  const message = error instanceof Error ? error.message : String(error)
  switch (tag) {
    case "RpcClientError":
    case "NoAnswer":
      return `could not reach the t-minus server at ${url} (${message}): check \`server-url\`, and that the server is running and reachable from this runner`
    case "Unauthenticated":
      return `the t-minus server refused the API key (${message}): check the \`api-key\` input and the secret it comes from`
    case "Forbidden":
      return `${message}: the API key's role or principal does not allow this`
    default:
      return message
  }
}

const iso = (date: Date | null) => date?.toISOString() ?? ""

/** A webhook's secret never leaves in an output (another job could read it). */
const redacted = (action: Event.Action): Event.Action =>
  action._tag === "webhook" && action.secret !== undefined ? { ...action, secret: "[redacted]" } : action

/** The outputs every operation that ends with an event sets. */
const output = (event: Event.Event, extra: Record<string, unknown> = {}) => {
  core.setOutput("event-id", event.id)
  core.setOutput("fire-at", iso(event.fireAt))
  core.setOutput("status", event.status)
  const actions = { onFire: event.actions.onFire.map(redacted), onMiss: event.actions.onMiss.map(redacted) }
  core.setOutput("json", JSON.stringify({ ...event, actions, ...extra }))
}

const RESPONSES: Record<Event.ResponseStatus, string> = {
  pending: "⏳ pending",
  confirmed: "✅ confirmed",
  deferred: "↻ deferred",
  declined: "❌ declined",
  missed: "⚠️ missed"
}

/**
 * Text from the server (names, agent ids, reasons) as one line: a newline in it would let
 * whoever named the event start a line with a workflow command (`::set-output …`).
 */
const flat = (text: string) => text.replace(/[\r\n]+/g, " ")

/** One line for the log: id, name, status, countdown, quorum, who is pending (never a command). */
const line = (event: Event.Event, now: number) => flat(describeEvent(event, now))

const describeEvent = (event: Event.Event, now: number) => {
  const confirmed = event.attendees.filter((a) => a.status === "confirmed").length
  const pending = event.attendees.filter((a) => a.status === "pending").map((a) => a.agent)
  return [
    `${event.id} (${event.name ?? event.kind})`,
    event.status === "scheduled" && event.fireAt !== null
      ? TimeGrammar.countdown(event.fireAt.getTime(), now)
      : event.status,
    ...(event.attendees.length === 0 ? [] : [`${confirmed}/${event.quorum} confirmed`]),
    ...(pending.length > 0 ? [`pending: ${pending.join(", ")}`] : [])
  ].join(" · ")
}

/** A Markdown table cell: pipes escaped, one line. */
const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ")

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) =>
  [header, header.map(() => "---"), ...rows].map((row) => `| ${row.map(cell).join(" | ")} |`).join("\n")

/** The job summary, in Markdown: the event, its countdown, its attendees. */
const summarize = async (event: Event.Event, heading: string, now: number) => {
  const confirmed = event.attendees.filter((a) => a.status === "confirmed").length
  const sections = [
    `### ${heading}`,
    table(
      ["event", "kind", "status", "fires at", "countdown", "quorum"],
      [
        [
          `${event.name === null ? "" : `${event.name} `}\`${event.id}\``,
          event.kind,
          event.status,
          iso(event.fireAt),
          event.status === "scheduled" && event.fireAt !== null
            ? TimeGrammar.countdown(event.fireAt.getTime(), now)
            : "—",
          `${confirmed}/${event.quorum}`
        ]
      ]
    ),
    ...(event.attendees.length === 0
      ? []
      : [
          table(
            ["attendee", "response"],
            event.attendees.map((a) => [
              a.agent,
              a.status === "deferred" && a.deferMs !== undefined
                ? `${RESPONSES.deferred} by ${TimeGrammar.formatDuration(a.deferMs)}`
                : RESPONSES[a.status]
            ])
          )
        ])
  ]
  // Best effort: the change is made already, and a step that failed here would be run again.
  try {
    await core.summary.addRaw(`${sections.join("\n\n")}\n\n`).write()
  } catch (error) {
    core.warning(`could not write the job summary: ${(error as Error).message}`)
  }
}

/** `wait`: follows the event until it ends or the timeout passes, logging the countdown. */
const wait = async (client: TMinusClient, eventId: string, url: string) => {
  const timeoutMs = duration("timeout") ?? DEFAULT_WAIT_MS
  const failOnMiss = boolean("fail-on-miss", true)
  const until = Date.now() + timeoutMs
  let event = await answered(client.get(eventId), REQUEST_MS)
  core.info(`waiting up to ${TimeGrammar.formatDuration(timeoutMs)}: ${line(event, Date.now())}`)
  let outcome: "fired" | "missed" | "cancelled" | "timeout" = "timeout"
  while (true) {
    const left = until - Date.now()
    if (event.status !== "scheduled") {
      outcome = event.status
      break
    }
    if (left <= 0) break
    const slice = Math.min(left, LOG_EVERY_MS)
    try {
      const result = await answered(client.waitFor(eventId, slice), slice + REQUEST_MS)
      event = result.event
      if (result.outcome !== "timeout") {
        outcome = result.outcome
        break
      }
    } catch (error) {
      // A gate outlives a server restart: what cannot be reached now is asked again until the timeout.
      if (!transient(error)) throw error
      core.warning(`${explain(error, url)}; trying again until the timeout`)
      await sleep(Math.min(RETRY_MS, Math.max(0, until - Date.now())))
      continue
    }
    core.info(line(event, Date.now()))
  }
  output(event, { outcome })
  core.setOutput("outcome", outcome)
  await summarize(event, `t-minus: ${outcome === "timeout" ? "still waiting" : outcome}`, Date.now())
  const verdict =
    outcome === "fired"
      ? `fired at ${iso(event.firedAt)}`
      : outcome === "timeout"
        ? `did not fire within ${TimeGrammar.formatDuration(timeoutMs)}; it is still scheduled (${line(event, Date.now())})`
        : `was ${outcome}${event.reason === null ? "" : `: ${flat(event.reason)}`}`
  if (outcome !== "fired" && failOnMiss) core.setFailed(`event ${eventId} ${verdict}`)
  else core.info(`event ${eventId} ${verdict}`)
}

/**
 * Runs the step: reads the inputs, acts, and sets the outputs and summary. Never throws.
 *
 * @since 0.1.0
 */
export const run = async (): Promise<void> => {
  let url = ""
  let client: TMinusClient | undefined
  try {
    const apiKey = input("api-key")
    if (apiKey !== undefined) core.setSecret(apiKey)
    const operation = operationInput()
    url = serverUrl()
    REQUEST_MS = duration("request-timeout") ?? DEFAULT_REQUEST_MS
    // Everything the operation needs is read before the server is called: a bad input changes nothing.
    const act = plan(operation, url)
    client = await answered(
      TMinusClient.connect({ url, protocol: "http", ...(apiKey === undefined ? {} : { apiKey }) }),
      REQUEST_MS
    )
    // `wait` bounds its own calls; every other operation is one or two calls.
    await (operation === "wait" ? act(client) : answered(act(client), REQUEST_MS))
  } catch (error) {
    core.setFailed(error instanceof InputError ? error.message : explain(error, url))
  } finally {
    await client?.close()
  }
}

/** The inputs of `operation`, checked, as what to do with a client. */
const plan = (operation: Operation, url: string): ((client: TMinusClient) => Promise<void>) => {
  const organizer = input("agent")
  const now = () => Date.now()
  switch (operation) {
    case "schedule": {
      const attendees = list("attendees") ?? []
      const quorum = integer("quorum")
      if (quorum !== undefined && quorum > attendees.length) {
        throw new InputError(
          `input \`quorum\` (${quorum}) is more than the ${attendees.length} attendee(s) of input \`attendees\``
        )
      }
      const request = {
        kind: kindInput(operation),
        at: when(operation),
        ...(input("name") === undefined ? {} : { name: input("name")! }),
        ...(organizer === undefined ? {} : { organizer }),
        attendees,
        ...(quorum === undefined ? {} : { quorum }),
        ...(json("payload") === undefined ? {} : { payload: json("payload") }),
        onFire: webhook()
      }
      return async (client) => {
        const event = await client.schedule(request)
        core.info(`scheduled ${line(event, now())}`)
        output(event)
        await summarize(event, "t-minus: scheduled", now())
      }
    }
    case "timer": {
      const request = {
        at: when(operation),
        ...(input("name") === undefined ? {} : { name: input("name")! }),
        ...(organizer === undefined ? {} : { organizer }),
        ...(json("payload") === undefined ? {} : { payload: json("payload") }),
        onFire: webhook()
      }
      return async (client) => {
        const event = await client.scheduleTimer(request)
        core.info(`timer set: ${line(event, now())}`)
        output(event)
      }
    }
    case "confirm":
    case "decline": {
      const eventId = required("event-id", operation)
      const agent = required("agent", operation)
      return async (client) => {
        const event =
          operation === "confirm"
            ? await client.confirm(eventId, agent)
            : await client.decline(eventId, agent)
        core.info(`${agent} ${operation === "confirm" ? "confirmed" : "declined"}: ${line(event, now())}`)
        output(event)
      }
    }
    case "defer": {
      const eventId = required("event-id", operation)
      const agent = required("agent", operation)
      required("duration", operation)
      const by = duration("duration")!
      return async (client) => {
        const event = await client.defer(eventId, agent, by)
        core.info(`${agent} deferred by ${TimeGrammar.formatDuration(by)}: ${line(event, now())}`)
        output(event)
      }
    }
    case "cancel": {
      const eventId = required("event-id", operation)
      const reason = input("reason")
      return async (client) => {
        const event = await client.cancel(eventId, reason === undefined ? {} : { reason })
        core.info(`cancelled: ${line(event, now())}`)
        output(event)
      }
    }
    case "status": {
      const eventId = required("event-id", operation)
      return async (client) => {
        const event = await client.get(eventId)
        core.info(line(event, now()))
        output(event)
        await summarize(event, "t-minus: status", now())
      }
    }
    case "wait": {
      const eventId = required("event-id", operation)
      duration("timeout")
      boolean("fail-on-miss", true)
      return (client) => wait(client, eventId, url)
    }
  }
}

const webhook = (): Array<Event.Action> => {
  const url = input("webhook-url")
  const secret = input("webhook-secret")
  if (secret !== undefined) core.setSecret(secret)
  if (url === undefined) {
    if (secret !== undefined) throw new InputError("input `webhook-secret` needs `webhook-url`")
    return []
  }
  if (!/^https?:\/\/[^\s/]/.test(url))
    throw new InputError(`input \`webhook-url\` is not an http(s) URL: ${JSON.stringify(url)}`)
  if (secret !== undefined && !Lifecycle.isWebhookSecret(secret)) {
    throw new InputError(
      "input `webhook-secret` must be base64, optionally prefixed whsec_ (Standard Webhooks)"
    )
  }
  return [{ _tag: "webhook", url, ...(secret === undefined ? {} : { secret }) }]
}
