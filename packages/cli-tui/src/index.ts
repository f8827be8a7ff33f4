/**
 * @t-minus/cli: the `t-minus` command line and its Ink TUI, callable in-process (`main`).
 *
 * @since 0.1.0
 */
export * as Format from "./format.ts"
export { type Io, main, VERSION } from "./main.ts"
