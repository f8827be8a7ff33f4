import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"

/**
 * The value of a finished effect, or its typed error thrown as it is (not a wrapper, so a Promise
 * caller can `instanceof` it); defects and interruptions are thrown squashed.
 *
 * @internal
 */
export const valueOrThrow = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  throw Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
}
