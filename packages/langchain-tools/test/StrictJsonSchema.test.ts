import { TMinus } from "@t-minus/core"
import { Ajv } from "ajv"
import * as Schema from "effect/Schema"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { StrictJsonSchema, Tools } from "../src/index.ts"

describe("the tools' JSON Schemas", () => {
  let engine: TMinus
  let tools: ReadonlyArray<Tools.Tool>
  beforeAll(async () => {
    engine = await TMinus.inMemory()
    tools = Tools.make({ agent: "builder", client: engine })
  })
  afterAll(() => engine.close())

  it("are valid JSON Schema, compile under Ajv's strict mode and pass the strict function-calling check", () => {
    assert.deepStrictEqual(
      tools.map((t) => t.name),
      [
        "schedule_event",
        "create_timer",
        "confirm_readiness",
        "defer",
        "decline",
        "get_event",
        "list_events",
        "cancel_event",
        "reschedule_event",
        "wait_for_event",
        "create_campaign",
        "add_to_campaign",
        "link_campaign_events",
        "campaign_order"
      ]
    )
    const ajv = new Ajv({ strict: true, allErrors: true })
    for (const tool of tools) {
      assert.isTrue(ajv.validateSchema(tool.inputSchema) as boolean, `${tool.name}: ${ajv.errorsText()}`)
      assert.doesNotThrow(() => ajv.compile(tool.inputSchema), undefined, tool.name)
      assert.deepStrictEqual(StrictJsonSchema.problems(tool.inputSchema), [], tool.name)
      assert.isAbove(tool.description.length, 20, tool.name)
      const properties = tool.inputSchema.properties as Record<string, { description?: string }>
      for (const [name, property] of Object.entries(properties)) {
        assert.isString(property.description, `${tool.name}.${name} has a description for the model`)
      }
    }
  })

  it("carry every bound inline, with no $ref to lose it", () => {
    const list = tools.find((t) => t.name === "list_events")!
    const limit = (list.inputSchema.properties as Record<string, { anyOf: Array<Record<string, unknown>> }>)
      .limit!
    assert.include(limit.anyOf[0], { type: "integer", minimum: 1, maximum: 200 })
    for (const tool of tools) {
      assert.notInclude(JSON.stringify(tool.inputSchema), "$ref", tool.name)
      assert.notInclude(JSON.stringify(tool.inputSchema), "$defs", tool.name)
    }
  })

  it("take what a strict model sends (every field, null for the ones it does not use) and nothing less", () => {
    const ajv = new Ajv({ strict: true })
    const schedule = tools.find((t) => t.name === "schedule_event")!
    const validate = ajv.compile(schedule.inputSchema)
    const full = {
      kind: "deploy",
      at: "+10m",
      afterEventId: null,
      afterOffset: null,
      name: null,
      attendees: ["builder", "tester"],
      quorum: 2,
      tMinus: null,
      maxDeferrals: null,
      deadline: null,
      payloadJson: null,
      webhookUrl: null,
      campaignId: null
    }
    assert.isTrue(validate(full) as boolean, ajv.errorsText(validate.errors))
    assert.isTrue(schedule.check(full).ok)
    const { quorum: _, ...withoutQuorum } = full
    assert.isFalse(validate(withoutQuorum) as boolean, "strict: every field is required")
    assert.isFalse(validate({ ...full, agent: "tester" }) as boolean, "strict: no other field")
    const completed = schedule.check(withoutQuorum)
    assert.isTrue(completed.ok, "a model that leaves optional fields out is still understood")
    if (completed.ok)
      assert.isTrue(validate(completed.args) as boolean, "and its arguments completed with nulls")
  })

  it("the check finds what strict mode refuses", () => {
    const base = {
      type: "object",
      properties: { a: { type: "string" } },
      required: ["a"],
      additionalProperties: false
    }
    assert.deepStrictEqual(StrictJsonSchema.problems(base), [])
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...base, required: [] }, /property a must be required/],
      [{ ...base, additionalProperties: true }, /additionalProperties must be false/],
      [
        { ...base, properties: { a: { type: "string", minLength: 1 } } },
        /keyword minLength is not supported/
      ],
      [{ ...base, properties: { a: { type: "string", format: "uri" } } }, /format uri is not supported/],
      [{ ...base, properties: { a: { $ref: "#/$defs/Missing" } } }, /does not resolve/],
      [
        {
          ...base,
          $defs: { Int: { type: "integer" } },
          properties: { a: { $ref: "#/$defs/Int", minimum: 1 } }
        },
        /\$ref cannot have keywords beside it \(minimum\)/
      ],
      [{ ...base, properties: { a: { type: "array" } } }, /array must say what its items are/],
      [{ anyOf: [base, base] }, /root must be an object/],
      [{ ...base, properties: { a: {} } }, /says nothing of its type/],
      [
        {
          ...base,
          properties: { a: { type: "object", properties: { b: { type: "string" } }, required: ["b"] } }
        },
        /#\/properties\/a: additionalProperties must be false/
      ]
    ]
    for (const [schema, problem] of cases) {
      const found = StrictJsonSchema.problems(schema)
      assert.isTrue(
        found.some((p) => problem.test(p)),
        `${JSON.stringify(schema)}: ${found.join("; ")}`
      )
    }
    let deep: Record<string, unknown> = { type: "string" }
    for (let i = 0; i < 11; i++) {
      deep = { type: "object", properties: { x: deep }, required: ["x"], additionalProperties: false }
    }
    assert.isTrue(StrictJsonSchema.problems(deep).some((p) => /deeper than 10/.test(p)))
  })

  it("make derives them from Effect schemas: optional fields must be nullable, unknown keywords go", () => {
    const made = StrictJsonSchema.make(
      Schema.Struct({
        name: Schema.NonEmptyTrimmedString.annotations({ description: "a name" }),
        note: Schema.optionalWith(Schema.String, { nullable: true }).annotations({ description: "a note" })
      })
    )
    assert.deepStrictEqual(StrictJsonSchema.problems(made), [])
    assert.deepStrictEqual(made.required, ["name", "note"])
    assert.notInclude(JSON.stringify(made), "minLength")
    assert.notInclude(JSON.stringify(made), "$schema")
    assert.throws(
      () => StrictJsonSchema.make(Schema.Struct({ note: Schema.optional(Schema.String) })),
      /note: an optional field must be nullable/
    )
    assert.throws(
      () =>
        StrictJsonSchema.make(
          Schema.Struct({ tags: Schema.Record({ key: Schema.String, value: Schema.String }) })
        ),
      /record/
    )
  })
})
