"""The benchmark harness: suites, scenarios, stop rules, statistics, telemetry, fingerprint."""
