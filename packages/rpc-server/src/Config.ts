/**
 * The server's settings: defaults, then a JSON config file (`--config`), then environment
 * variables, then flags, each overriding the one before. A config file with an unknown key or a
 * value of the wrong type is refused with the path of the offending field.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { InvalidInput } from "@t-minus/core"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

const Positive = Schema.Number.pipe(Schema.positive())
const Whole = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

const Quota = Schema.Struct({
  activeEvents: Schema.optional(Whole),
  requestsPerSecond: Schema.optional(Positive),
  burst: Schema.optional(Positive)
})

/** An optional field that is absent, never `undefined` (as the runner's options are typed). */
const exact = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

const CommandSpec = Schema.Struct({
  command: Schema.String,
  args: exact(Schema.Array(Schema.String)),
  timeoutMs: exact(Positive),
  cwd: exact(Schema.String),
  env: exact(Schema.Record({ key: Schema.String, value: Schema.String }))
})

/**
 * The config file.
 *
 * @since 0.1.0
 */
export const ConfigFile = Schema.Struct({
  port: Schema.optional(Whole.pipe(Schema.lessThanOrEqualTo(65_535))),
  host: Schema.optional(Schema.String),
  db: Schema.optional(Schema.String),
  databaseUrl: Schema.optional(Schema.String),
  databaseSchema: Schema.optional(Schema.String),
  replica: Schema.optional(
    Schema.Struct({
      id: Schema.optional(Schema.String),
      leaseMs: Schema.optional(Whole.pipe(Schema.greaterThanOrEqualTo(100)))
    })
  ),
  /** `false` trusts every request as an admin of tenant `default` (local development only). */
  auth: Schema.optional(Schema.Boolean),
  bodyLimitBytes: Schema.optional(Positive),
  idleTimeoutMs: Schema.optional(Positive),
  stallTimeoutMs: Schema.optional(Positive),
  shutdownTimeoutMs: Schema.optional(Whole),
  logLevel: Schema.optional(Schema.Literal("debug", "info", "warning", "error", "none")),
  quotas: Schema.optional(
    Schema.Struct({
      default: Schema.optional(Quota),
      tenants: Schema.optional(Schema.Record({ key: Schema.String, value: Quota }))
    })
  ),
  runner: exact(
    Schema.Struct({
      actions: exact(
        Schema.Struct({
          commands: exact(Schema.Record({ key: Schema.String, value: CommandSpec })),
          fileDirectory: exact(Schema.String),
          webhookTimeoutMs: exact(Positive),
          commandTimeoutMs: exact(Positive),
          outputTailBytes: exact(Positive)
        })
      ),
      retrySchedule: exact(Schema.Array(Schema.Union(Schema.Number, Schema.String))),
      misfireGraceMs: exact(Whole),
      deliveryConcurrency: exact(Positive),
      shutdownGraceMs: exact(Whole)
    })
  )
})
/** @since 0.1.0 */
export type ConfigFile = typeof ConfigFile.Type

const decode = Schema.decodeUnknownEither(ConfigFile, { onExcessProperty: "error", errors: "first" })

/** The dotted path of the first problem of a parse error, e.g. `quotas.default.burst`. */
const pathOf = (error: ParseResult.ParseError): string => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  return issue === undefined || issue.path.length === 0 ? "config" : issue.path.map(String).join(".")
}

/**
 * Parses a config file's text; `InvalidInput` names the field (or `config` for bad JSON).
 *
 * @since 0.1.0
 */
export const parse = (text: string, source: string): Either.Either<ConfigFile, InvalidInput> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return Either.left(
      new InvalidInput({
        field: "config",
        message: `config: ${source} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`
      })
    )
  }
  return Either.mapLeft(decode(json), (error) => {
    const field = pathOf(error)
    const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
    return new InvalidInput({ field, message: `${field}: ${issue?.message ?? "invalid"} (in ${source})` })
  })
}

/**
 * Reads and parses a config file.
 *
 * @since 0.1.0
 */
export const load = (path: string): Either.Either<ConfigFile, InvalidInput> => {
  let text: string
  try {
    text = readFileSync(path, "utf8")
  } catch (error) {
    return Either.left(
      new InvalidInput({
        field: "config",
        message: `config: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`
      })
    )
  }
  return parse(text, path)
}
