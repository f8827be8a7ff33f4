/**
 * The t-minus tools as LangChain tools (`@langchain/core`'s `tool()`), for `createAgent` and any
 * model that calls tools.
 *
 * ```ts
 * import { createTMinusTools } from "@t-minus/langchain-tools"
 * const tools = createTMinusTools({ agent: "builder", client: await TMinusClient.connect({ url, apiKey }) })
 * const agent = createAgent({ model, tools })
 * ```
 *
 * @since 0.1.0
 */
import { ToolMessage } from "@langchain/core/messages"
import { type DynamicStructuredTool, tool } from "@langchain/core/tools"
import * as Tools from "./Tools.ts"

/** @since 0.1.0 */
export type TMinusToolsOptions = Tools.ToolsOptions

interface ToolCallLike {
  readonly type: "tool_call"
  readonly id?: string | undefined
  readonly args: unknown
}

const isToolCall = (value: unknown): value is ToolCallLike =>
  typeof value === "object" && value !== null && (value as { type?: unknown }).type === "tool_call"

/** A result as LangChain returns it: a `ToolMessage` (failures marked `status: "error"`) for a tool call. */
const answer = (definition: Tools.Tool, result: Tools.ToolResult, toolCallId: string | undefined) =>
  toolCallId === undefined
    ? result.text
    : new ToolMessage({
        content: result.text,
        tool_call_id: toolCallId,
        name: definition.name,
        status: result.ok ? "success" : "error"
      })

const asLangChain = (definition: Tools.Tool): DynamicStructuredTool => {
  const built = tool(
    async (args: Record<string, unknown>, config?: { toolCall?: { id?: string } }) =>
      answer(definition, await definition.call(args), config?.toolCall?.id),
    {
      name: definition.name,
      description: definition.description,
      schema: definition.inputSchema as Record<string, unknown>
    }
  ) as unknown as DynamicStructuredTool
  // LangChain checks JSON-Schema input itself before calling the function and throws a generic
  // `ToolInputParsingException`. Checking first with the Effect schema gives the model a result
  // naming each wrong field instead, and fills the optional fields a non-strict model left out.
  const call = built.call.bind(built) as (
    arg: unknown,
    config?: unknown,
    ...rest: Array<unknown>
  ) => Promise<unknown>
  return Object.assign(built, {
    call: (arg: unknown, config?: unknown, ...rest: Array<unknown>) => {
      // `invoke` passes a tool call's args here, with the call itself in `config.toolCall`.
      const args = isToolCall(arg) ? arg.args : arg
      const fromConfig = (config as { toolCall?: { id?: string } } | undefined)?.toolCall
      const id = isToolCall(arg) ? arg.id : fromConfig?.id
      const checked = definition.check(args)
      if (!checked.ok) return Promise.resolve(answer(definition, checked.result, id))
      return call(isToolCall(arg) ? { ...arg, args: checked.args } : checked.args, config, ...rest)
    }
  }) as DynamicStructuredTool
}

/**
 * The t-minus tools acting as `agent`: schedule_event, create_timer, confirm_readiness, defer,
 * decline, get_event, list_events, cancel_event, reschedule_event, wait_for_event,
 * create_campaign, add_to_campaign, link_campaign_events, campaign_order. Every failure comes
 * back as the tool's result (JSON with `error` and `hint`), never as an exception.
 *
 * @since 0.1.0
 */
export const createTMinusTools = (options: TMinusToolsOptions): Array<DynamicStructuredTool> =>
  Tools.make(options).map(asLangChain)
