"""The use cases (check, run, parse, compare, comment, baseline update), one module each: what the CLI,
the action and the tests call, with plain options in and a result with the exit code out."""
