"""The eval harness behind ``incidentfox eval DIR``: scenarios (emulator state, a trigger and the facts a
right answer states) run through the real pipeline, scored by fact checks and an optional LLM judge."""
