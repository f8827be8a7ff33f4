/**
 * Cron expressions evaluated in an IANA time zone, as pure functions over epoch milliseconds.
 *
 * Syntax: 5 fields (minute hour day-of-month month day-of-week) or 6 (second first); `*`, `?`
 * (day fields only), numbers, ranges `a-b`, lists `a,b,c`, steps `/n` after `*`, a range or a
 * start (`a/n` runs to the field's end), month names JAN–DEC, weekday names SUN–SAT
 * (case-insensitive), day-of-week 0–7 with 0 and 7 both Sunday, and the macros `@yearly`,
 * `@monthly`, `@weekly`, `@daily` and `@hourly`. As in Vixie cron, when both day fields are
 * restricted (neither starts with `*` or `?`) a day matches if either field matches; otherwise it
 * must match both.
 *
 * DST rule: occurrences are wall-clock times in the zone, turned into instants the way RFC 5545
 * and Temporal's `disambiguation: "compatible"` do. A wall time that does not exist (the
 * spring-forward gap) moves forward by the length of the gap, so a daily 02:30 in
 * America/New_York fires at 03:30 EDT on the day clocks jump from 02:00 to 03:00. A wall time that
 * occurs twice (fall-back) fires only at the earlier instant, so 01:30 fires at 01:30 EDT and not
 * again at 01:30 EST. Wall slots that land on the same instant fire once (hourly at :30 on the
 * spring-forward day: the shifted 02:30 and the real 03:30 are one occurrence). A daily job
 * therefore runs exactly once per local day, and no wall time that exists is ever skipped.
 *
 * Offsets come from `Intl.DateTimeFormat` only, so this runs unchanged on Node, Bun and Deno.
 * Transitions are found by probing a day at a time, so two changes within one day (no ordinary
 * DST rule has them) would go unseen.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import { InvalidInput } from "./Errors.ts"

/**
 * A parsed cron expression bound to a time zone. Each field lists its allowed values in ascending
 * order; `daysOfWeek` uses 0–6 with Sunday as 0.
 *
 * @since 0.1.0
 */
export interface CronSchedule {
  readonly expression: string
  readonly tz: string
  readonly seconds: ReadonlyArray<number>
  readonly minutes: ReadonlyArray<number>
  readonly hours: ReadonlyArray<number>
  readonly daysOfMonth: ReadonlyArray<number>
  readonly months: ReadonlyArray<number>
  readonly daysOfWeek: ReadonlyArray<number>
  /** Both day fields are restricted, so a day matches if either one matches (Vixie cron). */
  readonly eitherDayMatches: boolean
}

const CRON_FIELD = "recurrence.cron"
const TZ_FIELD = "recurrence.tz"

const SECOND = 1_000
const DAY = 86_400_000
/** How far `next` looks before giving up: two leap cycles, so any Feb 29 schedule is found. */
const HORIZON = 8 * 366 * DAY
const LAST_INSTANT = 8.64e15 - 2 * DAY

interface FieldSpec {
  readonly name: string
  readonly min: number
  /** The largest value `*` and an open `a/n` reach; day-of-week stops at 6 so Sunday is not doubled. */
  readonly max: number
  /** The largest value a number may have (7 for day-of-week, read as Sunday). */
  readonly limit: number
  readonly names?: ReadonlyArray<string>
  readonly dayField?: boolean
}

const MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
const DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

const SECOND_SPEC: FieldSpec = { name: "second", min: 0, max: 59, limit: 59 }
const FIELD_SPECS: ReadonlyArray<FieldSpec> = [
  { name: "minute", min: 0, max: 59, limit: 59 },
  { name: "hour", min: 0, max: 23, limit: 23 },
  { name: "day-of-month", min: 1, max: 31, limit: 31, dayField: true },
  { name: "month", min: 1, max: 12, limit: 12, names: MONTH_NAMES },
  { name: "day-of-week", min: 0, max: 6, limit: 7, names: DAY_NAMES, dayField: true }
]

const MACROS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *"
}

interface ParsedField {
  readonly values: ReadonlyArray<number>
  readonly restricted: boolean
}

const readValue = (token: string, spec: FieldSpec): number | string => {
  if (/^\d+$/.test(token)) {
    const n = Number(token)
    return n < spec.min || n > spec.limit ? `is out of range ${spec.min}-${spec.limit}` : n
  }
  const named = spec.names?.indexOf(token.toUpperCase()) ?? -1
  if (named >= 0) return named + spec.min
  return spec.names === undefined
    ? "is not a number"
    : `is not a number or a name (${spec.names[0]}-${spec.names[spec.names.length - 1]})`
}

const parseField = (text: string, spec: FieldSpec): Either.Either<ParsedField, string> => {
  const fail = (token: string, why: string) =>
    Either.left(
      `${spec.name} field ${JSON.stringify(text)}${token === text ? "" : `: ${JSON.stringify(token)}`} ${why}`
    )
  const values = new Set<number>()
  for (const item of text.split(",")) {
    if (item === "") return fail(text, "has an empty list item")
    const slash = item.indexOf("/")
    const base = slash < 0 ? item : item.slice(0, slash)
    let step = 1
    if (slash >= 0) {
      const stepText = item.slice(slash + 1)
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0)
        return fail(item, "has a step that is not a positive whole number")
      step = Number(stepText)
    }
    let from: number
    let to: number
    if (base === "*" || base === "?") {
      if (base === "?" && spec.dayField !== true) return fail(item, `uses "?", which only day fields allow`)
      from = spec.min
      to = spec.max
    } else {
      const dash = base.indexOf("-")
      const start = readValue(dash < 0 ? base : base.slice(0, dash), spec)
      if (typeof start === "string") return fail(dash < 0 ? item : base.slice(0, dash), start)
      from = start
      // A start with a step (`a/n`) runs to the field's end.
      to = slash < 0 ? start : Math.max(start, spec.max)
      if (dash >= 0) {
        const end = readValue(base.slice(dash + 1), spec)
        if (typeof end === "string") return fail(base.slice(dash + 1), end)
        if (end < start) return fail(item, `has a range that runs backwards (${start} is after ${end})`)
        to = end
      }
    }
    // 7 is the second name for Sunday; folding it here keeps matching a plain lookup.
    for (let v = from; v <= to; v += step) values.add(spec.names === DAY_NAMES && v === 7 ? 0 : v)
  }
  return Either.right({
    values: [...values].sort((a, b) => a - b),
    restricted: !(text.startsWith("*") || text.startsWith("?"))
  })
}

const validateZone = (tz: string): boolean => {
  try {
    formatterFor(tz)
    return true
  } catch {
    return false
  }
}

/**
 * Parses a cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6 (second
 * first) for the IANA zone `tz` (default `"UTC"`). Fails with `InvalidInput` on
 * `recurrence.cron` (naming the field and why) or `recurrence.tz` (an unknown zone).
 *
 * @since 0.1.0
 */
export const parse = (expression: string, tz: string = "UTC"): Either.Either<CronSchedule, InvalidInput> => {
  const invalid = (field: string, why: string) =>
    Either.left(new InvalidInput({ field, message: `${field}: ${why}` }))
  const trimmed = expression.trim()
  let source = trimmed
  if (trimmed.startsWith("@")) {
    const macro = MACROS[trimmed.toLowerCase()]
    if (macro === undefined)
      return invalid(
        CRON_FIELD,
        `unknown macro ${JSON.stringify(trimmed)}; use @yearly, @monthly, @weekly, @daily or @hourly`
      )
    source = macro
  }
  const texts = source === "" ? [] : source.split(/\s+/)
  if (texts.length !== 5 && texts.length !== 6)
    return invalid(
      CRON_FIELD,
      `expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got ${texts.length}`
    )
  const specs = texts.length === 6 ? [SECOND_SPEC, ...FIELD_SPECS] : FIELD_SPECS
  const parsed: Array<ParsedField> = texts.length === 6 ? [] : [{ values: [0], restricted: true }]
  for (let i = 0; i < texts.length; i++) {
    const field = parseField(texts[i]!, specs[i]!)
    if (Either.isLeft(field)) return invalid(CRON_FIELD, field.left)
    parsed.push(field.right)
  }
  if (!validateZone(tz)) return invalid(TZ_FIELD, `unknown IANA time zone ${JSON.stringify(tz)}`)
  const [seconds, minutes, hours, daysOfMonth, months, daysOfWeek] = parsed as [
    ParsedField,
    ParsedField,
    ParsedField,
    ParsedField,
    ParsedField,
    ParsedField
  ]
  return Either.right({
    expression,
    tz,
    seconds: seconds.values,
    minutes: minutes.values,
    hours: hours.values,
    daysOfMonth: daysOfMonth.values,
    months: months.values,
    daysOfWeek: daysOfWeek.values,
    eitherDayMatches: daysOfMonth.restricted && daysOfWeek.restricted
  })
}

const firstAtLeast = (values: ReadonlyArray<number>, n: number): number | undefined => {
  for (const v of values) if (v >= n) return v
  return undefined
}

const dayMatches = (schedule: CronSchedule, date: Date): boolean => {
  const dom = schedule.daysOfMonth.includes(date.getUTCDate())
  const dow = schedule.daysOfWeek.includes(date.getUTCDay())
  return schedule.eitherDayMatches ? dom || dow : dom && dow
}

/**
 * The first wall time at or after `from` that matches, or null past `limit`. Wall times are
 * epoch-style milliseconds read in a naive calendar (UTC arithmetic, no zone).
 */
const nextWall = (schedule: CronSchedule, from: number, limit: number): number | null => {
  let t = Math.ceil(from / SECOND) * SECOND
  while (t <= limit) {
    const date = new Date(t)
    const y = date.getUTCFullYear()
    const mo = date.getUTCMonth()
    const d = date.getUTCDate()
    if (!schedule.months.includes(mo + 1)) {
      const month = firstAtLeast(schedule.months, mo + 2)
      t = month === undefined ? Date.UTC(y + 1, schedule.months[0]! - 1, 1) : Date.UTC(y, month - 1, 1)
      continue
    }
    if (!dayMatches(schedule, date)) {
      t = Date.UTC(y, mo, d + 1)
      continue
    }
    const h = date.getUTCHours()
    const hour = firstAtLeast(schedule.hours, h)
    if (hour === undefined) {
      t = Date.UTC(y, mo, d + 1)
      continue
    }
    if (hour > h) {
      t = Date.UTC(y, mo, d, hour)
      continue
    }
    const mi = date.getUTCMinutes()
    const minute = firstAtLeast(schedule.minutes, mi)
    if (minute === undefined) {
      t = Date.UTC(y, mo, d, h + 1)
      continue
    }
    if (minute > mi) {
      t = Date.UTC(y, mo, d, h, minute)
      continue
    }
    const second = firstAtLeast(schedule.seconds, date.getUTCSeconds())
    if (second === undefined) {
      t = Date.UTC(y, mo, d, h, mi + 1)
      continue
    }
    const found = Date.UTC(y, mo, d, h, mi, second)
    return found <= limit ? found : null
  }
  return null
}

const formatters = new Map<string, Intl.DateTimeFormat>()

const formatterFor = (tz: string): Intl.DateTimeFormat => {
  let formatter = formatters.get(tz)
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric"
    })
    formatters.set(tz, formatter)
  }
  return formatter
}

/** The zone's offset (wall minus instant, in ms) at `instant`. */
const offsetAt = (tz: string, instant: number): number => {
  const whole = Math.floor(instant / SECOND) * SECOND
  const parts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 }
  for (const part of formatterFor(tz).formatToParts(whole)) {
    if (part.type in parts) parts[part.type as keyof typeof parts] = Number(part.value)
  }
  const wall = new Date(0)
  wall.setUTCFullYear(parts.year, parts.month - 1, parts.day)
  wall.setUTCHours(parts.hour, parts.minute, parts.second)
  return wall.getTime() - whole
}

interface Transition {
  /** The first instant with the new offset. */
  readonly at: number
  readonly before: number
  readonly after: number
}

const transitionCache = new Map<string, Map<number, ReadonlyArray<Transition>>>()

/** The zone's transitions in (Jan 1 of `year`, Jan 1 of `year + 1`] UTC, probed a day at a time. */
const transitionsOfYear = (tz: string, year: number): ReadonlyArray<Transition> => {
  let byYear = transitionCache.get(tz)
  if (byYear === undefined) {
    byYear = new Map()
    transitionCache.set(tz, byYear)
  }
  const cached = byYear.get(year)
  if (cached !== undefined) return cached
  const found: Array<Transition> = []
  const end = Date.UTC(year + 1, 0, 1)
  let lo = Date.UTC(year, 0, 1)
  let loOffset = offsetAt(tz, lo)
  while (lo < end) {
    const hi = Math.min(lo + DAY, end)
    const hiOffset = offsetAt(tz, hi)
    if (hiOffset !== loOffset) {
      let a = lo
      let b = hi
      while (b - a > SECOND) {
        const mid = a + Math.floor((b - a) / 2 / SECOND) * SECOND
        if (offsetAt(tz, mid) === loOffset) a = mid
        else b = mid
      }
      found.push({ at: b, before: loOffset, after: hiOffset })
    }
    lo = hi
    loOffset = hiOffset
  }
  byYear.set(year, found)
  return found
}

const yearOf = (instant: number): number => new Date(instant).getUTCFullYear()

/** The first transition in (from, to]. */
const firstTransitionIn = (tz: string, from: number, to: number): Transition | undefined => {
  for (let year = yearOf(from) - 1; year <= yearOf(to); year++) {
    for (const transition of transitionsOfYear(tz, year)) {
      if (transition.at > from && transition.at <= to) return transition
    }
  }
  return undefined
}

/** The last transition in (from, to]. */
const lastTransitionIn = (tz: string, from: number, to: number): Transition | undefined => {
  for (let year = yearOf(to); year >= yearOf(from) - 1; year--) {
    const transitions = transitionsOfYear(tz, year)
    for (let i = transitions.length - 1; i >= 0; i--) {
      const transition = transitions[i]!
      if (transition.at > from && transition.at <= to) return transition
    }
  }
  return undefined
}

/**
 * The first occurrence in (after, limit], walking the zone one constant-offset segment at a time.
 * Inside a segment instants and wall times correspond one to one; the segment's start adds the
 * two DST cases: after a fall-back the repeated wall times are skipped, after a spring-forward the
 * gap's wall times are matched too, shifted forward by the gap.
 */
const nextWithin = (schedule: CronSchedule, after: number, atMost: number): number | null => {
  const tz = schedule.tz
  // Intl cannot format instants beyond what a Date holds; stay a couple of days inside that.
  const limit = Math.min(atMost, LAST_INSTANT)
  let t = Math.floor(after / SECOND) * SECOND + SECOND
  if (!(t <= limit) || t < -LAST_INSTANT) return null
  const recent = lastTransitionIn(tz, t - DAY, t)
  let offset = offsetAt(tz, t)
  let start = recent?.at
  let before = recent?.before ?? offset
  for (;;) {
    let candidate: number | null = null
    const foldEnd = start !== undefined && before > offset ? start + (before - offset) : t
    const wall = nextWall(schedule, Math.max(t, foldEnd) + offset, limit + offset)
    if (wall !== null) candidate = wall - offset
    if (start !== undefined && before < offset && t < start + (offset - before)) {
      const gapWall = nextWall(schedule, t + before, start + offset - 1)
      if (gapWall !== null && (candidate === null || gapWall - before < candidate))
        candidate = gapWall - before
    }
    const change = firstTransitionIn(tz, t, Math.min(candidate ?? limit, limit))
    if (change === undefined) return candidate !== null && candidate <= limit ? candidate : null
    if (candidate !== null && candidate < change.at) return candidate
    t = start = change.at
    before = change.before
    offset = change.after
  }
}

/**
 * The first occurrence strictly after `afterMs` (epoch ms), or null if there is none within the
 * next 8 years (e.g. `0 0 30 2 *`).
 *
 * @since 0.1.0
 */
export const next = (schedule: CronSchedule, afterMs: number): number | null =>
  nextWithin(schedule, afterMs, afterMs + HORIZON)

/**
 * The latest occurrence in (afterMs, atOrBeforeMs], or null. Gallops back from `atOrBeforeMs`
 * and then bisects on `next`, so a year of downtime costs a few dozen `next` calls even for a
 * schedule that fires every second.
 *
 * @since 0.1.0
 */
export const latest = (schedule: CronSchedule, afterMs: number, atOrBeforeMs: number): number | null => {
  const first = nextWithin(schedule, afterMs, atOrBeforeMs)
  if (first === null || nextWithin(schedule, first, atOrBeforeMs) === null) return first
  // Invariant: an occurrence follows `lo` within the window, none follows `hi`.
  let lo = afterMs
  let hi = atOrBeforeMs
  for (let span = SECOND; atOrBeforeMs - span > afterMs; span *= 2) {
    const probe = atOrBeforeMs - span
    if (nextWithin(schedule, probe, atOrBeforeMs) !== null) {
      lo = probe
      break
    }
    hi = probe
  }
  // Occurrences fall on whole seconds, so once the bracket is a second wide `next(lo)` is the answer.
  while (hi - lo > SECOND) {
    const mid = lo + Math.floor((hi - lo) / 2)
    if (nextWithin(schedule, mid, atOrBeforeMs) !== null) lo = mid
    else hi = mid
  }
  return nextWithin(schedule, lo, atOrBeforeMs)
}
