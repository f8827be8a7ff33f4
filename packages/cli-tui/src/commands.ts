/**
 * Every command of SPEC 9, as data: its words, arguments, options, help, examples and what it
 * does. The help text and the shell completions are made from this table.
 *
 * @since 0.1.0
 */

import { Writable } from "node:stream"
import { type Event as Ev, InvalidInput, type Lifecycle, TimeGrammar } from "@t-minus/core"
import * as Either from "effect/Either"
import type { Api, Backend } from "./backend.ts"
import {
  boardOrder,
  campaignJson,
  eventDetail,
  eventJson,
  eventsTable,
  historyJson,
  historyLine,
  type Paint,
  quorumText,
  shortId,
  table,
  tickJson,
  transitionJson
} from "./format.ts"
import type { Io } from "./main.ts"

/** @since 0.1.0 */
export interface OptionSpec {
  readonly type: "string" | "boolean"
  readonly short?: string | undefined
  readonly multiple?: boolean | undefined
  /** The value's placeholder in help (`N`, `URL`, …). */
  readonly value?: string | undefined
  readonly help: string
}

/** What a command prints: one JSON document, or text for people. @since 0.1.0 */
export interface Output {
  readonly json: unknown
  readonly human: string
}

/** What a command gets. @since 0.1.0 */
export interface Context {
  readonly positionals: ReadonlyArray<string>
  readonly values: Readonly<Record<string, string | boolean | Array<string> | undefined>>
  readonly string: (name: string) => string | undefined
  readonly json: boolean
  readonly out: Paint
  readonly io: Io
  /** `--as` / `T_MINUS_AGENT`. */
  readonly agent: string | undefined
  /** The instant the command acts at (`--now`, else the clock). */
  readonly now: () => number
  readonly fixedNow: number | undefined
  /** The server URL, when remote. */
  readonly server: string | undefined
  readonly open: (options?: { readonly runner?: boolean | undefined }) => Promise<Backend>
  readonly event: (api: Api, text: string) => Promise<string>
  readonly campaign: (api: Api, text: string) => Promise<string>
}

/** @since 0.1.0 */
export interface Command {
  /** The words that name it: `schedule`, `campaign add`. */
  readonly name: string
  /** Its arguments, as help shows them. */
  readonly usage: string
  readonly summary: string
  readonly minArgs: number
  readonly maxArgs: number
  readonly options: Record<string, OptionSpec>
  readonly examples: ReadonlyArray<string>
  /** More help, after the options. */
  readonly notes?: string | undefined
  readonly run: (ctx: Context) => Promise<Output | undefined>
}

/** A mistake in how the command was called (exit status 2). @since 0.1.0 */
export class UsageError extends Error {
  readonly _tag = "UsageError"
}

const invalid = (field: string, why: string) => new InvalidInput({ field, message: `${field}: ${why}` })

/** A duration as the CLI reads it: a bare integer is seconds (SPEC 6). */
const duration = (text: string, field: string): number =>
  Either.getOrThrowWith(TimeGrammar.parseDuration(text, { field, bareNumber: "s" }), (error) => error)

/**
 * A time as the CLI reads it, resolved against `now`: `+5m`, RFC 3339, or a bare duration from
 * now (`5m`, `90` seconds: what the original CLI's `timer 90` meant).
 */
const time = (text: string, now: number, field: string): number => {
  const trimmed = text.trim()
  if (!trimmed.startsWith("+") && Either.isRight(TimeGrammar.parseDuration(trimmed, { bareNumber: "s" }))) {
    return now + duration(trimmed, field)
  }
  return Either.getOrThrowWith(
    TimeGrammar.parseTime(trimmed, now, { field, bareNumber: "s" }),
    (error) => error
  )
}

const integer = (text: string | undefined, field: string): number | undefined => {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!/^\s*-?\d+\s*$/.test(text) || !Number.isInteger(n))
    throw invalid(field, `must be a whole number, got ${JSON.stringify(text)}`)
  return n
}

const list = (text: string | undefined): Array<string> | undefined =>
  text === undefined ? undefined : text.trim() === "" ? [] : text.split(",").map((s) => s.trim())

const jsonValue = (text: string | undefined, field: string): unknown => {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (cause) {
    throw invalid(field, `not JSON (${(cause as Error).message})`)
  }
}

const eventOutput = (event: Ev.Event, ctx: Context, headline: string): Output => ({
  json: eventJson(event, ctx.now()),
  human: `${headline}\n${eventDetail(event, ctx.now(), ctx.out)}`
})

const SCHEDULE_OPTIONS: Record<string, OptionSpec> = {
  quorum: { type: "string", value: "N", help: "confirmations needed (default: every attendee)" },
  attendees: { type: "string", value: "A,B", help: "who must confirm, comma-separated" },
  "t-minus": { type: "string", value: "DUR", help: "lead time: fires this long before <time>" },
  name: { type: "string", value: "TEXT", help: "a human label" },
  payload: { type: "string", value: "JSON", help: "any JSON value (at most 64 KiB)" },
  "on-fire-webhook": {
    type: "string",
    multiple: true,
    value: "URL",
    help: "POST a signed webhook when it fires (repeatable)"
  },
  "on-miss-webhook": {
    type: "string",
    multiple: true,
    value: "URL",
    help: "POST a signed webhook when it is missed (repeatable)"
  },
  "max-deferrals": { type: "string", value: "N", help: "how many deferral cascades (default 3)" },
  deadline: { type: "string", value: "TIME", help: "no deferral may move it past this" },
  cron: { type: "string", value: "EXPR", help: "repeat on a cron schedule (5 or 6 fields)" },
  tz: { type: "string", value: "ZONE", help: "the IANA time zone of --cron (default UTC)" },
  after: { type: "string", value: "ID[+DUR]", help: "start when that event fires (plus an offset)" }
}

const webhooks = (values: Context["values"], name: string): Array<Ev.Action> =>
  ((values[name] as Array<string> | undefined) ?? []).map((url) => ({ _tag: "webhook", url }))

/** A `schedule` input from `<kind> [<time>]` and the schedule flags. */
const scheduleInput = async (
  ctx: Context,
  api: Api,
  kind: string,
  timeText: string | undefined
): Promise<Lifecycle.ScheduleInput> => {
  const now = ctx.now()
  const after = ctx.string("after")
  if (timeText === undefined && after === undefined) {
    throw new UsageError("give a <time> (e.g. +5m or 2026-01-02T15:04:05Z), or --after ID[+DUR]")
  }
  if (timeText !== undefined && after !== undefined)
    throw new UsageError("give either a <time> or --after, not both")
  let afterInput: Lifecycle.ScheduleInput["after"]
  if (after !== undefined) {
    const plus = after.indexOf("+")
    const id = await ctx.event(api, plus === -1 ? after : after.slice(0, plus))
    afterInput = plus === -1 ? id : { eventId: id, offset: duration(after.slice(plus + 1), "after") }
  }
  const cron = ctx.string("cron")
  const tz = ctx.string("tz")
  if (tz !== undefined && cron === undefined) throw new UsageError("--tz goes with --cron")
  const onFire = webhooks(ctx.values, "on-fire-webhook")
  const onMiss = webhooks(ctx.values, "on-miss-webhook")
  const deadline = ctx.string("deadline")
  const tMinus = ctx.string("t-minus")
  const input: Lifecycle.ScheduleInput = {
    kind,
    ...(timeText === undefined ? {} : { at: time(timeText, now, "time") }),
    ...(afterInput === undefined ? {} : { after: afterInput }),
    ...(tMinus === undefined ? {} : { tMinus: duration(tMinus, "tMinus") }),
    ...(ctx.string("name") === undefined ? {} : { name: ctx.string("name") }),
    ...(ctx.agent === undefined ? {} : { organizer: ctx.agent }),
    ...(list(ctx.string("attendees")) === undefined ? {} : { attendees: list(ctx.string("attendees")) }),
    ...(integer(ctx.string("quorum"), "quorum") === undefined
      ? {}
      : { quorum: integer(ctx.string("quorum"), "quorum") }),
    ...(ctx.string("payload") === undefined ? {} : { payload: jsonValue(ctx.string("payload"), "payload") }),
    ...(onFire.length === 0 ? {} : { onFire }),
    ...(onMiss.length === 0 ? {} : { onMiss }),
    ...(integer(ctx.string("max-deferrals"), "maxDeferrals") === undefined
      ? {}
      : { maxDeferrals: integer(ctx.string("max-deferrals"), "maxDeferrals") }),
    ...(deadline === undefined ? {} : { deadline: time(deadline, now, "deadline") }),
    ...(cron === undefined ? {} : { recurrence: { cron, ...(tz === undefined ? {} : { tz }) } })
  }
  return input
}

/** Opens the backend, runs `f`, and lets `main` close it. */
const withApi = async <A>(ctx: Context, f: (api: Api) => Promise<A>): Promise<A> => f((await ctx.open()).api)

const STATUSES = ["scheduled", "fired", "missed", "cancelled"] as const

const respond =
  (verb: "confirm" | "decline") =>
  async (ctx: Context): Promise<Output> =>
    withApi(ctx, async (api) => {
      const [text, agent] = ctx.positionals as [string, string]
      const id = await ctx.event(api, text)
      const event = verb === "confirm" ? await api.confirm(id, agent) : await api.decline(id, agent)
      const past = verb === "confirm" ? "confirmed" : "declined"
      return eventOutput(
        event,
        ctx,
        `${agent} ${past} ${event.kind} ${shortId(event.id)} (${quorumText(event)})`
      )
    })

const timerActions = (ctx: Context): Array<Ev.Action> => {
  const actions: Array<Ev.Action> = []
  const webhook = ctx.string("webhook")
  const command = ctx.string("command")
  const file = ctx.string("file")
  const content = ctx.string("content")
  const message = ctx.string("message")
  if (webhook !== undefined) actions.push({ _tag: "webhook", url: webhook })
  if (command !== undefined) actions.push({ _tag: "command", name: command, args: [] })
  if ((file === undefined) !== (content === undefined))
    throw new UsageError("--file and --content go together")
  if (file !== undefined && content !== undefined) actions.push({ _tag: "file_write", path: file, content })
  if (message !== undefined) actions.push({ _tag: "log", message })
  return actions
}

const campaignTable = (campaigns: ReadonlyArray<Ev.Campaign>, p: Paint) =>
  campaigns.length === 0
    ? p.dim("no campaigns")
    : table(
        ["ID", "NAME", "EVENTS", "LINKS", "CREATED"],
        campaigns.map((c) => [
          shortId(c.id),
          c.name,
          String(c.events.length),
          String(c.dependencies.length),
          `${c.createdAt.toISOString().slice(0, 19)}Z`
        ]),
        p,
        new Set([2, 3])
      )

/** @since 0.1.0 */
export const COMMANDS: ReadonlyArray<Command> = [
  {
    name: "schedule",
    usage: "<kind> [<time>]",
    summary: "schedule an event: it fires at <time> once a quorum of attendees has confirmed",
    minArgs: 1,
    maxArgs: 2,
    options: SCHEDULE_OPTIONS,
    examples: [
      "t-minus schedule review +5m --quorum 2 --attendees alice,bob,carol",
      "t-minus schedule deploy 2026-12-24T09:00:00Z --attendees ci,ops --t-minus 10m",
      "t-minus schedule meeting +1d --attendees alice,bob --cron '30 9 * * MON-FRI' --tz Europe/Berlin",
      "t-minus schedule deploy --after 0193a1b2+5m --attendees ops"
    ],
    notes:
      "<kind>: meeting, checkpoint, review, deploy, timer or custom:<name>. <time>: +<duration> (+5m, +1h30m),\nRFC 3339 with any offset, or a bare duration from now (5m; a bare number is seconds).",
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const [kind, at] = ctx.positionals as [string, string | undefined]
        const event = await api.schedule(await scheduleInput(ctx, api, kind, at))
        return eventOutput(event, ctx, `scheduled ${event.kind} ${shortId(event.id)}`)
      })
  },
  {
    name: "timer",
    usage: "<duration|time> [<name>]",
    summary: "start a timer: it fires unconditionally (no attendees, quorum 0)",
    minArgs: 1,
    maxArgs: 2,
    options: {
      webhook: { type: "string", value: "URL", help: "POST a signed webhook when it fires" },
      command: { type: "string", value: "NAME", help: "run an allow-listed command (the runner's config)" },
      file: { type: "string", value: "PATH", help: "write a file under the runner's directory …" },
      content: { type: "string", value: "TEXT", help: "… with this content (${id}, ${name}, ${firedAt})" },
      message: { type: "string", value: "TEXT", help: "a log line when it fires" },
      payload: { type: "string", value: "JSON", help: "any JSON value" },
      cron: { type: "string", value: "EXPR", help: "repeat on a cron schedule" },
      tz: { type: "string", value: "ZONE", help: "the IANA time zone of --cron (default UTC)" }
    },
    examples: [
      "t-minus timer 90 tea",
      "t-minus timer +25m pomodoro --message 'take a break'",
      "t-minus timer 2026-12-31T23:59:59Z new-year --webhook https://example.test/hook"
    ],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const [when, name] = ctx.positionals as [string, string | undefined]
        const actions = timerActions(ctx)
        if (ctx.server === undefined) {
          for (const action of actions) {
            if (action._tag === "command" || action._tag === "file_write") {
              // The embedded CLI has no allow-list and no file directory: such an action could
              // only be dead-lettered when it fires. A server has them (its config file).
              throw invalid(
                action._tag === "command" ? "command" : "file",
                `${action._tag === "command" ? "commands" : "file writes"} need a runner configured for them: use a t-minus-server (--server) whose config allows it`
              )
            }
          }
        }
        const cron = ctx.string("cron")
        const tz = ctx.string("tz")
        const event = await api.scheduleTimer({
          at: time(when, ctx.now(), "time"),
          ...(name === undefined ? {} : { name }),
          ...(ctx.agent === undefined ? {} : { organizer: ctx.agent }),
          ...(ctx.string("payload") === undefined
            ? {}
            : { payload: jsonValue(ctx.string("payload"), "payload") }),
          ...(actions.length === 0 ? {} : { onFire: actions }),
          ...(cron === undefined ? {} : { recurrence: { cron, ...(tz === undefined ? {} : { tz }) } })
        })
        return eventOutput(
          event,
          ctx,
          `timer ${shortId(event.id)}${event.name === null ? "" : ` ${event.name}`}`
        )
      })
  },
  {
    name: "confirm",
    usage: "<event> <agent>",
    summary: "an attendee is ready (overrides a deferral)",
    minArgs: 2,
    maxArgs: 2,
    options: {},
    examples: ["t-minus confirm 0193a1b2 alice"],
    run: respond("confirm")
  },
  {
    name: "defer",
    usage: "<event> <agent> <duration>",
    summary: "an attendee asks for more time: at fire time the countdown extends",
    minArgs: 3,
    maxArgs: 3,
    options: {},
    examples: ["t-minus defer 0193a1b2 bob 10m", "t-minus defer 0193a1b2 bob 90   # seconds"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const [text, agent, by] = ctx.positionals as [string, string, string]
        const id = await ctx.event(api, text)
        const event = await api.defer(id, agent, duration(by, "duration"))
        return eventOutput(event, ctx, `${agent} deferred ${event.kind} ${shortId(event.id)} by ${by}`)
      })
  },
  {
    name: "decline",
    usage: "<event> <agent>",
    summary: "an attendee will not take part",
    minArgs: 2,
    maxArgs: 2,
    options: {},
    examples: ["t-minus decline 0193a1b2 carol"],
    run: respond("decline")
  },
  {
    name: "cancel",
    usage: "<event>",
    summary: "cancel a scheduled event (its organizer or an admin)",
    minArgs: 1,
    maxArgs: 1,
    options: { reason: { type: "string", value: "TEXT", help: "why, kept in its history" } },
    examples: ["t-minus cancel 0193a1b2 --reason 'release postponed'"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const id = await ctx.event(api, ctx.positionals[0]!)
        const reason = ctx.string("reason")
        const event = await api.cancel(id, {
          ...(reason === undefined ? {} : { reason }),
          ...(ctx.agent === undefined ? {} : { actor: ctx.agent })
        })
        return eventOutput(event, ctx, `cancelled ${event.kind} ${shortId(event.id)}`)
      })
  },
  {
    name: "reschedule",
    usage: "<event> <time>",
    summary: "move a scheduled event's fire time (responses are kept)",
    minArgs: 2,
    maxArgs: 2,
    options: {},
    examples: ["t-minus reschedule 0193a1b2 +30m"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const [text, at] = ctx.positionals as [string, string]
        const id = await ctx.event(api, text)
        const event = await api.reschedule(id, time(at, ctx.now(), "time"), {
          ...(ctx.agent === undefined ? {} : { actor: ctx.agent })
        })
        return eventOutput(event, ctx, `rescheduled ${event.kind} ${shortId(event.id)}`)
      })
  },
  {
    name: "get",
    usage: "<event>",
    summary: "one event in detail",
    minArgs: 1,
    maxArgs: 1,
    options: {},
    examples: ["t-minus get 0193a1b2", "t-minus get 0193a1b2 --json"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const event = await api.get(await ctx.event(api, ctx.positionals[0]!))
        return { json: eventJson(event, ctx.now()), human: eventDetail(event, ctx.now(), ctx.out) }
      })
  },
  {
    name: "logs",
    usage: "<event>",
    summary: "an event's history: every transition and action attempt",
    minArgs: 1,
    maxArgs: 1,
    options: {},
    examples: ["t-minus logs 0193a1b2"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const entries = await api.history(await ctx.event(api, ctx.positionals[0]!))
        return {
          json: entries.map(historyJson),
          human: entries.map((e) => historyLine(e, ctx.out)).join("\n")
        }
      })
  },
  {
    name: "status",
    usage: "",
    summary: "a table of events: countdowns (T-01:02:03), quorum x/y, attendee states",
    minArgs: 0,
    maxArgs: 0,
    options: {
      status: {
        type: "string",
        value: "S",
        help: "only scheduled, fired, missed or cancelled (comma-separated)"
      },
      kind: { type: "string", value: "KIND", help: "only this kind" },
      attendee: { type: "string", value: "AGENT", help: "only events this agent attends" },
      campaign: { type: "string", value: "ID", help: "only this campaign's events" },
      limit: { type: "string", value: "N", help: "at most N events (default 1000)" }
    },
    examples: [
      "t-minus status",
      "t-minus status --status scheduled --attendee alice",
      "t-minus status --json"
    ],
    notes: "Scheduled events come first, soonest first; then the ended ones.",
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const statuses = list(ctx.string("status"))
        for (const s of statuses ?? []) {
          if (!(STATUSES as ReadonlyArray<string>).includes(s)) {
            throw invalid("status", `one of ${STATUSES.join(", ")}; got ${JSON.stringify(s)}`)
          }
        }
        const campaign = ctx.string("campaign")
        const events = [
          ...(await api.list({
            ...(statuses === undefined ? {} : { status: statuses as Array<Ev.EventStatus> }),
            ...(ctx.string("kind") === undefined ? {} : { kind: ctx.string("kind") }),
            ...(ctx.string("attendee") === undefined ? {} : { attendee: ctx.string("attendee") }),
            ...(campaign === undefined ? {} : { campaignId: await ctx.campaign(api, campaign) }),
            limit: integer(ctx.string("limit"), "limit") ?? 1000
          }))
        ].sort(boardOrder)
        return {
          json: events.map((e) => eventJson(e, ctx.now())),
          human: eventsTable(events, ctx.now(), ctx.out)
        }
      })
  },
  {
    name: "tui",
    usage: "",
    summary: "a full-screen board with live countdowns and keys to confirm, defer, decline, cancel",
    minArgs: 0,
    maxArgs: 0,
    options: {
      run: { type: "boolean", help: "embedded: also run the runner here (events fire on time)" }
    },
    examples: ["t-minus tui --as alice", "t-minus tui --server http://127.0.0.1:7420 --api-key $KEY"],
    notes:
      "Keys: ↑/↓ or j/k select, c confirm, d defer, x decline, K cancel, / filter, Tab campaigns, ? help, q quit.\nActions act as --as AGENT. Needs a terminal: without one it says so and exits 2.",
    run: async (ctx) => {
      const { runTui } = await import("./tui/run.ts")
      await runTui(ctx)
      return undefined
    }
  },
  {
    name: "mcp",
    usage: "",
    summary: "serve the t-minus tools to an MCP client (Claude Desktop, Cursor, …) on stdin and stdout",
    minArgs: 0,
    maxArgs: 0,
    options: {},
    examples: [
      "t-minus mcp --as claude",
      "t-minus mcp --as builder --server http://127.0.0.1:7420 --api-key $KEY"
    ],
    notes:
      "The tools act as --as AGENT only: it confirms, defers and declines for that agent and organizes what it schedules.\nEmbedded, the runner runs while the client is connected, so events fire on time. Log lines go to stderr.",
    run: async (ctx) => {
      if (ctx.agent === undefined)
        throw new UsageError("mcp acts as one agent: give --as AGENT (or T_MINUS_AGENT)")
      if (ctx.fixedNow !== undefined) throw new UsageError("mcp keeps real time: --now does not go with it")
      const { serveStdio } = await import("@t-minus/langchain-tools/mcp")
      const backend = await ctx.open({ runner: true })
      let served = () => {}
      const over = new Promise<void>((resolve) => {
        served = resolve
      })
      await serveStdio(
        { agent: ctx.agent, client: backend.api },
        {
          stdin: ctx.io.stdin,
          stdout: writable(ctx.io.stdout),
          until: ctx.io.interrupted ?? untilSignal(over)
        }
      ).finally(served)
      return undefined
    }
  },
  {
    name: "tick",
    usage: "",
    summary: "process due events once (at --now if given): fire, miss or extend them",
    minArgs: 0,
    maxArgs: 0,
    options: {},
    examples: ["t-minus tick", "t-minus tick --now 2026-12-24T09:00:00Z --json"],
    notes: "Remote: admins only, and --now may not be later than the server's clock.",
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const result = await api.tick(ctx.fixedNow)
        const line = (label: string, ids: ReadonlyArray<string>) =>
          `${label.padEnd(9)}${ids.length === 0 ? ctx.out.dim("—") : ids.join(" ")}`
        return {
          json: tickJson(result),
          human: [
            line("fired", result.fired),
            line("missed", result.missed),
            line("deferred", result.deferred)
          ].join("\n")
        }
      })
  },
  {
    name: "run",
    usage: "",
    summary: "the embedded scheduler: fires on time and runs actions until Ctrl-C, printing transitions",
    minArgs: 0,
    maxArgs: 0,
    options: {},
    examples: ["t-minus run", "t-minus run --json   # one JSON line per transition"],
    notes: "Remote (--server), it prints the server's transitions as they happen: the server keeps time.",
    run: async (ctx) => {
      if (ctx.fixedNow !== undefined) throw new UsageError("run keeps real time: --now does not go with it")
      const since = Date.now()
      const backend = await ctx.open({ runner: true })
      const stream = ctx.io.stdout
      if (!ctx.json) {
        stream.write(
          `${ctx.out.dim(`${backend.mode === "embedded" ? "running on" : "watching"} ${backend.where}; Ctrl-C stops`)}\n`
        )
      }
      const printed = new Set<string>()
      const print = (t: Ev.HistoryEntry | Ev.Transition) => {
        const key = `${t.eventId}|${t.type}|${t.at.getTime()}`
        if (printed.has(key)) return
        printed.add(key)
        stream.write(
          ctx.json
            ? `${JSON.stringify("seq" in t ? transitionJson(t) : historyJson(t))}\n`
            : `${historyLine(t, ctx.out)}  ${shortId(t.eventId)}\n`
        )
      }
      const stop = backend.api.watch(print)
      // What the runner did as it started (its catch-up of what came due while nothing ran)
      // happened before the watch was attached: read it back from the history.
      for (const event of await backend.api.list({ limit: 10_000 })) {
        if (event.updatedAt.getTime() < since) continue
        for (const entry of await backend.api.history(event.id)) if (entry.at.getTime() >= since) print(entry)
      }
      await (ctx.io.interrupted ?? untilSignal())
      stop()
      return undefined
    }
  },
  {
    name: "cleanup",
    usage: "",
    summary: "delete ended events (and their history) that ended at least --older-than ago",
    minArgs: 0,
    maxArgs: 0,
    options: { "older-than": { type: "string", value: "DUR", help: "default 0: every ended event" } },
    examples: ["t-minus cleanup --older-than 7d"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const olderThan = ctx.string("older-than")
        const removed = await api.cleanup(olderThan === undefined ? 0 : duration(olderThan, "olderThan"))
        return { json: { removed }, human: `removed ${removed} event${removed === 1 ? "" : "s"}` }
      })
  },
  {
    name: "campaign create",
    usage: "<name>",
    summary: "a campaign: events chained by dependencies",
    minArgs: 1,
    maxArgs: 1,
    options: {},
    examples: ["t-minus campaign create release-v2"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const campaign = await api.createCampaign(ctx.positionals[0]!)
        return { json: campaignJson(campaign), human: `created campaign ${campaign.name} ${campaign.id}` }
      })
  },
  {
    name: "campaign add",
    usage: "<campaign> <event-id> | <campaign> <kind> <time>",
    summary: "add an existing event, or schedule a new one into the campaign",
    minArgs: 2,
    maxArgs: 3,
    options: SCHEDULE_OPTIONS,
    examples: ["t-minus campaign add 0193c0de checkpoint +10m", "t-minus campaign add 0193c0de 0193a1b2"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const [campaignText, second, third] = ctx.positionals as [string, string, string | undefined]
        const campaignId = await ctx.campaign(api, campaignText)
        const addNew = third !== undefined || ctx.string("after") !== undefined
        const event = addNew
          ? await api.addToCampaign(campaignId, await scheduleInput(ctx, api, second, third))
          : await api.addToCampaign(campaignId, await ctx.event(api, second))
        return eventOutput(
          event,
          ctx,
          `added ${event.kind} ${shortId(event.id)} to campaign ${shortId(campaignId)}`
        )
      })
  },
  {
    name: "campaign link",
    usage: "<campaign> <from> <to>",
    summary: "<from> must fire before <to> (a cycle is refused, naming its members)",
    minArgs: 3,
    maxArgs: 3,
    options: {},
    examples: ["t-minus campaign link 0193c0de 0193a1b2 0193a1c3"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const [campaignText, fromText, toText] = ctx.positionals as [string, string, string]
        const campaignId = await ctx.campaign(api, campaignText)
        const from = await ctx.event(api, fromText)
        const to = await ctx.event(api, toText)
        const campaign = await api.link(campaignId, from, to)
        return {
          json: campaignJson(campaign),
          human: `linked ${shortId(from)} → ${shortId(to)} in ${campaign.name}`
        }
      })
  },
  {
    name: "campaign order",
    usage: "<campaign>",
    summary: "the execution order (dependencies first; ties in the order events were added)",
    minArgs: 1,
    maxArgs: 1,
    options: {},
    examples: ["t-minus campaign order 0193c0de --json"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const order = await api.executionOrder(await ctx.campaign(api, ctx.positionals[0]!))
        return {
          json: { order },
          human: order.map((id, i) => `${String(i + 1).padStart(3)}. ${id}`).join("\n")
        }
      })
  },
  {
    name: "campaign show",
    usage: "<campaign>",
    summary: "a campaign: its events in execution order and its links",
    minArgs: 1,
    maxArgs: 1,
    options: {},
    examples: ["t-minus campaign show 0193c0de"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const campaignId = await ctx.campaign(api, ctx.positionals[0]!)
        const campaign = await api.getCampaign(campaignId)
        const order = await api.executionOrder(campaignId)
        const events = await Promise.all(order.map((id) => api.get(id)))
        const links =
          campaign.dependencies.length === 0
            ? ctx.out.dim("no links")
            : campaign.dependencies.map(([from, to]) => `${shortId(from)} → ${shortId(to)}`).join("\n")
        return {
          json: {
            ...campaignJson(campaign),
            order,
            eventsInOrder: events.map((e) => eventJson(e, ctx.now()))
          },
          human: `${ctx.out.bold(campaign.name)} ${campaign.id}\n\n${eventsTable(events, ctx.now(), ctx.out)}\n\n${links}`
        }
      })
  },
  {
    name: "campaign list",
    usage: "",
    summary: "every campaign",
    minArgs: 0,
    maxArgs: 0,
    options: {},
    examples: ["t-minus campaign list"],
    run: (ctx) =>
      withApi(ctx, async (api) => {
        const campaigns = await api.listCampaigns()
        return { json: campaigns.map(campaignJson), human: campaignTable(campaigns, ctx.out) }
      })
  },
  {
    name: "completion",
    usage: "<bash|zsh|fish>",
    summary: "a shell completion script (e.g. `t-minus completion bash >> ~/.bashrc`)",
    minArgs: 1,
    maxArgs: 1,
    options: {},
    examples: [
      "source <(t-minus completion bash)",
      "t-minus completion fish > ~/.config/fish/completions/t-minus.fish"
    ],
    run: async (ctx) => {
      const { completion } = await import("./completion.ts")
      const script = completion(ctx.positionals[0]!)
      if (script === undefined)
        throw new UsageError(`completion takes bash, zsh or fish; got ${JSON.stringify(ctx.positionals[0])}`)
      return { json: { shell: ctx.positionals[0], script }, human: script.trimEnd() }
    }
  }
]

/** The command that `words` name (two words for `campaign …`), and how many words it took. @since 0.1.0 */
export const findCommand = (
  words: ReadonlyArray<string>
): { readonly command: Command; readonly words: number } | undefined => {
  const two = COMMANDS.find((c) => c.name === words.slice(0, 2).join(" "))
  if (two !== undefined) return { command: two, words: 2 }
  const one = COMMANDS.find((c) => c.name === words[0])
  return one === undefined ? undefined : { command: one, words: 1 }
}

/** A stream for what only has `write` (tests give `main` such an object for stdout). */
const writable = (target: Io["stdout"]): Writable =>
  target instanceof Writable
    ? target
    : new Writable({
        write(chunk: Buffer | string, _encoding, done) {
          target.write(chunk.toString())
          done()
        }
      })

/** Resolves on SIGINT or SIGTERM; `over` stops listening (so a later signal ends the process as usual). */
const untilSignal = (over?: Promise<unknown>) =>
  new Promise<void>((resolve) => {
    const done = () => {
      process.off("SIGINT", done)
      process.off("SIGTERM", done)
      resolve()
    }
    process.on("SIGINT", done)
    process.on("SIGTERM", done)
    void over?.finally(done)
  })
