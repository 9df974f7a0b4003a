/// The R code Kapsel loads into every embedded R once: the function that runs a piece of
/// code and reports how it ended, as a list R's C API reads without evaluating anything:
/// `ok`, then for a value `value`, for an error its `class`, `message`, `call` and
/// `trace`; and always the `warnings` signalled on the way (muffled, not printed).
///
/// Errors are caught (`tryCatch`), and the calls on the stack are taken when the error is
/// signalled (a calling handler, which runs before the stack unwinds); an interrupt —
/// Kapsel sets R's pending-interrupt flag when a call's time limit passes — ends the code
/// the same way, as an `interrupt`. The helper lives in an environment of its own, not in
/// the global one.
enum RHelper {
    static let source = #"""
    local({
      describe <- function(call) paste(deparse(call, width.cutoff = 500L), collapse = " ")
      capture <- function(text, env) {
        warnings <- character()
        trace <- character()
        code <- tryCatch(parse(text = text, keep.source = FALSE), error = function(e) e)
        if (inherits(code, "error")) {
          return(list(ok = FALSE, class = "ParseError", message = conditionMessage(code), call = "",
                      warnings = warnings, trace = trace))
        }
        depth <- sys.nframe()
        result <- tryCatch(
          withCallingHandlers(
            list(ok = TRUE, value = eval(code, env)),
            warning = function(w) {
              warnings <<- c(warnings, conditionMessage(w))
              invokeRestart("muffleWarning")
            },
            error = function(e) {
              calls <- sys.calls()
              # The caller's calls lie between this helper's eleven frames (tryCatch,
              # withCallingHandlers and eval) and the two of the handler itself.
              first <- depth + 11L
              last <- length(calls) - 2L
              if (last >= first) trace <<- vapply(calls[first:last], describe, "")
            }
          ),
          error = function(e) list(ok = FALSE, class = class(e)[[1L]], message = conditionMessage(e),
                                   call = if (is.null(conditionCall(e))) "" else describe(conditionCall(e))),
          interrupt = function(i) list(ok = FALSE, class = "Interrupted",
                                       message = "R was interrupted: the call's time limit passed, or it was cancelled", call = "")
        )
        result$warnings <- warnings
        result$trace <- trace
        result
      }
      environment()
    })
    """#
}
