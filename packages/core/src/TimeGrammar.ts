/**
 * The duration and time grammar of SPEC 6, as pure functions.
 *
 * Durations: `500ms`, `30s`, `5m`, `2h`, `1d`, `1w`, compounds such as `1h30m`, and ISO 8601
 * (`PT1H30M`, `P1DT2H`, `P2W`, `PT0.5S`). Times: `+<duration>` relative to now, RFC 3339 with any
 * offset (normalized to UTC), or epoch milliseconds.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { InvalidInput } from "./Errors.ts"

const UNIT_MS = {
  w: 604_800_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1
} as const

type Unit = keyof typeof UNIT_MS

const UNIT_ORDER: ReadonlyArray<Unit> = ["w", "d", "h", "m", "s", "ms"]

const COMPOUND = /^(?:\d+(?:ms|w|d|h|m|s))+$/
const COMPOUND_PART = /(\d+)(ms|w|d|h|m|s)/g
const ISO = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:[.,](\d{1,3}))?S)?)?$/

/** How a bare number is read: milliseconds in APIs, seconds in the CLI (as in the original t-minus). */
export type BareNumberUnit = "ms" | "s"

/**
 * Parses a duration into whole milliseconds. Numbers (and all-digit strings) are read in
 * `bareNumber` units. Zero is allowed here; callers that need a positive duration check it.
 *
 * @since 0.1.0
 */
export const parseDuration = (
  input: string | number,
  options: { readonly field?: string; readonly bareNumber?: BareNumberUnit } = {}
): Either.Either<number, InvalidInput> => {
  const field = options.field ?? "duration"
  const scale = options.bareNumber === "s" ? 1_000 : 1
  const invalid = (why: string) => Either.left(new InvalidInput({ field, message: `${field}: ${why}` }))
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) return invalid(`must be a non-negative number, got ${input}`)
    const ms = input * scale
    if (!Number.isInteger(ms)) return invalid(`must be a whole number of milliseconds, got ${input}`)
    return checkRange(ms, field)
  }
  const text = input.trim()
  if (/^\d+$/.test(text)) return checkRange(Number(text) * scale, field)
  if (COMPOUND.test(text)) {
    let total = 0
    for (const match of text.matchAll(COMPOUND_PART)) {
      total += Number(match[1]) * UNIT_MS[match[2] as Unit]
    }
    return checkRange(total, field)
  }
  const iso = ISO.exec(text.toUpperCase())
  if (iso !== null && text.length > 1 && !text.toUpperCase().endsWith("T")) {
    const [, w, d, h, m, s, frac] = iso
    const total =
      Number(w ?? 0) * UNIT_MS.w +
      Number(d ?? 0) * UNIT_MS.d +
      Number(h ?? 0) * UNIT_MS.h +
      Number(m ?? 0) * UNIT_MS.m +
      Number(s ?? 0) * UNIT_MS.s +
      (frac === undefined ? 0 : Number(frac.padEnd(3, "0")))
    return checkRange(total, field)
  }
  return invalid(
    `cannot read ${JSON.stringify(input)} as a duration; use e.g. 500ms, 30s, 5m, 2h, 1d, 1w, 1h30m or PT1H30M`
  )
}

/** The largest instant a `Date` can hold (±100 million days around 1970). @since 0.1.0 */
export const MAX_TIME_MS = 8.64e15

const checkRange = (ms: number, field: string): Either.Either<number, InvalidInput> =>
  Number.isSafeInteger(ms) && ms <= MAX_TIME_MS
    ? Either.right(ms)
    : Either.left(new InvalidInput({ field, message: `${field}: duration is too large` }))

/**
 * Formats milliseconds as the canonical compound form (`1h30m`, `500ms`, `0ms`); `parseDuration`
 * reads it back to the same number.
 *
 * @since 0.1.0
 */
export const formatDuration = (ms: number): string => {
  if (ms === 0) return "0ms"
  let rest = Math.abs(Math.trunc(ms))
  let out = ms < 0 ? "-" : ""
  for (const unit of UNIT_ORDER) {
    const size = UNIT_MS[unit]
    const count = Math.floor(rest / size)
    if (count > 0) {
      out += `${count}${unit}`
      rest -= count * size
    }
  }
  return out
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

/** Anything the APIs accept as an instant. */
export type TimeInput = Date | number | string

/**
 * Parses a time into epoch milliseconds (UTC): `+<duration>` relative to `now`, RFC 3339 with any
 * offset, epoch milliseconds as a number, or a `Date`.
 *
 * @since 0.1.0
 */
export const parseTime = (
  input: TimeInput,
  now: number,
  options: { readonly field?: string; readonly bareNumber?: BareNumberUnit } = {}
): Either.Either<number, InvalidInput> => {
  const field = options.field ?? "time"
  const invalid = (why: string) => Either.left(new InvalidInput({ field, message: `${field}: ${why}` }))
  if (input instanceof Date) {
    const ms = input.getTime()
    return Number.isNaN(ms) ? invalid("is an invalid Date") : Either.right(ms)
  }
  if (typeof input === "number") {
    return Number.isSafeInteger(input) && Math.abs(input) <= MAX_TIME_MS
      ? Either.right(input)
      : invalid(`must be epoch milliseconds, got ${input}`)
  }
  const text = input.trim()
  if (text.startsWith("+")) {
    return Either.map(
      parseDuration(text.slice(1), { field, bareNumber: options.bareNumber ?? "ms" }),
      (ms) => now + ms
    ).pipe(
      Either.flatMap((ms) => (ms <= MAX_TIME_MS ? Either.right(ms) : invalid("is too far in the future")))
    )
  }
  const m = RFC3339.exec(text)
  if (m === null) {
    return invalid(
      `cannot read ${JSON.stringify(input)} as a time; use +<duration> (e.g. +5m), RFC 3339 (e.g. 2026-01-02T15:04:05Z) or epoch milliseconds`
    )
  }
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
  const second = Number(s)
  const base = Date.UTC(year, month - 1, day, hour, minute, second)
  const check = new Date(base)
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return invalid(`${JSON.stringify(input)} is not a valid calendar time`)
  }
  const offsetMinutes = z !== undefined ? 0 : (sign === "-" ? -1 : 1) * (Number(oh) * 60 + Number(om))
  if (Number(om ?? 0) > 59 || Math.abs(offsetMinutes) > 24 * 60)
    return invalid(`${JSON.stringify(input)} has an invalid offset`)
  const millis = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, "0"))
  return Either.right(base + millis - offsetMinutes * 60_000)
}

/**
 * A time as text, as tools and forms take it: `+<duration>` or RFC 3339. Checked by the grammar
 * (a relative time is read against no particular instant: only its form is checked here).
 *
 * @since 0.1.0
 */
export const TimeText = Schema.String.pipe(
  Schema.filter((text) => {
    const parsed = parseTime(text, 0, { field: "time" })
    return Either.isRight(parsed) || parsed.left.message.replace(/^time: /, "")
  })
)

/**
 * A duration as text with its unit (`30s`, `1h30m`, `PT2M`); a bare number is refused, since it
 * would mean milliseconds to the APIs and seconds to the CLI.
 *
 * @since 0.1.0
 */
export const DurationText = Schema.String.pipe(
  Schema.filter((text) => {
    if (/^\s*\d+(\.\d+)?\s*$/.test(text)) return `give a unit, as in "${text.trim()}s" or "${text.trim()}m"`
    const parsed = parseDuration(text, { field: "duration" })
    return Either.isRight(parsed) || parsed.left.message.replace(/^duration: /, "")
  })
)

const two = (n: number) => String(n).padStart(2, "0")

/**
 * A countdown to `fireAt` from `now`: `T-01:02:03`, with days when longer (`T-2d 01:02:03`), and
 * `T+00:00:05` once the instant has passed.
 *
 * @since 0.1.0
 */
export const countdown = (fireAt: number, now: number): string => {
  const left = fireAt - now
  const sign = left > 0 ? "-" : left < 0 ? "+" : "-"
  // Whole seconds left, rounded up: a countdown shows T-00:00:01 until the instant itself.
  const total = left >= 0 ? Math.ceil(left / 1000) : Math.floor(-left / 1000)
  const days = Math.floor(total / 86_400)
  const h = Math.floor((total % 86_400) / 3_600)
  const m = Math.floor((total % 3_600) / 60)
  const s = total % 60
  return `T${sign}${days > 0 ? `${days}d ` : ""}${two(h)}:${two(m)}:${two(s)}`
}
