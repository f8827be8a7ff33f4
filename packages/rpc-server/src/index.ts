/**
 * @t-minus/rpc-server
 *
 * @since 0.1.0
 */
export * as Keys from "./Keys.ts"
export * as Server from "./Server.ts"
