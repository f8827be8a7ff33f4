/**
 * How the CLI and the TUI show things: countdowns (`T-01:02:03`), quorum (`2/3`), attendee
 * states, aligned tables, colours that respect `NO_COLOR` and non-TTY output, and the JSON shapes
 * of `--json`.
 *
 * @since 0.1.0
 */
import { type Event as Ev, Lifecycle, TimeGrammar } from "@t-minus/core"
import stringWidth from "string-width"

type Attendee = Ev.Attendee
type Campaign = Ev.Campaign
type Event = Ev.Event
type HistoryEntry = Ev.HistoryEntry
type TickResult = Ev.TickResult
type Transition = Ev.Transition

/** ANSI colours, or none. */
export interface Paint {
  readonly on: boolean
  readonly bold: (text: string) => string
  readonly dim: (text: string) => string
  readonly red: (text: string) => string
  readonly green: (text: string) => string
  readonly yellow: (text: string) => string
  readonly blue: (text: string) => string
  readonly magenta: (text: string) => string
  readonly cyan: (text: string) => string
}

const sgr = (on: boolean, open: number, close: number) => (text: string) =>
  on ? `\u001b[${open}m${text}\u001b[${close}m` : text

/** @since 0.1.0 */
export const paint = (on: boolean): Paint => ({
  on,
  bold: sgr(on, 1, 22),
  dim: sgr(on, 2, 22),
  red: sgr(on, 31, 39),
  green: sgr(on, 32, 39),
  yellow: sgr(on, 33, 39),
  blue: sgr(on, 34, 39),
  magenta: sgr(on, 35, 39),
  cyan: sgr(on, 36, 39)
})

/**
 * Whether to colour a stream: never with `NO_COLOR` (any non-empty value) or `--no-color`, always
 * with `FORCE_COLOR` (other than `0`), else only when the stream is a terminal.
 *
 * @since 0.1.0
 */
export const colorFor = (
  env: Readonly<Record<string, string | undefined>>,
  isTTY: boolean | undefined,
  noColorFlag = false
): boolean => {
  if (noColorFlag || (env.NO_COLOR !== undefined && env.NO_COLOR !== "")) return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0") return true
  return isTTY === true
}

const _two = (n: number) => String(n).padStart(2, "0")

/** `T-01:02:03` (`TimeGrammar.countdown`). @since 0.1.0 */
export const countdown = TimeGrammar.countdown

/** `12m`, `1h30m`, `2d`: a duration in its two largest units. @since 0.1.0 */
export const shortDuration = (ms: number): string => {
  const units: ReadonlyArray<readonly [string, number]> = [
    ["w", 604_800_000],
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
    ["ms", 1]
  ]
  let rest = Math.max(0, Math.round(ms))
  const parts: Array<string> = []
  for (const [unit, size] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    }
    if (parts.length === 2) break
  }
  return parts.length === 0 ? "0s" : parts.join("")
}

/** How many attendees have confirmed. @since 0.1.0 */
export const confirmedCount = (event: Event): number =>
  event.attendees.filter((a) => a.status === "confirmed").length

/** `2/3`: confirmed over quorum. @since 0.1.0 */
export const quorumText = (event: Event): string => `${confirmedCount(event)}/${event.quorum}`

/** The mark after an attendee's name: `✓` confirmed, `·` pending, `↻2m` deferred, `✗` declined, `!` missed. @since 0.1.0 */
export const attendeeMark = (attendee: Attendee): string => {
  switch (attendee.status) {
    case "confirmed":
      return "✓"
    case "pending":
      return "·"
    case "deferred":
      return `↻${shortDuration(attendee.deferMs ?? 0)}`
    case "declined":
      return "✗"
    case "missed":
      return "!"
  }
}

const ATTENDEE_PAINT = {
  confirmed: "green",
  pending: "yellow",
  deferred: "cyan",
  declined: "red",
  missed: "magenta"
} as const

/** One attendee with its state: `alice✓`, `bob·`, `carol✗`, `dave↻2m`, `erin!`. @since 0.1.0 */
export const attendeeText = (attendee: Attendee, p: Paint): string =>
  p[ATTENDEE_PAINT[attendee.status]](`${attendee.agent}${attendeeMark(attendee)}`)

/**
 * How boards list events: scheduled ones first, soonest first (the engine's fire-time order),
 * then the ended ones.
 *
 * @since 0.1.0
 */
export const boardOrder = (a: Event, b: Event): number => {
  const rank = (e: Event) => (e.status === "scheduled" ? 0 : 1)
  return rank(a) - rank(b) || Lifecycle.byFireTime(a, b)
}

/** An event's status, coloured. @since 0.1.0 */
export const statusText = (status: Event["status"], p: Paint): string => {
  switch (status) {
    case "scheduled":
      return p.blue(status)
    case "fired":
      return p.green(status)
    case "missed":
      return p.red(status)
    case "cancelled":
      return p.dim(status)
  }
}

/** The countdown column: a countdown while scheduled (or "waiting" on a predecessor), else when it ended. */
export const whenText = (event: Event, now: number): string => {
  if (event.status === "scheduled")
    return event.fireAt === null ? "waiting" : countdown(event.fireAt.getTime(), now)
  const ended = event.firedAt ?? event.missedAt ?? event.cancelledAt
  return ended === null ? "" : isoSeconds(ended)
}

/** `2026-01-02T03:04:05Z` (seconds; the JSON keeps milliseconds). @since 0.1.0 */
export const isoSeconds = (date: Date): string => `${date.toISOString().slice(0, 19)}Z`

/**
 * The last 8 characters of an id: what tables show. Ids are UUID v7, which begin with their
 * creation time (events made within a minute share their first 8 characters) and end with random
 * bits, so the end is what tells them apart. Commands take any unique start or end of an id back.
 *
 * @since 0.1.0
 */
export const shortId = (id: string): string => id.slice(-8)

/** Columns on a terminal: colours take none, wide characters (CJK, most emoji) two. */
export const visibleWidth = (text: string): number => stringWidth(text)

/**
 * An aligned table: a header row (bold when coloured) and rows, columns separated by two spaces;
 * `right` columns are right-aligned.
 *
 * @since 0.1.0
 */
export const table = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  p: Paint,
  right: ReadonlySet<number> = new Set()
): string => {
  const widths = header.map((h, i) => Math.max(visibleWidth(h), ...rows.map((r) => visibleWidth(r[i] ?? ""))))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => {
        const pad = " ".repeat(widths[i]! - visibleWidth(cell))
        return right.has(i) ? pad + cell : i === cells.length - 1 ? cell : cell + pad
      })
      .join("  ")
      .trimEnd()
  return [p.bold(line(header)), ...rows.map(line)].join("\n")
}

/** The status table of events (what `status` prints). @since 0.1.0 */
export const eventsTable = (events: ReadonlyArray<Event>, now: number, p: Paint): string =>
  events.length === 0
    ? p.dim("no events")
    : table(
        ["ID", "KIND", "NAME", "STATUS", "FIRES AT", "T-MINUS", "QUORUM", "ATTENDEES"],
        events.map((e) => [
          shortId(e.id),
          e.kind,
          e.name ?? "",
          statusText(e.status, p),
          e.fireAt === null ? `after ${shortId(e.after?.eventId ?? "")}` : isoSeconds(e.fireAt),
          whenText(e, now),
          quorumText(e),
          e.attendees.map((a) => attendeeText(a, p)).join(" ")
        ]),
        p,
        new Set([6])
      )

/** One event in detail (what `get` and most commands print). @since 0.1.0 */
export const eventDetail = (event: Event, now: number, p: Paint): string => {
  const rows: Array<readonly [string, string]> = [
    ["id", event.id],
    ["kind", event.kind],
    ["name", event.name ?? ""],
    ["status", statusText(event.status, p) + (event.reason === null ? "" : ` (${event.reason})`)],
    [
      "fires at",
      event.fireAt === null
        ? `when ${event.after?.eventId} fires, + ${shortDuration(event.after?.offsetMs ?? 0)}`
        : isoSeconds(event.fireAt)
    ],
    ["t-minus", whenText(event, now)],
    ["quorum", `${quorumText(event)} confirmed`],
    ["organizer", event.organizer]
  ]
  if (event.attendees.length > 0)
    rows.push(["attendees", event.attendees.map((a) => attendeeText(a, p)).join(" ")])
  if (event.campaignId !== null) rows.push(["campaign", event.campaignId])
  if (event.recurrence !== null) rows.push(["repeats", `${event.recurrence.cron} (${event.recurrence.tz})`])
  if (event.deferralsUsed > 0 || event.maxDeferrals !== 3)
    rows.push(["deferrals", `${event.deferralsUsed} of ${event.maxDeferrals}`])
  if (event.deadline !== null) rows.push(["deadline", isoSeconds(event.deadline)])
  if (event.payload !== null && event.payload !== undefined)
    rows.push(["payload", JSON.stringify(event.payload)])
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${p.dim(k.padEnd(width))}  ${v}`).join("\n")
}

/** A history entry as one line. @since 0.1.0 */
export const historyLine = (entry: HistoryEntry | Transition, p: Paint): string => {
  const detail = Object.entries(entry.detail)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ")
  return `${p.dim(entry.at.toISOString())}  ${p.bold(entry.type.padEnd(16))} ${entry.actor}${detail === "" ? "" : `  ${p.dim(detail)}`}`
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString())

/**
 * The JSON shape of an event on the command line: the issue's fields (`fireAt` in ISO 8601 UTC,
 * `tMinusMs` the lead time, `confirmed` the count), the time left (`remainingMs`), and the rest
 * of the event.
 *
 * @since 0.1.0
 */
export const eventJson = (event: Event, now: number) => ({
  id: event.id,
  kind: event.kind,
  name: event.name,
  status: event.status,
  fireAt: iso(event.fireAt),
  scheduledAt: iso(event.scheduledAt),
  tMinusMs: event.tMinusMs,
  remainingMs: event.status === "scheduled" && event.fireAt !== null ? event.fireAt.getTime() - now : null,
  quorum: event.quorum,
  confirmed: confirmedCount(event),
  organizer: event.organizer,
  attendees: event.attendees.map((a) => ({
    agent: a.agent,
    status: a.status,
    respondedAt: iso(a.respondedAt),
    ...(a.deferMs === undefined ? {} : { deferMs: a.deferMs })
  })),
  payload: event.payload ?? null,
  campaignId: event.campaignId,
  after: event.after,
  maxDeferrals: event.maxDeferrals,
  deferralsUsed: event.deferralsUsed,
  deadline: iso(event.deadline),
  recurrence:
    event.recurrence === null
      ? null
      : { ...event.recurrence, occurrenceAt: event.recurrence.occurrenceAt.toISOString() },
  actions: event.actions,
  firedAt: iso(event.firedAt),
  missedAt: iso(event.missedAt),
  cancelledAt: iso(event.cancelledAt),
  reason: event.reason,
  createdAt: event.createdAt.toISOString(),
  updatedAt: event.updatedAt.toISOString()
})

/** @since 0.1.0 */
export const historyJson = (entry: HistoryEntry) => ({
  eventId: entry.eventId,
  at: entry.at.toISOString(),
  type: entry.type,
  actor: entry.actor,
  detail: entry.detail
})

/** @since 0.1.0 */
export const transitionJson = (t: Transition) => ({ seq: t.seq, ...historyJson(t) })

/** @since 0.1.0 */
export const campaignJson = (campaign: Campaign) => ({
  id: campaign.id,
  name: campaign.name,
  events: campaign.events,
  dependencies: campaign.dependencies,
  createdAt: campaign.createdAt.toISOString()
})

/** @since 0.1.0 */
export const tickJson = (result: TickResult) => ({
  fired: result.fired,
  missed: result.missed,
  deferred: result.deferred
})
