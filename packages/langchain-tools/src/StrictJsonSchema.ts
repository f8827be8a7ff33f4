/**
 * Tool input schemas as JSON Schema that OpenAI-style strict function calling accepts, derived
 * from the Effect schemas (`JSONSchema.make`), never written by hand.
 *
 * Strict mode's rules (OpenAI "Structured Outputs", supported schemas): the root is an object;
 * every object lists all its properties in `required` and sets `additionalProperties: false`;
 * an optional field is expressed as nullable (`anyOf: [T, { type: "null" }]`) instead; only a
 * subset of keywords is understood. So a tool's optional fields are `Schema.optionalWith(T,
 * { nullable: true })` (a model sends `null`, or, not in strict mode, leaves it out), and the
 * keywords strict mode does not know (`minLength`, `title`, …) are dropped from the JSON: the
 * Effect schema still checks them when the tool decodes its input.
 *
 * @since 0.1.0
 */
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"

/** A JSON Schema document. @since 0.1.0 */
export type JsonSchema = { readonly [key: string]: unknown }

/** The keywords strict mode understands, with where they may appear. */
const KEYWORDS = new Set([
  "type",
  "description",
  "enum",
  "const",
  "anyOf",
  "$ref",
  "$defs",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf"
])

/** The string formats strict mode supports. */
const FORMATS = new Set([
  "date-time",
  "time",
  "date",
  "duration",
  "email",
  "hostname",
  "ipv4",
  "ipv6",
  "uuid"
])

/** Limits of strict mode: nesting depth, properties in all, enum values in all. */
const MAX_DEPTH = 10
const MAX_PROPERTIES = 5_000
const MAX_ENUM_VALUES = 1_000

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const allowsNull = (schema: unknown): boolean =>
  isObject(schema) &&
  (schema.type === "null" ||
    (Array.isArray(schema.type) && schema.type.includes("null")) ||
    (Array.isArray(schema.anyOf) && schema.anyOf.some(allowsNull)))

/** Keywords whose values are data, not schemas: never rewritten. */
const DATA = new Set(["enum", "const", "required", "description", "pattern", "format", "type"])

/**
 * One node made strict: `$ref`s inlined (strict mode refuses keywords beside a `$ref`, and Effect
 * puts descriptions and bounds there), unknown keywords dropped, objects closed with every
 * property required.
 */
const strictNode = (
  node: unknown,
  path: string,
  defs: Record<string, unknown>,
  seen: ReadonlyArray<string>
): unknown => {
  if (Array.isArray(node)) return node.map((item, i) => strictNode(item, `${path}/${i}`, defs, seen))
  if (!isObject(node)) return node
  if (typeof node.$ref === "string") {
    const name = node.$ref.replace(/^#\/\$defs\//, "")
    if (!(name in defs)) throw new Error(`${path}: $ref ${node.$ref} does not resolve`)
    if (seen.includes(name)) throw new Error(`${path}: recursive $ref ${node.$ref} cannot be inlined`)
    const { $ref: _, ...siblings } = node
    return strictNode({ ...(defs[name] as object), ...siblings }, path, defs, [...seen, name])
  }
  if ("patternProperties" in node || isObject(node.additionalProperties)) {
    throw new Error(`${path}: a record (open-ended keys) cannot be expressed in strict mode`)
  }
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) {
    if (!KEYWORDS.has(key) || key === "$defs") continue
    if (key === "properties") {
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([name, sub]) => [
          name,
          strictNode(sub, `${path}/${key}/${name}`, defs, seen)
        ])
      )
    } else if (key === "format" && !FORMATS.has(String(value))) {
      // A format strict mode does not know: the Effect schema checks it instead.
    } else {
      out[key] = DATA.has(key) ? value : strictNode(value, `${path}/${key}`, defs, seen)
    }
  }
  if (isObject(out.properties)) {
    const required = new Set(Array.isArray(node.required) ? (node.required as Array<string>) : [])
    for (const [name, sub] of Object.entries(out.properties)) {
      if (!required.has(name) && !allowsNull(sub)) {
        throw new Error(
          `${path}/properties/${name}: an optional field must be nullable in strict mode ` +
            "(Schema.optionalWith(T, { nullable: true }))"
        )
      }
    }
    out.required = Object.keys(out.properties)
    out.additionalProperties = false
  }
  // `anyOf` members repeat the description of the field they belong to.
  if (Array.isArray(out.anyOf) && typeof out.description === "string") {
    out.anyOf = out.anyOf.map((member) =>
      isObject(member) && member.description === out.description
        ? Object.fromEntries(Object.entries(member).filter(([key]) => key !== "description"))
        : member
    )
  }
  return out
}

/**
 * The strict JSON Schema of an Effect schema of a struct. Throws (a programming error) when a
 * field is optional without being nullable.
 *
 * @since 0.1.0
 */
export const make = <A, I, R>(schema: Schema.Schema<A, I, R>): JsonSchema => {
  const { $schema: _, $defs, ...document } = JSONSchema.make(schema) as unknown as Record<string, unknown>
  return strictNode(document, "#", isObject($defs) ? $defs : {}, []) as JsonSchema
}

/**
 * Everything in `schema` that strict function calling would refuse, each naming where it is;
 * empty when it passes.
 *
 * @since 0.1.0
 */
export const problems = (schema: JsonSchema): ReadonlyArray<string> => {
  const found: Array<string> = []
  let properties = 0
  let enumValues = 0
  const defs = isObject(schema.$defs) ? schema.$defs : {}
  if (schema.type !== "object") found.push("#: the root must be an object")
  if ("anyOf" in schema) found.push("#: the root must not be an anyOf")
  const visit = (node: unknown, path: string, depth: number): void => {
    if (!isObject(node)) {
      found.push(`${path}: not a schema`)
      return
    }
    if (depth > MAX_DEPTH) found.push(`${path}: nested deeper than ${MAX_DEPTH} levels`)
    for (const key of Object.keys(node)) {
      if (!KEYWORDS.has(key)) found.push(`${path}: keyword ${key} is not supported`)
    }
    if (
      !("type" in node) &&
      !("anyOf" in node) &&
      !("$ref" in node) &&
      !("enum" in node) &&
      !("const" in node)
    ) {
      found.push(`${path}: says nothing of its type`)
    }
    if ("format" in node && !FORMATS.has(String(node.format))) {
      found.push(`${path}: format ${String(node.format)} is not supported`)
    }
    if (Array.isArray(node.enum)) enumValues += node.enum.length
    if (typeof node.$ref === "string") {
      const name = node.$ref.startsWith("#/$defs/") ? node.$ref.slice("#/$defs/".length) : null
      if (name === null || !(name in defs)) found.push(`${path}: $ref ${node.$ref} does not resolve in $defs`)
      const siblings = Object.keys(node).filter((key) => key !== "$ref")
      if (siblings.length > 0)
        found.push(`${path}: $ref cannot have keywords beside it (${siblings.join(", ")})`)
    }
    if (path !== "#" && "$defs" in node) found.push(`${path}: $defs belong at the root`)
    const isArrayType = node.type === "array" || (Array.isArray(node.type) && node.type.includes("array"))
    if (isArrayType && !("items" in node)) found.push(`${path}: an array must say what its items are`)
    const isObjectType = node.type === "object" || (Array.isArray(node.type) && node.type.includes("object"))
    if (isObjectType || "properties" in node) {
      const props = isObject(node.properties) ? node.properties : {}
      const names = Object.keys(props)
      properties += names.length
      if (node.additionalProperties !== false) found.push(`${path}: additionalProperties must be false`)
      const required = Array.isArray(node.required) ? node.required : []
      for (const name of names) {
        if (!required.includes(name)) found.push(`${path}: property ${name} must be required`)
      }
      for (const name of required) {
        if (!names.includes(name as string)) found.push(`${path}: required ${String(name)} is not a property`)
      }
      for (const [name, sub] of Object.entries(props)) visit(sub, `${path}/properties/${name}`, depth + 1)
    }
    if ("items" in node) visit(node.items, `${path}/items`, depth + 1)
    if (Array.isArray(node.anyOf))
      for (const [i, member] of node.anyOf.entries()) visit(member, `${path}/anyOf/${i}`, depth)
  }
  visit(Object.fromEntries(Object.entries(schema).filter(([key]) => key !== "$defs")), "#", 1)
  for (const [name, def] of Object.entries(defs)) visit(def, `#/$defs/${name}`, 1)
  if (properties > MAX_PROPERTIES)
    found.push(`#: ${properties} properties in all, more than ${MAX_PROPERTIES}`)
  if (enumValues > MAX_ENUM_VALUES)
    found.push(`#: ${enumValues} enum values in all, more than ${MAX_ENUM_VALUES}`)
  return found
}
