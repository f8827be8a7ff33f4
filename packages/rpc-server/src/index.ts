/**
 * @t-minus/rpc-server
 *
 * @since 0.1.0
 */
export * as Server from "./Server.ts"
