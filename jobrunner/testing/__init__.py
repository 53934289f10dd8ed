"""Test support: the reference executor, a throwaway PostgreSQL, the demo,
stock queue_job schemas and the fixtures the tests, the benchmarks and the
demo share. Shipped for the `demo` subcommand; no runtime module imports it."""
