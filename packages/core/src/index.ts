/**
 * t-minus core: countdown coordination for teams of AI agents. Runtime-agnostic: nothing here
 * imports from `node:`; the SQLite layer lives in `@t-minus/core/sqlite`.
 *
 * @since 0.1.0
 */
export * as Access from "./Access.ts"
export * as Actions from "./Actions.ts"
export * as CampaignGraph from "./CampaignGraph.ts"
export * as Coordinator from "./Coordinator.ts"
export * as Cron from "./Cron.ts"
export * as Errors from "./Errors.ts"
export * from "./Errors.ts"
export * as Event from "./Event.ts"
export * as EventStore from "./EventStore.ts"
export * as Lifecycle from "./Lifecycle.ts"
export * as Runner from "./Runner.ts"
export * as SqlDriver from "./SqlDriver.ts"
export * as SqlEventStore from "./SqlEventStore.ts"
export * as TimeGrammar from "./TimeGrammar.ts"
export { type Operations, TMinus } from "./TMinus.ts"
