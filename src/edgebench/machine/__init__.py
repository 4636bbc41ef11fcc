"""Facts about the machine a benchmark runs on: the environment fingerprint (`fingerprint`), board
telemetry and state (`telemetry`: tegrastats, jtop, nvpmodel) and the machine's load while a row ran
(`load`). Used by bench, launchers, cli and deploy; imports nothing above util."""
